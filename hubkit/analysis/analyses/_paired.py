"""A paired comparison along one axis (runs equal on every other axis), as the training-factor analyses make it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import figures
from ..cells import failure_note
from ..conditions import Condition, lineage_keys, paired, summarize_pairs
from ..registry import AnalysisSpec
from ..report import RESAMPLED, Section, interval, md, pvalue
from ..stats import adjust, significant

if TYPE_CHECKING:
    import pandas as pd


def paired_section(spec: AnalysisSpec, title: str, cells: pd.DataFrame, condition: Condition, axis: str, a: Any, b: Any,
                    match: list[str], clusters: list[str], include_failures: bool, label: str, out: Path | None,
                    key: Any = None, by_extra: list[str] | None = None) -> Section:
    name = spec.name
    use = cells if include_failures else cells[~cells["format_failure"]]
    pairs = paired(use, axis, a, b, match, key=key)
    pairs = pairs.merge(use.drop_duplicates("column")[["column", "scale"]], on="column", how="left")
    summary = adjust(summarize_pairs(pairs, clusters, ["column", "scale"]))
    tables = {name: summary, f"{name}_pairs": pairs}
    if by_extra:
        tables[f"{name}_by_{by_extra[0]}"] = adjust(summarize_pairs(pairs, clusters, [*by_extra, "column", "scale"]))
    runs = len(set(lineage_keys(pairs, clusters))) if not pairs.empty else 0
    section = spec.section(condition, runs, failure_note(cells, include_failures), tables, compared=axis,
                           title=title)
    section.method = (f"Runs are paired when equal on {', '.join(k for k in match if k != axis)} (runs without a "
                      f"counterpart are not used). {RESAMPLED['runs']}")
    section.lines = ["| benchmark | pairs | runs | mean difference | 95 % CI (runs) | p (Holm) | 95 % CI (base models) |",
                     "| --- | --- | --- | --- | --- | --- | --- |"]
    section.lines += [f"| {md(r.column)} | {r.pairs} | {r.runs} | {r.mean:+.2f} | {interval(r.ci_low, r.ci_high)} | "
                      f"{pvalue(r.p_holm)} | {interval(r.ci_low_bases, r.ci_high_bases)} |" for r in summary.itertuples()]
    percent = summary[summary["scale"] == "percent"]
    if not percent.empty:
        up = int((percent["mean"] > 0).sum())
        sure = percent[significant(percent)]
        bases = sure[(sure["ci_low_bases"] > 0) | (sure["ci_high_bases"] < 0)]
        section.finding = (f"{label} is positive on {up} of {len(percent)} percent-scale benchmarks; it differs from 0 "
                           f"(interval over runs excludes 0, Holm p < 0.05) on {len(sure)}"
                           + (f" ({', '.join(md(c) for c in sure['column'])})" if 0 < len(sure) <= 8 else "")
                           + f", and {len(bases)} of those also when base models are resampled.")
    if out is not None and (path := figures.forest(summary, out / f"{name}.png", label, title,
                                                   f"Condition: {condition.text()}; n = {runs} paired training runs.")):
        section.figures.append(path)
    return section
