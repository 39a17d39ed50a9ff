"""RQ1: per base model, the gain per training data × benchmark, and how far base models agree on its sign."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import figures
from ..cells import failure_note
from ..conditions import MAIN_GRID, Condition
from ..registry import SCALE_ORDER, AnalysisSpec
from ..report import Section, md

if TYPE_CHECKING:
    import pandas as pd


def synergy(cells: pd.DataFrame, condition: Condition = MAIN_GRID, include_failures: bool = False,
            out: Path | None = None) -> Section:
    """Per base model, the gain per training dataset × benchmark; per cell, the sign agreement across models."""
    grid = cells.groupby(["base_model", "dataset", "column", "scale"], as_index=False).agg(
        gain=("gain", "mean"), runs=("run_id", "nunique"), format_failure=("format_failure", "any"))
    use = grid if include_failures else grid[~grid["format_failure"]]
    signs = use.assign(positive=use["gain"] > 0)
    agree = signs.groupby(["dataset", "column", "scale"]).agg(
        bases=("gain", "size"), positive=("positive", "sum"), mean_gain=("gain", "mean")).reset_index()
    agree["agreement"] = np.maximum(agree["positive"], agree["bases"] - agree["positive"]) / agree["bases"]
    failures = cells[cells["format_failure"]].drop_duplicates(["base_model", "column"])[
        ["base_model", "column", "base_score"]]
    section = SPEC.section(condition, int(cells["run_id"].nunique()), failure_note(cells, include_failures),
                           {"synergy": grid, "agreement": agree, "format_failures": failures})
    if pooled := condition.pooled():
        section.dropped.append(f"each cell averages over {', '.join(pooled)} (pooled by the condition)")
    top = agree[(agree["bases"] >= 2) & (agree["scale"] == "percent")].sort_values(
        ["agreement", "mean_gain"], ascending=False).head(10)
    section.lines = ["| training data | benchmark | bases | agreement | mean gain |", "| --- | --- | --- | --- | --- |"]
    section.lines += [f"| {md(r.dataset)} | {md(r.column)} | {r.bases} | {r.agreement:.0%} | {r.mean_gain:+.2f} |"
                      for r in top.itertuples()]
    if not top.empty:
        best = agree[(agree["bases"] >= 2) & (agree["scale"] == "percent")].sort_values("mean_gain").iloc[-1]
        section.finding = (f"The largest mean gain on a percent-scale benchmark is {md(best['dataset'])} on "
                           f"{md(best['column'])} ({best['mean_gain']:+.1f} points, {best['positive']} of "
                           f"{best['bases']} base models gain).")
    if out is not None:
        for scale, part in sorted(grid.groupby("scale"), key=lambda kv: SCALE_ORDER.get(kv[0], 9)):
            panels = [(base, m.pivot(index="dataset", columns="column", values="gain"))
                      for base, m in part.groupby("base_model")]
            if not include_failures:
                panels = [(b, m.mask(_failure_mask(m, part[part["base_model"] == b]))) for b, m in panels]
            name = "synergy.png" if scale == "percent" else f"synergy-{scale}.png"
            path = figures.heatmap_panels(
                panels, out / name, f"gain ({figures.UNITS.get(scale, scale)})",
                f"Gain over the base model per training data (rows) and benchmark (columns), {scale} scale. "
                f"Condition: {condition.text()}; n = {section.n} runs. Grey: not scored"
                + ("" if include_failures else " or a base-model format failure") + ".")
            if path:
                section.figures.append(path)
    return section


def _failure_mask(matrix: pd.DataFrame, part: pd.DataFrame):
    failed = set(part[part["format_failure"]]["column"])
    return matrix.apply(lambda col: col.map(lambda _: col.name in failed))


SPEC = AnalysisSpec(
    name="synergy", title="Training data × benchmark synergy",
    part="RQ1", unit="runs", order=10,
    run=lambda i: synergy(i.cells, i.condition, i.include_failures, i.out),
)
