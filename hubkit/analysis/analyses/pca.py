"""RQ1: how many principal components explain the runs' gain patterns."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import figures
from ..cells import averaged_cells, complete_patterns, failure_note
from ..conditions import MAIN_GRID, Condition
from ..registry import AnalysisSpec
from ..report import Section

if TYPE_CHECKING:
    import pandas as pd


def pca(cells: pd.DataFrame, condition: Condition = MAIN_GRID, include_failures: bool = False,
        out: Path | None = None) -> Section:
    """PCA of the runs' gain patterns (percent-scale benchmarks, each at one shot count, centred): how many
    components explain them."""
    import pandas as pd

    percent, once = averaged_cells(cells, include_failures)
    wide = percent.pivot_table(index="run_id", columns="column", values="gain", aggfunc="mean")
    wide, dropped = complete_patterns(wide) if not wide.empty else (wide, [])
    section = SPEC.section(condition, len(wide), once + dropped + failure_note(cells, include_failures))
    if len(wide) < 3 or wide.shape[1] < 2:
        section.finding = "Too few complete gain patterns for a PCA under this condition."
        section.tables = {"pca": pd.DataFrame(columns=["component", "explained", "cumulative"])}
        return section
    x = wide.to_numpy(float)
    x = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    explained = s ** 2 / (s ** 2).sum()
    comps = [f"PC{i + 1}" for i in range(len(s))]
    table = pd.DataFrame({"component": comps, "explained": explained, "cumulative": np.cumsum(explained)})
    loadings = pd.DataFrame(vt.T, index=wide.columns, columns=comps).reset_index()
    scores = pd.DataFrame(x @ vt.T, index=wide.index, columns=comps).reset_index()
    scores = scores.join(cells.drop_duplicates("run_id").set_index("run_id")[["base_model", "dataset"]], on="run_id")
    section.tables = {"pca": table, "pca_loadings": loadings, "pca_scores": scores[["run_id", "base_model", "dataset",
                                                                                     *comps[:3]]]}
    k90 = int(np.searchsorted(np.cumsum(explained), 0.9) + 1)
    section.finding = (f"{k90} of {len(s)} components explain 90 % of the variance of {len(wide)} gain patterns over "
                       f"{wide.shape[1]} benchmarks (PC1 alone {explained[0]:.0%}).")
    section.lines = ["| component | explained | cumulative |", "| --- | --- | --- |"]
    section.lines += [f"| {r.component} | {r.explained:.1%} | {r.cumulative:.1%} |" for r in table.head(8).itertuples()]
    if out is not None and (path := figures.pca_figure(table.head(12), scores, out / "pca.png",
                                                       f"PCA of centred gain patterns ({wide.shape[1]} percent-scale "
                                                       f"benchmarks). Condition: {condition.text()}; n = {len(wide)} runs.")):
        section.figures.append(path)
    return section


SPEC = AnalysisSpec(
    name="pca", title="Principal components of gain patterns",
    part="RQ1", unit="runs", order=40,
    run=lambda i: pca(i.cells, i.condition, i.include_failures, i.out),
)
