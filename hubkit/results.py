"""The one results schema: a row per model × benchmark, with the sweep axes, shared by every stage.

Evaluation writes these rows, publishing pushes them to a results dataset, `import-results` turns the
study's CSV and lm-eval JSON files into them, the leaderboard reads them and the analyses join on them.

| column | meaning |
| --- | --- |
| `model_id` | Hub repo id of the evaluated model; empty when the model has no repo (imported results) |
| `has_repo` | whether `model_id` names a repo |
| `run_id` | hubkit run id (or, for imports, the same scheme without the hash) |
| `base_model`, `dataset`, `data_size`, `tuning`, `epochs`, `lr_schedule` | the sweep axes (`dataset` is `pretrain` and `tuning` is `base` for a base model) |
| `benchmark`, `n_shot`, `metric` | what was measured: a name from `BENCHMARKS`, the shot count, the metric |
| `score`, `base_score`, `gain` | the score as the benchmark reports it (percent, or MT-Bench's 1–10), its base model's, and the difference |
| `source` | `hubkit`, `massive-sft-csv` or `lm-eval` |
| `evaluated_at` | ISO time of the evaluation, when known |

Example:
    >>> from hubkit.results import import_massive_sft_csv
    >>> table = import_massive_sft_csv("evaluation_result.csv")
    >>> table.models
    1027
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import size_token, slug
from .errors import HubkitError

if TYPE_CHECKING:
    import pandas as pd

AXES = ["base_model", "dataset", "data_size", "tuning", "epochs", "lr_schedule"]
COLUMNS = ["model_id", "has_repo", "run_id", *AXES, "benchmark", "n_shot", "metric", "score", "base_score", "gain",
           "source", "evaluated_at"]


@dataclass(frozen=True)
class Benchmark:
    """A benchmark as the leaderboard groups and labels it."""

    name: str
    group: str  # code | math | knowledge | chat | multilingual | long-context | instruction
    title: str
    metric: str


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in [
    Benchmark("humaneval", "code", "HumanEval", "pass@1"),
    Benchmark("mbpp", "code", "MBPP", "pass@1"),
    Benchmark("gsm8k", "math", "GSM8K", "exact_match"),
    Benchmark("math", "math", "MATH", "exact_match"),
    Benchmark("math500", "math", "MATH-500", "exact_match"),
    Benchmark("mmlu", "knowledge", "MMLU", "acc"),
    Benchmark("nq_open", "knowledge", "NQ-open", "exact_match"),
    Benchmark("boolq", "knowledge", "BoolQ", "acc"),
    Benchmark("hellaswag", "knowledge", "HellaSwag", "acc"),
    Benchmark("truthfulqa", "knowledge", "TruthfulQA", "mc"),
    Benchmark("mt_bench", "chat", "MT-Bench", "judge_score"),
    *[Benchmark(f"mt_bench_{c}", "chat", f"MT-Bench {c}", "judge_score")
      for c in ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")],
    Benchmark("alpaca_eval_v2", "chat", "AlpacaEval 2", "win_rate"),
    Benchmark("jmmlu", "multilingual", "JMMLU (ja)", "acc"),
    Benchmark("cmmlu", "multilingual", "CMMLU (zh)", "acc"),
    Benchmark("longbench_v2", "long-context", "LongBench v2", "acc"),
    Benchmark("ifeval", "instruction", "IFEval", "prompt_level_strict_acc"),
]}

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

    Rows that already carry a base score (an evaluation that ran its base itself) keep it.
    """
    base = frame[frame["dataset"] == "pretrain"][["base_model", "benchmark", "n_shot", "score"]]
    base = base.rename(columns={"score": "_base"}).drop_duplicates(["base_model", "benchmark", "n_shot"])
    merged = frame.merge(base, on=["base_model", "benchmark", "n_shot"], how="left")
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


def rows_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("data_size", "epochs", "n_shot"):
        frame[col] = frame[col].astype("Int64")
    for col in ("score", "base_score", "gain"):
        frame[col] = frame[col].astype("float64")
    frame["has_repo"] = frame["has_repo"].astype(bool)
    return frame


def import_massive_sft_csv(path: str | Path) -> ResultsTable:
    """The study's released results (`evaluation_result.csv`) as results rows with gains.

    Quirks handled: the unnamed index column; empty and `None` cells (no score: no row); `lora` and
    `lr_strategy` empty on the `pretrain` rows, which are the base models; Chinese-Mistral's `pretrain`
    row duplicating Mistral's (kept, noted). None of these models has a repo (`has_repo` false).

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
        raise HubkitError(f"{path.name}: not a readable CSV: {str(e).splitlines()[0]}") from None
    needed = ["model_name", "data_name", "lora", "epoch", "data_size", "lr_strategy"]
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise HubkitError(f"{path.name}: not the study's results CSV (missing column {missing[0]!r})")
    bench_cols = {c: csv_column_benchmark(c) for c in raw.columns}
    bench_cols = {c: b for c, b in bench_cols.items() if b}
    rows: list[dict[str, Any]] = []
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
            rows.append({"model_id": "", "has_repo": False, "run_id": rid, **axes, "benchmark": bench,
                         "n_shot": shot, "metric": BENCHMARKS[bench].metric, "score": float(value),
                         "base_score": None, "gain": None, "source": "massive-sft-csv", "evaluated_at": None})
    frame = add_gains(rows_frame(rows))
    notes = ["no model in the study has a Hub repo: rows are marked has_repo=false",
             "Chinese-Mistral-7B-v0.1's pretrain row equals Mistral-7B-v0.1's in the source"]
    return ResultsTable(frame, "massive-sft-csv", notes)


def import_lm_eval(paths: list[str | Path], axes: dict[str, Any] | None = None) -> ResultsTable:
    """lm-evaluation-harness 0.4 results files (`results_<date>.json`) as results rows.

    Each task's first metric (the one `higher_is_better` lists first) becomes a row, scaled to percent.
    The model id is `config.model_args.pretrained` when it is a Hub id; a local path is never stored.

    Raises:
        HubkitError: a file that is not lm-eval results JSON.
    """
    rows: list[dict[str, Any]] = []
    for p in paths:
        p = Path(p)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise HubkitError(f"{p.name}: not a readable JSON file: {e}") from None
        if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
            raise HubkitError(f"{p.name}: not lm-eval results (no `results` mapping)")
        args = (data.get("config") or {}).get("model_args") or {}
        if isinstance(args, str):
            args = dict(kv.split("=", 1) for kv in args.split(",") if "=" in kv)
        pretrained = str(args.get("pretrained") or data.get("model_name") or "")
        is_hub_id = bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", pretrained)) and not Path(pretrained).exists()
        name = pretrained if is_hub_id else Path(pretrained.rstrip("/")).name or p.parent.name
        run = slug(pretrained.replace("/", "-")) if is_hub_id else slug(p.parent.name or name)
        ax = {"base_model": None, "dataset": None, "data_size": None, "tuning": None, "epochs": None,
              "lr_schedule": None, **(axes or {})}
        rows += lm_eval_rows(data, model_id=name if is_hub_id else "", run_id=run, axes=ax,
                             evaluated_at=_lm_eval_date(p.name))
    return ResultsTable(add_gains(rows_frame(rows)), "lm-eval")


def import_key(format: str, files: list[Path]) -> str:
    """The rows-file key of an import: importing the same files again replaces those rows, not adds to them."""
    if format == "massive-sft-csv":
        return f"import-massive-sft-{Path(files[0]).stem}"
    return "import-lm-eval-" + "-".join(sorted({Path(p).parent.name for p in files}))[:80]


def lm_eval_rows(data: dict[str, Any], model_id: str, run_id: str, axes: dict[str, Any],
                 evaluated_at: str | None = None, source: str = "lm-eval") -> list[dict[str, Any]]:
    """Results-schema rows of one lm-eval 0.4 results mapping (hubkit's own files add base scores and gains).

    Each task's main metric (the first `higher_is_better` lists) becomes a row, scaled to percent.
    """
    hub = data.get("hubkit") or {}
    when = hub.get("evaluated_at") or evaluated_at
    rows = []
    for task, metrics in data["results"].items():
        chosen = _first_metric(task, metrics, data.get("higher_is_better", {}).get(task, {}))
        if chosen is None:
            continue
        metric, value = chosen
        bench = task if task in BENCHMARKS else slug(task).replace("-", "_")
        rows.append({"model_id": model_id, "has_repo": bool(model_id), "run_id": run_id, **axes,
                     "benchmark": bench, "n_shot": (data.get("n-shot") or {}).get(task), "metric": metric,
                     "score": 100.0 * value, "base_score": (hub.get("base_scores") or {}).get(task),
                     "gain": (hub.get("gains") or {}).get(task), "source": source, "evaluated_at": when})
    return rows


def _first_metric(task: str, metrics: dict, higher: dict) -> tuple[str, float] | None:
    order = list(higher) or [k.split(",")[0] for k in metrics]
    for name in order:
        for key, value in metrics.items():
            if key.split(",")[0] == name and not key.split(",")[0].endswith("_stderr") and \
                    isinstance(value, (int, float)) and not isinstance(value, bool):
                return name, float(value)
    return None


def _lm_eval_date(filename: str) -> str | None:
    m = re.search(r"(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})(\.\d+)?", filename)
    return f"{m.group(1)}T{m.group(2)}:{m.group(3)}:{m.group(4)}{m.group(5) or ''}Z" if m else None
