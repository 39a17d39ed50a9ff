"""Training factors: the gain by epoch (1,000 examples, constant schedule, full-parameter, epochs 1–10)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .. import figures
from ..cells import failure_note, mean_gain
from ..conditions import LINEAGE, Condition, lineage_keys
from ..registry import AnalysisSpec
from ..report import RESAMPLED, Section, interval, pvalue, sure_text
from ..stats import adjust, cluster_bootstrap_mean, significant

if TYPE_CHECKING:
    import pandas as pd


def epochs(cells: pd.DataFrame, condition: Condition, include_failures: bool = False,
           out: Path | None = None) -> Section:
    """Per base model and training data, the mean gain at each epoch; each epoch against the last."""
    import pandas as pd

    runs, notes = mean_gain(cells, within=["base_model"], include_failures=include_failures)
    lineage = list(LINEAGE)
    curves = runs[[*lineage, "epochs", "mean_gain", "benchmarks", "run_id"]].copy()
    section = SPEC.section(condition, 0, notes + failure_note(cells, include_failures), {"epochs": curves}, compared="epochs")
    if curves.empty:
        section.finding = "No epoch series under this condition."
        return section
    curves["lineage"] = lineage_keys(curves, lineage)
    last = int(curves["epochs"].max())  # every run is compared with the grid's last epoch, never its own last
    final = curves[curves["epochs"] == last][["lineage", "mean_gain"]].rename(columns={"mean_gain": "last_gain"})
    without = set(curves["lineage"]) - set(final["lineage"])
    if without:
        section.dropped.append(f"{len(without)} training run(s) not evaluated at epoch {last}: not compared with it")
    diffs = curves.merge(final, on="lineage")
    diffs = diffs[diffs["epochs"] < last]
    diffs["diff"] = diffs["mean_gain"] - diffs["last_gain"]
    rows = []
    for e, part in diffs.groupby("epochs"):
        est = cluster_bootstrap_mean(part["diff"].to_numpy(float), part["lineage"].to_numpy())
        bases = cluster_bootstrap_mean(part["diff"].to_numpy(float), part["base_model"].to_numpy())
        rows.append({"epochs": int(e), "runs": len(part), "mean": est.mean,
                     "better_than_last": float((part["diff"] > 0).mean()), "ci_low": est.ci_low,
                     "ci_high": est.ci_high, "p": est.p, "ci_low_bases": bases.ci_low, "ci_high_bases": bases.ci_high})
    vs_last = adjust(pd.DataFrame(rows, columns=["epochs", "runs", "mean", "better_than_last", "ci_low", "ci_high",
                                                 "p", "ci_low_bases", "ci_high_bases"]))
    vs_last["last_epoch"] = last
    best = curves.loc[curves.groupby("lineage")["mean_gain"].idxmax()][[*lineage, "epochs", "mean_gain"]]
    series = curves.groupby("lineage")["epochs"].nunique()
    single = int((series < 2).sum())
    if single:
        section.dropped.append(f"{single} training run(s) evaluated at one epoch only: no curve")
    section.n = int((series >= 2).sum())
    section.tables.update({"epochs_vs_last": vs_last, "best_epoch": best.rename(columns={"epochs": "best_epoch"})})
    section.method = RESAMPLED["runs"]
    section.lines = [f"| epoch | runs | gain − gain at epoch {last} | 95 % CI (runs) | p (Holm) | 95 % CI (base models) "
                     f"| share better than epoch {last} |", "| --- | --- | --- | --- | --- | --- | --- |"]
    section.lines += [f"| {r.epochs} | {r.runs} | {r.mean:+.2f} | {interval(r.ci_low, r.ci_high)} | {pvalue(r.p_holm)} | "
                      f"{interval(r.ci_low_bases, r.ci_high_bases)} | {r.better_than_last:.0%} |" for r in vs_last.itertuples()]
    if section.n:
        early = int((best.assign(lineage=lineage_keys(best, lineage))
                     .set_index("lineage").loc[series[series >= 2].index]["epochs"] <= 3).sum())
        section.finding = (f"For {early} of {section.n} training runs the best epoch is 1–3 "
                           f"(mean gain over each base model's common percent-scale benchmarks). "
                           + sure_text(vs_last[significant(vs_last)], len(vs_last), f"differences from epoch {last}"))
    if out is not None and (path := figures.facet_lines(
            curves, "base_model", "dataset", "epochs", "mean_gain", out / "epochs.png", "mean gain (points)",
            "Mean gain by epoch, one panel per base model",
            f"Mean over each base model's common percent-scale benchmarks; one line per training run. "
            f"Condition: {condition.text()}; n = {section.n} training runs.")):
        section.figures.append(path)
    return section


SPEC = AnalysisSpec(
    name="epochs", title="Gain by epoch",
    part="training factors", unit="training runs", order=90,
    condition=Condition(lr_schedule="constant", epochs=None), frees=("epochs",),
    run=lambda i: epochs(i.cells, i.condition, i.include_failures, i.out),
)
