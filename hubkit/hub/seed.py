"""Seed a Hub with the real datasets shipped in the project's shared data folder.

Each source becomes one dataset repo `hubkit-data/<name>` (the namespace is configurable) holding JSON Lines
files and a card whose `configs:` metadata lets `datasets.load_dataset("hubkit-data/<name>")` load it
exactly as it would load the public set from the Hub. Records are kept as the source has them; only the
container changes (compressed JSON, TSV, CSV or the HellaSwag text layout → JSON Lines).

Seeded ids (`SEEDS` below is the registry):

| repo | splits / configs | source |
| --- | --- | --- |
| gsm8k | train, test | openai/grade-school-math |
| code_alpaca | train (2k); config `new`: train (4.5k, multi-language) | sahil280114/codealpaca |
| lima | train | GAIR/lima via LLaMA-Factory |
| alpaca_gpt4_demo | train | LLaMA-Factory alpaca_en_demo (stand-in for alpaca_cleaned) |
| flan_cot | train (with a `source` column) | FLAN v2 CoT |
| fastchat_dummy_conversation | train | lm-sys/FastChat |
| c4_demo | train | allenai/c4 sample |
| humaneval, mbpp, math, math500 | test | the benchmarks' own releases |
| mmlu | test, validation (dev) | hendrycks/test |
| truthfulqa, nq_open, boolq, hellaswag | validation | the benchmarks' own releases |
| mt_bench | test; configs `reference` (test), `judge_prompts` (train) | FastChat llm_judge |
| alpaca_eval | eval (instructions + GPT-4 Turbo reference outputs) | tatsu-lab/alpaca_eval |

Example:
    >>> from hubkit.hub.seed import seed
    >>> seed()  # all sets, into the current endpoint
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import HubkitError
from ..utils import DATA_NAMESPACE

if TYPE_CHECKING:
    from huggingface_hub import HfApi

DEFAULT_NAMESPACE = DATA_NAMESPACE

Records = Iterator[dict]


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8-sig")
    if path.suffix == ".bz2":
        return io.TextIOWrapper(bz2.open(path), encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def jsonl(name: str) -> Callable[[Path], Records]:
    def read(root: Path) -> Records:
        with _open_text(root / name) as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)
    return read


def json_array(name: str) -> Callable[[Path], Records]:
    def read(root: Path) -> Records:
        with _open_text(root / name) as f:
            yield from json.load(f)
    return read


def csv_rows(name: str) -> Callable[[Path], Records]:
    def read(root: Path) -> Records:
        with _open_text(root / name) as f:
            yield from csv.DictReader(f)
    return read


def mmlu(split_dir: str) -> Callable[[Path], Records]:
    def read(root: Path) -> Records:
        for path in sorted((root / "mmlu" / split_dir).glob("*.csv")):
            subject = path.name.rsplit("_", 1)[0]
            with open(path, encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    choices = [row[f"choice{i}"] for i in range(4)]
                    yield {"subject": subject, "question": row["question"], "choices": choices,
                           "answer": int(row["answer"])}
    return read


def flan_cot(root: Path) -> Records:
    for path in sorted((root / "flan_cot").glob("*_train.tsv")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                cols = line.rstrip("\n").split("\t")
                if len(cols) < 3:
                    continue
                unescape = lambda s: s.replace("\\n", "\n")  # noqa: E731
                yield {"source": path.name[: -len("_train.tsv")], "question": unescape(cols[0]),
                       "answer": unescape(cols[1]), "rationale": unescape(cols[2])}


def hellaswag(root: Path) -> Records:
    """The llama.cpp layout: 6 lines per item (context, gold label, 4 endings)."""
    with _open_text(root / "hellaswag" / "hellaswag_val_full.txt.bz2") as f:
        lines = [line.rstrip("\n") for line in f]
    for i in range(0, len(lines) - 5, 6):
        yield {"ctx": lines[i], "label": int(lines[i + 1]), "endings": lines[i + 2: i + 6]}


@dataclass
class SeedSpec:
    """One dataset repo to seed: `configs[config][split]` reads the records from the data root.

    A benchmark's licence and source are its registry record's (`dataset.license`, `dataset.source`, found by
    `dataset.seed`); a training set's are given here.
    """

    name: str
    configs: dict[str, dict[str, Callable[[Path], Records]]] = field(default_factory=dict)
    license: str = ""
    source: str = ""
    task: str = "text-generation"
    note: str = ""

    def __post_init__(self) -> None:
        from ..benchmarks import BENCHMARKS

        record = next((b for b in BENCHMARKS.values() if b.dataset.get("seed") == self.name and not b.parent), None)
        if record is not None:
            self.license = self.license or str(record.dataset.get("license") or "")
            self.source = self.source or str(record.dataset.get("source") or record.public_id)
        if not self.license or not self.source:
            raise HubkitError(f"seed {self.name}: no licence or source (give them, or declare them in its benchmark "
                              "record)")


SEEDS: list[SeedSpec] = [
    # training sets (gsm8k is a benchmark too: its licence and source are its record's)
    SeedSpec("gsm8k", {"default": {"train": jsonl("gsm8k/train.jsonl.gz"), "test": jsonl("gsm8k/test.jsonl")}}),
    SeedSpec("code_alpaca", {"default": {"train": json_array("code_alpaca/code_alpaca_2k.json")},
                             "new": {"train": json_array("code_alpaca/new_codealpaca.json.gz")}},
             "cc-by-nc-4.0", "sahil280114/codealpaca",
             note="`new` (multi-language) stands in for magicoder-style code instructions."),
    SeedSpec("lima", {"default": {"train": json_array("lima/lima.json.gz")}}, "cc-by-nc-sa-4.0",
             "GAIR/lima (via hiyouga/LLaMA-Factory)"),
    SeedSpec("alpaca_gpt4_demo", {"default": {"train": json_array("alpaca_gpt4_demo/alpaca_en_demo.json")}},
             "cc-by-nc-4.0", "hiyouga/LLaMA-Factory data/alpaca_en_demo.json",
             note="Alpaca instructions with GPT-4 answers; stands in for alpaca_cleaned."),
    SeedSpec("flan_cot", {"default": {"train": flan_cot}}, "apache-2.0", "FLAN v2 chain-of-thought training files"),
    SeedSpec("fastchat_dummy_conversation",
             {"default": {"train": json_array("fastchat_dummy_conversation/dummy_conversation.json")}}, "apache-2.0",
             "lm-sys/FastChat"),
    SeedSpec("c4_demo", {"default": {"train": jsonl("c4_demo/c4_demo.jsonl")}}, "odc-by", "allenai/c4 (sample)"),
    # benchmarks: licence and source from the registry
    SeedSpec("humaneval", {"default": {"test": jsonl("humaneval/HumanEval.jsonl.gz")}}),
    SeedSpec("mbpp", {"default": {"test": jsonl("mbpp/mbpp.jsonl")}}),
    SeedSpec("math", {"default": {"test": jsonl("math/test.jsonl.gz")}}),
    SeedSpec("math500", {"default": {"test": jsonl("math500/test.jsonl")}}),
    SeedSpec("mmlu", {"default": {"test": mmlu("test"), "validation": mmlu("dev")}}, task="multiple-choice"),
    SeedSpec("truthfulqa", {"default": {"validation": csv_rows("truthfulqa/TruthfulQA.csv")}}, task="multiple-choice"),
    SeedSpec("nq_open", {"default": {"validation": jsonl("nq_open/NQ-open.dev.jsonl")}}, task="question-answering"),
    SeedSpec("boolq", {"default": {"validation": jsonl("boolq/dev.jsonl.gz")}}, task="question-answering"),
    SeedSpec("hellaswag", {"default": {"validation": hellaswag}}, task="multiple-choice"),
    SeedSpec("mt_bench", {"default": {"test": jsonl("mt_bench/question.jsonl")},
                          "reference": {"test": jsonl("mt_bench/reference_answer/gpt-4.jsonl")},
                          "judge_prompts": {"train": jsonl("mt_bench/judge_prompts.jsonl")}},
             note="Configs: `default` (the 80 questions), `reference` (GPT-4's reference answers, for math, reasoning "
                  "and coding) and `judge_prompts` (FastChat's judge prompts)."),
    SeedSpec("alpaca_eval", {"default": {"eval": json_array("alpaca_eval/results/gpt4_1106_preview/model_outputs.json")}},
             source="tatsu-lab/alpaca_eval results/gpt4_1106_preview",
             note="The 805 AlpacaEval instructions with the AlpacaEval 2 reference outputs (GPT-4 Turbo, "
                  "`gpt4_1106_preview`) in `output`."),
]
SEEDS_BY_NAME = {s.name: s for s in SEEDS}


def find_data_dir(explicit: str | Path | None = None) -> Path:
    """The shared data folder: `explicit`, `$HUBKIT_DATA_DIR`, or `shared/data` beside the checkout or cwd.

    Raises:
        HubkitError: no such folder exists.
    """
    candidates = [Path(explicit)] if explicit else []
    if os.environ.get("HUBKIT_DATA_DIR"):
        candidates.append(Path(os.environ["HUBKIT_DATA_DIR"]))
    here = Path(__file__).resolve()
    candidates += [Path.cwd() / ".." / "shared" / "data", here.parents[3] / "shared" / "data",
                   Path.cwd() / "shared" / "data"]
    for c in candidates:
        if (c / "PROVENANCE.md").exists() or (explicit and c.is_dir()):
            return c.resolve()
    raise HubkitError(
        f"data folder not found (looked in {', '.join(str(c) for c in candidates[:3])}); pass --data or set HUBKIT_DATA_DIR"
    )


def _card(spec: SeedSpec, namespace: str, counts: dict[str, dict[str, int]]) -> str:
    import yaml

    total = sum(n for splits in counts.values() for n in splits.values())
    size = "n<1K" if total < 1000 else "1K<n<10K" if total < 10000 else "10K<n<100K"
    meta: dict[str, Any] = {
        "license": spec.license, "language": ["en"], "pretty_name": spec.name, "size_categories": [size],
        "task_categories": [spec.task], "tags": ["hubkit-seed"],
        "configs": [
            {"config_name": cfg, "default": cfg == "default" or None,
             "data_files": [{"split": split, "path": f"{cfg}/{split}.jsonl"} for split in splits]}
            for cfg, splits in spec.configs.items()
        ],
    }
    for c in meta["configs"]:
        if c["default"] is None:
            del c["default"]
    rows = "\n".join(f"| {cfg} | {split} | {n:,} |" for cfg, splits in counts.items() for split, n in splits.items())
    note = f"\n{spec.note}\n" if spec.note else ""
    return (
        f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n\n# {spec.name}\n\n"
        f"Seeded by hubkit from `{spec.source}` (licence: {spec.license}). Records are unchanged; only the file "
        f"format is JSON Lines.\n{note}\n```python\nfrom datasets import load_dataset\n"
        f'ds = load_dataset("{namespace}/{spec.name}")\n```\n\n| config | split | rows |\n| --- | --- | --- |\n{rows}\n'
    )


def seed(
    names: list[str] | None = None,
    *,
    data_dir: str | Path | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    progress: bool = True,
    api: HfApi | None = None,
) -> dict[str, str]:
    """Create (or update) one dataset repo per seed; unchanged repos get no new commit.

    Args:
        names: seeds to upload (default: all of `SEEDS`).
        data_dir: the shared data folder (default: `find_data_dir()`).
        namespace: user or organisation to create the repos under.
        progress: show a progress bar.
        api: a client (default: `get_api()`).

    Returns:
        `{name: repo_id}` for every seeded set.

    Each Hub call retries transient failures; other Hub errors reach the caller untranslated (`hub_errors`).

    Raises:
        HubkitError: unknown seed name, or a missing source file.
    """
    from tqdm.auto import tqdm

    from .client import get_api
    from .errors import retrying
    from .transfer import push_folder

    root = find_data_dir(data_dir)
    unknown = [n for n in names or [] if n not in SEEDS_BY_NAME]
    if unknown:
        raise HubkitError(f"unknown dataset {unknown[0]!r}; known: {', '.join(SEEDS_BY_NAME)}")
    specs = [SEEDS_BY_NAME[n] for n in names] if names else SEEDS
    api = api or get_api()
    out: dict[str, str] = {}
    for spec in tqdm(specs, desc="seeding datasets", disable=not progress, unit="set"):
        repo_id = f"{namespace}/{spec.name}"
        with tempfile.TemporaryDirectory(prefix="hubkit-seed-") as tmp:
            counts: dict[str, dict[str, int]] = {}
            for cfg, splits in spec.configs.items():
                (Path(tmp) / cfg).mkdir()
                for split, reader in splits.items():
                    n = 0
                    try:
                        with open(Path(tmp) / cfg / f"{split}.jsonl", "w", encoding="utf-8") as f:
                            for rec in reader(root):
                                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                                n += 1
                    except FileNotFoundError as e:
                        raise HubkitError(f"dataset {spec.name}: source file missing: {e.filename}") from None
                    counts.setdefault(cfg, {})[split] = n
            (Path(tmp) / "README.md").write_text(_card(spec, namespace, counts), encoding="utf-8")
            retrying(api.create_repo, repo_id, repo_type="dataset", exist_ok=True)
            retrying(push_folder, repo_id, tmp, repo_type="dataset", commit_message=f"Seed {spec.name} from shared data",
                     api=api)
        out[spec.name] = repo_id
    return out


def ensure_seeded(dataset: str, *, data_dir: str | Path | None = None, api: HfApi | None = None) -> list[str]:
    """Seed the registry sets `dataset` reads (itself, or the members of `all` / `w/o-X`) that are not yet on
    the Hub, under their seeded namespace; return the names seeded. Other names (Hub ids, files) need nothing.

    Raises:
        HubkitError: a set cannot be seeded (its shared data is missing, or the token may not write there).
    """
    from ..data.registry import REGISTRY, members
    from .client import get_api
    from .errors import hub_errors, retrying

    repos = list(dict.fromkeys(REGISTRY[m].offline.repo for m in members(dataset)))
    if not repos:
        return []
    api = api or get_api()
    with hub_errors(f"dataset {dataset}", endpoint=api.endpoint):
        missing = [r for r in repos if not retrying(api.repo_exists, r, repo_type="dataset")]
    by_namespace: dict[str, list[str]] = {}
    for repo in missing:
        namespace, name = repo.split("/", 1)
        by_namespace.setdefault(namespace, []).append(name)
    for namespace, names in by_namespace.items():
        with hub_errors(f"dataset {dataset}: {namespace}/{names[0]} is not on the Hub and cannot be seeded (try "
                        f"`hubkit hub seed {' '.join(names)}`)", endpoint=api.endpoint):
            seed(names, data_dir=data_dir, namespace=namespace, progress=False, api=api)
    return [n for names in by_namespace.values() for n in names]
