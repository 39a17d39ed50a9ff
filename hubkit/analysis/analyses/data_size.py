"""Training factors: the larger training set against the smaller (20,000-example runs exist with a constant
schedule, full-parameter, at every epoch: paired epoch by epoch)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..conditions import MATCH, Condition
from ..registry import AnalysisSpec
from ..report import Section
from ._paired import paired_section

if TYPE_CHECKING:
    import pandas as pd


def data_size(cells: pd.DataFrame, condition: Condition, include_failures: bool = False,
              sizes: tuple[int, int] = (1000, 20000), out: Path | None = None) -> Section:
    """Gain with the larger training set minus gain with the smaller, paired at equal epochs."""
    present = sorted(int(s) for s in cells["data_size"].dropna().unique())
    if not set(sizes) <= set(present) and len(present) >= 2:
        sizes = (present[0], present[-1])
    a, b = sizes
    return paired_section(SPEC, f"{b:,} vs {a:,} training examples", cells, condition, "data_size", a, b, MATCH,
                           ["base_model", "dataset", "tuning", "lr_schedule"], include_failures,
                           f"{b:,} − {a:,} examples", out, by_extra=["epochs"])


SPEC = AnalysisSpec(
    name="data_size", title="Larger vs smaller training sets",
    part="training factors", unit="paired training runs", order=80,
    condition=Condition(data_size=None, lr_schedule="constant", epochs=None), frees=("data_size",),
    run=lambda i: data_size(i.cells, i.condition, i.include_failures, out=i.out),
)
