"""GSM8K exact match on the final number of each solution: a local `evaluate` module.

    >>> import evaluate
    >>> from hubkit.eval.metrics import metric_path
    >>> evaluate.load(metric_path("gsm8k_exact_match")).compute(predictions=["#### 18"], references=["18"])
    {'exact_match': 1.0}
"""

import datasets

from hubkit.eval.metrics._match import match_metric
from hubkit.eval.scoring import gsm8k_match

Metric = match_metric(
    gsm8k_match,
    description="GSM8K exact match on the final number of each solution (hubkit)",
    citation="Cobbe et al., Training Verifiers to Solve Math Word Problems, arXiv:2110.14168 (2021)",
    predictions="A generated solution; its final number is compared numerically with the reference.",
    references="A number, or a reference solution (its final number is used).",
    references_feature=datasets.Value("string"),
)
