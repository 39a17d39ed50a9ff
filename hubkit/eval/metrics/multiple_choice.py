"""Multiple-choice accuracy from per-choice log-likelihoods: a local `evaluate` module.

`acc`: the highest-scoring choice is a correct one. `acc_norm`: the same with each log-likelihood divided
by its choice's length in bytes (lm-eval's length normalisation). `mc1`: the first choice is the best
answer and wins. `mc2`: the share of probability mass on the correct choices (TruthfulQA MC2).

    >>> import evaluate
    >>> from hubkit.eval.metrics import metric_path
    >>> mc = evaluate.load(metric_path("multiple_choice"))
    >>> mc.compute(predictions=[[-1.0, -2.0]], references=[[1, 0]], choice_lengths=[[3, 3]])["acc"]
    1.0
"""

import math

import datasets
import evaluate

_INPUTS = """
Args:
    predictions: per question, the log-likelihood of each choice.
    references: per question, 1 for each correct choice and 0 for the others (same order).
    choice_lengths: per question, each choice's length in bytes (for `acc_norm`); optional.
Returns:
    acc, acc_norm, mc1, mc2: shares in [0, 1].
"""


def scores(logliks, labels, lengths=None):
    """The four per-question scores of one question."""
    best = max(range(len(logliks)), key=lambda i: logliks[i])
    norm = [ll / max(1, n) for ll, n in zip(logliks, lengths)] if lengths else logliks
    best_norm = max(range(len(norm)), key=lambda i: norm[i])
    top = max(logliks)
    mass = [math.exp(ll - top) for ll in logliks]
    right = sum(m for m, y in zip(mass, labels) if y)
    return {"acc": float(labels[best] == 1), "acc_norm": float(labels[best_norm] == 1),
            "mc1": float(best == 0 and labels[0] == 1), "mc2": right / sum(mass)}


@evaluate.utils.file_utils.add_start_docstrings("Multiple-choice accuracy by log-likelihood (hubkit)", _INPUTS)
class Metric(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Multiple-choice accuracy by log-likelihood (hubkit)", citation="", inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("float64")),
                                        "references": datasets.Sequence(datasets.Value("int32"))}),
        )

    def _compute(self, predictions, references, choice_lengths=None):
        rows = [scores(p, r, choice_lengths[i] if choice_lengths else None)
                for i, (p, r) in enumerate(zip(predictions, references))]
        return {k: (sum(row[k] for row in rows) / len(rows) if rows else 0.0) for k in ("acc", "acc_norm", "mc1", "mc2")}
