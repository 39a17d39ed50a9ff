"""NQ-open exact match with any gold answer (SQuAD normalisation): a local `evaluate` module.

    >>> import evaluate
    >>> from hubkit.eval.metrics import metric_path
    >>> evaluate.load(metric_path("nq_exact_match")).compute(predictions=["Paris"], references=[["paris"]])
    {'exact_match': 1.0}
"""

import datasets

from hubkit.eval.metrics._match import match_metric
from hubkit.eval.scoring import nq_match

Metric = match_metric(
    nq_match,
    description="NQ-open exact match with any gold answer, SQuAD normalisation (hubkit)",
    citation="Lee et al., Latent Retrieval for Weakly Supervised Open Domain Question Answering, ACL 2019; "
             "Kwiatkowski et al., Natural Questions, TACL 2019",
    predictions="A generated answer; its first line is compared.",
    references="The list of gold answers.",
    references_feature=datasets.Sequence(datasets.Value("string")),
)
