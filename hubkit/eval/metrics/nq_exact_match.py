"""NQ-open exact match with any gold answer, SQuAD normalisation (hubkit): a local `evaluate` module.

    >>> import evaluate
    >>> from hubkit.eval.metrics import metric_path
    >>> metric = evaluate.load(metric_path("nq_exact_match"))
"""

import datasets
import evaluate

from hubkit.eval.scoring import nq_match

_INPUTS = """
Args:
    predictions: A generated answer; its first line is compared.
    references: The list of gold answers.
Returns:
    exact_match: the share of predictions that match, in [0, 1].
"""


_DESCRIPTION = "NQ-open exact match with any gold answer, SQuAD normalisation (hubkit)"

_CITATION = ("Lee et al., Latent Retrieval for Weakly Supervised Open Domain Question Answering, ACL"
             " 2019; Kwiatkowski et al., Natural Questions, TACL 2019")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class Metric(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Sequence(datasets.Value("string"))}),
        )

    def _compute(self, predictions, references):
        hits = [nq_match(p, r) for p, r in zip(predictions, references)]
        return {"exact_match": sum(hits) / len(hits) if hits else 0.0}
