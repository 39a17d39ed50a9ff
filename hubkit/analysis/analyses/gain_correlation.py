"""RQ1: how gain patterns correlate between benchmarks and between base models."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import figures
from ..cells import averaged_cells, failure_note
from ..conditions import MAIN_GRID, Condition
from ..registry import AnalysisSpec
from ..report import Section, md
from ..stats import rowwise_pearson

if TYPE_CHECKING:
    import pandas as pd


def _pairwise(wide: pd.DataFrame, a: str, b: str, min_periods: int = 3) -> pd.DataFrame:
    """Pearson `r` and Spearman `rho` of every pair of `wide`'s columns over the rows both have (long form)."""
    import pandas as pd
    from scipy.stats import rankdata

    out = []
    values = wide.to_numpy(float)
    for i, ci in enumerate(wide.columns):
        for j, cj in enumerate(wide.columns):
            both = ~(np.isnan(values[:, i]) | np.isnan(values[:, j]))
            x, y = values[both, i], values[both, j]
            enough = both.sum() >= min_periods
            out.append({a: ci, b: cj, "n": int(both.sum()), "r": float(rowwise_pearson(x, y)) if enough else np.nan,
                        "rho": float(rowwise_pearson(rankdata(x), rankdata(y))) if enough else np.nan})
    return pd.DataFrame(out, columns=[a, b, "n", "r", "rho"])


def gain_correlation(cells: pd.DataFrame, condition: Condition = MAIN_GRID, include_failures: bool = False,
                     out: Path | None = None) -> Section:
    """Correlation of gain patterns: benchmark × benchmark (across runs; each shot count its own column) and
    model × model (across training data × benchmark cells, percent scale, each benchmark at one shot count)."""
    use = cells if include_failures else cells[~cells["format_failure"]]
    by_run = use.pivot_table(index="run_id", columns="column", values="gain", aggfunc="mean")
    bench = _pairwise(by_run, "column_a", "column_b")
    percent, once = averaged_cells(cells, include_failures)
    by_model = percent.pivot_table(index=["dataset", "column"], columns="base_model", values="gain", aggfunc="mean")
    models = _pairwise(by_model, "model_a", "model_b")
    section = SPEC.section(condition, int(by_run.shape[0]),
                           [f"between models: {n}" for n in once] + failure_note(cells, include_failures),
                           {"benchmark_correlation": bench, "model_correlation": models})
    section.method = ("Pearson r and Spearman rho; each pair of benchmarks (or models) over the runs (cells) that have "
                      "both: n per pair in the table. Descriptive: no interval, no finding of significance.")
    off = models[models["model_a"] != models["model_b"]]
    # the most similar pair of different benchmarks: two shot counts of one benchmark, MT-Bench and one of its
    # categories, AlpacaEval and its length-controlled variant are alike by construction
    benchmark = use.drop_duplicates("column").set_index("column")["benchmark"].astype(str).map(
        lambda b: next((f for f in ("mt_bench", "alpaca_eval") if b.startswith(f)), b))
    off_b = bench[(bench["column_a"] < bench["column_b"]).to_numpy(bool)
                  & (bench["column_a"].map(benchmark) != bench["column_b"].map(benchmark)).to_numpy(bool)]
    off_b = off_b.dropna(subset=["r"])
    if not off.empty and not off_b.empty:
        strongest = off_b.sort_values("r").iloc[-1]
        section.finding = (f"Across base models the gain patterns correlate with a median r = {off['r'].median():.2f} "
                           f"(Spearman {off['rho'].median():.2f}); the most similar benchmarks are "
                           f"{md(strongest['column_a'])} and {md(strongest['column_b'])} (r = {strongest['r']:.2f}, "
                           f"rho = {strongest['rho']:.2f}, n = {strongest['n']}).")
        section.lines = ["| model | median r with the others | median rho |", "| --- | --- | --- |"]
        medians = off.groupby("model_a")[["r", "rho"]].median()
        section.lines += [f"| {md(m)} | {row.r:.2f} | {row.rho:.2f} |" for m, row in medians.iterrows()]
    if out is not None:
        for name, table, a, b, title in (("benchmark_correlation", bench, "column_a", "column_b", "benchmarks"),
                                         ("model_correlation", models, "model_a", "model_b", "base models")):
            matrix = table.pivot(index=a, columns=b, values="r")
            path = figures.heatmap_panels([(f"gain-pattern correlation between {title}", matrix)],
                                          out / f"{name}.png", "Pearson r", f"Condition: {condition.text()}; "
                                          f"n = {section.n} runs; each cell over the observations both share.",
                                          bound=1.0, cols=1)
            if path:
                section.figures.append(path)
    return section


SPEC = AnalysisSpec(
    name="gain_correlation", title="Correlation of gain patterns between benchmarks and between models",
    part="RQ1", unit="runs", order=30,
    run=lambda i: gain_correlation(i.cells, i.condition, i.include_failures, i.out),
)
