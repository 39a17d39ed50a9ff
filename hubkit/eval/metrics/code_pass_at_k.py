"""pass@k of generated code from the outcomes of running it against its tests: a local `evaluate` module.

Running the code is the sandbox's job (`hubkit.eval.sandbox`); this metric only counts. It uses the unbiased
estimator of Chen et al. (2021): per problem, 1 - C(n - c, k) / C(n, k) for n samples of which c pass.

    >>> import evaluate
    >>> from hubkit.eval.metrics import metric_path
    >>> evaluate.load(metric_path("code_pass_at_k")).compute(predictions=[[True], [False]], references=[0, 1])
    {'pass@1': 0.5}
"""

import datasets
import evaluate
import numpy as np

_INPUTS = """
Args:
    predictions: per problem, whether each generated sample passed its tests.
    references: per problem, its index (kept for alignment; not scored).
    k: the k values to report (default [1]); a k larger than a problem's sample count is skipped.
Returns:
    pass@k for each k: shares in [0, 1].
"""


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with n samples, c of them passing."""
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


@evaluate.utils.file_utils.add_start_docstrings("pass@k of generated code (hubkit)", _INPUTS)
class Metric(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="pass@k of generated code (hubkit)",
            citation="Chen et al., Evaluating Large Language Models Trained on Code, arXiv:2107.03374 (2021)",
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("bool")),
                                        "references": datasets.Value("int32")}),
        )

    def _compute(self, predictions, references, k=(1,)):
        out = {}
        for kk in k:
            values = [pass_at_k(len(p), sum(p), kk) for p in predictions if len(p) >= kk]
            out[f"pass@{kk}"] = sum(values) / len(values) if values else 0.0
        return out
