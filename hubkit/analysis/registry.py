"""The analysis registry's record: what each analysis declares (`AnalysisSpec`) and what it is given (`Inputs`).

An analysis is one module of `hubkit.analysis.analyses` that defines `SPEC = AnalysisSpec(...)`: its name, title,
part of the report, unit of n, default condition, the axes it compares along, the extra table it needs (if any)
and the function that runs it. `analyses.specs()` finds them; `study.analyze` runs them in `order`. Adding an
analysis is adding one file.

Example:
    >>> SPEC = AnalysisSpec(name="my_gain", title="My gain", part="RQ1", unit="runs", order=45,
    ...                     run=lambda i: my_gain(i.cells, i.condition, i.include_failures, i.out))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .conditions import MAIN_GRID, Condition
from .report import Section

if TYPE_CHECKING:
    import pandas as pd

#: The order in which figures show the benchmark scales (percent first).
SCALE_ORDER = {"percent": 0, "1-10": 1, "raw": 2}


@dataclass
class Inputs:
    """What an analysis runs on: the gain cells under its condition, and the extra tables given to `analyze`."""

    cells: pd.DataFrame
    condition: Condition
    include_failures: bool = False
    out: Path | None = None  # where figures go (None: no figures)
    properties: pd.DataFrame | None = None  # per (base_model, dataset) data properties
    layers: pd.DataFrame | None = None  # per-layer weight changes


@dataclass(frozen=True)
class AnalysisSpec:
    """One analysis of the study, as the registry knows it.

    Args:
        name: its key (tables, figures, `index.json`, the leaderboard's Plots tab).
        title: its heading in the report.
        part: the report's part ("RQ1", "RQ2", "RQ3", "training factors", "cross-lingual").
        unit: what its n counts ("runs", "paired training runs", …).
        order: its place in the report (the paper's order).
        run: the function that makes its `Section` from `Inputs`.
        condition: its default condition (`where` overrides apply on top).
        frees: the axes it compares along, left open whatever `where` says.
        needs: the extra table it needs (`properties` or `layers`), or None for the results alone.
        needs_text: what that table is, in words (for the report's "Not run" list).
        command: the commands that make that table.
    """

    name: str
    title: str
    part: str
    unit: str
    order: int
    run: Callable[[Inputs], Section]
    condition: Condition = MAIN_GRID
    frees: tuple[str, ...] = ()
    needs: Literal["properties", "layers"] | None = None
    needs_text: str = ""
    command: str = ""

    def condition_for(self, where: dict[str, Any] | None = None) -> Condition:
        """Its condition: the default with `where` applied, and the compared axes left open."""
        condition = self.condition.replace(**(where or {}))
        for axis in self.frees:
            condition = condition.free(axis)
        return condition

    def section(self, condition: Condition, n: int, dropped: list[str], tables: dict | None = None,
                title: str | None = None, **more: Any) -> Section:
        """A `Section` of this analysis (its title, part and unit)."""
        return Section(self.name, title or self.title, self.part, condition, n, self.unit, dropped, tables or {},
                       **more)
