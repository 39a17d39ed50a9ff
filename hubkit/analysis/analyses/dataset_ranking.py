"""RQ1: the training data ranked per base model by mean gain."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import figures
from ..cells import failure_note, mean_gain
from ..conditions import MAIN_GRID, Condition
from ..registry import AnalysisSpec
from ..report import Section, md

if TYPE_CHECKING:
    import pandas as pd


def dataset_ranking(cells: pd.DataFrame, condition: Condition = MAIN_GRID,
                    include_failures: bool = False, out: Path | None = None) -> Section:
    """Per base model, the training datasets ranked by mean gain (over that model's common benchmarks)."""
    import pandas as pd

    runs, notes = mean_gain(cells, within=["base_model"], include_failures=include_failures)
    per = runs.groupby(["base_model", "dataset"], as_index=False).agg(mean_gain=("mean_gain", "mean"),
                                                                      benchmarks=("benchmarks", "first"))
    per["rank"] = per.groupby("base_model")["mean_gain"].rank(ascending=False, method="first").astype(int)
    rows = []
    for base, part in per.sort_values("rank").groupby("base_model"):
        order = part.sort_values("rank")
        rows.append({"base_model": base, "datasets": len(order), "benchmarks": int(order["benchmarks"].iloc[0]),
                     "best": order["dataset"].iloc[0], "best_gain": order["mean_gain"].iloc[0],
                     "second": order["dataset"].iloc[1] if len(order) > 1 else None,
                     "second_gain": order["mean_gain"].iloc[1] if len(order) > 1 else np.nan,
                     "worst": order["dataset"].iloc[-1], "worst_gain": order["mean_gain"].iloc[-1]})
    ranking = pd.DataFrame(rows, columns=["base_model", "datasets", "benchmarks", "best", "best_gain", "second",
                                          "second_gain", "worst", "worst_gain"])
    section = SPEC.section(condition, len(runs), notes + failure_note(cells, include_failures),
                           {"dataset_gains": per, "dataset_ranking": ranking})
    section.lines = ["| base model | best | 2nd | worst | benchmarks |", "| --- | --- | --- | --- | --- |"]
    section.lines += [f"| {md(r.base_model)} | {md(r.best)} ({r.best_gain:+.1f}) | {md(r.second)} "
                      f"({r.second_gain:+.1f}) | {md(r.worst)} ({r.worst_gain:+.1f}) | {r.benchmarks} |"
                      for r in ranking.itertuples()]
    if not ranking.empty:
        top = ranking["best"].value_counts()
        section.finding = (f"{md(top.index[0])} is the best training data for {top.iloc[0]} of {len(ranking)} base "
                           f"models; the worst is most often {md(ranking['worst'].value_counts().index[0])}.")
    if out is not None and (path := figures.ranked_heatmap(
            per.pivot(index="base_model", columns="dataset", values="mean_gain"),
            per.pivot(index="base_model", columns="dataset", values="rank"), out / "dataset_ranking.png",
            "mean gain (points)", "Mean gain per base model and training data (numbers: rank within the model)",
            f"Mean over each base model's common percent-scale benchmarks. Condition: {condition.text()}; "
            f"n = {len(runs)} runs.")):
        section.figures.append(path)
    return section


SPEC = AnalysisSpec(
    name="dataset_ranking", title="Best, second and worst training data per base model",
    part="RQ1", unit="runs", order=20,
    run=lambda i: dataset_ranking(i.cells, i.condition, i.include_failures, i.out),
)
