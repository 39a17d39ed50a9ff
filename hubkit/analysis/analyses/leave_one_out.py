"""Training factors: what each training set contributes to the merged set (without it − with all)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .. import figures
from ..cells import averaged_cells, failure_note
from ..conditions import ANY, Condition, dataset_kind, paired
from ..registry import SCALE_ORDER, AnalysisSpec
from ..report import Section, md

if TYPE_CHECKING:
    import pandas as pd


def leave_one_out(cells: pd.DataFrame, condition: Condition, include_failures: bool = False,
                  out: Path | None = None) -> Section:
    """Gain without one training set (`w/o-X`) minus gain with all sets merged: what X contributed."""

    use = cells if include_failures else cells[~cells["format_failure"]]
    use = use[use["dataset"].map(dataset_kind).isin(["all", "leave-one-out"]).to_numpy(bool)]
    cells = cells[cells["dataset"].map(dataset_kind).isin(["all", "leave-one-out"]).to_numpy(bool)]
    match = ["base_model", "tuning", "epochs", "lr_schedule"]
    pairs = paired(use, "dataset", "all", "leave-one-out", match + ["dataset"], key=dataset_kind)
    pairs = pairs.merge(use.drop_duplicates("column")[["column", "scale"]], on="column", how="left")
    pairs["removed"] = pairs["dataset_b"].astype(str).str.removeprefix("w/o-")
    table = pairs.rename(columns={"a": "all", "b": "without", "diff": "effect"})[
        ["removed", *match, "column", "scale", "all", "without", "effect"]]
    section = SPEC.section(condition,
                           int(table[["removed", *match]].drop_duplicates().shape[0]) if not table.empty else 0,
                           failure_note(cells, include_failures), {"leave_one_out": table},
                           compared="dataset, data_size")
    section.method = ("Effect = gain without X − gain with all sets merged, paired on base model, tuning, epoch and "
                      "schedule (9,000 vs 10,000 examples in the study).")
    if table.empty:
        section.finding = "No leave-one-out runs under this condition."
        return section
    once, notes = averaged_cells(use, include_failures)  # a mean over benchmarks: each benchmark at one shot count
    section.dropped += notes
    percent = table[table["column"].isin(set(once["column"])).to_numpy(bool)]
    bases = sorted(map(str, table["base_model"].unique()))
    rests = f"{len(bases)} base model{'s' if len(bases) > 1 else ''} ({', '.join(bases)})"
    if percent.empty:
        section.finding = f"No percent-scale benchmark to average over; the effects per benchmark rest on {rests}."
        return section
    per = percent.groupby("removed")["effect"].mean().sort_values()
    section.lines = [f"| removed set | mean effect ({percent['column'].nunique()} percent-scale benchmarks, one shot "
                     "count each) | most affected benchmark |", "| --- | --- | --- |"]
    for removed, effect in per.items():
        part = percent[percent["removed"] == removed]
        worst = part.loc[part["effect"].idxmin()]
        section.lines.append(f"| {md(removed)} | {effect:+.2f} | {md(worst['column'])} ({worst['effect']:+.1f}) |")
    section.finding = (f"Removing {md(per.index[0])} costs the most ({per.iloc[0]:+.2f} points on average over "
                       f"{percent['column'].nunique()} benchmarks); removing {md(per.index[-1])} helps the most "
                       f"({per.iloc[-1]:+.2f}). One leave-one-out run per set and base model: no interval; this rests on "
                       f"{rests} alone.")
    if out is not None:
        panels = []
        for scale, part in sorted(table.groupby("scale"), key=lambda kv: SCALE_ORDER.get(kv[0], 9)):
            m = part.groupby(["removed", "column"])["effect"].mean().unstack()
            panels.append((scale, m))
        for scale, m in panels:
            path = figures.heatmap_panels([(f"without X − all ({scale})", m)],
                                          out / ("leave_one_out.png" if scale == "percent" else f"leave_one_out-{scale}.png"),
                                          f"effect ({figures.UNITS.get(scale, scale)})",
                                          f"Rows: the set left out. Base model{'s' if len(bases) > 1 else ''}: "
                                          f"{', '.join(bases)} only. Condition: {condition.text()}; "
                                          f"n = {section.n} runs.",
                                          cols=1)
            if path:
                section.figures.append(path)
    return section


SPEC = AnalysisSpec(
    name="leave_one_out", title="Leave one training set out",
    part="training factors", unit="leave-one-out runs", order=100,
    condition=Condition(data_size=None, datasets=ANY), frees=("dataset", "data_size"),
    run=lambda i: leave_one_out(i.cells, i.condition, i.include_failures, i.out),
)
