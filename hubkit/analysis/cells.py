"""The cells every analysis starts from: one row per run and score column, with its gain, and the rule that picks
the cells a mean over benchmarks takes.

**One shot count per benchmark, fixed for the benchmark.** The study scored NQ-open at 0, 1, 5 and 25 shots and
five other benchmarks at two counts; a mean over benchmarks that took every column would weigh NQ-open four times,
and one that picked the count per filter would compare full runs at GSM8K 4-shot with LoRA runs at 0-shot. So
`kept_columns` decides once, over the whole results table, before any condition filters it: the registry's
`study_shots` (the count the study reports) when the table has it, else the count most runs have (the fewest
shots on a tie), at the benchmark's headline metric. Every cross-benchmark quantity — means, rankings,
leave-one-out effects, model similarity, PCA — takes those columns and no others.

Example:
    >>> cells = gain_cells(rows)                       # doctest: +SKIP
    >>> kept_columns(cells)["nq_open"]                 # doctest: +SKIP
    'nq_open-1shot'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..benchmarks import BENCHMARKS, FORMAT_FAILURE_POINTS
from .conditions import MATCH

if TYPE_CHECKING:
    import pandas as pd

MIN_COVERAGE = 0.5  # a benchmark enters a cross-benchmark mean when at least half the units have it


def is_format_failure(benchmark: Any, n_shot: Any, scale: Any, base_score: Any) -> bool:
    """Whether a base score is a few-shot format failure (see `FORMAT_FAILURE_POINTS`)."""
    if scale != "percent" or base_score is None or n_shot is None:
        return False
    try:
        shots, base = int(n_shot), float(base_score)
    except (TypeError, ValueError):
        return False
    if shots < 1 or np.isnan(base):
        return False
    known = BENCHMARKS.get(str(benchmark))
    threshold, chance = (known.format_failure_points, known.chance) if known else (FORMAT_FAILURE_POINTS, 0.0)
    return base <= threshold or base < chance / 4


def gain_cells(rows: pd.DataFrame, kept: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per run and score column (`<benchmark>-<n>shot`, `:<metric>` beside a non-headline metric: see
    `results.score_column`), with its gain, format-failure flag and `averaged` (the column is its benchmark's in
    `kept`, from `kept_columns`: computed from `rows` when not given)."""
    from ..results import score_columns

    cells = rows.assign(column=score_columns(rows))
    cells = cells.drop_duplicates(["run_id", "column"])
    cells["format_failure"] = [is_format_failure(b, n, s, v) for b, n, s, v in zip(
        cells["benchmark"], cells["n_shot"].astype(object), cells["scale"], cells["base_score"].astype(object))]
    kept = kept_columns(cells) if kept is None else kept
    cells["averaged"] = [kept.get(str(b)) == c for b, c in zip(cells["benchmark"], cells["column"])]
    return cells.reset_index(drop=True)


def kept_columns(cells: pd.DataFrame) -> dict[str, str]:
    """Benchmark → the one score column a mean over benchmarks takes (see the module's docstring): percent-scale,
    higher-is-better headline metrics only; the registry's study shot count when present, else the count most
    runs have, the fewest shots on a tie."""
    import pandas as pd

    from ..results import score_column

    keep = (cells["scale"] == "percent") & cells["higher_is_better"].astype(bool) & cells["headline"].astype(bool)
    usable = cells[keep.to_numpy(bool)]
    if usable.empty:
        return {}
    runs = usable.groupby(["benchmark", "column"], sort=True)["run_id"].nunique()
    shots = usable.drop_duplicates("column").set_index("column")["n_shot"]
    out = {}
    for benchmark, counts in runs.groupby(level="benchmark"):
        counts = counts.droplevel("benchmark")
        known = BENCHMARKS.get(str(benchmark))
        study = score_column(str(benchmark), known.study_shots, known.headline) if known else None
        if study is not None and study in counts.index:
            out[str(benchmark)] = study
        else:
            out[str(benchmark)] = max(counts.index, key=lambda c: (counts[c], -(shots[c] if pd.notna(shots[c]) else 0)))
    return out


def complete_patterns(wide: pd.DataFrame, where: str = "") -> tuple[pd.DataFrame, list[str]]:
    """Runs × benchmarks restricted to the benchmarks at least half the runs have (`MIN_COVERAGE`) and the runs
    that have all of those, with notes saying what was left out."""
    coverage = wide.notna().mean()
    used = sorted(coverage[coverage >= MIN_COVERAGE].index)
    notes = []
    left = sorted(set(wide.columns) - set(used))
    if left:
        notes.append(f"benchmarks scored for under half the runs{where} left out: {', '.join(left)}")
    complete = wide[used].dropna()
    if len(complete) < len(wide):
        notes.append(f"{len(wide) - len(complete)} run(s){where} lacking one of the kept benchmarks dropped")
    return complete, notes


def averaged_cells(cells: pd.DataFrame, include_failures: bool) -> tuple[pd.DataFrame, list[str]]:
    """The cells a mean over benchmarks takes: each benchmark's one column (`kept_columns`, marked `averaged` by
    `gain_cells`) and no base-model format failure (unless `include_failures`). Also returns a note naming the
    column kept where these cells hold a benchmark at several shot counts."""
    keep = cells["averaged"].astype(bool)
    if not include_failures:
        keep &= ~cells["format_failure"]
    kept = cells[keep.to_numpy(bool)]
    if kept.empty:
        return kept, []
    several = []
    percent = cells[(cells["scale"] == "percent") & cells["headline"].astype(bool)]
    columns = percent.groupby("benchmark")["column"].unique()
    for benchmark, column in kept.drop_duplicates("benchmark").set_index("benchmark")["column"].sort_index().items():
        others = sorted(columns.get(benchmark, []))
        if len(others) > 1:
            several.append(f"{column} (of {', '.join(others)})")
    notes = [f"each benchmark counted once, at the study's shot count (the registry's; else the count most runs "
             f"have): {'; '.join(several)}"] if several else []
    return kept, notes


def mean_gain(cells: pd.DataFrame, within: list[str] | None = None,
              include_failures: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """Per run, the mean gain over the percent-scale benchmarks common to the runs of its group.

    Each benchmark counts once, at one shot count (`averaged_cells`). A benchmark enters a group's mean when at
    least half of the group's runs have it (`MIN_COVERAGE`); runs lacking one of those are dropped, never
    averaged over fewer benchmarks. Returns the runs (with their axes, `mean_gain` and `benchmarks`) and notes
    on what was left out.
    """
    import pandas as pd

    usable, notes = averaged_cells(cells, include_failures)
    out = []
    groups = [((), usable)] if not within else usable.groupby(within, sort=True)
    for key, part in groups:
        wide = part.pivot_table(index="run_id", columns="column", values="gain", aggfunc="mean")
        if wide.empty:
            continue
        where = "" if not within else f" ({', '.join(map(str, key if isinstance(key, tuple) else (key,)))})"
        complete, left = complete_patterns(wide, where)
        notes += left
        out.append(pd.DataFrame({"run_id": complete.index, "mean_gain": complete.mean(axis=1).to_numpy(),
                                 "benchmarks": complete.shape[1]}))
    if not out:
        return pd.DataFrame(columns=["run_id", "mean_gain", "benchmarks", *MATCH]), notes
    runs = pd.concat(out, ignore_index=True)
    meta = cells.drop_duplicates("run_id").set_index("run_id")[["model_id", *MATCH]]
    return runs.join(meta, on="run_id"), notes


def failure_note(cells: pd.DataFrame, include_failures: bool) -> list[str]:
    failed = cells[cells["format_failure"]].drop_duplicates(["base_model", "column"])
    if failed.empty:
        return []
    by_column = failed.groupby("column")["base_model"].nunique()
    listed = ", ".join(f"{c} ({n} base model{'s' if n > 1 else ''})" for c, n in by_column.items())
    verb = "kept (include_format_failures)" if include_failures else "left out of rankings and means"
    return [f"base-model format failures (base ≤ {FORMAT_FAILURE_POINTS:g} points on a few-shot benchmark) {verb}: "
            f"{listed}"]


