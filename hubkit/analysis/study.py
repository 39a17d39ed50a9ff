"""`hubkit analyze`: the study's analyses, condition by condition, over a results table.

Every analysis runs on an explicit `Condition` (see `conditions.py`): by default the study's main grid —
1,000 examples, cosine schedule, epoch 10, full-parameter, the single training sets, full-benchmark scores.
Comparisons free the axis they compare along and pair runs that agree on every other axis; their intervals
come from a bootstrap over training runs. Each table, plot and paragraph of `report.md` states its
condition, how many observations it rests on and what was left out for missing values. The report follows
the paper's order:

- **RQ1** training data × benchmark synergy (per base model, sign agreement across models), per-model
  dataset rankings, correlation of gain patterns between benchmarks and between models, PCA of the patterns;
- **RQ2** gains vs training-data properties (perplexity under the base model, length, similarity);
- **RQ3** weight change by normalised depth vs gain;
- **training factors** LoRA vs full, 1k vs 20k examples, epochs, leave-one-out sets;
- **cross-lingual transfer** MMLU vs JMMLU vs CMMLU by the base model's language.

Base-model **format failures** — a base scoring near 0 on a few-shot benchmark (BoolQ 5-shot bases score
0–2: they do not answer in the expected format, so any fine-tune "gains" 60 points) — are flagged and kept
out of synergy rankings and cross-benchmark means unless `include_format_failures` is set. A cross-benchmark
mean counts each benchmark once, at one shot count (the study scored NQ-open at four).

Outputs: a parquet per table (each with its `condition`), PNG figures, `index.json` (each analysis: title,
condition, n, what was dropped, its tables and figures) and `report.md`, in one folder; `push_analysis`
uploads them to a results dataset's `analysis/`, where the leaderboard's Plots tab shows them.

Each analysis is one module of `analyses/` declaring its `AnalysisSpec` (`registry.py`); what they produce and
how the report states it is `report.py`; reading and publishing tables is `tables.py`.

Example:
    >>> report = analyze(load_results_table("evaluation_result.csv"), output_dir="analysis")
    >>> report.tables["lora_vs_full"].head()
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import HubkitError
from ..utils import Progress, did_you_mean, silent
from .analyses import specs
from .analyses.layer_correlation import run_ids
from .cells import gain_cells, kept_columns
from .conditions import ANY, DATASET_KINDS, Condition, split_names
from .registry import Inputs
from .report import Analysis, render_report

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["analyze", "conditions"]

EVERY_RUN = Condition(data_size=None, lr_schedule=None, epochs=None, tuning=None, datasets=ANY, samples=ANY)


def conditions(where: dict[str, Any] | None = None) -> dict[str, Condition]:
    """Each analysis's condition: its default with `where` applied, and its compared axes left open."""
    return {spec.name: spec.condition_for(where) for spec in specs()}


def analyze(frame: pd.DataFrame, output_dir: str | Path, properties: pd.DataFrame | None = None,
            layers: pd.DataFrame | None = None, where: dict[str, Any] | None = None,
            include_format_failures: bool = False, progress: Progress | None = None) -> Analysis:
    """Run every analysis the given tables allow, each on its condition; write tables, figures, `index.json`
    and `report.md` to `output_dir`.

    Args:
        frame: results rows (with gains).
        output_dir: where the outputs go.
        properties: per (base_model, dataset) data properties, e.g. `perplexity` (from `hubkit perplexity`).
        layers: per-layer weight changes (`hubkit layerdiff`'s `layerdiff_layers.parquet`).
        where: overrides of every analysis's condition (`parse_where`), e.g. `{"tuning": "lora"}`.
        include_format_failures: keep base-model format failures in rankings and means.
        progress: told each analysis as it starts, counted (`utils.Progress`).

    Raises:
        HubkitError: results without gains, or tables without the columns they need.

    Example:
        >>> result = analyze(frame, "analysis", where={"tuning": "lora"})
        >>> [s.condition.text() for s in result.sections][:1]
        ['data size 1,000 · cosine schedule · epoch 10 · LoRA · single training sets · full-benchmark scores']
    """
    from ..datachecks import apply_checks, numeric
    from ..importers import STUDY_COPIED_BASES
    from ..results import normalize

    frame = normalize(numeric(frame))  # older results tables get each benchmark's declared scale
    if frame.empty or frame["gain"].notna().sum() == 0:
        raise HubkitError("analyze: the results hold no gains (no base-model rows to compare with)")
    _check_where(frame, where or {})
    frame, issues = apply_checks(frame, STUDY_COPIED_BASES)
    extra = {"properties": properties, "layers": layers}
    for name, table, needed in (("properties", properties, ["dataset"]),
                                ("layers", layers, ["model", "depth", "rel_change"])):
        if table is not None:
            missing = [c for c in needed if c not in table.columns]
            if missing:
                raise HubkitError(f"analyze: the {name} table lacks column {missing[0]!r}")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*"):  # a previous analysis's figures and tables would be pushed with this one
        if old.suffix in (".png", ".parquet") or old.name in ("index.json", "report.md"):
            old.unlink()
    result = Analysis()
    if properties is not None and {"perplexity", "base_model"} <= set(properties.columns):
        result.inputs["perplexity"] = properties[["base_model", "dataset", "perplexity"]]
    if layers is not None:
        result.inputs["layerdiff"] = layers.assign(run_id=run_ids(frame, layers["model"]))[
            ["run_id", "depth", "rel_change"]]
    # one shot count per benchmark, decided over every fine-tuned run before any condition filters them
    kept = kept_columns(gain_cells(EVERY_RUN.select(frame), {}))
    runnable = [s for s in specs() if s.needs is None or extra[s.needs] is not None]
    say = progress or silent
    for done, spec in enumerate(runnable):
        say(f"analysis: {spec.title}", done, len(runnable))
        condition = spec.condition_for(where)
        cells = gain_cells(condition.select(frame), kept)
        if cells.empty:  # nothing under this condition: say so rather than fail or show an empty plot
            result.sections.append(spec.section(condition, 0, [], compared=spec.frees[0] if spec.frees else "",
                                                finding="No results under this condition."))
        else:
            result.sections.append(spec.run(Inputs(cells, condition, include_format_failures, out, properties, layers)))
    _write(result, frame, issues, kept, out)
    say("analyses written", len(runnable), len(runnable))
    return result


def _write(result: Analysis, frame: pd.DataFrame, issues: list, kept: dict, out: Path) -> None:
    """The tables (each with its condition), `index.json` and `report.md`."""
    for section in result.sections:
        for name, table in section.tables.items():
            result.tables[name] = table
            table.assign(condition=section.condition.text()).to_parquet(out / f"{name}.parquet", index=False)
        result.plots += section.figures
    ran = {s.name for s in result.sections}
    result.not_run = [{"name": s.name, "title": s.title, "part": s.part, "needs": s.needs_text, "command": s.command}
                      for s in specs() if s.needs is not None and s.name not in ran]
    result.checks = issues
    (out / "index.json").write_text(json.dumps({"analyses": [s.to_json() for s in result.sections],
                                                "checks": [i.to_json() for i in issues], "not_run": result.not_run,
                                                "shots": kept}, indent=2), encoding="utf-8")
    result.report = out / "report.md"
    result.report.write_text(render_report(frame, result.sections, issues, result.not_run), encoding="utf-8")


def _check_where(frame: pd.DataFrame, where: dict[str, Any]) -> None:
    """A one-line error for a condition value no result has (`-w tuning=qlora`), naming the values there are."""
    for key, column in (("base_models", "base_model"), ("datasets", "dataset")):
        value = where.get(key)
        if value and value not in DATASET_KINDS:
            known = set(frame[column].dropna().astype(str))
            for name in split_names(value):
                if name not in known:
                    raise HubkitError(f"analyze: no results for {column} `{name}`{did_you_mean(name, known)}")
    tuned = frame[frame["dataset"] != "pretrain"]
    for key in ("tuning", "lr_schedule", "data_size", "epochs"):
        value = where.get(key)
        if value is None or key not in where:
            continue
        present = tuned[key].dropna()
        values = sorted({str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in present})
        if str(value) not in values:
            raise HubkitError(f"analyze: no results with {key} `{value}` (the results have: {', '.join(values)})"
                              + did_you_mean(str(value), values))
