"""Results from elsewhere as rows of the results schema: the study's released CSV and lm-evaluation-harness files.

Every benchmark, metric, scale and unit comes from the benchmark registry (`hubkit.benchmarks`); nothing is
assumed. An importer returns a `ResultsTable` whose `notes` say what it kept and `left_out` what it did not and
why; a value it cannot place (out of range, an ambiguous unit, a shot count it cannot tell) refuses the file with
one line naming the file and the field.

- **The study's CSV** (`evaluation_result.csv`): a column is `<registry study name>-<n>shot` or a registry study
  name alone. The unit of each column is decided from its values — any value above 1: percent; every value in
  [0, 1]: the registry's unit for that column, refused as ambiguous where the registry says percent — never
  assumed. The study reports one metric per benchmark: its rows are its headline scores (TruthfulQA's is an
  OpenCompass score of its own, in its own column, never in one with lm-eval's `mc2`).
- **lm-eval** (0.3 and 0.4 layouts, nested groups, the Open LLM Leaderboard v2's `leaderboard` group): every task
  and group at every level is a row per metric, with its own shots and sample counts (a group's are its
  members'); a group whose members run at different shot counts has no single shot count and is left out (its
  members are kept). A task is a registry benchmark where the registry names it, else its own name. The
  headline metric is the registry's (for an undeclared task, the first metric the file lists). lm-eval's
  fractions become percent; a fraction outside [0, 1] refuses the file.
- **hubkit's own results files** (what `hubkit eval` writes, lm-eval 0.4 layout plus a `hubkit` section) re-import
  with their model id, run id, axes, revisions, base scores on the same samples, and backend (in `harness_version`).

Example:
    >>> table = import_lm_eval(["results_2026-10-02T16-50-22.json"])
    >>> table.left_out
    []
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import benchmarks
from .errors import HubkitError
from .results import ResultRow, ResultsTable, add_gains, imported_run_id, rows_frame, score_column
from .utils import first_line, slug

if TYPE_CHECKING:
    import pandas as pd

# The study's base-model families (the CSV's `model_name`) and their public Hub ids.
STUDY_BASE_MODELS = {
    "OLMo-7B-hf": "allenai/OLMo-7B-hf",
    "LLM-jp-3-7B": "llm-jp/llm-jp-3-7.2b",
    "Qwen2.5-7B": "Qwen/Qwen2.5-7B",
    "Meta-Llama-3-8B": "meta-llama/Meta-Llama-3-8B",
    "Sarashina2-7B": "sbintuitions/sarashina2-7b",
    "Llama-3-Swallow-8B-v0.1": "tokyotech-llm/Llama-3-Swallow-8B-v0.1",
    "Yi-1.5-9B": "01-ai/Yi-1.5-9B",
    "llama-3-chinese-8b": "hfl/llama-3-chinese-8b",
    "Chinese-Mistral-7B-v0.1": "itpossible/Chinese-Mistral-7B-v0.1",
    "Mistral-7B-v0.1": "mistralai/Mistral-7B-v0.1",
    "Gemma2-9B": "google/gemma-2-9b",
}

# The language each study base model was pretrained for (the paper's grouping; Qwen2.5 and Yi-1.5 are
# Chinese-developed multilingual models), for the cross-lingual transfer analysis (MMLU vs JMMLU vs CMMLU).
STUDY_BASE_LANGUAGES = {
    "allenai/OLMo-7B-hf": "English", "meta-llama/Meta-Llama-3-8B": "English", "mistralai/Mistral-7B-v0.1": "English",
    "google/gemma-2-9b": "English", "llm-jp/llm-jp-3-7.2b": "Japanese", "sbintuitions/sarashina2-7b": "Japanese",
    "tokyotech-llm/Llama-3-Swallow-8B-v0.1": "Japanese", "Qwen/Qwen2.5-7B": "Chinese", "01-ai/Yi-1.5-9B": "Chinese",
    "hfl/llama-3-chinese-8b": "Chinese", "itpossible/Chinese-Mistral-7B-v0.1": "Chinese",
}

# Base rows the study's CSV copied from another base model (study.md's known quirks): the data checks then leave out
# only the copy's gains (`datachecks`).
STUDY_COPIED_BASES = {"itpossible/Chinese-Mistral-7B-v0.1": "mistralai/Mistral-7B-v0.1"}

STUDY_AXES = ["model_name", "data_name", "lora", "epoch", "data_size", "lr_strategy"]
_SHOT_COLUMN = re.compile(r"^(?P<name>.+?)[-_](?P<shot>\d+)shot$")


def csv_column_benchmark(column: str) -> tuple[benchmarks.Benchmark, int | None] | None:
    """`gsm8k-4shot` → (GSM8K's record, 4); `mtbench-writing` → (MT-Bench writing's, None); other columns → None."""
    m = _SHOT_COLUMN.match(column)
    if m:
        known = benchmarks.by_study_column(m.group("name"))
        if known is not None:
            return known, int(m.group("shot"))
    known = benchmarks.by_study_column(column)
    return (known, None) if known is not None else None


def study_unit(column: str, values: Any, declared: str, file: str) -> float:
    """The factor that puts a study-CSV column on hubkit's scale, decided from its values and the registry.

    Any value above 1 means the column is already in percent (whatever the registry says the study wrote); every
    value in [0, 1] is a fraction where the registry says the study wrote a fraction, and ambiguous where it says
    percent (a percent column whose every value is at most 1 point cannot be told from a fraction): refused.

    Raises:
        HubkitError: a negative or non-finite value, or an ambiguous column.
    """
    import numpy as np

    values = np.asarray(values, dtype="float64")
    if not len(values) or declared == "same":
        return 1.0
    if (values < 0).any():
        raise HubkitError(f"{file}: column {column} holds {values.min():g}: a negative score")
    top = float(values.max())
    if top > 1:
        return 1.0
    if declared == "fraction":
        return 100.0
    if top == 0:
        return 1.0
    raise HubkitError(f"{file}: column {column}: every value is between 0 and 1 (at most {top:g}), which reads as a "
                      "fraction, but the benchmark registry says the study writes it in percent: cannot tell which; "
                      "rescale the column and import again")


def import_massive_sft_csv(path: str | Path) -> ResultsTable:
    """The study's released results (`evaluation_result.csv`) as results rows with gains.

    Quirks handled: the unnamed index column; empty and `None` cells (no score: no row); `lora` and
    `lr_strategy` empty on the `pretrain` rows, which are the base models; Chinese-Mistral's `pretrain`
    row duplicating Mistral's (kept, noted); TruthfulQA given as a fraction (stored in percent: the column's
    unit is decided from its values, see `study_unit`). None of these models has a repo (`has_repo` false). The
    study scored whole benchmarks with OpenCompass (`subset` false; the CSV gives no sample counts).

    Raises:
        HubkitError: the file is missing, not a CSV, lacks the study's axis columns, or holds a value that is not a
            number, out of its range, or in an ambiguous unit.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise HubkitError(f"results file not found: {path}")
    try:
        raw = pd.read_csv(path, na_values=["None", "none", ""], keep_default_na=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise HubkitError(f"{path.name}: not a readable CSV: {first_line(e)}") from None
    missing = [c for c in STUDY_AXES if c not in raw.columns]
    if missing:
        raise HubkitError(f"{path.name}: not the study's results CSV (missing column {missing[0]!r})")
    columns: dict[str, tuple[benchmarks.Benchmark, int | None, float, str]] = {}  # bench, shots, unit factor, metric
    left_out = []
    for col in raw.columns:
        if col in STUDY_AXES or str(col).startswith("Unnamed"):
            continue
        found = csv_column_benchmark(str(col))
        if found is None:
            left_out.append(f"column {col}: no benchmark of the registry is known by this name")
            continue
        values = pd.to_numeric(raw[col], errors="coerce")
        bad = values.isna() & raw[col].notna()
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise HubkitError(f"{path.name} row {i + 2}: column {col} is {raw[col].iloc[i]!r}, not a number")
        raw[col] = values
        bench, shots = found
        assert bench.study_csv is not None  # csv_column_benchmark finds only benchmarks with a study column
        factor = study_unit(str(col), values.dropna().to_numpy(), bench.study_csv.unit, path.name)
        columns[str(col)] = (bench, shots, factor, bench.study_csv.metric)
    rows: list[ResultRow] = []
    rescaled = set()
    for i, rec in enumerate(raw.to_dict("records")):
        family, dataset = rec["model_name"], rec["data_name"]
        if not isinstance(family, str) or not isinstance(dataset, str):
            raise HubkitError(f"{path.name} row {i + 2}: empty model_name or data_name")
        base = dataset == "pretrain"
        lora = str(rec["lora"]).strip().lower()
        if not base and lora not in ("true", "false"):
            raise HubkitError(f"{path.name} row {i + 2}: lora is {rec['lora']!r}, expected true or false")
        tuning = "base" if base else ("lora" if lora == "true" else "full")
        size = None if base else _whole(rec["data_size"], f"{path.name} row {i + 2}: data_size")
        epochs = None if base else _whole(rec["epoch"], f"{path.name} row {i + 2}: epoch")
        schedule = None if base or pd.isna(rec["lr_strategy"]) else str(rec["lr_strategy"])
        axes: dict[str, Any] = {"base_model": STUDY_BASE_MODELS.get(family, family), "dataset": dataset, "data_size": size,
                "tuning": tuning, "epochs": epochs, "lr_schedule": schedule}
        rid = imported_run_id(family, dataset, size, tuning, epochs, schedule)
        for col, (bench, shot, factor, metric_name) in columns.items():
            value = rec[col]
            if pd.isna(value):
                continue
            metric = bench.metric(metric_name)
            if factor != 1.0:
                rescaled.add(f"{bench.title} ({col})")
            score = metric.check(float(value) * factor, f"{path.name} row {i + 2} column {col}")
            rows.append(ResultRow(
                model_id="", has_repo=False, run_id=rid, **axes, benchmark=bench.id, n_shot=shot,
                metric=metric.name, headline=True, scale=metric.scale,
                higher_is_better=metric.higher_is_better, score=score, subset=False, harness="opencompass",
                source="massive-sft-csv", source_file=path.name))
    frame = add_gains(rows_frame(rows))
    from .datachecks import check_results

    notes = ["no model in the study has a Hub repo: rows are marked has_repo=false",
             *(f"data check: {issue.text()}" for issue in check_results(frame, STUDY_COPIED_BASES)[0]),
             "MT-Bench scores are grades from 1 to 10 (scale `1-10`), never averaged with percentages"]
    notes += [f"{name} is a fraction in this file (every value in [0, 1]): stored in percent" for name in sorted(rescaled)]
    return ResultsTable(frame, "massive-sft-csv", notes, left_out)


def _whole(value: Any, where: str) -> int | None:
    """A whole number from a CSV cell (empty: None), or a one-line error naming the cell."""
    import pandas as pd

    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise HubkitError(f"{where} is {value!r}, not a whole number") from None
    if not number.is_integer():
        raise HubkitError(f"{where} is {value!r}, not a whole number")
    return int(number)


# -- lm-evaluation-harness files -------------------------------------------------------------------------

_NOT_METRICS = ("alias", "name", "sample_len", "sample_count", "samples", "task", "group")


def _model_args(value: Any) -> dict[str, Any]:
    """`model_args` as a mapping: 0.4 writes a dict (or a string), 0.3 a string `k=v,k=v`."""
    if isinstance(value, str):
        return dict(kv.split("=", 1) for kv in value.split(",") if "=" in kv)
    return value if isinstance(value, dict) else {}


def lm_eval_layout(data: Any, name: str) -> str:
    """`0.4` or `0.3`: which lm-evaluation-harness results layout `data` has.

    0.4 files carry `n-shot`, `higher_is_better` and `configs`; 0.3 files carry `config.num_fewshot` and no
    per-task shot counts.

    Raises:
        HubkitError: neither layout.
    """
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise HubkitError(f"{name}: not lm-eval results (no `results` mapping)")
    if isinstance(data.get("n-shot"), dict) or isinstance(data.get("higher_is_better"), dict):
        return "0.4"
    if isinstance(data.get("config"), dict) and "num_fewshot" in data["config"]:
        return "0.3"
    raise HubkitError(f"{name}: cannot tell the lm-eval layout: neither `n-shot` (0.4) nor `config.num_fewshot` (0.3)")


@dataclass
class _File:
    """One lm-eval results mapping, read: its tasks and groups, and how to find each one's shots and counts."""

    data: dict[str, Any]
    name: str
    layout: str
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, data: dict[str, Any], name: str) -> _File:
        layout = lm_eval_layout(data, name)
        entries = {k: v for k, v in (data.get("groups") or {}).items() if isinstance(v, dict)}
        entries.update({k: v for k, v in data["results"].items() if isinstance(v, dict)})
        members = {g: [t for t in (m or []) if t != g] for g, m in (data.get("group_subtasks") or {}).items()
                   if isinstance(m, list)}
        return cls(data, name, layout, entries, {g: m for g, m in members.items() if m})

    def leaves(self, task: str, seen: frozenset[str] = frozenset()) -> list[str]:
        if task not in self.members:
            return [task]
        if task in seen:
            raise HubkitError(f"{self.name}: group_subtasks.{task} contains itself")
        return [leaf for m in self.members[task] for leaf in self.leaves(m, seen | {task})]

    def shots(self, task: str) -> int | None:
        """The task's shot count; a group's is its members' single one, or None when they differ (mixed).

        Raises:
            HubkitError: a task without a readable shot count.
        """
        if self.layout == "0.3":
            return _int(self.data["config"].get("num_fewshot"), f"{self.name}: config.num_fewshot")
        table = self.data.get("n-shot") or {}
        if task in self.members:
            counts = {self.shots(leaf) for leaf in self.leaves(task)}
            return counts.pop() if len(counts) == 1 else None
        if task not in table:
            raise HubkitError(f"{self.name}: n-shot.{task} is missing: cannot tell its shot count")
        return _int(table[task], f"{self.name}: n-shot.{task}")

    def counts(self, task: str) -> tuple[int | None, int | None, bool | None]:
        """(samples scored, samples in the benchmark, subset) of a task, or of a group summed over its members."""
        table = self.data.get("n-samples") or {}
        effective = original = 0
        for leaf in self.leaves(task):
            pair = table.get(leaf)
            if not (isinstance(pair, dict) and "effective" in pair and "original" in pair):
                return _limit_counts(self.data, self.name)
            e = _int(pair["effective"], f"{self.name}: n-samples.{leaf}.effective")
            o = _int(pair["original"], f"{self.name}: n-samples.{leaf}.original")
            effective, original = effective + e, original + o
        return effective, original, effective < original


def _int(value: Any, where: str) -> int:
    try:
        if isinstance(value, bool) or value is None or float(value) != int(float(value)):
            raise ValueError
        return int(float(value))
    except (TypeError, ValueError):
        raise HubkitError(f"{where} is {value!r}, not a whole number") from None


def _limit_counts(data: dict[str, Any], file: str) -> tuple[int | None, int | None, bool | None]:
    """From `config.limit` alone: no limit → the whole benchmark (counts unknown); a number → a subset."""
    limit = (data.get("config") or {}).get("limit")
    if limit in (None, "", 0):
        return None, None, False
    try:
        limit = float(limit)
    except (TypeError, ValueError):
        raise HubkitError(f"{file}: config.limit is {limit!r}, not a number") from None
    if limit < 1:
        return None, None, True  # a fraction of the benchmark
    return int(limit), None, True  # at most `limit` samples of a benchmark of unknown size: a subset


def _metric_name(bench: benchmarks.Benchmark | None, task: str, key: str) -> str:
    """hubkit's name of an lm-eval metric key (`acc,none` → `acc`, `exact_match,flexible-extract` →
    `exact_match:flexible-extract`), mapped through the record's `lm_eval_metrics` where it names the key."""
    if bench is not None:
        for name in (f"{task}/{key}", key):
            if name in bench.lm_eval_metrics:
                return bench.lm_eval_metrics[name]
    base, _, flt = key.partition(",")
    return base if flt in ("", "none") else f"{base}:{flt}"


def _benchmark_of(task: str) -> tuple[str, benchmarks.Benchmark | None]:
    known = benchmarks.by_lm_eval_name(task)
    return (known.id, known) if known is not None else (slug(task).replace("-", "_"), None)


def lm_eval_rows(data: dict[str, Any], model_id: str, run_id: str, axes: dict[str, Any],
                 evaluated_at: str | None = None, source: str = "lm-eval", file: str = "results",
                 left_out: list[str] | None = None) -> list[ResultRow]:
    """Results-schema rows of one lm-eval results mapping, 0.3 or 0.4 layout: a row per task or group and metric.

    hubkit's own files add base scores on the same samples, the base's revision and the judge of judged scores.
    What is not imported (a group with mixed shot counts, a metric hubkit cannot interpret) is appended to
    `left_out` with the reason.

    Raises:
        HubkitError: a layout, shot count, direction or value that cannot be interpreted (one line naming the file
            and field); nothing of the file is imported then.
    """
    f = _File.read(data, file)
    hub = data.get("hubkit") or {}
    config = data.get("config") or {}
    args = _model_args(config.get("model_args"))
    revision = hub.get("model_revision") or config.get("model_revision") or args.get("revision") or None
    if revision in ("main", ""):
        revision = config.get("model_sha") or revision
    when = hub.get("evaluated_at") or evaluated_at
    harness = "hubkit" if hub else "lm-eval"
    version = data.get("hubkit_version") if hub else (data.get("lm_eval_version") or ("0.3" if f.layout == "0.3" else None))
    if version is not None and isinstance((hub or {}).get("backend"), dict):  # what computed the scores
        version = f"{version} ({hub['backend'].get('name')}: {str(hub['backend'].get('version'))[:80]})"
    base_results = hub.get("base_results") or {}
    notes = left_out if left_out is not None else []
    rows = []
    for task, metrics in f.entries.items():
        bench_id, bench = _benchmark_of(task)
        meta = ((data.get("configs") or {}).get(task) or {}).get("metadata") or {}
        judge = meta.get("judge") if isinstance(meta, dict) and isinstance(meta.get("judge"), str) else None
        shots = None if judge else f.shots(task)
        if shots is None and not judge:
            counts = sorted({f.shots(leaf) for leaf in f.leaves(task)}, key=lambda n: -1 if n is None else n)
            notes.append(f"{file}: group {task}: its members run at {' and '.join(map(str, counts))} shots; an "
                         "aggregate over mixed shot counts has no single shot count (its members are kept)")
            continue
        n_samples, n_total, subset = f.counts(task)
        higher = (data.get("higher_is_better") or {}).get(task) or {}
        keys = [k for k in metrics if k.split(",")[0] not in _NOT_METRICS and not k.split(",")[0].endswith("_stderr")]
        first = next((m for m in higher if any(k.split(",")[0] == m for k in keys)), keys[0].split(",")[0] if keys else "")
        for key in keys:
            value = metrics[key]
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                notes.append(f"{file}: results.{task}.{key} is {value!r}, not a number")
                continue
            name = _metric_name(bench, task, key)
            spec = benchmarks.metric_spec(bench_id, name)
            if spec is None:
                notes.append(f"{file}: results.{task}.{key}: hubkit cannot interpret the metric {name!r} (its "
                             "scale is unknown: add it to the task's benchmark record or the metric catalogue)")
                continue
            direction = higher.get(key.split(",")[0])
            if isinstance(direction, bool) and direction != spec.higher_is_better:
                raise HubkitError(f"{file}: higher_is_better.{task}.{key.split(',')[0]} is {str(direction).lower()}, "
                                  f"but hubkit keeps {name} {'higher' if spec.higher_is_better else 'lower'}-is-better")
            where = f"{file}: results.{task}.{key}"
            if spec.lm_eval_unit == "fraction":
                if not (0.0 <= float(value) <= 1.0):
                    raise HubkitError(f"{where} is {value:g}, outside [0, 1]: lm-eval writes {name} as a fraction")
                score = spec.check(100.0 * float(value), where)
            else:
                score = spec.check(float(value), where)
            head = name == bench.headline if bench is not None else key.split(",")[0] == first
            base = (base_results.get(task) or {}).get(key)
            if isinstance(base, (int, float)) and not isinstance(base, bool):
                base = 100.0 * float(base) if spec.lm_eval_unit == "fraction" else float(base)
            elif head and isinstance((hub.get("base_scores") or {}).get(task), (int, float)):
                base = float(hub["base_scores"][task])  # an older hubkit file: the headline's base score alone
            else:
                base = None
            rows.append(ResultRow(
                model_id=model_id, has_repo=bool(model_id), run_id=run_id, model_revision=revision,
                base_revision=hub.get("base_revision") if base is not None else None, **axes,
                benchmark=bench_id, n_shot=shots, metric=name, headline=head, scale=spec.scale,
                higher_is_better=spec.higher_is_better, score=score, base_score=base,
                gain=None if base is None else score - base, n_samples=n_samples, n_total=n_total, subset=subset,
                harness=harness, harness_version=None if version is None else str(version), judge=judge,
                source=source, source_file=None if source == "hubkit" else Path(file).name, evaluated_at=when))
    return rows


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def import_lm_eval(paths: list[str | Path], axes: dict[str, Any] | None = None) -> ResultsTable:
    """lm-evaluation-harness results files, in the 0.3 or the 0.4 layout, as results rows.

    What is kept: every metric of every task and group (the headline marked), with its scale and direction (a
    perplexity stays a lower-is-better raw number), the shot count, the sample counts, the model revision and the
    file's name. The model id is `model_args.pretrained` when it is a Hub id (a local path is never stored), or
    the id hubkit recorded in its own files. A model's revision is part of its run id, so checkpoints of one model
    stay apart.

    Raises:
        HubkitError: a file that is not lm-eval results JSON, that holds a field hubkit cannot interpret, or two
            files that score one model on the same thing; nothing is imported then.
    """
    rows: list[ResultRow] = []
    left_out: list[str] = []
    for p in paths:
        p = Path(p)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise HubkitError(f"{p.name}: not a readable JSON file: {first_line(e)}") from None
        lm_eval_layout(data, p.name)
        hub = data.get("hubkit") or {}
        config = data.get("config") or {}
        args = _model_args(config.get("model_args"))
        pretrained = str(hub.get("model_id") or args.get("pretrained") or data.get("model_name") or "")
        is_hub_id = bool(_HUB_ID.fullmatch(pretrained)) and not Path(pretrained).exists()
        run = slug(pretrained.replace("/", "-")) if is_hub_id else slug(p.parent.name or Path(pretrained).name)
        revision = config.get("model_revision") or args.get("revision")
        if revision and revision != "main" and not hub.get("run_id"):
            run = f"{run}-rev-{slug(str(revision))[:40]}"
        ax = {"base_model": None, "dataset": None, "data_size": None, "tuning": None, "epochs": None,
              "lr_schedule": None, **(hub.get("axes") or {}), **(axes or {})}
        when = _lm_eval_date(p.name)
        if when is None and isinstance(data.get("date"), (int, float)):
            when = dt.datetime.fromtimestamp(data["date"], dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows += lm_eval_rows(data, model_id=pretrained if is_hub_id else "", run_id=str(hub.get("run_id") or run),
                             axes=ax, evaluated_at=when, file=p.name, left_out=left_out,
                             source="hubkit" if hub.get("run_id") else "lm-eval")
    frame = rows_frame(rows)
    dupes = frame[frame.duplicated(["run_id", "benchmark", "metric", "n_shot"], keep=False)]
    if not dupes.empty:
        r = dupes.iloc[0]
        raise HubkitError(f"two of the files score {r['run_id']} on {score_column(r['benchmark'], r['n_shot'], r['metric'])} "
                          "at the same revision: import them separately, the later one last")
    heads = int(frame["headline"].sum()) if not frame.empty else 0
    notes = [f"kept {len(frame):,} score(s) of {frame['benchmark'].nunique() if heads else 0} task(s) and group(s) "
             f"({heads:,} headline, {len(frame) - heads:,} other metrics)"]
    return ResultsTable(add_gains(frame), "lm-eval", notes, left_out)


def import_key(format: str, files: list[Path], frame: pd.DataFrame | None = None) -> str:
    """The rows-file key of an import: importing the same results again replaces that file's rows.

    For lm-eval files the key is derived from what the rows identify (model, revision, task, metric, shots), so
    two imports of different checkpoints or shot counts never replace each other's file, whatever the files are
    called. Which of two rows of one score wins is decided by the order of the writes (`sequence`), not the key.
    """
    if format == "massive-sft-csv":
        return f"import-massive-sft-{Path(files[0]).stem}"
    if frame is None or frame.empty:
        return "import-lm-eval-" + "-".join(sorted({Path(p).parent.name for p in files}))[:80]
    ids = sorted({f"{r}|{b}|{m}|{n}" for r, b, m, n in zip(frame["run_id"], frame["benchmark"], frame["metric"], frame["n_shot"])})
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12]
    return f"import-lm-eval-{slug(str(frame['run_id'].iloc[0]))[:60]}-{digest}"


def _lm_eval_date(filename: str) -> str | None:
    m = re.search(r"(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})(\.\d+)?", filename)
    return f"{m.group(1)}T{m.group(2)}:{m.group(3)}:{m.group(4)}{m.group(5) or ''}Z" if m else None

