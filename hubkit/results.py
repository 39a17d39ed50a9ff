"""The one results schema: a row per model × benchmark × metric × shots, with the sweep axes and how it was measured.

Evaluation writes these rows, publishing pushes them to a results dataset, `import-results` turns the study's
CSV and lm-eval JSON files into them (`hubkit.importers`), the leaderboard reads them and the analyses join on
them. `ResultRow` defines the columns; `COLUMNS` lists them in order. What a benchmark *is* — its metrics,
scales, directions and ranges — is the benchmark registry's (`hubkit.benchmarks`), never this module's.

| column | meaning |
| --- | --- |
| `model_id` | Hub repo id of the evaluated model; empty when the model has no repo (imported results) |
| `has_repo` | whether `model_id` names a repo |
| `run_id` | hubkit run id (for imports, the same scheme without the hash; a checkpoint's revision is part of it) |
| `model_revision`, `base_revision` | the Hub commit of the evaluated model and of its base, when known |
| `base_model`, `dataset`, `data_size`, `tuning`, `epochs`, `lr_schedule` | the sweep axes (`dataset` is `pretrain` and `tuning` is `base` for a base model) |
| `benchmark`, `n_shot`, `metric` | what was measured: a registry id (or an imported task's name), the shot count, the metric |
| `headline` | whether the score is its source's headline for the benchmark (the one an average over benchmarks takes): the registry's headline metric, or the one metric a source reports (the study's CSV) |
| `scale`, `higher_is_better` | the score's unit — `percent` (0–100), `1-10` (an LLM judge's grade) or `raw` (perplexity, bits, likelihood differences: unbounded) — and its direction |
| `score`, `base_score`, `gain` | the score on that scale, its base model's on the same samples, and the difference |
| `n_samples`, `n_total` | how many samples were scored, and how many the benchmark has (empty when the source does not say) |
| `subset` | true when the score comes from part of the benchmark (`--limit`): never comparable with a full score |
| `harness`, `harness_version` | what computed the score: `hubkit`, `lm-eval`, `opencompass` (the study) |
| `judge` | for judged benchmarks (MT-Bench, AlpacaEval), the LLM judge that graded: model id (version; served by) |
| `source`, `source_file` | how the row arrived — `hubkit` (an evaluation), `massive-sft-csv` or `lm-eval` (imports) — and the imported file's name |
| `evaluated_at` | ISO time of the evaluation, when known |
| `sequence` | the results dataset's write that added the row: a later write supersedes an earlier one's row of the same score |

**Invariants** (`validate`, run by the one write path `hubkit.publish.push_results` and by `load_results`):
a score's identity is (run, benchmark, metric, shots); every (benchmark, metric) has one scale and one direction
across a whole dataset — the registry's where it declares the metric; every value lies inside its metric's range;
a model has one headline score per benchmark and shot count; `acc` and `acc_norm` are different scores, in
different columns (`score_column`).

Example:
    >>> from hubkit.importers import import_massive_sft_csv
    >>> table = import_massive_sft_csv("evaluation_result.csv")
    >>> table.models
    1027
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from .benchmarks import BENCHMARKS, SCALE_RANGES, SCALES, metric_spec
from .errors import HubkitError
from .utils import size_token, slug

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

AXES = ["base_model", "dataset", "data_size", "tuning", "epochs", "lr_schedule"]
#: What one score is: a later write of the same identity supersedes an earlier one.
IDENTITY = ["run_id", "benchmark", "metric", "n_shot"]
__all__ = ["AXES", "COLUMNS", "IDENTITY", "SCALES", "ResultRow", "ResultsTable", "add_gains", "consolidate",
           "normalize", "rows_frame", "score_column", "supersede", "to_wide", "validate"]


@dataclass
class ResultRow:
    """One score in the results schema (see the module docstring for each column)."""

    model_id: str = ""
    has_repo: bool = False
    run_id: str = ""
    model_revision: str | None = None
    base_revision: str | None = None
    base_model: str | None = None
    dataset: str | None = None
    data_size: int | None = None
    tuning: str | None = None
    epochs: int | None = None
    lr_schedule: str | None = None
    benchmark: str = ""
    n_shot: int | None = None
    metric: str = ""
    headline: bool | None = None
    scale: str = "percent"
    higher_is_better: bool = True
    score: float | None = None
    base_score: float | None = None
    gain: float | None = None
    n_samples: int | None = None
    n_total: int | None = None
    subset: bool | None = None
    harness: str | None = None
    harness_version: str | None = None
    judge: str | None = None
    source: str = ""
    source_file: str | None = None
    evaluated_at: str | None = None
    sequence: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in COLUMNS}  # flat: `asdict`'s deep copy costs 20× more

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResultRow:
        return cls(**{k: v for k, v in data.items() if k in _COLUMN_SET})

    def samples_text(self) -> str:
        """`8 of 14,042 (subset)`, `1,319 (full)`, `full` or `unknown`: what a reader needs beside the score."""
        return samples_text(self.n_samples, self.n_total, self.subset)


COLUMNS = [f.name for f in fields(ResultRow)]
_COLUMN_SET = frozenset(COLUMNS)
_INT_COLUMNS = ("data_size", "epochs", "n_shot", "n_samples", "n_total", "sequence")
_FLOAT_COLUMNS = ("score", "base_score", "gain")
_TEXT_COLUMNS = ("model_revision", "base_revision", "harness", "harness_version", "judge", "source_file",
                 "evaluated_at", "lr_schedule", "base_model", "dataset", "tuning")


def samples_text(n_samples: Any, n_total: Any, subset: Any) -> str:
    """How many samples a score rests on, as cards and the leaderboard print it."""
    def known(x: Any) -> bool:
        return x is not None and not (isinstance(x, float) and math.isnan(x)) and str(x) not in ("<NA>", "nan")

    if known(subset) and bool(subset):
        if known(n_samples) and known(n_total):
            return f"{int(n_samples):,} of {int(n_total):,} (subset)"
        return f"{int(n_samples):,} (subset)" if known(n_samples) else "subset"
    if known(subset):
        return f"{int(n_total if known(n_total) else n_samples):,} (full)" if known(n_total) or known(n_samples) \
            else "full"
    return "unknown"


def is_headline(benchmark: str, metric: str) -> bool | None:
    """Whether `metric` is the registry's headline of `benchmark` (None: a benchmark the registry does not know)."""
    known = BENCHMARKS.get(benchmark)
    return None if known is None else metric == known.headline


def score_column(benchmark: Any, n_shot: Any, metric: Any = None) -> str:
    """A score's column: `<benchmark>-<n>shot` (the benchmark alone without a shot count), then `:<metric>` unless
    the metric is the registry's headline of the benchmark, so that two metrics never share a column
    (`hellaswag-10shot` holds `acc`, `hellaswag-10shot:acc_norm` the other one).

    Example:
        >>> score_column("hellaswag", 10, "acc_norm"), score_column("mt_bench", None, "judge_score")
        ('hellaswag-10shot:acc_norm', 'mt_bench')
    """
    name = str(benchmark)
    if n_shot is not None and not (isinstance(n_shot, float) and math.isnan(n_shot)) and str(n_shot) != "<NA>":
        name += f"-{int(n_shot)}shot"
    if metric is None or (isinstance(metric, float) and math.isnan(metric)):
        return name
    return name if is_headline(str(benchmark), str(metric)) else f"{name}:{metric}"


def score_columns(frame: pd.DataFrame) -> list[str]:
    """`score_column` of every row of a results frame."""
    return [score_column(b, n, m) for b, n, m in zip(frame["benchmark"], frame["n_shot"], frame["metric"])]


def score_range(benchmark: Any, metric: Any, scale: Any) -> tuple[float | None, float | None]:
    """The valid scores of a metric on a scale: the registry's (or catalogue's) range when it keeps the metric on
    that scale, else the scale's (None: unbounded on that side)."""
    spec = metric_spec(str(benchmark), str(metric))
    return spec.range if spec is not None and spec.scale == scale else SCALE_RANGES.get(str(scale), (None, None))


def outside_range(frame: pd.DataFrame) -> np.ndarray:
    """Per row: the score lies outside `score_range` (a missing score is not outside)."""
    import numpy as np

    outside = np.zeros(len(frame), bool)
    scores = frame["score"].to_numpy(dtype="float64", na_value=np.nan)
    for (bench, metric, scale), rows in frame.groupby(["benchmark", "metric", "scale"], sort=False).indices.items():
        low, high = score_range(bench, metric, scale)
        values = scores[rows]
        outside[rows] = ((values < low) if low is not None else False) | ((values > high) if high is not None else False)
    return outside


@dataclass
class ResultsTable:
    """Rows of the results schema (a pandas DataFrame with `COLUMNS`), where they came from, and what an import
    kept and left out (`notes`, `left_out`: one line each)."""

    frame: pd.DataFrame
    source: str
    notes: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)

    @property
    def models(self) -> int:
        return int(self.frame["run_id"].nunique())

    def wide(self) -> pd.DataFrame:
        """One row per model, one column per score column (`score_column`)."""
        return to_wide(self.frame)


def to_wide(frame: pd.DataFrame, value: str = "score") -> pd.DataFrame:
    """The results as one row per model and a column per score column (score, or `gain`)."""
    frame = frame.assign(column=score_columns(frame))
    scores = frame.pivot_table(index="run_id", columns="column", values=value, aggfunc="first")
    meta = frame.drop_duplicates("run_id").set_index("run_id")[["model_id", "has_repo", *AXES, "source"]]
    return meta.join(scores).reset_index().rename_axis(columns=None)


def add_gains(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill `base_score`, `base_revision` and `gain` from each base model's own rows (`dataset == "pretrain"`).

    Rows that already carry a base score (an evaluation that ran its base on the same samples) keep it.
    Otherwise a gain is computed only between like and like: the same benchmark, shots, metric and scale,
    both scored on the whole benchmark. A subset score never gets a gain over a full base score.
    """
    frame = normalize(frame)
    full = frame["subset"].astype("boolean").eq(False).fillna(False).to_numpy(bool)
    base = frame[(frame["dataset"] == "pretrain").to_numpy(bool) & full]
    keys = ["base_model", "benchmark", "n_shot", "metric", "scale"]
    comparable = base[[*keys, "score", "model_revision"]].rename(
        columns={"score": "_base", "model_revision": "_base_rev"}).drop_duplicates(keys)
    merged = frame.merge(comparable, on=keys, how="left")
    merged["_base"] = merged["_base"].where(full)
    own = merged["base_score"].notna()
    merged["base_score"] = merged["base_score"].astype("float64").fillna(merged.pop("_base"))
    taken = ~own & merged["base_score"].notna()
    merged["base_revision"] = merged["base_revision"].where(~taken | merged["base_revision"].notna(),
                                                            merged["_base_rev"])
    merged["gain"] = merged["score"] - merged["base_score"]
    return merged[COLUMNS]


def imported_run_id(family: str, dataset: str, size: int | None, tuning: str, epochs: int | None,
                    schedule: str | None) -> str:
    """The run-id scheme without the config hash (an imported row's config is not known in full)."""
    if dataset == "pretrain":
        return f"{slug(family)}-base"
    return "-".join([slug(family), slug(dataset.replace("w/o-", "wo-")), size_token(size), tuning,
                     f"e{epochs}", schedule or "na"])


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every column of `COLUMNS`, in order and with their types.

    Rows written before a column existed (older results datasets) get what can be known: the registry's scale,
    direction and headline for its metric; an unknown sample count stays empty (`subset` empty: not known to be
    full); no `sequence` (older than every sequenced write).
    """
    import pandas as pd

    frame = frame.copy()
    for name in COLUMNS:
        if name not in frame.columns:
            frame[name] = None
    pairs = frame[["benchmark", "metric"]].drop_duplicates()
    specs = {(b, m): metric_spec(str(b), str(m)) for b, m in zip(pairs["benchmark"], pairs["metric"])}
    keys = list(zip(frame["benchmark"], frame["metric"]))
    if frame["scale"].isna().any():
        declared = pd.Series([s.scale if (s := specs[k]) else "percent" for k in keys], index=frame.index)
        frame["scale"] = frame["scale"].where(frame["scale"].notna(), declared)
    if frame["higher_is_better"].isna().any():
        declared = pd.Series([s.higher_is_better if (s := specs[k]) else True for k in keys], index=frame.index)
        frame["higher_is_better"] = frame["higher_is_better"].where(frame["higher_is_better"].notna(), declared)
    frame["higher_is_better"] = frame["higher_is_better"].astype(bool)
    if frame["headline"].isna().any():
        heads = {k: is_headline(str(k[0]), str(k[1])) for k in specs}
        declared = pd.Series([True if heads[k] is None else heads[k] for k in keys], index=frame.index, dtype=object)
        frame["headline"] = frame["headline"].where(frame["headline"].notna(), declared)
    frame["headline"] = frame["headline"].astype(bool)
    for col in _INT_COLUMNS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    for col in _FLOAT_COLUMNS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    frame["has_repo"] = frame["has_repo"].fillna(False).astype(bool)
    frame["subset"] = frame["subset"].astype("boolean")
    for col in _TEXT_COLUMNS:
        frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    return frame[COLUMNS]


def rows_frame(rows: Sequence[dict[str, Any] | ResultRow]) -> pd.DataFrame:
    """A results-schema DataFrame of rows (dicts or `ResultRow`s)."""
    import pandas as pd

    data = [r.to_json() if isinstance(r, ResultRow) else r for r in rows]
    return normalize(pd.DataFrame(data, columns=COLUMNS))


def source_text(row: Any) -> str:
    """Where a row came from, in one line: source, file and write number."""
    parts = [str(row["source"] or "unknown source")]
    if row["source_file"]:
        parts.append(str(row["source_file"]))
    if row["sequence"] is not None and str(row["sequence"]) != "<NA>":
        parts.append(f"write {int(row['sequence'])}")
    return " · ".join(parts)


def validate(frame: pd.DataFrame, where: str = "results") -> pd.DataFrame:
    """Check the results table's invariants; return the normalised frame.

    - every row names a run, a benchmark and a metric, on a known scale;
    - a (benchmark, metric) the registry declares has the registry's scale and direction;
    - across the whole table, each (benchmark, metric) has one scale and one direction;
    - every score, base score and gain is a finite number, the scores inside their metric's range;
    - one score per identity (run, benchmark, metric, shots) per write;
    - one headline metric per run, benchmark and shot count (what an average over benchmarks takes of it).

    Raises:
        HubkitError: one line naming the rule, the score and — for a conflict — both sources.
    """
    import numpy as np

    frame = normalize(frame)
    if frame.empty:
        return frame
    for col in ("run_id", "benchmark", "metric"):
        empty = frame[col].isna() | (frame[col].astype(str).str.strip() == "")
        if empty.any():
            raise HubkitError(f"{where}: a row has no {col} (from {source_text(frame[empty].iloc[0])})")
    bad_scale = ~frame["scale"].isin(list(SCALES))
    if bad_scale.any():
        row = frame[bad_scale].iloc[0]
        raise HubkitError(f"{where}: {row['benchmark']} {row['metric']} has scale {row['scale']!r} "
                          f"(known: {', '.join(SCALES)})")
    kinds = frame.drop_duplicates(["benchmark", "metric", "scale", "higher_is_better"])
    for (bench, metric), part in kinds.groupby(["benchmark", "metric"], sort=False):
        spec = metric_spec(str(bench), str(metric)) if str(bench) in BENCHMARKS else None
        if spec is not None and len(part) == 1:
            row = part.iloc[0]
            if (row["scale"], bool(row["higher_is_better"])) != (spec.scale, spec.higher_is_better):
                raise HubkitError(
                    f"{where}: {bench} {metric} arrives on the {row['scale']} scale, "
                    f"{'higher' if row['higher_is_better'] else 'lower'} is better, from {source_text(row)}; the "
                    f"benchmark registry keeps it on the {spec.scale} scale, "
                    f"{'higher' if spec.higher_is_better else 'lower'} is better")
        if len(part) > 1:
            a, b = part.iloc[0], part.iloc[1]
            raise HubkitError(
                f"{where}: {bench} {metric} is on two scales: {a['scale']} "
                f"({'higher' if a['higher_is_better'] else 'lower'} is better) from {source_text(a)}, and {b['scale']} "
                f"({'higher' if b['higher_is_better'] else 'lower'} is better) from {source_text(b)}")
    for col in _FLOAT_COLUMNS:
        values = frame[col].to_numpy(dtype="float64", na_value=np.nan)
        if np.isinf(values).any():
            row = frame[np.isinf(values)].iloc[0]
            raise HubkitError(f"{where}: {row['run_id']} {row['benchmark']} {row['metric']}: {col} is infinite")
    if frame["score"].isna().any():
        row = frame[frame["score"].isna()].iloc[0]
        raise HubkitError(f"{where}: {row['run_id']} {row['benchmark']} {row['metric']} has no score "
                          f"(from {source_text(row)})")
    outside = outside_range(frame)
    if outside.any():
        row = frame[outside].iloc[0]
        low, high = score_range(row["benchmark"], row["metric"], row["scale"])
        span = f"[{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}]"
        raise HubkitError(f"{where}: {row['run_id']} {row['benchmark']} {row['metric']} = {row['score']:g} is outside "
                          f"its {row['scale']} range {span} (from {source_text(row)})")
    clash = _first_clash(frame, [*IDENTITY, "sequence"])
    if clash:
        a, b = clash
        raise HubkitError(f"{where}: {a['run_id']} has two {a['benchmark']} {a['metric']} scores at "
                          f"{_shots(a['n_shot'])} in one write ({a['score']:g} from {source_text(a)}, {b['score']:g} "
                          f"from {source_text(b)}): import them separately, the later one last")
    heads = frame[frame["headline"].to_numpy(bool)].drop_duplicates(IDENTITY)  # a score's earlier writes: one score
    clash = _first_clash(heads, ["run_id", "benchmark", "n_shot"])
    if clash:
        a, b = clash
        raise HubkitError(f"{where}: {a['run_id']} has two headline {a['benchmark']} scores at {_shots(a['n_shot'])}: "
                          f"{a['metric']} from {source_text(a)} and {b['metric']} from {source_text(b)}; an average "
                          "would count the benchmark twice")
    return frame


def _first_clash(frame: pd.DataFrame, keys: list[str]) -> tuple[Any, Any] | None:
    """Two rows that agree on `keys` (missing values counting as one value, as pandas groups them), or None."""
    group = frame.groupby(keys, dropna=False, sort=False).ngroup()
    dupes = group.duplicated(keep=False).to_numpy(bool)
    if not dupes.any():
        return None
    same = frame[(group == group[dupes].iloc[0]).to_numpy(bool)]
    return same.iloc[0], same.iloc[1]


def _shots(n_shot: Any) -> str:
    return "no shot count" if n_shot is None or str(n_shot) == "<NA>" else f"{int(n_shot)} shots"


@dataclass
class Replaced:
    """A score a later write superseded: what it was, where it came from, and what took its place."""

    run_id: str
    column: str
    old: float
    new: float
    old_source: str

    def text(self) -> str:
        return f"{self.run_id} {self.column}: {self.old:g} ({self.old_source}) → {self.new:g}"


def supersede(frame: pd.DataFrame, where: str = "results") -> tuple[pd.DataFrame, list[Replaced]]:
    """One row per identity: the row of the latest write (`sequence`) wins; rows without a sequence (written before
    sequences existed) count as the earliest. Returns the rows and the scores a later write changed.

    Raises:
        HubkitError: two rows of one identity have no order between them and disagree.
    """
    ordered = frame.assign(_seq=frame["sequence"].fillna(-1).astype("int64"),
                           _key=frame.groupby(IDENTITY, dropna=False, sort=False).ngroup().to_numpy())
    ordered = ordered.sort_values("_seq", kind="stable")
    latest = ordered.drop_duplicates("_key", keep="last")
    older = ordered[ordered.duplicated("_key", keep="last").to_numpy(bool)]
    replaced: list[Replaced] = []
    if not older.empty:
        winners = latest.set_index("_key")
        winner = winners.loc[older["_key"], ["_seq", "score"]]
        differ = winner["score"].to_numpy() != older["score"].to_numpy()
        unordered = differ & (winner["_seq"].to_numpy() == older["_seq"].to_numpy())
        if unordered.any():
            row = older[unordered].iloc[0]
            win = winners.loc[row["_key"]]
            raise HubkitError(f"{where}: {row['run_id']} {row['benchmark']} {row['metric']} has two scores with "
                              f"no recorded order ({row['score']:g} from {source_text(row)}, {win['score']:g} "
                              f"from {source_text(win)}): push one of them again to order them")
        changed, new = older[differ], winner["score"].to_numpy()[differ]
        replaced = [Replaced(str(r.run_id), score_column(r.benchmark, r.n_shot, r.metric), float(r.score), float(v),
                             source_text({"source": r.source, "source_file": r.source_file, "sequence": r.sequence}))
                    for r, v in zip(changed.itertuples(index=False), new)]
    return latest.drop(columns=["_key", "_seq"]).sort_index(), replaced


def consolidate(frame: pd.DataFrame, where: str = "results") -> tuple[pd.DataFrame, list[Replaced]]:
    """Every row of a results dataset, one per identity (`supersede`), checked (`validate`), gains recomputed.

    Returns the rows and the scores that a later write replaced with a different value.

    Raises:
        HubkitError: an invariant fails across the dataset, or two rows of one identity have no order between them.
    """
    frame = validate(frame, where)
    if frame.empty:
        return frame, []
    latest, replaced = supersede(frame, where)
    return add_gains(latest), replaced
