"""Training factors: LoRA against full-parameter tuning, on runs equal on every other axis."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..conditions import MATCH, Condition
from ..registry import AnalysisSpec
from ..report import Section
from ._paired import paired_section

if TYPE_CHECKING:
    import pandas as pd


def lora_vs_full(cells: pd.DataFrame, condition: Condition, include_failures: bool = False,
                 out: Path | None = None) -> Section:
    """LoRA − full-parameter gain on runs equal on every other axis."""
    return paired_section(SPEC, "LoRA vs full-parameter tuning", cells, condition, "tuning", "full", "lora",
                           MATCH, ["base_model", "dataset", "data_size", "lr_schedule"], include_failures,
                           "LoRA − full", out)


SPEC = AnalysisSpec(
    name="lora_vs_full", title="LoRA vs full-parameter tuning",
    part="training factors", unit="paired training runs", order=70,
    frees=("tuning",),
    run=lambda i: lora_vs_full(i.cells, i.condition, i.include_failures, i.out),
)
