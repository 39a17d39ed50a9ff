"""RQ3: per depth, how the weight change of a layer goes with the run's gain."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import figures
from ..cells import failure_note, mean_gain
from ..conditions import MAIN_GRID, Condition
from ..registry import AnalysisSpec
from ..report import RESAMPLED, Section, interval, pvalue
from ..stats import adjust, bootstrap_corr, significant

if TYPE_CHECKING:
    import pandas as pd


def run_ids(rows: pd.DataFrame, models: pd.Series) -> pd.Series:
    """Layer-diff model names (Hub ids or run ids) as the results' run ids (`rows`: any rows with both)."""
    by_repo = {m: r for m, r in zip(rows["model_id"], rows["run_id"]) if isinstance(m, str) and m}
    return models.map(lambda m: by_repo.get(m, m))


def layer_correlation(cells: pd.DataFrame, layers: pd.DataFrame, condition: Condition = MAIN_GRID,
                      include_failures: bool = False, bins: int = 10, out: Path | None = None) -> Section:
    """Per depth bin, Pearson and Spearman across runs of the layer's weight change vs the run's mean gain."""
    import pandas as pd

    runs, notes = mean_gain(cells, include_failures=include_failures)
    layers = layers.copy()
    layers["run_id"] = run_ids(cells, layers["model"])
    layers["bin"] = np.minimum((layers["depth"] * bins).astype(int), bins - 1)
    per = layers.groupby(["run_id", "bin"], as_index=False)["rel_change"].mean()
    joined = per.merge(runs[["run_id", "mean_gain"]], on="run_id")
    rows = []
    for b, part in joined.groupby("bin"):
        for method in ("pearson", "spearman"):
            est = bootstrap_corr(part["rel_change"].to_numpy(), part["mean_gain"].to_numpy(), method)
            rows.append({"depth": (b + 0.5) / bins, "method": method, "models": len(part), "r": est.mean,
                         "ci_low": est.ci_low, "ci_high": est.ci_high, "p": est.p})
    table = pd.DataFrame(rows, columns=["depth", "method", "models", "r", "ci_low", "ci_high", "p"])
    table = pd.concat([adjust(part) for _, part in table.groupby("method", sort=False)] or [adjust(table)],
                      ignore_index=True)
    n = int(joined["run_id"].nunique())
    section = SPEC.section(condition, n, notes + failure_note(cells, include_failures), {"layer_correlation": table})
    unmatched = set(layers["run_id"]) - set(joined["run_id"])
    if unmatched:
        section.dropped.append(f"{len(unmatched)} layer-diff model(s) outside the condition or without a mean gain")
    section.method = RESAMPLED["runs-corr"]
    section.lines = ["| depth | method | models | r | 95 % CI | p (Holm) |", "| --- | --- | --- | --- | --- | --- |"]
    section.lines += [f"| {r.depth:.2f} | {r.method} | {r.models} | {r.r:.3f} | {interval(r.ci_low, r.ci_high, 3)} | "
                      f"{pvalue(r.p_holm)} |" for r in table.itertuples()]
    pearson = table[(table["method"] == "pearson") & table["r"].notna()].reset_index(drop=True)
    if not pearson.empty:
        sure = pearson[significant(pearson)]
        if sure.empty:
            section.finding = (f"No depth's correlation with the gain is distinguishable from 0 (every 95 % interval "
                               f"contains 0 or Holm-adjusted p ≥ 0.05; n = {n}): no peak is claimed.")
        else:
            peak = sure.loc[sure["r"].idxmax()]
            section.finding = (f"The correlation peaks at depth {peak['depth']:.2f} (Pearson r = {peak['r']:.2f}, "
                               f"95 % CI {interval(peak['ci_low'], peak['ci_high'])}, Holm p = {pvalue(peak['p_holm'])}, "
                               f"n = {n}).")
    if out is not None and (path := figures.depth_curve(table, out / "layer_correlation.png",
                                                        f"Condition: {condition.text()}; n = {n} runs; mean gain over "
                                                        "percent-scale benchmarks.")):
        section.figures.append(path)
    return section


SPEC = AnalysisSpec(
    name="layer_correlation", title="Weight change by depth vs gain",
    part="RQ3", unit="runs", order=60,
    needs="layers", needs_text="the fine-tuned models' weight changes by layer",
    command=("hubkit layerdiff --base BASE RUN … -o diff, then hubkit analyze --results RESULTS "
             "--layers diff/layerdiff_layers.parquet"),
    run=lambda i: layer_correlation(i.cells, i.layers, i.condition, i.include_failures, out=i.out),
)
