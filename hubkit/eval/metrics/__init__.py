"""Metrics as local `evaluate` modules: `evaluate.load(metric_path("gsm8k_exact_match"))` needs no network."""

from __future__ import annotations

from pathlib import Path

METRICS = ("gsm8k_exact_match", "math_equivalence", "nq_exact_match", "multiple_choice", "code_pass_at_k")


def metric_path(name: str) -> str:
    """The file of a hubkit metric, for `evaluate.load`."""
    from ...errors import HubkitError

    if name not in METRICS:
        raise HubkitError(f"unknown metric '{name}' (known: {', '.join(METRICS)})")
    return str(Path(__file__).with_name(f"{name}.py"))


def load_metric(name: str):
    """`evaluate.load` of a hubkit metric from its local file."""
    import evaluate

    return evaluate.load(metric_path(name))
