"""MATH answer equivalence after the MATH paper's normalisation: a local `evaluate` module.

    >>> import evaluate
    >>> from hubkit.eval.metrics import metric_path
    >>> evaluate.load(metric_path("math_equivalence")).compute(predictions=["$\\boxed{3}$"], references=["3"])
    {'exact_match': 1.0}
"""

import datasets

from hubkit.eval.metrics._match import match_metric
from hubkit.eval.scoring import math_match

Metric = match_metric(
    math_match,
    description="MATH answer equivalence after the MATH paper's normalisation (hubkit)",
    citation="Hendrycks et al., Measuring Mathematical Problem Solving With the MATH Dataset, NeurIPS 2021 "
             "(arXiv:2103.03874)",
    predictions="A generated solution; its last \\boxed{} answer is compared.",
    references="The gold answer, or a reference solution with a \\boxed{} answer.",
    references_feature=datasets.Value("string"),
)
