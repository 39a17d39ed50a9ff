"""GSM8K exact match on the final number of each solution (hubkit): a local `evaluate` module.

    >>> import evaluate
    >>> from hubkit.eval.metrics import metric_path
    >>> metric = evaluate.load(metric_path("gsm8k_exact_match"))
"""

import datasets
import evaluate

from hubkit.eval.scoring import gsm8k_match

_INPUTS = """
Args:
    predictions: A generated solution; its final number is compared numerically with the reference.
    references: A number, or a reference solution (its final number is used).
Returns:
    exact_match: the share of predictions that match, in [0, 1].
"""


_DESCRIPTION = "GSM8K exact match on the final number of each solution (hubkit)"

_CITATION = "Cobbe et al., Training Verifiers to Solve Math Word Problems, arXiv:2110.14168 (2021)"


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class Metric(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references):
        hits = [gsm8k_match(p, r) for p, r in zip(predictions, references)]
        return {"exact_match": sum(hits) / len(hits) if hits else 0.0}
