"""The one results schema: a row per model × benchmark, with the sweep axes and how the score was measured.

Evaluation writes these rows, publishing pushes them to a results dataset, `import-results` turns the
study's CSV and lm-eval JSON files into them, the leaderboard reads them and the analyses join on them.
`ResultRow` defines the columns; `COLUMNS` lists them in order.

| column | meaning |
| --- | --- |
| `model_id` | Hub repo id of the evaluated model; empty when the model has no repo (imported results) |
| `has_repo` | whether `model_id` names a repo |
| `run_id` | hubkit run id (for imports, the same scheme without the hash; a checkpoint's revision is part of it) |
| `model_revision` | the evaluated revision (a Hub commit, a branch or a checkpoint name), when known |
| `base_model`, `dataset`, `data_size`, `tuning`, `epochs`, `lr_schedule` | the sweep axes (`dataset` is `pretrain` and `tuning` is `base` for a base model) |
| `benchmark`, `n_shot`, `metric` | what was measured: a name from `BENCHMARKS`, the shot count, the metric |
| `scale`, `higher_is_better` | the score's unit — `percent` (0–100), `1-10` (an LLM judge's grade) or `raw` (perplexity, bits, likelihood differences: unbounded) — and its direction |
| `score`, `base_score`, `gain` | the score on that scale, its base model's on the same samples, and the difference |
| `n_samples`, `n_total` | how many samples were scored, and how many the benchmark has (empty when the source does not say) |
| `subset` | true when the score comes from part of the benchmark (`--limit`): never comparable with a full score |
| `harness`, `harness_version` | what computed the score: `hubkit`, `lm-eval`, `opencompass` (the study) |
| `judge` | for judged benchmarks (MT-Bench, AlpacaEval), the LLM judge that graded: model id (version; served by) |
| `source`, `source_file` | how the row arrived — `hubkit` (an evaluation), `massive-sft-csv` or `lm-eval` (imports) — and the imported file's name |
| `evaluated_at` | ISO time of the evaluation, when known |

Every benchmark has one scale, declared once in `BENCHMARKS` (and, for the leaderboard, `benchmarks.json`).
Imports are normalised to it: the study's CSV reports TruthfulQA as a fraction (0–0.18) beside percentages
everywhere else, so it is multiplied by 100. Averages over benchmarks use percent-scale scores only.

Example:
    >>> from hubkit.results import import_massive_sft_csv
    >>> table = import_massive_sft_csv("evaluation_result.csv")
    >>> table.models
    1027
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import HubkitError
from .utils import first_line, size_token, slug

if TYPE_CHECKING:
    import pandas as pd

AXES = ["base_model", "dataset", "data_size", "tuning", "epochs", "lr_schedule"]
SCALES = {"percent": "percent (0–100)", "1-10": "grade from 1 to 10 (LLM judge)",
          "raw": "unbounded (perplexity, bits, likelihood difference)"}


@dataclass
class ResultRow:
    """One score in the results schema (see the module docstring for each column)."""

    model_id: str = ""
    has_repo: bool = False
    run_id: str = ""
    model_revision: str | None = None
    base_model: str | None = None
    dataset: str | None = None
    data_size: int | None = None
    tuning: str | None = None
    epochs: int | None = None
    lr_schedule: str | None = None
    benchmark: str = ""
    n_shot: int | None = None
    metric: str = ""
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
_INT_COLUMNS = ("data_size", "epochs", "n_shot", "n_samples", "n_total")
_FLOAT_COLUMNS = ("score", "base_score", "gain")


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


@dataclass(frozen=True)
class Benchmark:
    """A benchmark as the leaderboard groups and labels it, with the one scale its scores are kept on and the
    shot count the study reports it at (`n_shot`: what `hubkit eval` runs by default and what the leaderboard's
    *study* shot setting averages; None for LLM-judged benchmarks, which have no shots)."""

    name: str
    group: str  # code | math | knowledge | chat | multilingual | long-context | instruction
    title: str
    metric: str
    scale: str = "percent"  # a key of SCALES
    higher_is_better: bool = True
    n_shot: int | None = 0


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in [
    Benchmark("humaneval", "code", "HumanEval", "pass@1"),
    Benchmark("mbpp", "code", "MBPP", "pass@1", n_shot=4),
    Benchmark("gsm8k", "math", "GSM8K", "exact_match", n_shot=4),
    Benchmark("math", "math", "MATH", "exact_match"),
    Benchmark("math500", "math", "MATH-500", "exact_match"),
    Benchmark("mmlu", "knowledge", "MMLU", "acc", n_shot=5),
    Benchmark("nq_open", "knowledge", "NQ-open", "exact_match", n_shot=1),
    Benchmark("boolq", "knowledge", "BoolQ", "acc", n_shot=5),
    Benchmark("hellaswag", "knowledge", "HellaSwag", "acc", n_shot=10),
    Benchmark("truthfulqa", "knowledge", "TruthfulQA", "mc"),
    Benchmark("mt_bench", "chat", "MT-Bench", "judge_score", "1-10", n_shot=None),
    *[Benchmark(f"mt_bench_{c}", "chat", f"MT-Bench {c}", "judge_score", "1-10", n_shot=None)
      for c in ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")],
    Benchmark("alpaca_eval_v2", "chat", "AlpacaEval 2", "win_rate", n_shot=None),
    Benchmark("alpaca_eval_v2_lc", "chat", "AlpacaEval 2 (LC)", "length_controlled_winrate", n_shot=None),
    Benchmark("jmmlu", "multilingual", "JMMLU (ja)", "acc"),
    Benchmark("cmmlu", "multilingual", "CMMLU (zh)", "acc"),
    Benchmark("longbench_v2", "long-context", "LongBench v2", "acc"),
    Benchmark("ifeval", "instruction", "IFEval", "prompt_level_strict_acc"),
]}

# Metrics hubkit can interpret in imported files: name → (scale, higher is better, fraction). A fraction
# (0–1) is stored in percent. A metric not listed here is refused on import, never guessed.
_FRACTION = ("acc", "acc_norm", "acc_mutual_info", "exact_match", "em", "f1", "mc1", "mc2", "mc", "pass@1",
             "pass@10", "pass_at_1", "prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc",
             "inst_level_loose_acc", "contains", "brier_score", "bleu_acc", "rouge1_acc",
             "rouge2_acc", "rougeL_acc")
METRICS: dict[str, tuple[str, bool, bool]] = {
    **{m: ("percent", m != "brier_score", True) for m in _FRACTION},
    "win_rate": ("percent", True, False), "length_controlled_winrate": ("percent", True, False),
    "judge_score": ("1-10", True, False),
    **dict.fromkeys(("perplexity", "ppl", "word_perplexity", "byte_perplexity", "token_perplexity", "bits_per_byte", "likelihood_difference", "likelihood_diff", "ter"), ("raw", False, False)),
}

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

_CSV_BENCH = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+?)[-_](?P<shot>\d+)shot$")
_CSV_NAMES = {"mbpp": "mbpp", "math": "math", "gsm8k": "gsm8k", "humaneval": "humaneval", "hellaswag": "hellaswag",
              "nq": "nq_open", "BoolQ": "boolq", "mmlu": "mmlu", "Truthful_QA": "truthfulqa",
              "LongBench-v2": "longbench_v2", "jmmlu": "jmmlu", "cmmlu": "cmmlu"}


def csv_column_benchmark(column: str) -> tuple[str, int | None] | None:
    """`gsm8k-4shot` → (`gsm8k`, 4); `mtbench-writing` → (`mt_bench_writing`, None); axes → None."""
    m = _CSV_BENCH.match(column)
    if m and m.group("name") in _CSV_NAMES:
        return _CSV_NAMES[m.group("name")], int(m.group("shot"))
    if column == "mtbench-total":
        return "mt_bench", None
    if column.startswith("mtbench-") and f"mt_bench_{column[8:]}" in BENCHMARKS:
        return f"mt_bench_{column[8:]}", None
    if column == "alpaca_eval_v2-total":
        return "alpaca_eval_v2", None
    return None


# The study's CSV reports these benchmarks on another scale than `BENCHMARKS` declares: factor to apply on import.
CSV_RESCALE = {"truthfulqa": 100.0}  # a fraction (0–0.18) in the CSV; percent everywhere else


@dataclass
class ResultsTable:
    """Rows of the results schema (a pandas DataFrame with `COLUMNS`) and where they came from."""

    frame: pd.DataFrame
    source: str
    notes: list[str] = field(default_factory=list)

    @property
    def models(self) -> int:
        return int(self.frame["run_id"].nunique())

    def wide(self) -> pd.DataFrame:
        """One row per model, one column per `benchmark` (with `-<n>shot` when the shot count is known)."""
        return to_wide(self.frame)


def bench_column(benchmark: str, n_shot: Any) -> str:
    import pandas as pd

    return benchmark if n_shot is None or pd.isna(n_shot) else f"{benchmark}-{int(n_shot)}shot"


def to_wide(frame: pd.DataFrame, value: str = "score") -> pd.DataFrame:
    """The results as one row per model and a column per benchmark (score, or `gain`)."""
    frame = frame.assign(column=[bench_column(b, n) for b, n in zip(frame["benchmark"], frame["n_shot"])])
    scores = frame.pivot_table(index="run_id", columns="column", values=value, aggfunc="first")
    meta = frame.drop_duplicates("run_id").set_index("run_id")[["model_id", "has_repo", *AXES, "source"]]
    return meta.join(scores).reset_index().rename_axis(columns=None)


def add_gains(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill `base_score` and `gain` from each base model's own rows (`dataset == "pretrain"`).

    Rows that already carry a base score (an evaluation that ran its base on the same samples) keep it.
    Otherwise a gain is computed only between like and like: the same benchmark, shots, metric and scale,
    both scored on the whole benchmark. A subset score never gets a gain over a full base score.
    """
    frame = normalize(frame)
    full = frame["subset"].astype("boolean").eq(False).fillna(False).to_numpy(bool)
    base = frame[(frame["dataset"] == "pretrain").to_numpy(bool) & full]
    comparable_base = base[["base_model", "benchmark", "n_shot", "metric", "scale", "score"]]
    comparable_base = comparable_base.rename(columns={"score": "_base"}).drop_duplicates(
        ["base_model", "benchmark", "n_shot", "metric", "scale"])
    merged = frame.merge(comparable_base, on=["base_model", "benchmark", "n_shot", "metric", "scale"], how="left")
    merged["_base"] = merged["_base"].where(full)
    merged["base_score"] = merged["base_score"].astype("float64").fillna(merged.pop("_base"))
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

    Rows written before a column existed (older results datasets) get what can be known: the benchmark's
    declared scale and direction; an unknown sample count stays empty (`subset` empty: not known to be full).
    """
    import pandas as pd

    frame = frame.copy()
    for name in COLUMNS:
        if name not in frame.columns:
            frame[name] = None
    declared = frame["benchmark"].map(lambda b: BENCHMARKS.get(b))
    frame["scale"] = frame["scale"].where(frame["scale"].notna(),
                                          declared.map(lambda b: b.scale if b else "percent"))
    frame["higher_is_better"] = frame["higher_is_better"].where(
        frame["higher_is_better"].notna(), declared.map(lambda b: b.higher_is_better if b else True)).astype(bool)
    for col in _INT_COLUMNS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    for col in _FLOAT_COLUMNS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    frame["has_repo"] = frame["has_repo"].fillna(False).astype(bool)
    frame["subset"] = frame["subset"].astype("boolean")
    for col in ("model_revision", "harness", "harness_version", "judge", "source_file", "evaluated_at", "lr_schedule",
                "base_model", "dataset", "tuning"):
        frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    return frame[COLUMNS]


def rows_frame(rows: list[dict[str, Any] | ResultRow]) -> pd.DataFrame:
    """A results-schema DataFrame of rows (dicts or `ResultRow`s)."""
    import pandas as pd

    data = [r.to_json() if isinstance(r, ResultRow) else r for r in rows]
    return normalize(pd.DataFrame(data, columns=COLUMNS))


def import_massive_sft_csv(path: str | Path) -> ResultsTable:
    """The study's released results (`evaluation_result.csv`) as results rows with gains.

    Quirks handled: the unnamed index column; empty and `None` cells (no score: no row); `lora` and
    `lr_strategy` empty on the `pretrain` rows, which are the base models; Chinese-Mistral's `pretrain`
    row duplicating Mistral's (kept, noted); TruthfulQA given as a fraction (stored in percent, like every
    other percent-scale benchmark). None of these models has a repo (`has_repo` false). The study scored
    whole benchmarks with OpenCompass (`subset` false; the CSV gives no sample counts).

    Raises:
        HubkitError: the file is missing, not a CSV, or lacks the study's axis columns.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise HubkitError(f"results file not found: {path}")
    try:
        raw = pd.read_csv(path, na_values=["None", "none", ""], keep_default_na=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise HubkitError(f"{path.name}: not a readable CSV: {first_line(e)}") from None
    needed = ["model_name", "data_name", "lora", "epoch", "data_size", "lr_strategy"]
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise HubkitError(f"{path.name}: not the study's results CSV (missing column {missing[0]!r})")
    bench_cols = {c: csv_column_benchmark(c) for c in raw.columns}
    bench_cols = {c: b for c, b in bench_cols.items() if b}
    rows: list[ResultRow] = []
    for i, rec in enumerate(raw.to_dict("records")):
        family, dataset = rec["model_name"], rec["data_name"]
        if not isinstance(family, str) or not isinstance(dataset, str):
            raise HubkitError(f"{path.name} row {i + 2}: empty model_name or data_name")
        base = dataset == "pretrain"
        lora = str(rec["lora"]).strip().lower()
        if not base and lora not in ("true", "false"):
            raise HubkitError(f"{path.name} row {i + 2}: lora is {rec['lora']!r}, expected true or false")
        tuning = "base" if base else ("lora" if lora == "true" else "full")
        size = None if base or pd.isna(rec["data_size"]) else int(rec["data_size"])
        epochs = None if base or pd.isna(rec["epoch"]) else int(rec["epoch"])
        schedule = None if base or pd.isna(rec["lr_strategy"]) else str(rec["lr_strategy"])
        axes = {"base_model": STUDY_BASE_MODELS.get(family, family), "dataset": dataset, "data_size": size,
                "tuning": tuning, "epochs": epochs, "lr_schedule": schedule}
        rid = imported_run_id(family, dataset, size, tuning, epochs, schedule)
        for col, (bench, shot) in bench_cols.items():
            value = rec[col]
            if pd.isna(value):
                continue
            declared = BENCHMARKS[bench]
            rows.append(ResultRow(
                model_id="", has_repo=False, run_id=rid, **axes, benchmark=bench, n_shot=shot,
                metric=declared.metric, scale=declared.scale, higher_is_better=declared.higher_is_better,
                score=float(value) * CSV_RESCALE.get(bench, 1.0), subset=False, harness="opencompass",
                source="massive-sft-csv", source_file=path.name))
    frame = add_gains(rows_frame(rows))
    notes = ["no model in the study has a Hub repo: rows are marked has_repo=false",
             "Chinese-Mistral-7B-v0.1's pretrain row equals Mistral-7B-v0.1's in the source",
             "TruthfulQA is a fraction in the source CSV; it is stored in percent like the other benchmarks",
             "MT-Bench scores are grades from 1 to 10 (scale `1-10`), never averaged with percentages"]
    return ResultsTable(frame, "massive-sft-csv", notes)


# -- lm-evaluation-harness files -------------------------------------------------------------------------

def _model_args(value: Any) -> dict[str, Any]:
    """`model_args` as a mapping: 0.4 writes a dict (or a string), 0.3 a string `k=v,k=v`."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        return dict(kv.split("=", 1) for kv in value.split(",") if "=" in kv)
    return {}


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


def _metric_value(metrics: dict[str, Any], name: str) -> float | None:
    for key, value in metrics.items():
        if key.split(",")[0] == name and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def _main_metric(task: str, metrics: dict[str, Any], higher: dict[str, Any], file: str,
                 layout: str) -> tuple[str, float, str, bool, bool]:
    """(metric, value, scale, higher is better, is a fraction) of a task's main metric.

    The main metric is the first one `higher_is_better` lists (0.4) or the first in the task's mapping (0.3).

    Raises:
        HubkitError: no numeric metric, or one hubkit cannot interpret (names the file and the field).
    """
    names = [k.split(",")[0] for k in metrics if not k.split(",")[0].endswith("_stderr")
             and k.split(",")[0] not in ("alias", "name", "sample_len", "sample_count")]
    order = [m for m in higher if any(n == m for n in names)] or names
    for name in order:
        value = _metric_value(metrics, name)
        if value is None:
            continue
        if name not in METRICS:
            raise HubkitError(f"{file}: cannot interpret metric {name!r} of results.{task} (its scale is unknown; "
                              f"known: {', '.join(sorted(METRICS))})")
        scale, default_higher, fraction = METRICS[name]
        direction = higher.get(name)
        if layout == "0.4" and not isinstance(direction, bool):
            raise HubkitError(f"{file}: higher_is_better.{task}.{name} is missing or not true/false")
        return name, value, scale, direction if isinstance(direction, bool) else default_higher, fraction
    raise HubkitError(f"{file}: results.{task} holds no numeric metric")


def _limit_counts(data: dict[str, Any], task: str, file: str) -> tuple[int | None, int | None, bool]:
    """(samples scored, benchmark size, subset) from `n-samples` (0.4) or `config.limit` (0.3 and 0.4)."""
    counts = (data.get("n-samples") or {}).get(task)
    limit = (data.get("config") or {}).get("limit")
    if isinstance(counts, dict) and "effective" in counts and "original" in counts:
        try:
            effective, original = int(counts["effective"]), int(counts["original"])
        except (TypeError, ValueError):
            raise HubkitError(f"{file}: n-samples.{task} is not a pair of counts") from None
        return effective, original, effective < original
    if limit in (None, "", 0):
        return None, None, False
    try:
        limit = float(limit)
    except (TypeError, ValueError):
        raise HubkitError(f"{file}: config.limit is {limit!r}, not a number") from None
    if limit < 1:
        return None, None, True  # a fraction of the benchmark
    return int(limit), None, True  # at most `limit` samples of a benchmark of unknown size: a subset


def _shots(data: dict[str, Any], task: str, layout: str, file: str) -> int:
    if layout == "0.3":
        value = data["config"].get("num_fewshot")
    else:
        table = data.get("n-shot") or {}
        value = table.get(task)
        if value is None:  # a group: its subtasks' common shot count
            members = {table.get(t) for t in (data.get("group_subtasks") or {}).get(task, [])}
            value = members.pop() if len(members) == 1 else None
    try:
        return int(value)
    except (TypeError, ValueError):
        field_name = "config.num_fewshot" if layout == "0.3" else f"n-shot.{task}"
        raise HubkitError(f"{file}: {field_name} is {value!r}, not a shot count") from None


def lm_eval_rows(data: dict[str, Any], model_id: str, run_id: str, axes: dict[str, Any],
                 evaluated_at: str | None = None, source: str = "lm-eval", file: str = "results") -> list[ResultRow]:
    """Results-schema rows of one lm-eval results mapping, 0.3 or 0.4 layout (hubkit's own files add base
    scores and gains on the same samples).

    Each task's main metric becomes a row: a fraction in percent, a perplexity or likelihood difference
    as it is (`raw`, lower is better). Subtasks of a group that is itself in the file are left to the group.

    Raises:
        HubkitError: a layout or a metric that cannot be interpreted (one line naming the file and field).
    """
    layout = lm_eval_layout(data, file)
    hub = data.get("hubkit") or {}
    config = data.get("config") or {}
    args = _model_args(config.get("model_args"))
    revision = config.get("model_revision") or args.get("revision") or None
    if revision in ("main", ""):
        revision = config.get("model_sha") or revision
    when = hub.get("evaluated_at") or evaluated_at
    harness = "hubkit" if hub else "lm-eval"
    version = data.get("hubkit_version") if hub else (data.get("lm_eval_version") or ("0.3" if layout == "0.3" else None))
    grouped = {t for group, members in (data.get("group_subtasks") or {}).items() if group in data["results"]
               for t in members if t != group}
    rows = []
    for task, metrics in data["results"].items():
        if task in grouped or not isinstance(metrics, dict):
            continue
        # a judged score (MT-Bench, AlpacaEval) names its judge; it has no shots, as in the study's table
        judge = ((data.get("configs") or {}).get(task) or {}).get("metadata", {}) or {}
        judge = judge.get("judge") if isinstance(judge, dict) and isinstance(judge.get("judge"), str) else None
        higher = (data.get("higher_is_better") or {}).get(task) or {}
        metric, value, scale, up, fraction = _main_metric(task, metrics, higher, file, layout)
        bench = task if task in BENCHMARKS else slug(task).replace("-", "_")
        declared = BENCHMARKS.get(bench)
        if declared and declared.scale != scale:
            raise HubkitError(f"{file}: results.{task} reports {metric!r} on the {scale} scale, but {bench} is "
                              f"kept on the {declared.scale} scale")
        n_samples, n_total, subset = _limit_counts(data, task, file)
        rows.append(ResultRow(
            model_id=model_id, has_repo=bool(model_id), run_id=run_id, model_revision=revision, **axes,
            benchmark=bench, n_shot=None if judge else _shots(data, task, layout, file), metric=metric, scale=scale,
            higher_is_better=up, score=100.0 * value if fraction else value,
            base_score=(hub.get("base_scores") or {}).get(task), gain=(hub.get("gains") or {}).get(task),
            n_samples=n_samples, n_total=n_total, subset=subset, harness=harness,
            harness_version=None if version is None else str(version), judge=judge, source=source,
            source_file=None if source == "hubkit" else Path(file).name, evaluated_at=when))
    return rows


def import_lm_eval(paths: list[str | Path], axes: dict[str, Any] | None = None) -> ResultsTable:
    """lm-evaluation-harness results files, in the 0.3 or the 0.4 layout, as results rows.

    What is kept: each task's main metric with its scale and direction (a perplexity stays a lower-is-better
    raw number), the shot count, the sample counts (`limit`), the model revision and the file's name.
    The model id is `model_args.pretrained` when it is a Hub id; a local path is never stored. A model's
    revision (`model_args.revision`, `model_revision`) is part of its run id, so checkpoints of one model
    stay apart.

    Raises:
        HubkitError: a file that is not lm-eval results JSON, or that holds a field hubkit cannot interpret;
            nothing is imported then.
    """
    rows: list[ResultRow] = []
    for p in paths:
        p = Path(p)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise HubkitError(f"{p.name}: not a readable JSON file: {first_line(e)}") from None
        lm_eval_layout(data, p.name)
        config = data.get("config") or {}
        args = _model_args(config.get("model_args"))
        pretrained = str(args.get("pretrained") or data.get("model_name") or "")
        is_hub_id = bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", pretrained)) and not Path(pretrained).exists()
        name = pretrained if is_hub_id else Path(pretrained.rstrip("/")).name or p.parent.name
        run = slug(pretrained.replace("/", "-")) if is_hub_id else slug(p.parent.name or name)
        revision = config.get("model_revision") or args.get("revision")
        if revision and revision != "main":
            run = f"{run}-rev-{slug(str(revision))[:40]}"
        ax = {"base_model": None, "dataset": None, "data_size": None, "tuning": None, "epochs": None,
              "lr_schedule": None, **(axes or {})}
        when = _lm_eval_date(p.name)
        if when is None and isinstance(data.get("date"), (int, float)):
            import datetime as dt

            when = dt.datetime.fromtimestamp(data["date"], dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows += lm_eval_rows(data, model_id=name if is_hub_id else "", run_id=run, axes=ax, evaluated_at=when,
                             file=p.name)
    frame = rows_frame(rows)
    dupes = frame[frame.duplicated(["run_id", "benchmark", "n_shot"], keep=False)]
    if not dupes.empty:
        r = dupes.iloc[0]
        raise HubkitError(f"two of the files score {r['run_id']} on {r['benchmark']} ({r['n_shot']}-shot) "
                          "at the same revision: import them separately")
    return ResultsTable(add_gains(frame), "lm-eval")


def import_key(format: str, files: list[Path], frame: pd.DataFrame | None = None) -> str:
    """The rows-file key of an import: importing the same results again replaces those rows, not adds to them.

    For lm-eval files the key is derived from what the rows identify (model, revision, task, shots), so two
    imports of different checkpoints or shot counts never replace each other, whatever the files are called.
    """
    if format == "massive-sft-csv":
        return f"import-massive-sft-{Path(files[0]).stem}"
    if frame is None or frame.empty:
        return "import-lm-eval-" + "-".join(sorted({Path(p).parent.name for p in files}))[:80]
    ids = sorted({f"{r}|{b}|{n}" for r, b, n in zip(frame["run_id"], frame["benchmark"], frame["n_shot"])})
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12]
    return f"import-lm-eval-{slug(str(frame['run_id'].iloc[0]))[:60]}-{digest}"


def _lm_eval_date(filename: str) -> str | None:
    m = re.search(r"(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})(\.\d+)?", filename)
    return f"{m.group(1)}T{m.group(2)}:{m.group(3)}:{m.group(4)}{m.group(5) or ''}Z" if m else None
