"""The leaderboard's schema and formatting: the results columns it reads, benchmark labels and groups, the
settings file, and how values are written in Markdown and shell commands."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent.parent  # the Space's folder
AXES = ["base_model", "dataset", "data_size", "tuning", "epochs", "lr_schedule"]
AXIS_TITLES = {"base_model": "base model", "dataset": "training data", "data_size": "data size",
               "tuning": "full/LoRA", "epochs": "epochs", "lr_schedule": "schedule"}
CONSOLIDATED = "data/results.parquet"
ANALYSIS = {"perplexity": "analysis/perplexity.parquet", "layerdiff": "analysis/layerdiff.parquet",
            "loglik_map": "modelspace/loglik_map.parquet"}
MAP_COLOURS = {"family": "family (base model)", "dataset": "training data", "epochs": "epochs", "tuning": "full/LoRA"}
MID_DEPTH = (1 / 3, 2 / 3)
PAGE_SIZE = 50  # rows per page: each update sends one page; sorting, counts and the CSV export cover all rows
#: Columns the picker can show or hide; rank, model, average and the benchmarks are always there (the table opens on
#: them alone: every benchmark in the first screen). A column the table is sorted by is shown beside the model.
OPTIONAL_COLUMNS = ["base model", "training data", "data size", "full/LoRA", "epochs", "schedule", "benchmarks averaged",
                    "samples", "repo", "other shot counts", "reproduce"]
DEFAULT_COLUMNS: list[str] = []
#: The shot settings the table shows and averages, one score per benchmark each: a benchmark evaluated at several
#: shot counts (the study has NQ-open at 0, 1, 5 and 25) is never counted several times in one average, nor are its
#: 0-shot and few-shot scores mixed. Judged benchmarks (MT-Bench, AlpacaEval) have no shot count and belong to both.
SHOT_SETTINGS = {"0-shot": "0-shot", "study": "the study's shot counts"}
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
BENCHMARKS: dict[str, dict[str, str]] = json.loads((HERE / "benchmarks.json").read_text(encoding="utf-8"))
_ORDER = ["code", "math", "knowledge", "chat", "multilingual", "long-context", "instruction"]
GROUPS = sorted({b["group"] for b in BENCHMARKS.values()} | {"other"},
                key=lambda g: _ORDER.index(g) if g in _ORDER else len(_ORDER))
# The results schema's columns the leaderboard reads, with what an older table (or a card) lacks filled in.
COLUMNS = ["model_id", "has_repo", "run_id", "model_revision", "base_revision", *AXES, "benchmark", "n_shot", "metric",
           "headline", "scale", "higher_is_better", "score", "base_score", "gain", "n_samples", "n_total", "subset", "harness",
           "harness_version", "judge", "source", "source_file", "evaluated_at"]
TITLE_AXES = {AXIS_TITLES[a]: a for a in AXES}
SCALE_TITLES = {"percent": "percent (0–100)", "1-10": "grade 1–10 (LLM judge)", "raw": "raw (e.g. perplexity)"}


#: Text columns of the results schema; held as categoricals (a few distinct values repeated over every row), so
#: that 100,000 models (~2.9 million rows) fit in well under a gigabyte.
TEXT = ["model_id", "run_id", "model_revision", "base_revision", "base_model", "dataset", "tuning", "lr_schedule", "benchmark",
        "metric", "scale", "harness", "harness_version", "judge", "source", "source_file", "evaluated_at"]


def complete(long: pd.DataFrame) -> pd.DataFrame:
    """Every column of `COLUMNS`, text as categoricals: a table written before `scale`/`subset` existed gets each
    benchmark's declared scale and direction, and an unknown sample count (never counted as a full-benchmark
    score)."""
    long = long[[c for c in long.columns if c in COLUMNS]]  # copy-on-write: nothing is copied until changed
    for name in COLUMNS:
        if name not in long.columns:
            long[name] = None
    for name in TEXT:
        if not isinstance(long[name].dtype, pd.CategoricalDtype):
            column = long[name]
            long[name] = pd.Categorical.from_codes(np.full(len(column), -1), categories=pd.Index([], dtype=object)) \
                if not column.notna().any() else column.astype("string").astype("category")
    benchmark = long["benchmark"]
    if long["scale"].isna().any():  # only a table written before `scale` existed: by benchmark, once per name
        declared = {b: spec.get("scale", "percent") for b, spec in BENCHMARKS.items()}
        long["scale"] = _fill_by_benchmark(long["scale"], benchmark, declared, "percent").astype("category")
    direction = long["higher_is_better"]
    if direction.isna().any() or direction.dtype != bool:
        declared_direction = {b: bool(spec.get("higher_is_better", True)) for b, spec in BENCHMARKS.items()}
        long["higher_is_better"] = _fill_by_benchmark(direction, benchmark, declared_direction, True).astype(bool)
    long["subset"] = long["subset"].astype("boolean")
    headline = long["headline"].astype("boolean")  # older tables: the registry's headline, else the row's own
    if headline.isna().any():
        declared = pd.Series([_HEADLINES.get(b) in (None, m) for b, m in zip(benchmark.astype(object),
                                                                             long["metric"].astype(object))],
                             index=long.index)
        headline = headline.fillna(declared)
    long["headline"] = headline.astype(bool)
    long["has_repo"] = long["has_repo"].fillna(False).astype(bool)
    for name in ("n_samples", "n_total", "n_shot"):
        long[name] = pd.to_numeric(long[name], errors="coerce").astype("Int32")
    for name in ("data_size", "epochs"):  # whole numbers: 4 bytes each, not 8 (the text of any other value kept)
        numeric = pd.to_numeric(long[name], errors="coerce")
        if numeric.notna().sum() == long[name].notna().sum() and (numeric.dropna() % 1 == 0).all():
            long[name] = numeric.astype("Int32")
    return long


def _fill_by_benchmark(values: pd.Series, benchmark: pd.Series, declared: dict[str, Any], default: Any) -> pd.Series:
    """`values`, its missing cells filled with the benchmark's declared value (`default` for an unknown one):
    looked up once per distinct benchmark (a categorical's codes), not once per row."""
    codes = benchmark.cat.codes.to_numpy()
    lookup = np.array([declared.get(str(b), default) for b in benchmark.cat.categories] + [default], dtype=object)
    filled = values.astype(object).to_numpy(copy=True)
    missing = pd.isna(filled)
    filled[missing] = lookup[codes[missing]]  # code -1 (no benchmark) takes the last entry: the default
    return pd.Series(filled, index=values.index)


def column_label(benchmark: str, n_shot: Any, metric: Any) -> str:
    """A score's column, as hubkit names it (`hubkit.results.score_column`): `<benchmark>-<n>shot`, then
    `:<metric>` unless the metric is the benchmark's headline (`benchmarks.json`)."""
    name = benchmark + ("" if n_shot is None or n_shot is pd.NA or n_shot != n_shot else f"-{int(n_shot)}shot")
    metric = _as_text(metric)
    return name if not metric or _HEADLINES.get(benchmark) == metric else f"{name}:{metric}"


def _column_labels(long: pd.DataFrame) -> pd.Categorical:
    """`column_label` per row, built from the distinct (benchmark, shots, metric) triples, found by factorising one
    integer key per row (no string, and no row-wise `np.unique`, is made per row)."""
    benchmark, metric = long["benchmark"].cat, long["metric"].cat
    b = benchmark.codes.to_numpy(dtype="int64") + 1
    m = metric.codes.to_numpy(dtype="int64") + 1
    s, shots = pd.factorize(long["n_shot"].fillna(-1).to_numpy(dtype="int64"))
    key = (b * len(shots) + s.reshape(-1)) * (len(metric.categories) + 1) + m
    codes, triples = pd.factorize(key)
    nm = len(metric.categories) + 1
    labels = [column_label("" if t // nm // len(shots) == 0 else str(benchmark.categories[t // nm // len(shots) - 1]),
                           None if shots[t // nm % len(shots)] < 0 else int(shots[t // nm % len(shots)]),
                           None if t % nm == 0 else str(metric.categories[t % nm - 1])) for t in triples]
    if len(set(labels)) < len(labels):  # a benchmark named like another's column: label row by row instead
        return pd.Categorical([column_label(str(b), s, m) for b, s, m in
                               zip(long["benchmark"], long["n_shot"], long["metric"])])
    return pd.Categorical.from_codes(codes, categories=labels)


_HEADLINES = {name: b.get("metric") for name, b in BENCHMARKS.items()}


def _group(benchmark: str) -> str:
    return BENCHMARKS.get(benchmark, {}).get("group", "other")


_PUBLIC_IDS = {name: b.get("dataset", "") for name, b in BENCHMARKS.items()}


def _as_text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA else str(value)


def _setting(shots: str) -> str:
    """A shot setting's key (`SHOT_SETTINGS`), checked."""
    if shots not in SHOT_SETTINGS:
        raise ValueError(f"unknown shot setting {shots!r} (known: {', '.join(SHOT_SETTINGS)})")
    return shots


def _order(key: pd.Series, descending: bool, after: pd.Series | None = None):
    """Positions that sort `key` (numbers, or text), missing values last whichever the direction; stable. Rows
    where `after` is true come after every other row (incomplete models after complete ones)."""
    values = key.to_numpy()
    if pd.api.types.is_numeric_dtype(key.dtype):
        numeric = key.astype("float64").to_numpy()
        missing = pd.isna(numeric)
        filled = -numeric if descending else numeric
        keys = (np.where(missing, 0.0, filled), missing)
        return np.lexsort(keys if after is None else (*keys, after.to_numpy(bool)))
    text = pd.Series(values, dtype=object).fillna("").astype(str)
    missing = (text == "").to_numpy()
    ranks = text.rank(method="dense").to_numpy()
    return np.lexsort((-ranks if descending else ranks, missing))


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]#+!|~<>])")


def _complete_block(present: pd.DataFrame) -> list[str]:
    """The view's benchmarks: of the averaged columns, taken most-held first, the leading set whose size times the
    number of models holding every one of them is largest (on a tie, the larger set). So the average compares like
    with like over as many benchmarks and models as the results allow: a benchmark few models have (the study's
    LongBench v2, 33 of 1,027) does not unrank the rest, and a model lacking a benchmark that nearly all have is
    listed after them, unranked.

    Example:
        >>> _complete_block(pd.DataFrame({"a": [True, True, True], "b": [True, True, False], "c": [True, False, False]}))
        ['a', 'b']
    """
    coverage = present.sum(axis=0)
    coverage = coverage[coverage > 0].sort_values(ascending=False, kind="stable")
    held = np.ones(len(present), dtype=bool)
    best, size = 0, 0
    for k, column in enumerate(coverage.index, start=1):
        held &= present[column].to_numpy()
        if k * int(held.sum()) >= size:
            best, size = k, k * int(held.sum())
    return list(coverage.index[:best])


def _md(text: Any) -> str:
    """`text` as literal Markdown on one line: punctuation that would be markup (or HTML) is escaped."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(_as_text(text).split()))


def _number(value: Any, signed: bool = False) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return "—"
    return f"{float(value):+.2f}" if signed else f"{float(value):.2f}"


def _samples(row: pd.Series) -> str:
    """How one score was measured: `full`, `n of total (subset)` or `unknown`."""
    n, total, subset = row["n_samples"], row["n_total"], row["subset"]
    count = "" if n is None or n is pd.NA else f"{int(n):,}" + ("" if total is None or total is pd.NA else
                                                               f" of {int(total):,}")
    if subset is True:
        return f"{count} (subset)" if count else "subset"
    if subset is False:
        return f"full ({count})" if count else "full"
    return "unknown"


def _summary(card: str, limit: int = 400) -> str | None:
    """A card's first paragraph of prose: after the YAML front matter, not a heading, a table, code or an image."""
    text = card
    if text.startswith("---"):
        end = text.find("\n---", 3)
        text = text[end + 4:] if end >= 0 else ""
    for block in re.split(r"\n\s*\n", text):
        block = " ".join(block.split())
        if block and not block.startswith(("#", "|", "```", "![", "<", "---")):
            return block if len(block) <= limit else block[: limit - 1].rstrip() + "…"
    return None


def _release_free_memory() -> None:
    """Give the heap memory the build freed back to the system (glibc's `malloc_trim`; elsewhere nothing), so
    that the server's resident size is what the board holds, not the peak of building it."""
    import gc

    gc.collect(1)  # the build's own cycles are young; a full collection walks every module loaded (~30 ms)
    trim_heap()


def trim_heap() -> None:
    """Return freed heap memory to the system (glibc's `malloc_trim`, about 1 ms at 100,000 models; elsewhere
    nothing). Called after each page is built: a query over 100,000 models makes tens of MB of temporaries in
    whichever worker thread served it, and without this the server's resident size drifts up by those peaks
    (`scripts/bench/leaderboard_memory.py`: 821 MB after 20 visits, 1,086 MB without the trim)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _text_category(values: pd.Series) -> pd.Series:
    """`values` as text categories, missing as "": a categorical's categories are converted, not its rows."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = values.cat
        categories = cats.categories
        text = categories.astype(object) if categories.inferred_type == "string" \
            else pd.Index([str(c) for c in categories], dtype=object)
        codes = cats.codes.to_numpy()
        if (codes < 0).any():
            text = text.append(pd.Index([""]))
            codes = np.where(codes < 0, len(text) - 1, codes)
        if text.has_duplicates:
            return pd.Series(pd.Categorical(np.asarray(text, dtype=object)[codes]), index=values.index)
        return pd.Series(pd.Categorical.from_codes(codes, categories=text), index=values.index)
    return values.astype("string").fillna("").astype(object).astype("category")


def _natural(values) -> list[str]:
    """Numbers in numeric order (`9000` before `10000`), then text."""
    return sorted(values, key=lambda v: (len(v), v) if v.isdigit() else (0, v))


def _shell(value: str) -> str:
    return value if re.fullmatch(r"[A-Za-z0-9_./:=+-]+", value) else "'" + value.replace("'", "'\\''") + "'"


def settings() -> dict[str, str]:
    """Where the app reads its results: `HUBKIT_RESULTS_REPO`, else `settings.json` beside the app."""
    out: dict[str, str] = {}
    path = HERE / "settings.json"
    if path.is_file():
        out.update(json.loads(path.read_text(encoding="utf-8")))
    if os.environ.get("HUBKIT_RESULTS_REPO"):
        out["results_repo"] = os.environ["HUBKIT_RESULTS_REPO"]
    return out
