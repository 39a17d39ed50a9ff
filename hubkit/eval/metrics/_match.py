"""The one shape of hubkit's answer-matching metrics: the share of predictions that match their reference."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import datasets
import evaluate


def match_metric(match: Callable[[str, Any], bool], description: str, citation: str, predictions: str,
                 references: str, references_feature: Any) -> type[evaluate.Metric]:
    """An `evaluate.Metric` class whose `compute` returns `{"exact_match": share of matches}`."""
    inputs = (f"\nArgs:\n    predictions: {predictions}\n    references: {references}\n"
              "Returns:\n    exact_match: the share of predictions that match, in [0, 1].\n")

    @evaluate.utils.file_utils.add_start_docstrings(description, inputs)
    class MatchMetric(evaluate.Metric):
        def _info(self):
            return evaluate.MetricInfo(
                description=description, citation=citation, inputs_description=inputs,
                features=datasets.Features({"predictions": datasets.Value("string"),
                                            "references": references_feature}),
            )

        def _compute(self, predictions, references):
            hits = [match(p, r) for p, r in zip(predictions, references)]
            return {"exact_match": sum(hits) / len(hits) if hits else 0.0}

    return MatchMetric
