"""Turn a dataset name into training examples: resolve, fetch from the Hub, convert, sample.

Sampling is reproducible: the rows of a source are visited in the order of a permutation drawn from the
seed, and the first `n` usable rows are kept. The same (dataset revision, size, seed) always gives the
same examples, whatever the machine.

Example:
    >>> from hubkit.data import load_training_data
    >>> data = load_training_data("lima", size=100, seed=0)
    >>> data.dataset.column_names
    ['prompt', 'completion']
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import STUDY_PROMPT
from ..errors import HubkitError
from ..utils import DATA_NAMESPACE, first_line
from .registry import REGISTRY, Conversation, RecordError, Source, check_name, detect_layout, members

if TYPE_CHECKING:
    import datasets


@dataclass
class SourceInfo:
    """Where one part of the training data came from; stored in the run directory and the card."""

    name: str
    repo: str
    config: str | None
    split: str
    revision: str | None
    rows_available: int
    rows_used: int
    stand_in: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainingData:
    """The examples a run trains on (`prompt`/`completion` columns) and their provenance."""

    dataset: datasets.Dataset
    sources: list[SourceInfo] = field(default_factory=list)


def _offline_default() -> bool:
    from ..hub import choose_endpoint, is_local_endpoint

    return is_local_endpoint(choose_endpoint())  # names the endpoint, starts nothing


def fetch_split(source: Source, label: str) -> tuple[datasets.Dataset, str | None]:
    """Load a Hub dataset split at its current commit, pinned; returns (split, commit).

    Raises:
        HubkitError: the repo, config or split does not exist, or the Hub cannot be read.
    """
    from ..hub import ensure_endpoint, get_api, hub_kwargs

    ensure_endpoint()
    import datasets as hf_datasets

    from ..hub import hub_errors, retrying

    hint = " (seed the local Hub with `hubkit hub seed`)" if source.repo.startswith(f"{DATA_NAMESPACE}/") else ""
    with hub_errors(f"dataset '{label}': cannot read {source.repo}",
                    not_found=f"dataset '{label}': repo {source.repo} not found on the Hub{hint}"):
        revision = retrying(get_api().dataset_info, source.repo).sha
    try:
        ds = hf_datasets.load_dataset(source.repo, source.config, split=source.split, **hub_kwargs(revision))
    except ValueError as e:  # unknown split or config
        raise HubkitError(f"dataset '{label}': {source.describe()}: {first_line(e)}") from None
    return ds, revision


def load_file(path: Path) -> datasets.Dataset:
    """A local `.json`, `.jsonl` or `.parquet` file as a `datasets.Dataset` (its `train` split).

    Raises:
        HubkitError: another suffix, or a file the loader cannot read.
    """
    import datasets as hf_datasets

    kind = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}.get(path.suffix)
    if kind is None:
        raise HubkitError(f"dataset file {path.name}: expected .json, .jsonl or .parquet")
    try:
        return hf_datasets.load_dataset(kind, data_files=str(path), split="train")
    except Exception as e:  # a malformed file: pyarrow and datasets raise several types
        raise HubkitError(f"dataset file {path.name}: cannot be read: {first_line(e)}") from None


def _first_turn(conv: Conversation) -> Conversation:
    for i, m in enumerate(conv):
        if m["role"] == "user":
            for reply in conv[i + 1:]:
                if reply["role"] == "assistant":
                    return [m, reply]
                if reply["role"] == "user":
                    break
            break
    raise RecordError("no user turn followed by an assistant turn")


def _to_example(conv: Conversation, prompt_format: str, first_turn_only: bool) -> dict[str, Any] | None:
    """The TRL prompt/completion example for a conversation; None when the text is empty."""
    if prompt_format == "study" or first_turn_only:
        conv = _first_turn(conv)
    if not conv or conv[-1]["role"] != "assistant":
        raise RecordError("the conversation does not end with an assistant turn")
    if any(not m["content"].strip() for m in conv if m["role"] != "system"):
        return None
    if prompt_format == "study":
        return {"prompt": STUDY_PROMPT.format(instruction=conv[0]["content"]), "completion": " " + conv[1]["content"]}
    return {"prompt": conv[:-1], "completion": conv[-1:]}


def _sample(ds: datasets.Dataset, convert, label: str, size: int | None, seed: int, prompt_format: str,
            where: dict[str, tuple[str, ...]], drop_empty: bool, first_turn_only: bool) -> tuple[list[dict], int]:
    candidates = list(range(len(ds)))
    for col, values in where.items():
        if col not in ds.column_names:
            raise HubkitError(f"dataset '{label}': missing column '{col}'")
        keep = set(values)
        column = ds.select_columns([col]).to_dict()[col]
        candidates = [i for i in candidates if column[i] in keep]
    available = len(candidates)
    if available == 0:
        raise HubkitError(f"dataset '{label}' has no rows")
    if size is not None and size > available:
        raise HubkitError(f"dataset '{label}' has {available} rows; data_size {size} asks for more")
    random.Random(seed).shuffle(candidates)
    examples: list[dict] = []
    for i in candidates:
        try:
            example = _to_example(convert(ds[i]), prompt_format, first_turn_only)
        except RecordError as e:
            raise HubkitError(f"dataset '{label}' row {i}: {e}") from None
        if example is None:
            if drop_empty:
                continue
            raise HubkitError(f"dataset '{label}' row {i}: empty instruction or response")
        examples.append(example)
        if size is not None and len(examples) == size:
            break
    if size is not None and len(examples) < size:
        raise HubkitError(f"dataset '{label}' has {len(examples)} usable rows; data_size {size} asks for more")
    return examples, available


def _split_sizes(total: int | None, parts: int) -> list[int | None]:
    if total is None:
        return [None] * parts
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def load_training_data(name: str, size: int | None = None, seed: int = 42, prompt_format: str = "study",
                       offline: bool | None = None) -> TrainingData:
    """Examples for training: a registry set, `all`, `w/o-X`, a Hub dataset id, or a local file.

    Args:
        name: what `RunSpec.dataset` holds.
        size: examples to keep (None: all); for `all`/`w/o-X` split evenly across the member sets.
        seed: sampling seed.
        prompt_format: `study` (text prompt `###Question: …\\n###Answer:` and completion ` …`) or
            `chat_template` (conversational prompt and completion, rendered by the tokenizer).
        offline: read registry sets from the seeded repos (`hubkit-data/*`) instead of their public ids.
            Default: offline when `HF_ENDPOINT` is a local Hub.

    Raises:
        HubkitError: unknown name, missing repo, too few rows, or a malformed record (named by row).
    """
    if offline is None:
        offline = _offline_default()
    path = Path(name)
    if name.endswith((".json", ".jsonl", ".parquet")) or path.is_file():
        if not path.is_file():
            raise HubkitError(f"dataset file not found: {name}")
        ds = load_file(path)
        convert = detect_layout(ds.column_names)
        if convert is None:
            raise HubkitError(f"dataset '{path.name}': no known layout in columns {', '.join(ds.column_names)}")
        rows, available = _sample(ds, convert, path.name, size, seed, prompt_format, {}, False, False)
        info = [SourceInfo(path.name, path.name, None, "train", None, available, len(rows))]
        return _finish(rows, info, seed)

    names = members(name)
    if names:
        sizes = _split_sizes(size, len(names))
        rows, info = [], []
        for i, (member, n) in enumerate(zip(names, sizes)):
            entry = REGISTRY[member]
            source = entry.source(offline)
            ds, revision = fetch_split(source, member)
            part, available = _sample(ds, source.convert, member, n, seed + i, prompt_format, source.where,
                                      entry.drop_empty, entry.turns == "first")
            rows += part
            info.append(SourceInfo(member, source.repo, source.config, source.split, revision, available,
                                   len(part), entry.stand_in if offline else None))
        return _finish(rows, info, seed)

    check_name(name)
    source = Source(name, None)
    ds, revision = fetch_split(source, name)
    convert = detect_layout(ds.column_names)
    if convert is None:
        raise HubkitError(f"dataset '{name}': no known layout in columns {', '.join(ds.column_names)}")
    rows, available = _sample(ds, convert, name, size, seed, prompt_format, {}, False, False)
    return _finish(rows, [SourceInfo(name, name, None, "train", revision, available, len(rows))], seed)


def _finish(rows: list[dict], info: list[SourceInfo], seed: int) -> TrainingData:
    import datasets as hf_datasets

    if len(info) > 1:
        random.Random(seed).shuffle(rows)
    return TrainingData(hf_datasets.Dataset.from_list(rows), info)
