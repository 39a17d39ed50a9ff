"""The study's ten training sets, how to fetch them, and how to read their records.

Each `DatasetEntry` names the public Hub dataset the study used and the repo that `hubkit hub seed` puts on
a local Hub from the shared data folder. Where the shared folder lacks the real set, the offline source
is a stand-in and `stand_in` says which and why; `hubkit data list` prints the table.

| name | public Hub id | offline (seeded) source |
| --- | --- | --- |
| alpaca_cleaned | yahma/alpaca-cleaned | alpaca_gpt4_demo (stand-in: Alpaca instructions, GPT-4 answers) |
| lima | GAIR/lima | lima (LLaMA-Factory copy of GAIR/lima) |
| ultrachat | HuggingFaceH4/ultrachat_200k (first turn) | fastchat_dummy_conversation (stand-in) |
| code_alpaca | sahil2801/CodeAlpaca-20k | code_alpaca (the 2k subset) |
| magicoder | ise-uiuc/Magicoder-OSS-Instruct-75K | code_alpaca, config `new` (stand-in) |
| openmath | nvidia/OpenMathInstruct-1 | gsm8k train (stand-in: the problems OpenMath solved) |
| math | TIGER-Lab/MathInstruct | flan_cot, AQuA rows (stand-in: one of MathInstruct's sources) |
| flan_knowledge | Open-Orca/FLAN | flan_cot, QASC + ECQA rows (stand-in) |
| flan_reasoning | Open-Orca/FLAN | flan_cot, StrategyQA + CREAK rows (stand-in) |
| flan_comprehension | Open-Orca/FLAN | flan_cot, Sen-Making rows (stand-in) |

Converters turn one record into a conversation (`[{"role": "user"|"assistant", "content": ...}, ...]`);
a record that lacks a column or holds the wrong type is reported with its dataset and row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..utils import DATA_NAMESPACE

Conversation = list[dict[str, str]]


class RecordError(ValueError):
    """A record that cannot be read as a conversation (the caller adds dataset and row)."""


def _text(record: dict, key: str) -> str:
    if key not in record:
        raise RecordError(f"missing column '{key}'")
    value = record[key]
    if value is None:  # a key absent from some JSON records arrives as null
        raise RecordError(f"missing value in column '{key}'")
    if not isinstance(value, str):
        raise RecordError(f"column '{key}' holds {type(value).__name__}, expected text")
    return value


def _pair(user: str, assistant: str) -> Conversation:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


def alpaca(record: dict) -> Conversation:
    """`instruction` (+ `input`) → `output`: Alpaca, Code Alpaca, MathInstruct."""
    instruction, extra = _text(record, "instruction"), record.get("input") or ""
    if not isinstance(extra, str):
        raise RecordError("column 'input' is not text")
    user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    return _pair(user, _text(record, "output"))


def alpaca_history(record: dict) -> Conversation:
    """LLaMA-Factory's layout: earlier turns in `history` ([[user, assistant], ...]), then the last turn."""
    turns: Conversation = []
    history = record.get("history") or []
    if not isinstance(history, list):
        raise RecordError("column 'history' is not a list of [user, assistant] pairs")
    for pair in history:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
            raise RecordError("column 'history' is not a list of [user, assistant] pairs")
        turns += _pair(pair[0], pair[1])
    return turns + alpaca(record)


def alternating(record: dict) -> Conversation:
    """GAIR/lima: `conversations` is a list of strings, user and assistant in turn."""
    conv = record.get("conversations")
    if not isinstance(conv, list) or len(conv) < 2 or not all(isinstance(t, str) for t in conv):
        raise RecordError("column 'conversations' is not a list of at least two strings")
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(conv)]


def sharegpt(record: dict) -> Conversation:
    """ShareGPT: `conversations` of `{"from": "human"|"gpt", "value"}`; a system turn is kept."""
    conv = record.get("conversations")
    if not isinstance(conv, list) or not conv:
        raise RecordError("missing column 'conversations' (a list of {from, value})")
    roles = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
    out = []
    for turn in conv:
        if not isinstance(turn, dict) or turn.get("from") not in roles or not isinstance(turn.get("value"), str):
            raise RecordError("a turn in 'conversations' is not {from: human|gpt|system, value: text}")
        out.append({"role": roles[turn["from"]], "content": turn["value"]})
    return out


def messages(record: dict) -> Conversation:
    """OpenAI-style `messages` of `{"role", "content"}` (UltraChat 200k)."""
    msgs = record.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise RecordError("missing column 'messages' (a list of {role, content})")
    for m in msgs:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") \
                or not isinstance(m.get("content"), str):
            raise RecordError("a message is not {role: system|user|assistant, content: text}")
    return [{"role": m["role"], "content": m["content"]} for m in msgs]


def columns(user_key: str, assistant_key: str) -> Callable[[dict], Conversation]:
    """One column to one turn: (`question`, `answer`), (`problem`, `solution`), (`inputs`, `targets`)…"""
    def convert(record: dict) -> Conversation:
        return _pair(_text(record, user_key), _text(record, assistant_key))
    convert.__name__ = f"{user_key}_{assistant_key}"
    return convert


def flan_cot(record: dict) -> Conversation:
    """FLAN CoT: the rationale, then the answer, as FLAN's CoT templates phrase it."""
    rationale, answer = _text(record, "rationale").strip(), _text(record, "answer").strip()
    return _pair(_text(record, "question"), f"{rationale} So the answer is {answer}." if rationale else answer)


def prompt_completion(record: dict) -> Conversation:
    return _pair(_text(record, "prompt"), _text(record, "completion"))


# Column sets that identify a layout, tried in order for datasets outside the registry.
AUTO_LAYOUTS: list[tuple[tuple[str, ...], Callable[[dict], Conversation]]] = [
    (("messages",), messages),
    (("conversations",), sharegpt),
    (("prompt", "completion"), prompt_completion),
    (("instruction", "output", "history"), alpaca_history),
    (("instruction", "output"), alpaca),
    (("question", "rationale", "answer"), flan_cot),
    (("question", "answer"), columns("question", "answer")),
    (("problem", "solution"), columns("problem", "solution")),
    (("question", "generated_solution"), columns("question", "generated_solution")),
    (("inputs", "targets"), columns("inputs", "targets")),
]


def detect_layout(column_names: list[str]) -> Callable[[dict], Conversation] | None:
    """The converter for a dataset's columns, or None when no known layout fits."""
    cols = set(column_names)
    for needed, convert in AUTO_LAYOUTS:
        if set(needed) <= cols:
            if convert is sharegpt:
                return _sharegpt_or_alternating
            return convert
    return None


def _sharegpt_or_alternating(record: dict) -> Conversation:
    conv = record.get("conversations")
    if isinstance(conv, list) and conv and isinstance(conv[0], str):
        return alternating(record)
    return sharegpt(record)


@dataclass(frozen=True)
class Source:
    """Where a set's records live on a Hub and how to read them."""

    repo: str
    convert: Callable[[dict], Conversation] | None  # None: detect the layout from the columns
    split: str = "train"
    config: str | None = None
    where: dict[str, tuple[str, ...]] = field(default_factory=dict)  # keep rows whose column is in the values

    def describe(self) -> str:
        text = self.repo + (f" ({self.config})" if self.config else "") + f" [{self.split}]"
        for col, values in self.where.items():
            text += f" where {col} in {', '.join(values)}"
        return text


@dataclass(frozen=True)
class DatasetEntry:
    """One of the study's training sets."""

    name: str
    description: str
    public: Source
    offline: Source
    stand_in: str | None = None  # why the offline source is not the real set, when it is not
    drop_empty: bool = False  # the upstream set holds a few empty records that the study's loader skipped
    turns: str = "all"  # "first": keep only the first exchange (the study's UltraChat), also in chat format

    def source(self, offline: bool) -> Source:
        return self.offline if offline else self.public


SEEDED = DATA_NAMESPACE


def _seeded(name: str, convert: Callable[[dict], Conversation], **kw: Any) -> Source:
    return Source(f"{SEEDED}/{name}", convert, **kw)


REGISTRY: dict[str, DatasetEntry] = {e.name: e for e in [
    DatasetEntry(
        "alpaca_cleaned", "Alpaca (52k general instructions), cleaned",
        Source("yahma/alpaca-cleaned", alpaca), _seeded("alpaca_gpt4_demo", alpaca),
        stand_in="alpaca_gpt4_demo: 999 Alpaca instructions with GPT-4 answers "
                 "(the cleaned set is not in the data folder)"),
    DatasetEntry(
        "lima", "LIMA: 1,000 curated prompts and answers",
        Source("GAIR/lima", alternating), _seeded("lima", alpaca_history)),
    DatasetEntry(
        "ultrachat", "UltraChat 200k, first turn of each dialogue",
        Source("HuggingFaceH4/ultrachat_200k", messages, split="train_sft"),
        _seeded("fastchat_dummy_conversation", sharegpt), turns="first",
        stand_in="fastchat_dummy_conversation: 500 short multi-turn chats (no UltraChat file is in the data folder)"),
    DatasetEntry(
        "code_alpaca", "Code Alpaca: code instructions",
        Source("sahil2801/CodeAlpaca-20k", alpaca), _seeded("code_alpaca", alpaca),
        stand_in="code_alpaca: the repository's own 2k subset of the 20k set", drop_empty=True),
    DatasetEntry(
        "magicoder", "Magicoder OSS-Instruct: code problems seeded from open source",
        Source("ise-uiuc/Magicoder-OSS-Instruct-75K", columns("problem", "solution")),
        _seeded("code_alpaca", alpaca, config="new"),
        stand_in="code_alpaca (config new): 4.5k multi-language code instructions"),
    DatasetEntry(
        "openmath", "OpenMathInstruct: synthetic solutions to GSM8K/MATH problems",
        Source("nvidia/OpenMathInstruct-1", columns("question", "generated_solution")),
        _seeded("gsm8k", columns("question", "answer")),
        stand_in="gsm8k train: the grade-school problems OpenMathInstruct solved, with their reference solutions"),
    DatasetEntry(
        "math", "MathInstruct: hybrid chain-of-thought and program-of-thought math",
        Source("TIGER-Lab/MathInstruct", alpaca),
        _seeded("flan_cot", flan_cot, where={"source": ("aqua",)}),
        stand_in="flan_cot AQuA rows: algebra word problems with rationales, one of MathInstruct's sources"),
    DatasetEntry(
        "flan_knowledge", "FLAN tasks of the knowledge category",
        Source("Open-Orca/FLAN", columns("inputs", "targets")),
        _seeded("flan_cot", flan_cot, where={"source": ("qasc", "ecqa")}),
        stand_in="flan_cot QASC + ECQA rows: science and commonsense knowledge questions"),
    DatasetEntry(
        "flan_reasoning", "FLAN tasks of the reasoning category",
        Source("Open-Orca/FLAN", columns("inputs", "targets")),
        _seeded("flan_cot", flan_cot, where={"source": ("strategyqa", "creak")}),
        stand_in="flan_cot StrategyQA + CREAK rows: multi-step reasoning questions"),
    DatasetEntry(
        "flan_comprehension", "FLAN tasks of the comprehension category",
        Source("Open-Orca/FLAN", columns("inputs", "targets")),
        _seeded("flan_cot", flan_cot, where={"source": ("sensemaking",)}),
        stand_in="flan_cot Sen-Making rows: statement comprehension questions"),
]}

STUDY_SETS = list(REGISTRY)


def check_name(name: str) -> None:
    """Raise `HubkitError` for a dataset name that is neither a registry set, `all`, `w/o-<set>`, a Hub id
    (`owner/name`) nor a data file, before anything is loaded."""
    from pathlib import Path

    from ..errors import HubkitError
    from ..utils import did_you_mean

    if members(name) or name.endswith((".json", ".jsonl", ".parquet")) or Path(name).is_file():
        return
    if name.startswith("w/o-"):
        raise HubkitError(f"unknown dataset '{name[4:]}' in '{name}'{did_you_mean(name[4:], REGISTRY)} "
                          f"(known: {', '.join(REGISTRY)})")
    if "/" not in name:
        raise HubkitError(f"unknown dataset '{name}'{did_you_mean(name, REGISTRY)} "
                          f"(known: {', '.join(REGISTRY)}, all, w/o-<name>, a Hub id, or a file)")


def members(name: str) -> list[str]:
    """The registry sets a name stands for: itself, all ten (`all`), or all but one (`w/o-X`)."""
    if name == "all":
        return list(STUDY_SETS)
    if name.startswith("w/o-"):
        left_out = name[4:]
        if left_out not in REGISTRY:
            return []
        return [n for n in STUDY_SETS if n != left_out]
    return [name] if name in REGISTRY else []
