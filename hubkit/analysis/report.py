"""What an analysis produces (`Section`, `Analysis`) and how `report.md` states it: conditions, n, intervals."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .conditions import Condition
from .stats import BOOTSTRAP, MIN_CLUSTERS

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Section:
    """One analysis as the report, the index and the leaderboard present it."""

    name: str
    title: str
    part: str
    condition: Condition
    n: int
    unit: str
    dropped: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    finding: str = ""
    compared: str = ""  # the axis a paired comparison runs along
    method: str = ""  # how the numbers were made, when the condition alone does not say
    lines: list[str] = field(default_factory=list)  # the report's table for this section (Markdown)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "part": self.part, "condition": self.condition.text(),
                "condition_values": self.condition.to_json(), "compared": self.compared,
                "pooled": self.pooled(), "n": self.n,
                "unit": self.unit, "dropped": self.dropped, "method": self.method, "finding": self.finding,
                "tables": [f"{t}.parquet" for t in self.tables], "figures": [p.name for p in self.figures]}

    def pooled(self) -> list[str]:
        """The open axes other than the compared one (a paired comparison matches them pair by pair)."""
        compared = self.compared.split(", ")
        return [a for a in self.condition.pooled() if a not in compared]


@dataclass
class Analysis:
    """The sections, their tables (name → DataFrame), the plots written, and the report's path."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    plots: list[Path] = field(default_factory=list)
    inputs: dict[str, pd.DataFrame] = field(default_factory=dict)  # the joined inputs, as the leaderboard reads them
    sections: list[Section] = field(default_factory=list)
    report: Path | None = None
    checks: list = field(default_factory=list)  # `datachecks.DataIssue`: what the data checks found and left out
    not_run: list[dict[str, str]] = field(default_factory=list)  # the paper's analyses these inputs could not run


def md(value: Any) -> str:
    """A value safe inside a Markdown table cell: escaped HTML, no pipes, no line breaks."""
    return html.escape(str(value), quote=False).replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def interval(low: float, high: float, digits: int = 2) -> str:
    return "—" if np.isnan(low) else f"[{low:+.{digits}f}, {high:+.{digits}f}]"


def pvalue(p: float) -> str:
    return "—" if np.isnan(p) else f"{p:.3f}" if p >= 0.001 else "<0.001"


def sure_text(sure: pd.DataFrame, total: int, what: str) -> str:
    """How many of `total` rows hold after the correction (`stats.significant`)."""
    return (f"{len(sure)} of {total} {what} have a 95 % interval excluding 0 and a Holm-adjusted p under 0.05"
            + (" (none is claimed as a finding)." if sure.empty else "."))


# What each kind of interval resamples (the unit that varies for the question asked), as the report states it.
RESAMPLED = {
    "runs": (f"95 % intervals and p-values from a cluster bootstrap over training runs ({BOOTSTRAP} resamples; a run's "
             "epochs are one cluster); beside them, the interval over base models (does it hold for other bases?). "
             "p-values are two-sided and Holm-adjusted within this analysis (BH q-values in the table)."),
    "pairs": (f"95 % intervals and p-values from a bootstrap over (base model, training data) pairs ({BOOTSTRAP} "
              "resamples); two-sided p-values, Holm-adjusted within this analysis (BH q-values in the table)."),
    "runs-corr": (f"95 % intervals and p-values from a bootstrap over training runs ({BOOTSTRAP} resamples); two-sided "
                  "p-values, Holm-adjusted per method within this analysis (BH q-values in the table)."),
    "bases": (f"95 % intervals and p-values from a cluster bootstrap over base models ({BOOTSTRAP} resamples): the "
              "claim is about base models of a language, so a resample draws base models with all their runs. "
              f"With fewer than {MIN_CLUSTERS} base models in a language there is no interval and no p-value (the "
              "mean is descriptive). Two-sided p-values, Holm-adjusted within this analysis (BH q-values in the "
              "table)."),
}


EXTRA_ANALYSES = [  # model-space analyses of the paper that read models, not results
    ("Log-likelihood map of the models (models cluster by family)", "hubkit analyze --loglik -m BASE -m RUN …"),
    ("Intrinsic dimension by depth", "hubkit analyze --intrinsic-dim -m RUN … (or --layers diff/layerdiff_layers.parquet)"),
]


def render_report(frame: pd.DataFrame, sections: list[Section], issues: list | None = None,
            not_run: list[dict[str, str]] | None = None) -> str:
    models = frame[frame["dataset"] != "pretrain"]["run_id"].nunique()
    lines = ["# hubkit analysis", "",
             f"{models:,} fine-tuned models over {frame['base_model'].nunique()} base models, "
             f"{frame['benchmark'].nunique()} benchmarks. Each analysis runs on an explicit condition (a value "
             "for every axis of the grid), stated with the number of observations it rests on and what was left "
             "out; comparisons pair runs equal on every other axis. Each interval resamples the unit that varies "
             "for its question (training runs for paired run comparisons, base models for claims about base "
             "models: each section says which); p-values are Holm-adjusted within each analysis, and a finding "
             "is stated only when its interval excludes 0. A mean over benchmarks counts each benchmark once, at "
             "the study's shot count. Gains are in points on percent-scale benchmarks and in grade points for "
             "MT-Bench (1–10); the two are never averaged together.", ""]
    lines += ["## Data checks", ""]
    if issues:
        lines += ["The results were checked before any analysis; what each finding would distort is left out:", ""]
        lines += [f"- {md(issue.text())}." for issue in issues]
    else:
        lines.append("No identical base rows, runs without a base row or out-of-range cells.")
    lines.append("")
    if not_run:
        lines += ["## Not run", "", "These analyses of the paper need more than a results table:", ""]
        lines += [f"- **{md(n['title'])}** ({n['part']}) needs {md(n['needs'])}: `{n['command']}`" for n in not_run]
        lines += [f"- **{title}** (models, not results): `{command}`" for title, command in EXTRA_ANALYSES]
        lines.append("")
    part = None
    titles = {"RQ1": "RQ1 — Training data × benchmark", "RQ2": "RQ2 — Data properties",
              "RQ3": "RQ3 — Layers", "training factors": "Training factors", "cross-lingual": "Cross-lingual transfer"}
    for s in sections:
        if s.part != part:
            part = s.part
            lines += [f"## {titles.get(part, part)}", ""]
        lines += [f"### {s.title}", "", f"- *Condition:* {md(s.condition.text())}; *n* = {s.n:,} {s.unit}."]
        if s.compared:
            lines.append(f"- *Compared:* {s.compared}, pairing runs equal on every other axis"
                         + (f" (matched within pairs, then averaged: {', '.join(s.pooled())})" if s.pooled() else "")
                         + ".")
        elif s.pooled():
            lines.append(f"- *Pooled over:* {', '.join(s.pooled())}.")
        lines += [f"- *Left out:* {md(note)}." for note in s.dropped]
        if s.method:
            lines.append(f"- *Method:* {md(s.method)}")
        lines.append("")
        if s.finding:
            lines += [s.finding, ""]
        lines += [f"![]({p.name})" for p in s.figures]
        if s.figures:
            lines.append("")
        if len(s.lines) > 2:
            lines += s.lines + [""]
        lines.append(f"Tables: {', '.join(f'`{t}.parquet`' for t in s.tables)}.")
        lines.append("")
    return "\n".join(lines) + "\n"
