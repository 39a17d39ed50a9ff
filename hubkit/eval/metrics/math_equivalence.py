"""MATH answer equivalence after the MATH paper's normalisation (hubkit): a local `evaluate` module.

    >>> import evaluate
    >>> from hubkit.eval.metrics import metric_path
    >>> metric = evaluate.load(metric_path("math_equivalence"))
"""

import datasets
import evaluate

from hubkit.eval.scoring import math_match

_INPUTS = """
Args:
    predictions: A generated solution; its last \\boxed{} answer is compared.
    references: The gold answer, or a reference solution with a \\boxed{} answer.
Returns:
    exact_match: the share of predictions that match, in [0, 1].
"""


_DESCRIPTION = "MATH answer equivalence after the MATH paper's normalisation (hubkit)"

_CITATION = ("Hendrycks et al., Measuring Mathematical Problem Solving With the MATH Dataset, NeurIPS"
             " 2021 (arXiv:2103.03874)")


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
        hits = [math_match(p, r) for p, r in zip(predictions, references)]
        return {"exact_match": sum(hits) / len(hits) if hits else 0.0}
