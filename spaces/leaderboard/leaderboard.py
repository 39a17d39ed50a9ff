"""The leaderboard's data side: load a hubkit results dataset, then filter, compare, plot and export it.

Self-contained (pandas, huggingface_hub, matplotlib), so that the Space runs without hubkit installed.
The results schema is hubkit's (one row per model × benchmark × metric × shots, with the sweep axes); benchmark
groups, titles and headline metrics come from `benchmarks.json` beside this file, a generated copy of hubkit's
benchmark registry (`hubkit.benchmarks`; a test keeps them equal).

A column is `<benchmark>-<n>shot`, with `:<metric>` when the metric is not the benchmark's headline (so `acc` and
`acc_norm` never share a column). The table ranks like with like: a model's average takes the view's benchmarks
(headline metrics, percent scale, higher is better, one shot setting); a model missing one of them is
*incomplete* and ranked after every complete model, without a rank.

Analysis tables, when the results dataset has them, add two plots:

| file | columns |
| --- | --- |
| `analysis/perplexity.parquet` | `base_model`, `dataset`, `perplexity` (the training data under its base model) |
| `analysis/layerdiff.parquet` | `run_id`, `depth` (normalised layer depth, 0–1), `rel_change` (‖ΔW‖/‖W‖) |
| `analysis/index.json` | the analyses of `hubkit analyze`: title, condition, n, what was left out, figures (`*.png` beside it) |
| `modelspace/loglik_map.parquet` | `model`, `family`, `dataset`, `epochs`, `tuning`, `x`, `y`, `method` (`hubkit analyze --loglik`) |

Example:
    >>> board = Board(load_results("my-org/massive-sft-results"))
    >>> board.view(filters={"tuning": ["lora"]}, groups=["math"]).shape
    (440, 12)
"""

from __future__ import annotations

import functools
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
AXES = ["base_model", "dataset", "data_size", "tuning", "epochs", "lr_schedule"]
AXIS_TITLES = {"base_model": "base model", "dataset": "training data", "data_size": "data size",
               "tuning": "full/LoRA", "epochs": "epochs", "lr_schedule": "schedule"}
CONSOLIDATED = "data/results.parquet"
ANALYSIS = {"perplexity": "analysis/perplexity.parquet", "layerdiff": "analysis/layerdiff.parquet",
            "loglik_map": "modelspace/loglik_map.parquet"}
MAP_COLOURS = {"family": "family (base model)", "dataset": "training data", "epochs": "epochs", "tuning": "full/LoRA"}
MID_DEPTH = (1 / 3, 2 / 3)
PAGE_SIZE = 50  # rows per page: each update sends one page; sorting, counts and the CSV export cover all rows
#: Columns the picker can show or hide; the rest (model, base model, training data, full/LoRA, epochs, average
#: and the benchmarks) are always there.
OPTIONAL_COLUMNS = ["repo", "data size", "schedule", "benchmarks averaged", "samples", "other shot counts",
                    "reproduce"]
DEFAULT_COLUMNS = ["benchmarks averaged", "samples"]
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


def load_results(repo_id: str, endpoint: str | None = None, token: str | bool | None = None) -> pd.DataFrame:
    """The consolidated results of a results dataset; rebuilt from model cards when the file is missing.

    Args:
        repo_id: the results dataset (`NS/NAME`).
        endpoint: the Hub (default: `HF_ENDPOINT`, else huggingface.co).
        token: a token for private repos (default: the client's).
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

    try:
        path = hf_hub_download(repo_id, CONSOLIDATED, repo_type="dataset", endpoint=endpoint, token=token)
    except (EntryNotFoundError, RepositoryNotFoundError):
        return rows_from_cards(repo_id.split("/")[0], endpoint=endpoint, token=token)
    return read_table(path)


def read_table(path: str | Path) -> pd.DataFrame:
    """A results parquet file, only the columns the leaderboard reads, text dictionary-encoded as it is read
    (categoricals: a fraction of the memory of Python strings)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    present = set(pq.read_schema(path).names)
    table = pq.read_table(path, columns=[c for c in COLUMNS if c in present],
                          read_dictionary=[c for c in TEXT if c in present])
    frame = table.to_pandas(self_destruct=True, split_blocks=True)  # Arrow's buffers freed as they convert
    del table
    pa.default_memory_pool().release_unused()
    return frame


def rows_from_cards(author: str, endpoint: str | None = None, token: str | bool | None = None) -> pd.DataFrame:
    """Results rows rebuilt from the model cards of an author's hubkit models (their `model-index`)."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=token)
    rows = []
    for info in api.list_models(author=author, filter="hubkit-sft", cardData=True):
        card = info.card_data.to_dict() if info.card_data else {}
        axes = card.get("hubkit") or {}
        for entry in card.get("model-index") or []:
            for result in entry.get("results") or []:
                dataset = result.get("dataset") or {}
                # benchmarks that share a public dataset (MT-Bench's categories, AlpacaEval's two) name themselves
                # in the config
                bench = dataset.get("config") if dataset.get("config") in BENCHMARKS else \
                    next((k for k, v in _PUBLIC_IDS.items() if v == dataset.get("type")), dataset.get("type"))
                args = dataset.get("args") or {}
                for metric in result.get("metrics") or []:
                    how = metric.get("args") or {}
                    rows.append({"model_id": info.id, "has_repo": True, "run_id": axes.get("run_id") or info.id,
                                 "base_model": card.get("base_model"), "dataset": axes.get("dataset"),
                                 "data_size": axes.get("data_size"), "tuning": axes.get("tuning"),
                                 "epochs": axes.get("epochs"), "lr_schedule": axes.get("lr_schedule"),
                                 "benchmark": bench, "n_shot": args.get("num_few_shot"), "metric": metric.get("type"),
                                 "headline": how.get("headline"), "model_revision": how.get("model_revision"),
                                 "harness": how.get("harness"), "harness_version": how.get("harness_version"),
                                 "scale": how.get("scale"), "higher_is_better": how.get("higher_is_better"),
                                 "score": metric.get("value"), "base_score": None, "gain": None,
                                 "n_samples": args.get("n_samples"), "n_total": args.get("n_total"),
                                 "subset": args.get("subset"), "source": "model card", "evaluated_at": None})
    return complete(pd.DataFrame(rows))


def load_analysis(repo_id: str, endpoint: str | None = None, token: str | bool | None = None) -> dict[str, pd.DataFrame]:
    """The analysis tables a results dataset holds (`ANALYSIS`); absent ones are left out."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

    out = {}
    for name, path in ANALYSIS.items():
        try:
            out[name] = pd.read_parquet(hf_hub_download(repo_id, path, repo_type="dataset", endpoint=endpoint,
                                                        token=token))
        except (EntryNotFoundError, RepositoryNotFoundError):
            continue
    return out


ANALYSIS_INDEX = "analysis/index.json"
_FIGURE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}\.png$")


def _analysis_index(repo_id: str, endpoint: str | None, token: str | bool | None) -> dict[str, Any]:
    """`analysis/index.json` of a results dataset (an empty mapping when there is none or it is not JSON)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

    try:
        index = json.loads(Path(hf_hub_download(repo_id, ANALYSIS_INDEX, repo_type="dataset", endpoint=endpoint,
                                                token=token)).read_text(encoding="utf-8"))
    except (EntryNotFoundError, RepositoryNotFoundError, ValueError, OSError):
        return {}
    return index if isinstance(index, dict) else {}


def load_study_analyses(repo_id: str, endpoint: str | None = None,
                        token: str | bool | None = None) -> list[dict[str, Any]]:
    """The analyses `hubkit analyze --push` wrote (`analysis/index.json`), each with its figures downloaded.

    Each entry has `title`, `part`, `condition`, `n`, `unit`, `dropped`, `method`, `finding` and
    `figure_paths` (local files). Figure names that are not plain `*.png` names are ignored.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    index = _analysis_index(repo_id, endpoint, token)
    entries = index.get("analyses")
    out = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("title"), str):
            continue
        paths = []
        for name in entry.get("figures") or []:
            if isinstance(name, str) and _FIGURE.match(name):
                try:
                    paths.append(hf_hub_download(repo_id, f"analysis/{name}", repo_type="dataset", endpoint=endpoint,
                                                 token=token))
                except EntryNotFoundError:
                    continue
        out.append({**entry, "figure_paths": paths})
    return out


_CHECK_FIELDS = ("check", "subject", "detail", "excluded")


def load_data_checks(repo_id: str, endpoint: str | None = None, token: str | bool | None = None) -> list[dict[str, Any]]:
    """What the data checks of `hubkit analyze` found in these results (`checks` in `analysis/index.json`): identical
    base rows, runs without a base row, out-of-range cells, each with `check`, `subject`, `detail`, `excluded` and
    the score `columns` concerned. Entries that are not of that shape are ignored."""
    checks = _analysis_index(repo_id, endpoint, token).get("checks")
    out = []
    for entry in checks if isinstance(checks, list) else []:
        if isinstance(entry, dict) and all(isinstance(entry.get(k), str) for k in _CHECK_FIELDS):
            columns = entry.get("columns")
            out.append({**{k: entry[k] for k in _CHECK_FIELDS},
                        "columns": [c for c in columns if isinstance(c, str)] if isinstance(columns, list) else []})
    return out


_PUBLIC_IDS = {name: b.get("dataset", "") for name, b in BENCHMARKS.items()}


def _as_text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA else str(value)


@dataclass
class Board:
    """A results table as the leaderboard shows it: one row per model, one column per benchmark."""

    long: pd.DataFrame
    endpoint: str = "https://huggingface.co"
    analysis: dict[str, pd.DataFrame] = field(default_factory=dict)
    analyses: list[dict[str, Any]] = field(default_factory=list)  # `load_study_analyses`
    checks: list[dict[str, Any]] = field(default_factory=list)  # `load_data_checks`

    def __post_init__(self) -> None:
        long = complete(self.long)
        long["column"] = _column_labels(long)
        if long["run_id"].isna().any():
            long = long[long["run_id"].notna()]
        self.long = long
        # one score per model and column (the first row kept, as publishing deduplicated them), few columns
        first = long.loc[~long.duplicated(["run_id", "column"]).to_numpy(),
                         ["run_id", "column", "benchmark", "n_shot", "headline", "scale", "higher_is_better", "score",
                          "gain", "subset", "n_samples"]]
        kind = first.drop_duplicates("column").assign(column=lambda f: f["column"].astype(str)).set_index("column")
        self.column_group = {c: _group(str(b)) for c, b in kind["benchmark"].items()}
        self.column_shots = shots = {c: (None if pd.isna(n) else int(n)) for c, n in kind["n_shot"].items()}
        # by group, then benchmark, then shot count (NQ-open's 5-shot before its 25-shot)
        self.columns = sorted(kind.index, key=lambda c: (GROUPS.index(self.column_group[c]),
                                                         str(kind.loc[c, "benchmark"]),
                                                         -1 if shots[c] is None else shots[c], c))
        order = self.columns
        meta = long.drop_duplicates("run_id")[["run_id", "model_id", "has_repo", *AXES, "source"]]
        meta = meta.set_index(pd.Index(meta["run_id"].astype(str), name="run_id")).drop(columns="run_id")
        self.meta = meta
        # the score matrices, filled by position from the categorical codes (no per-row strings)
        runs = first["run_id"].cat
        run_pos = meta.index.get_indexer(runs.categories.astype(str))[runs.codes.to_numpy()]
        where = {c: i for i, c in enumerate(order)}
        columns = first["column"].cat
        col_pos = np.array([where[str(c)] for c in columns.categories], dtype="int64")[columns.codes.to_numpy()]

        def matrix(values: np.ndarray) -> pd.DataFrame:
            out = np.full((len(meta), len(order)), np.nan)
            out[run_pos, col_pos] = values
            return pd.DataFrame(out, index=meta.index, columns=order)

        self.scores = matrix(first["score"].to_numpy(dtype="float64", na_value=np.nan))
        self.gains = matrix(first["gain"].to_numpy(dtype="float64", na_value=np.nan))
        # how each score was measured: a full-benchmark score (1), a subset (0) or unknown (NaN)
        subset = first["subset"].astype("boolean")
        self.full = matrix(np.where(subset.isna().to_numpy(), np.nan,
                                    np.where(subset.to_numpy(dtype=bool, na_value=False), 0.0, 1.0)))
        # whether a score is its source's headline for the benchmark (the registry's metric, or a one-metric source's)
        self.head = matrix(first["headline"].to_numpy(dtype="float64"))
        self.column_scale = kind["scale"].astype(str).to_dict()
        # one metric per benchmark enters an average: a headline score, on the percent scale, higher is better
        heads = first.groupby("column", observed=True)["headline"].any()
        self.averaged = [c for c in order if self.column_scale.get(c) == "percent"
                         and bool(kind.loc[c, "higher_is_better"]) and bool(heads.get(c, False))]
        self._averaged = set(self.averaged)
        # each shot setting's columns: a column without a shot count is in both
        study = {c: BENCHMARKS.get(str(b), {}).get("n_shot") or 0 for c, b in kind["benchmark"].items()}
        self.shot_columns = {"0-shot": [c for c in order if shots[c] in (None, 0)],
                             "study": [c for c in order if shots[c] in (None, study[c])]}
        cells = self._full_cells()
        self.default_shots = max(SHOT_SETTINGS, key=lambda k: (int(cells.reindex(self.shot_columns[k]).sum()),
                                                               k == "study"))
        self._samples = pd.Series(self._samples_text(first, run_pos, meta.index), index=meta.index)
        # per-model text: categoricals (few distinct values); repo links and commands are made per page
        self._axis_text = pd.DataFrame({a: _text_category(meta[a]) for a in AXES}, index=meta.index)
        # what sorting by an axis compares: numbers for data size and epochs, text for the rest
        self._axis_key = pd.DataFrame({a: pd.to_numeric(meta[a], errors="coerce") if a in ("data_size", "epochs")
                                       else self._axis_text[a] for a in AXES}, index=meta.index)
        self._model_ids = _text_category(meta["model_id"])
        self._cards: dict[str, str | None] = {}
        _release_free_memory()

    @staticmethod
    def _samples_text(first: pd.DataFrame, run_pos: np.ndarray, index: pd.Index) -> pd.Categorical:
        """Per model: `full`, `subset (n=8)` (the smallest subset it was scored on), `mixed` or `unknown`;
        counted with one pass over the scores by model position (`run_pos`), text made once per distinct value."""
        subset = first["subset"].astype("boolean")
        unknown = subset.isna().to_numpy()
        sub = subset.to_numpy(dtype=bool, na_value=False)
        n_models = len(index)
        count = lambda mask: np.bincount(run_pos[mask], minlength=n_models)  # noqa: E731
        n_sub, n_unknown, n_full = count(sub), count(unknown), count(~sub & ~unknown)
        n = np.full(n_models, np.inf)
        sizes = first["n_samples"].to_numpy(dtype="float64", na_value=np.nan)
        sized = sub & ~np.isnan(sizes)
        np.minimum.at(n, run_pos[sized], sizes[sized])
        has_sub = n_sub > 0
        label = np.where(n_full + n_sub + n_unknown == 0, -3, np.where(
            has_sub, np.where(np.isfinite(n), n, -1), np.where((n_full > 0) & (n_unknown == 0), -2, -3)))
        plus = has_sub & (n_full > 0)
        key = pd.Series(label * 2 + plus)  # one text per distinct (kind, smallest n, with full) pair
        codes, uniques = pd.factorize(key)
        texts = []
        for k in uniques:
            value, with_full = divmod(int(k), 2)
            text = {-3: "unknown", -2: "full", -1: "subset"}.get(value, f"subset (n={value})")
            texts.append(text + (" + full" if with_full else ""))
        return pd.Categorical.from_codes(codes, categories=pd.Index(texts).unique()) if len(set(texts)) == len(texts) \
            else pd.Categorical(np.array(texts, dtype=object)[codes])

    @functools.cached_property
    def _search(self) -> pd.Series:
        """Per model, the lower-case text a search matches: run id, model id and every axis (made on first search)."""
        search = self.meta.index.to_series().astype(str) + " " + self._model_ids.astype(object)
        for axis in AXES:
            search = search + " " + self._axis_text[axis].astype(object)
        return search.str.lower()

    @functools.cached_property
    def _linked(self) -> pd.Series:
        """Per model, whether it links to a repo: published, with a repo id for a name (checked once per name)."""
        ids = self._model_ids.cat
        valid = np.array([bool(REPO_ID.fullmatch(str(c))) for c in ids.categories] + [False])
        return self.meta["has_repo"].astype(bool) & pd.Series(valid[ids.codes.to_numpy()], index=self.meta.index)

    # -- choices for the filters -------------------------------------------------------------------------

    def choices(self, axis: str) -> list[str]:
        return _natural(v for v in self._axis_text[axis].unique() if v)

    # -- the table -------------------------------------------------------------------------------------------

    def select(self, search: str = "", filters: dict[str, list[str]] | None = None) -> pd.Index:
        """The run ids that match the search text (every word) and the filters (any listed value per axis)."""
        mask = pd.Series(True, index=self.meta.index)
        for axis, values in (filters or {}).items():
            if values:
                mask &= self._axis_text[axis].isin([str(v) for v in values])
        for word in (search or "").lower().split():
            mask &= self._search.str.contains(word, regex=False)
        return self.meta.index[mask.to_numpy()]

    def benchmark_columns(self, groups: list[str] | None = None, shots: str | None = None) -> list[str]:
        """The benchmark columns of `groups` (None or empty: every group) at a shot setting (`SHOT_SETTINGS`; None:
        every shot count)."""
        keep = set(self.shot_columns[_setting(shots)]) if shots else None
        return [c for c in self.columns
                if (not groups or self.column_group[c] in groups) and (keep is None or c in keep)]

    def _full_cells(self) -> pd.Series:
        """Per averaged column: how many full-benchmark headline scores it holds."""
        cols = self.averaged
        return (self.full[cols].eq(1.0) & self.head[cols].eq(1.0) & self.scores[cols].notna()).sum(axis=0)

    def default_groups(self, shots: str | None = None) -> list[str]:
        """The benchmark group the table opens on: the one holding the most scores that enter the average
        (full-benchmark, percent-scale, higher-is-better) at the shot setting (default: `default_shots`, the setting
        with the most such scores, the study's on a tie), so that the first screen shows scores, not a scroll of
        columns; earlier groups win ties. Empty (every benchmark) when no score is averaged."""
        cells = self._full_cells()
        cells = cells[cells.index.isin(self.shot_columns[_setting(shots or self.default_shots)])]
        counts = cells.groupby(cells.index.map(self.column_group)).sum().reindex(GROUPS, fill_value=0)
        return [counts.idxmax()] if counts.max() > 0 else []

    def _ranked(self, search: str = "", filters: dict[str, list[str]] | None = None,
                groups: list[str] | None = None, value: str = "score", full_only: bool = True,
                sort: str = "average", descending: bool = True, shots: str | None = None,
                other_shots: bool = False) -> Ranked:
        """Every matching model, sorted over all of them (not one page): ids, columns, numbers, averages. The
        average takes the shown groups' columns at one shot setting, whatever else is shown."""
        ids = self.select(search, filters)
        setting = self.benchmark_columns(groups, shots or self.default_shots)
        cols = self.benchmark_columns(groups) if other_shots else setting
        if sort in self.columns and sort not in cols:  # sorted by a benchmark not shown: it is shown too
            cols = cols + [sort]
        numbers = (self.gains if value == "gain" else self.scores).loc[ids, cols]
        averaged = numbers[[c for c in setting if c in self._averaged]]
        averaged = averaged.where(self.head.loc[ids, averaged.columns] == 1.0)
        if full_only:
            averaged = averaged.where(self.full.loc[ids, averaged.columns] == 1.0)
        present = averaged.notna()
        # the view's benchmarks: those of its averaged columns that some matching model has (full, while full_only);
        # a model missing one of them is incomplete, ranked after every complete model and given no rank
        required = present.any(axis=0)
        averaged, present = averaged.loc[:, required], present.loc[:, required]
        average = averaged.mean(axis=1, skipna=True).round(2)
        counted = present.sum(axis=1).astype(int)
        complete = present.all(axis=1) & (present.shape[1] > 0)
        rank = average.where(complete).rank(ascending=False, method="min")
        incomplete = None
        if sort in cols:
            key = numbers[sort]
        elif sort == "benchmarks averaged":
            key = counted
        elif sort in TITLE_AXES:
            key = self._axis_key[TITLE_AXES[sort]].loc[ids]
        elif sort == "model":
            key = pd.Series(ids.astype(str).str.lower(), index=ids)
        else:
            key, incomplete = average, ~complete  # ranked: complete models first, whichever the direction
        order = _order(key, descending, incomplete)  # only positions: a page takes its rows, nothing else is reordered
        return Ranked(ids[order], order, cols, numbers, average, counted, rank, int(present.shape[1]))

    def _frame(self, ranked: Ranked, start: int = 0, stop: int | None = None,
               columns: list[str] | None = None) -> pd.DataFrame:
        """The rows `start:stop` of a ranking as the table shows them; `columns` picks the optional columns
        (`OPTIONAL_COLUMNS`; None: every one)."""
        ids, rows = ranked.ids[start:stop], ranked.order[start:stop]
        shown = set(OPTIONAL_COLUMNS if columns is None else columns)
        out = pd.DataFrame({"rank": ranked.rank.iloc[rows].astype("Int64"), "model": ids.astype(str)}, index=ids)
        if "repo" in shown:
            out["repo"] = self._repos(ids)
        for axis in AXES:
            title = AXIS_TITLES[axis]
            if title not in OPTIONAL_COLUMNS or title in shown:
                out[title] = self._axis_text.loc[ids, axis].astype(object)
        out["average"] = ranked.average.iloc[rows]
        if "benchmarks averaged" in shown:
            out["benchmarks averaged"] = ranked.counted.iloc[rows]
        if "samples" in shown:
            out["samples"] = self._samples.loc[ids].astype(object)
        out = pd.concat([out, ranked.numbers.iloc[rows].round(2)], axis=1)
        if "reproduce" in shown:
            out["reproduce"] = self._commands(ids)
        return out.reset_index(drop=True)

    def view(self, search: str = "", filters: dict[str, list[str]] | None = None, groups: list[str] | None = None,
             value: str = "score", full_only: bool = True, sort: str = "average", descending: bool = True,
             columns: list[str] | None = None, shots: str | None = None) -> pd.DataFrame:
        """Every matching model as a table (what the CSV export holds): identity, axes, average and benchmark
        columns (scores or gains), sorted by `sort` (best average first by default; missing values last).

        The average (what the table is ranked by) takes each benchmark once, at one shot setting (`shots`, a key
        of `SHOT_SETTINGS`; default `default_shots`); only percent-scale, higher-is-better benchmarks (never
        MT-Bench's 1–10 grades or a perplexity); and, with `full_only` (the default), only scores measured on
        the whole benchmark: a score on a subset, or one whose sample count is unknown, is shown but not
        averaged. Scores at other shot counts are shown with `other shot counts` among `columns` (None: every
        optional column), never averaged. One metric per benchmark is averaged, its headline (`acc_norm` beside a
        headline `acc` is shown in its own column, never averaged with it). A model that lacks one of the view's
        benchmarks (those of its averaged columns that some matching model has) is incomplete: it is ranked after
        every complete model and has no `rank`; `benchmarks averaged` says how many scores each average rests on;
        `samples` says how the model's scores were measured.

        Example:
            >>> board.view(groups=["knowledge"], shots="0-shot", columns=[]).columns[-3:].tolist()
            ['mmlu-0shot', 'nq_open-0shot', 'truthfulqa-0shot']
        """
        other = columns is None or "other shot counts" in columns
        return self._frame(self._ranked(search, filters, groups, value, full_only, sort, descending, shots, other),
                           columns=columns)

    def page(self, search: str = "", filters: dict[str, list[str]] | None = None, groups: list[str] | None = None,
             value: str = "score", full_only: bool = True, sort: str = "average", descending: bool = True,
             number: int = 1, size: int = PAGE_SIZE, columns: list[str] | None = None,
             shots: str | None = None) -> Page:
        """One page of the table, sorted over every matching model: what each update of the page sends.

        Args:
            number: the page, from 1 (clipped to the last page).
            size: rows per page.
            columns: optional columns to show (default `DEFAULT_COLUMNS`).
            shots: the shot setting shown and averaged (see `view`).
        """
        columns = DEFAULT_COLUMNS if columns is None else columns
        ranked = self._ranked(search, filters, groups, value, full_only, sort, descending, shots,
                              "other shot counts" in columns)
        total = len(ranked.ids)
        pages = max(1, -(-total // size))
        number = min(max(1, int(number or 1)), pages)
        start = (number - 1) * size
        frame = self._frame(ranked, start, start + size, columns)
        return Page(frame, total, number, pages, list(ranked.ids[start:start + size].astype(str)), ranked.required,
                    int(ranked.rank.notna().sum()))

    def sort_choices(self) -> list[str]:
        """What the table can be sorted by: the average, the model, the axes, then every benchmark column."""
        return ["average", "benchmarks averaged", "model", *TITLE_AXES, *self.columns]  # "average" is the rank

    def command(self, run_id: str) -> str:
        """The command that reproduces a model: its published config, or the run spec from its axes."""
        return str(self._commands(pd.Index([run_id])).iloc[0])

    def _repos(self, ids: pd.Index) -> pd.Series:
        """The repo column of these models: a link built only from a valid repo id, else `no repo (imported)`."""
        model_ids = self._model_ids.loc[ids].astype(object)
        return ("[" + model_ids + "](" + self.endpoint.rstrip("/") + "/" + model_ids + ")").where(
            self._linked.loc[ids], "no repo (imported)")

    def _commands(self, ids: pd.Index) -> pd.Series:
        """What reproduces each model: its published config, or (imported rows) the run spec from its axes."""
        command = pd.Series("hubkit train", index=ids, dtype=object)
        for axis, key in (("base_model", "model"), ("dataset", "dataset"), ("data_size", "data_size"),
                          ("tuning", "tuning"), ("epochs", "epochs"), ("lr_schedule", "lr_schedule")):
            text = self._axis_text.loc[ids, axis].astype(object)
            command = command + (" " + key + "=" + text.map(_shell)).where(text != "", "")
        axes = self._axis_text.loc[ids]
        base = (axes["dataset"].astype(object) == "pretrain") | (axes["tuning"].astype(object) == "base")
        published = "hf download " + self._model_ids.loc[ids].astype(object) + " hubkit_config.yaml && hubkit train hubkit_config.yaml"
        return published.where(self._linked.loc[ids], command.where(~base, ""))

    # -- one model's details -----------------------------------------------------------------------------------

    def details(self, run_id: str, card_summary: str | None = None) -> str:
        """Everything the results say about one model, as Markdown: identity and repo link, its axes, each score
        with its scale, samples, shots, harness, source and revision, its layer change and training-data
        perplexity when the analyses hold them, and the command that reproduces it. Text from the results is
        escaped: it renders as itself, never as markup."""
        if run_id not in self.meta.index:
            return "Click a row of the table to see that model here."
        meta = self.meta.loc[run_id]
        model_id = _as_text(meta["model_id"])
        lines = [f"### {_md(run_id)}", ""]
        if bool(meta["has_repo"]) and REPO_ID.match(model_id):
            lines.append(f"Model repo: [{_md(model_id)}]({self.endpoint.rstrip('/')}/{model_id})")
        else:
            lines.append("No model repo: imported results (" + _md(_as_text(meta["source"]) or "unknown source") + ")")
        if card_summary:
            lines += ["", "> " + _md(card_summary)]
        lines += ["", "| " + " | ".join(AXIS_TITLES[a] for a in AXES) + " |", "|" + " --- |" * len(AXES),
                  "| " + " | ".join(_md(self._axis_text.loc[run_id, a]) or "—" for a in AXES) + " |", ""]
        rows = self.long[self.long["run_id"] == run_id].drop_duplicates(["column"])
        rows = rows.assign(column=rows["column"].astype(str)).set_index("column")
        rows = rows.reindex([c for c in self.columns if c in set(rows.index)])
        lines += ["| benchmark | score | base | gain | scale | samples | shots | harness | source | revision |",
                  "| --- | ---: | ---: | ---: | --- | --- | ---: | --- | --- | --- |"]
        for column, r in rows.iterrows():
            lines.append("| " + " | ".join([
                _md(column), _number(r["score"]), _number(r["base_score"]), _number(r["gain"], signed=True),
                _md(SCALE_TITLES.get(r["scale"], _as_text(r["scale"]))) + ("" if bool(r["higher_is_better"]) else
                                                                            ", lower is better"),
                _md(_samples(r)), _as_text(r["n_shot"]) or "—",
                _md(" ".join(x for x in (_as_text(r["harness"]), _as_text(r["harness_version"])) if x)
                    + (f"; judged by {_as_text(r['judge'])}" if _as_text(r["judge"]) else "")) or "—",
                _md(" · ".join(x for x in (_as_text(r["source"]), _as_text(r["source_file"])) if x)) or "—",
                _md(_as_text(r["model_revision"])[:12]) or "—"]) + " |")
        extra = self._check_notes(run_id) + self._analysis_notes(run_id)
        if extra:
            lines += [""] + extra
        command = self.command(run_id)
        if command:  # a fence longer than any run of backticks in it, so that nothing can close it early
            fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", command)), default=0))
            lines += ["", "Reproduce:", "", fence + "bash", command, fence]
        return "\n".join(lines)

    def card_summary(self, run_id: str, token: str | bool | None = None) -> str | None:
        """The first paragraph of the model card (its summary), read from the Hub when the model has a repo;
        None without a repo, a card or access. Cached per model."""
        if run_id not in self.meta.index or not bool(self._linked.loc[run_id]):
            return None
        if run_id not in self._cards:
            from huggingface_hub import hf_hub_download
            from huggingface_hub.errors import HfHubHTTPError

            try:
                path = hf_hub_download(str(self._model_ids.loc[run_id]), "README.md", endpoint=self.endpoint,
                                       token=token, etag_timeout=5)
                self._cards[run_id] = _summary(Path(path).read_text(encoding="utf-8", errors="replace"))
            except (HfHubHTTPError, OSError, ValueError):
                self._cards[run_id] = None
        return self._cards[run_id]

    def _analysis_notes(self, run_id: str) -> list[str]:
        notes = []
        diff = self.analysis.get("layerdiff")
        if diff is not None and run_id in set(diff["run_id"]):
            mine = diff[diff["run_id"] == run_id]
            mid = mine[(mine["depth"] >= MID_DEPTH[0]) & (mine["depth"] <= MID_DEPTH[1])]["rel_change"].mean()
            notes.append(f"- Mid-layer weight change ‖ΔW‖/‖W‖ (mean over layers at depth 1/3–2/3): {mid:.4g}")
        ppl = self.analysis.get("perplexity")
        if ppl is not None:
            meta = self.meta.loc[run_id]
            hit = ppl[(ppl["base_model"].map(_as_text) == _as_text(meta["base_model"]))
                      & (ppl["dataset"].map(_as_text) == _as_text(meta["dataset"]))]
            if len(hit):
                notes.append(f"- Training-data perplexity under the base model: {float(hit['perplexity'].iloc[0]):.4g}")
        return notes

    def layer_profile(self, run_id: str):
        """The model's relative weight change by normalised depth (a figure), or None without a layer diff."""
        diff = self.analysis.get("layerdiff")
        if diff is None or run_id not in set(diff["run_id"]):
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        mine = diff[diff["run_id"] == run_id].groupby("depth")["rel_change"].mean().sort_index()
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.plot(mine.index, mine.to_numpy(), marker="o", markersize=3)
        ax.axvspan(*MID_DEPTH, color="grey", alpha=0.15, label="mid layers")
        ax.set_xlabel("normalised depth (0 = first layer, 1 = last)")
        ax.set_ylabel("‖ΔW‖ / ‖W‖")
        ax.set_title(f"weight change by depth: {run_id[:60]}", fontsize=9)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig

    # -- compare, plots, export ---------------------------------------------------------------------------------

    def compare(self, run_ids: list[str], value: str = "score") -> pd.DataFrame:
        """Benchmarks × selected models, with each model's difference from the first one."""
        ids = [r for r in run_ids if r in self.meta.index]
        if not ids:
            return pd.DataFrame(columns=["benchmark"])
        table = (self.gains if value == "gain" else self.scores).loc[ids].T
        table = table.dropna(how="all")
        out = pd.DataFrame({"benchmark": table.index})
        for r in ids:
            out[r] = table[r].round(2).to_numpy()
        for r in ids[1:]:
            out[f"Δ {r}"] = (table[r] - table[ids[0]]).round(2).to_numpy()
        return out

    def synergy(self, base_model: str, scale: str | None = None) -> pd.DataFrame:
        """Mean gain per training dataset × benchmark for one base model (the study's synergy matrix), over the
        benchmarks of one metric scale if `scale` is given."""
        rows = self.long[(self.long["base_model"].map(_as_text) == base_model) & self.long["gain"].notna()
                         & (self.long["dataset"] != "pretrain")]
        if scale is not None:
            rows = rows[rows["scale"] == scale]
        return rows.pivot_table(index="dataset", columns="column", values="gain", aggfunc="mean") \
            .reindex(columns=[c for c in self.columns if c in set(rows["column"])])

    def heatmap(self, base_model: str):
        """The synergy matrix as a figure: one panel and colour bar per metric scale (points apart from
        MT-Bench's 1–10 grades), diverging colours centred on 0."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        panels = [(scale, m) for scale in ("percent", "1-10", "raw")
                  if not (m := self.synergy(base_model, scale)).empty]
        if not panels:
            fig, ax = plt.subplots(figsize=(6, 3))
            ax.text(0.5, 0.5, "no gains for this base model", ha="center", va="center")
            ax.axis("off")
            return fig
        widths = [max(2.0, 0.5 * len(m.columns)) for _, m in panels]
        height = max(3, 0.4 * max(len(m) for _, m in panels) + 1.5)
        fig, axes = plt.subplots(1, len(panels), figsize=(sum(widths) + 3 * len(panels), height), squeeze=False,
                                 gridspec_kw={"width_ratios": widths})
        for ax, (scale, matrix) in zip(axes[0], panels):
            bound = float(matrix.abs().max().max()) or 1.0
            image = ax.imshow(matrix.to_numpy(dtype=float), cmap="RdBu", vmin=-bound, vmax=bound, aspect="auto")
            ax.set_xticks(range(len(matrix.columns)), list(matrix.columns), rotation=60, ha="right", fontsize=8)
            ax.set_yticks(range(len(matrix.index)), list(matrix.index), fontsize=8)
            unit = {"percent": "points", "1-10": "grade points, 1–10 scale"}.get(scale, scale)
            ax.set_title(f"mean gain over {base_model} ({unit})", fontsize=10)
            fig.colorbar(image, ax=ax, shrink=0.8)
        runs = self.long[(self.long["base_model"].map(_as_text) == base_model) & self.long["gain"].notna()
                         & (self.long["dataset"] != "pretrain")]
        pooled = ", ".join(f"{AXIS_TITLES[a]} {{{', '.join(_natural({_as_text(v) for v in runs[a]}))}}}"
                           for a in ("data_size", "tuning", "epochs", "lr_schedule"))
        fig.suptitle(f"each cell: the mean gain of {runs['run_id'].nunique()} runs, pooled over {pooled}",
                     fontsize=8, wrap=True)
        fig.tight_layout()
        return fig

    def plot_defaults(self) -> tuple[str | None, str | None]:
        """The base model and benchmark column the Plots tab opens on: the base with the most fine-tuned runs
        that have gains, and its benchmark with the most scores at several epochs (so the plots show data)."""
        rows = self.long[self.long["gain"].notna() & (self.long["dataset"].map(_as_text) != "pretrain")]
        if rows.empty:
            rows = self.long
        if rows.empty:
            return None, None
        base = rows.groupby(rows["base_model"].map(_as_text))["run_id"].nunique().idxmax()
        return base, self.curve_column(base)

    def curve_column(self, base_model: str) -> str | None:
        """The benchmark column with the most scores of `base_model`'s runs at two or more epochs."""
        rows = self._base_rows(base_model)
        if rows.empty:
            return self.columns[0] if self.columns else None
        spread = rows.groupby("column")["epochs"].nunique()
        counts = rows.groupby("column")["score"].count().where(spread >= 2, 0)
        return str(counts.idxmax())

    def _base_rows(self, base_model: str) -> pd.DataFrame:
        return self.long[(self.long["base_model"].map(_as_text) == base_model) & self.long["epochs"].notna()
                         & self.long["score"].notna() & (self.long["dataset"].map(_as_text) != "pretrain")]

    def curve_condition(self, base_model: str, column: str) -> tuple[str | None, str | None]:
        """The (data size, schedule) with the most epoch points for a base and column: the curves' default."""
        rows = self._base_rows(base_model)
        rows = rows[rows["column"] == column]
        if rows.empty:
            return None, None
        keys = rows.assign(size=rows["data_size"].map(_as_text), schedule=rows["lr_schedule"].map(_as_text))
        best = keys.groupby(["size", "schedule"]).size().idxmax()
        return best[0], best[1]

    def curve_choices(self, base_model: str, column: str) -> tuple[list[str], list[str]]:
        rows = self._base_rows(base_model)
        rows = rows[rows["column"] == column]
        return _natural({_as_text(v) for v in rows["data_size"]}), _natural({_as_text(v) for v in rows["lr_schedule"]})

    def epoch_curves(self, base_model: str, column: str, data_size: str | None = None, schedule: str | None = None):
        """Score against epochs for one base model, benchmark, data size and schedule: one panel per tuning (full,
        LoRA), one line per training dataset with its own colour and marker, the legend outside the data. The
        title says what each point averages (runs that differ only in what the condition leaves free)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        if data_size is None or schedule is None:
            default_size, default_schedule = self.curve_condition(base_model, column)
            data_size, schedule = data_size or default_size, schedule or default_schedule
        rows = self._base_rows(base_model)
        rows = rows[(rows["column"] == column) & (rows["data_size"].map(_as_text) == (data_size or ""))
                    & (rows["lr_schedule"].map(_as_text) == (schedule or ""))]
        if rows.empty:
            fig, ax = plt.subplots(figsize=(7, 2.5))
            ax.text(0.5, 0.5, f"no runs of {base_model} with {column} at data size {data_size}, schedule {schedule}",
                    ha="center", va="center", fontsize=9)
            ax.axis("off")
            return fig
        datasets = sorted(rows["dataset"].map(_as_text).unique())
        tunings = sorted(rows["tuning"].map(_as_text).unique())
        colours = plt.get_cmap("tab20" if len(datasets) > 10 else "tab10")
        markers = "osD^v<>pPX*h"
        # constrained layout makes room in the figure for the legend beside the panels (as `gr.Plot` saves it, with
        # no `bbox_inches="tight"`, a legend outside the figure is cut off)
        fig, axes = plt.subplots(1, len(tunings), figsize=(4.5 * len(tunings) + 2.5, 4), squeeze=False, sharey=True,
                                 layout="constrained")
        per_point = rows.groupby([rows["dataset"].map(_as_text), rows["tuning"].map(_as_text), "epochs"])["run_id"].nunique()
        for ax, tuning in zip(axes[0], tunings):
            mine = rows[rows["tuning"].map(_as_text) == tuning]
            for i, dataset in enumerate(datasets):
                part = mine[mine["dataset"].map(_as_text) == dataset].groupby("epochs")["score"].mean().sort_index()
                if part.empty:
                    continue
                ax.plot(part.index.astype(int), part.to_numpy(), marker=markers[i % len(markers)],
                        color=colours(i % colours.N), label=dataset, linewidth=1.2, markersize=5)
            ax.set_title(f"{tuning}", fontsize=10)
            ax.set_xlabel("epochs")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel(f"{column} ({self.column_scale.get(column, 'score')})")
        handles, labels = [], []
        for ax in axes[0]:
            for h, label in zip(*ax.get_legend_handles_labels()):
                if label not in labels:
                    handles.append(h)
                    labels.append(label)
        fig.legend(handles, labels, loc="outside right center", fontsize=8, title="training data")
        most = int(per_point.max())
        each = "one run per point" if most == 1 else f"each point: the mean of up to {most} runs"
        fig.suptitle(f"{column} vs epochs — base {base_model}, data size {data_size}, schedule {schedule}; {each}",
                     fontsize=9)
        return fig

    def checks_note(self) -> str:
        """The data checks' findings as a Markdown warning (empty when there are none): every gain they left out of
        the analyses is still shown in the table, so the reader is told which ones not to trust."""
        if not self.checks:
            return ""
        lines = ["**Data checks** (`hubkit analyze`): some gains in this table rest on a doubtful base row; the "
                 "analyses leave them out."]
        lines += [f"- {_md(c['check'].replace('-', ' '))}: {_md(c['subject'])}: {_md(c['detail'])}; {_md(c['excluded'])}"
                  for c in self.checks]
        return "\n".join(lines)

    def _check_notes(self, run_id: str) -> list[str]:
        base = _as_text(self.meta.loc[run_id, "base_model"]) if "base_model" in self.meta.columns else ""
        hits = [c for c in self.checks if base and (base in c["subject"].split(" and ") or c["subject"] == run_id)]
        return [f"**Data check:** {_md(c['detail'])}; {_md(c['excluded'])}"
                + (f" (columns: {_md(', '.join(c['columns']))})" if c["columns"] else "") for c in hits]

    def analysis_titles(self) -> list[str]:
        return [a["title"] for a in self.analyses]

    def analysis_view(self, title: str | None) -> tuple[list[tuple[str, str]], str]:
        """One pushed analysis as the Plots tab shows it: its figures (path, caption) and a Markdown note that
        states its condition, n, what was left out and what it found."""
        entry = next((a for a in self.analyses if a["title"] == title), None)
        if entry is None:
            return [], ""
        def text(value: Any) -> str:  # one line of plain text: the Markdown component sanitises the rest
            return str(value).replace("\n", " ").replace("|", "\\|")

        lines = [f"**{text(entry['title'])}** ({text(entry.get('part', ''))})", "",
                 f"- *Condition:* {text(entry.get('condition', 'not stated'))}; *n* = {text(entry.get('n', '?'))} "
                 f"{text(entry.get('unit', ''))}"]
        if entry.get("compared"):
            lines.append(f"- *Compared:* {text(entry['compared'])}, pairing runs equal on every other axis")
        elif entry.get("pooled"):
            lines.append(f"- *Pooled over:* {text(', '.join(map(str, entry['pooled'])))}")
        lines += [f"- *Left out:* {text(d)}" for d in entry.get("dropped") or []]
        if entry.get("method"):
            lines.append(f"- *Method:* {text(entry['method'])}")
        if entry.get("finding"):
            lines += ["", text(entry["finding"])]
        figures = [(p, f"{text(entry['title'])}: {Path(p).name}") for p in entry.get("figure_paths") or []]
        return figures, "\n".join(lines)

    def gain_vs_perplexity(self, column: str) -> pd.DataFrame:
        """Per (base model, training data): the mean gain on `column` and the data's perplexity under the base."""
        ppl = self.analysis.get("perplexity")
        if ppl is None:
            return pd.DataFrame(columns=["base_model", "dataset", "perplexity", "gain"])
        rows = self.long[(self.long["column"] == column) & self.long["gain"].notna()]
        gains = rows.groupby(["base_model", "dataset"], as_index=False)["gain"].mean()
        return ppl[["base_model", "dataset", "perplexity"]].merge(gains, on=["base_model", "dataset"])

    def gain_vs_layer_change(self, column: str) -> pd.DataFrame:
        """Per model: its gain on `column` and its mean relative weight change in the middle layers."""
        diff = self.analysis.get("layerdiff")
        if diff is None:
            return pd.DataFrame(columns=["run_id", "rel_change", "gain"])
        mid = diff[(diff["depth"] >= MID_DEPTH[0]) & (diff["depth"] <= MID_DEPTH[1])]
        change = mid.groupby("run_id", as_index=False)["rel_change"].mean()
        gains = self.long[(self.long["column"] == column) & self.long["gain"].notna()][["run_id", "gain"]]
        return change.merge(gains.drop_duplicates("run_id"), on="run_id")

    def scatter(self, table: pd.DataFrame, x: str, title: str):
        """A gain-vs-`x` scatter with its Pearson correlation."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        if len(table) < 3:  # no correlation to show: say so rather than draw an empty plot with r = nan
            ax.text(0.5, 0.5, f"{title}: {len(table)} point(s), too few for a correlation", ha="center",
                    va="center", fontsize=9, wrap=True)
            ax.axis("off")
            return fig
        ax.scatter(table[x], table["gain"], s=14, alpha=0.7)
        r = table[x].corr(table["gain"])
        ax.set_xlabel(x)
        ax.set_ylabel("gain (points)")
        ax.set_title(f"{title} (n={len(table)}, Pearson r={r:.2f}; one point per "
                     f"{'base model × training data, its gain the mean over their runs' if x == 'perplexity' else 'model'})",
                     fontsize=9, wrap=True)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig

    def model_map(self, colour: str = "family"):
        """The models' log-likelihood map (`hubkit analyze --loglik`), coloured by `colour` (a key of
        `MAP_COLOURS`); None when the results dataset holds no map."""
        coords = self.analysis.get("loglik_map")
        if coords is None or coords.empty:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        colour = colour if colour in MAP_COLOURS and colour in coords.columns else "family"
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        markers = "osD^vP*Xh<>"
        for k, (value, part) in enumerate(coords.groupby(coords[colour].astype(str), sort=True)):
            ax.scatter(part["x"], part["y"], s=36, marker=markers[k % len(markers)], label=str(value)[-32:])
        method = str(coords["method"].iloc[0]).upper().replace("TSNE", "t-SNE") if "method" in coords else "?"
        ax.set_title(f"{len(coords)} models by their log-likelihoods on the probe set ({method}, double-centred); "
                     f"colour: {MAP_COLOURS[colour]}", fontsize=9, wrap=True)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        fig.tight_layout()
        return fig

    def export(self, table: pd.DataFrame) -> str:
        """The table as a CSV file (what the export button serves); returns its path."""
        folder = Path(tempfile.mkdtemp(prefix="leaderboard-"))
        path = folder / "leaderboard.csv"
        table.to_csv(path, index=False)
        return str(path)


@dataclass
class Ranked:
    """Every matching model: `ids` in table order, and `order`, their positions in the (unsorted) numbers,
    averages and counts the table shows."""

    ids: pd.Index
    order: np.ndarray
    columns: list[str]
    numbers: pd.DataFrame
    average: pd.Series
    counted: pd.Series
    rank: pd.Series  # by average among the complete models (incomplete ones have none)
    required: int = 0  # the view's benchmarks: what a complete model has


@dataclass
class Page:
    """One page of the table: its rows, the run ids behind them, and where it stands among all matches."""

    frame: pd.DataFrame
    total: int
    number: int
    pages: int
    run_ids: list[str]
    required: int = 0  # the view's benchmarks, which a complete model has
    complete: int = 0  # how many of the matching models are complete (ranked)


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
    import ctypes
    import gc

    gc.collect(1)  # the build's own cycles are young; a full collection walks every module loaded (~30 ms)
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
