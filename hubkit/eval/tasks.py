"""The study's benchmarks as tasks, and the suites that group them.

A task turns the records of a seeded benchmark repo (`hubkit-data/<name>`, see `hubkit.hub.seed`) into
requests for the model — prompts to complete, or (context, choice) pairs to score — and scores the answers
with hubkit's local `evaluate` modules. Prompts follow lm-evaluation-harness's formats; shot counts follow
the study (GSM8K 4, MBPP 4, MMLU 5, HellaSwag 10, BoolQ 5, NQ-open 1, the rest 0).

| task | kind | data | shots | metric (main first) |
| --- | --- | --- | --- | --- |
| gsm8k | generate | gsm8k test (shots: train) | 4 | exact_match on the final number |
| math, math500 | generate | MATH test / MATH-500 | 0 | exact_match after answer normalisation |
| humaneval | code | HumanEval | 0 | pass@1, generated code run in the sandbox |
| mbpp | code | MBPP ids 11–510 (shots: ids 1–10) | 4 | pass@1 |
| mmlu | log-likelihood | MMLU test (shots: dev, same subject) | 5 | acc |
| hellaswag | log-likelihood | HellaSwag validation | 10 | acc_norm, acc |
| boolq | log-likelihood | BoolQ validation | 5 | acc |
| truthfulqa | log-likelihood | TruthfulQA | 0 | mc2, mc1 |
| nq_open | generate | NQ-open validation | 1 | exact_match against any gold answer |
| mt_bench | judge | MT-Bench, 80 questions × 2 turns | 0 | judge_score (1–10), and one row per category |
| alpaca_eval_v2 | judge | AlpacaEval 2, 805 instructions | 0 | win_rate against GPT-4 Turbo's outputs (and LC) |

Judged benchmarks (`judge` suite) need an LLM judge: see `hubkit.eval.judged` and `hubkit.eval.judge`.

Where a benchmark has no split to draw shots from, a fixed, seeded pool of its own records supplies them
and is never evaluated.

Example:
    >>> suite = get_suite("quick")
    >>> [(b.task.name, b.n_shot, b.limit) for b in suite][:2]
    [('gsm8k', 4, 8), ('math500', 0, 8)]
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..benchmarks import BENCHMARKS, Benchmark, check
from ..errors import HubkitError
from . import scoring

MT_ANSWER_TOKENS = 1024  # FastChat's answer budget for MT-Bench
ALPACA_ANSWER_TOKENS = 2048  # AlpacaEval's generation budget

Kind = Literal["generate", "code", "loglik", "judge"]
FEWSHOT_POOL = 64  # records held back as shots when a benchmark has no other split
DATA_SEED = 1234  # the order in which `--limit` picks records, the same for every model

#: The per-sample scorer of each generate task's metric (answer text, target → score).
_MATCHERS: dict[str, Callable[[str, Any], float | bool]] = {
    "gsm8k_exact_match": scoring.gsm8k_match, "math_equivalence": scoring.math_match, "nq_exact_match": scoring.nq_match}


@dataclass(frozen=True)
class Task:
    """One benchmark: where its data lives, how a record becomes a request, and how answers are scored.

    Attributes:
        name: the benchmark's id in the registry (`hubkit.benchmarks`), which holds its shots, headline metric,
            seeded repo and splits (`dataset.seed`, `dataset.split`, `dataset.shot_split`).
        kind: `generate` (free text, scored against a target), `code` (generated code run against tests),
            `loglik` (multiple choice by log-likelihood) or `judge` (answers graded by an LLM judge).
        metric: the local `evaluate` module that aggregates the per-sample answers.
        metrics: the metric names it reports, main first.
        version: bumped when prompts or scoring change, so caches and results are never mixed.
    """

    name: str
    kind: Kind
    metric: str
    metrics: tuple[str, ...]
    prompt: Callable[[dict], str]
    shot: Callable[[dict], str] | None = None
    target: Callable[[dict], Any] | None = None
    choices: Callable[[dict], list[str]] | None = None
    labels: Callable[[dict], list[int]] | None = None
    program: Callable[[dict, str], str] | None = None
    stop: tuple[str, ...] = ()
    max_new_tokens: int = 256
    select: Callable[[list[dict]], list[dict]] | None = None  # the records to evaluate, in order
    shot_pool: Callable[[list[dict]], list[dict]] | None = None
    same_key: str | None = None  # shots share this field with the record (MMLU: subject)
    separator: str = "\n\n"
    description: Callable[[dict], str] | None = None
    version: int = 1

    @property
    def record(self) -> Benchmark:
        return BENCHMARKS[self.name]

    @property
    def n_shot(self) -> int:
        """The study's shot count (the registry's; a judged benchmark has none: 0)."""
        return self.record.study_shots or 0

    @property
    def repo(self) -> str:
        """The seeded dataset repo's name (under the data namespace)."""
        return str(self.record.dataset.get("seed") or self.name)

    @property
    def split(self) -> str:
        return str(self.record.dataset.get("split") or "test")

    @property
    def shots_split(self) -> str | None:
        """The split shots come from (None: a held-back pool of the evaluated split)."""
        return self.record.dataset.get("shot_split")

    def match(self, output: str, doc: dict) -> float:
        """The per-sample score of a generated answer (generate tasks)."""
        assert self.target is not None, f"{self.name}: a generate task has a target"
        return float(_MATCHERS[self.metric](output, self.target(doc)))


# -- prompts ----------------------------------------------------------------------------------------------

def _gsm8k_q(doc: dict) -> str:
    return f"Question: {doc['question']}\nAnswer:"


def _math_q(doc: dict) -> str:
    return f"Problem:\n{doc['problem']}\n\nSolution:"


def _math_target(doc: dict) -> str:
    return doc["answer"] if doc.get("answer") is not None else (scoring.last_boxed(doc["solution"]) or "")


def _mbpp_q(doc: dict) -> str:
    tests = "\n".join(doc["test_list"])
    return (f"You are an expert Python programmer, and here is your task: {doc['text']} "
            f"Your code should pass these tests:\n\n{tests}\n[BEGIN]\n")


def _mbpp_program(doc: dict, completion: str) -> str:
    return "\n".join([doc.get("test_setup_code") or "", completion, "", *doc["test_list"], ""])


def _humaneval_program(doc: dict, completion: str) -> str:
    return f"{doc['prompt']}{completion}\n\n{doc['test']}\n\ncheck({doc['entry_point']})\n"


_LETTERS = "ABCD"


def _mmlu_q(doc: dict) -> str:
    options = "\n".join(f"{_LETTERS[i]}. {c}" for i, c in enumerate(doc["choices"]))
    return f"{doc['question'].strip()}\n{options}\nAnswer:"


def _mmlu_description(doc: dict) -> str:
    return f"The following are multiple choice questions (with answers) about {doc['subject'].replace('_', ' ')}.\n\n"


def _boolq_q(doc: dict) -> str:
    return f"{doc['passage']}\nQuestion: {doc['question']}?\nAnswer:"


def _nq_q(doc: dict) -> str:
    question = doc["question"].strip()
    return f"Q: {question}{'' if question.endswith('?') else '?'}\nA:"


def _split_answers(text: str) -> list[str]:
    return [a.strip() for a in (text or "").split(";") if a.strip()]


def _truthfulqa_choices(doc: dict) -> list[str]:
    correct = _split_answers(doc["Correct Answers"])
    best = (doc.get("Best Answer") or "").strip()
    if best and best not in correct:
        correct.insert(0, best)
    return [" " + a for a in correct + _split_answers(doc["Incorrect Answers"])]


def _truthfulqa_labels(doc: dict) -> list[int]:
    n = len(_truthfulqa_choices(doc))
    correct = len(_split_answers(doc["Correct Answers"]))
    best = (doc.get("Best Answer") or "").strip()
    correct += bool(best and best not in _split_answers(doc["Correct Answers"]))
    return [1] * correct + [0] * (n - correct)


def _one_hot(n: int, gold: int) -> list[int]:
    return [int(i == gold) for i in range(n)]


def _mbpp_test(docs: list[dict]) -> list[dict]:
    return [d for d in docs if 11 <= int(d["task_id"]) <= 510]


def _mbpp_shots(docs: list[dict]) -> list[dict]:
    return [d for d in docs if 1 <= int(d["task_id"]) <= 10]


def _held_back(docs: list[dict]) -> tuple[list[dict], list[dict]]:
    order = list(range(len(docs)))
    random.Random(DATA_SEED).shuffle(order)
    pool = set(order[:FEWSHOT_POOL])
    return [d for i, d in enumerate(docs) if i not in pool], [docs[i] for i in sorted(pool)]


TASKS: dict[str, Task] = {t.name: t for t in [
    Task("gsm8k", "generate", "gsm8k_exact_match", ("exact_match",), _gsm8k_q,
         shot=lambda d: f"{_gsm8k_q(d)} {d['answer']}", target=lambda d: d["answer"].split("####")[-1].strip(),
         stop=("Question:", "</s>", "<|im_end|>", "\n\n\n"), max_new_tokens=256),
    Task("math", "generate", "math_equivalence", ("exact_match",), _math_q,
         target=_math_target, stop=("Problem:", "</s>", "<|im_end|>"), max_new_tokens=512),
    Task("math500", "generate", "math_equivalence", ("exact_match",), _math_q,
         target=_math_target, stop=("Problem:", "</s>", "<|im_end|>"), max_new_tokens=512),
    Task("humaneval", "code", "code_pass_at_k", ("pass@1",), lambda d: d["prompt"],
         program=_humaneval_program, stop=("\nclass", "\ndef", "\n#", "\nif", "\nprint"), max_new_tokens=512),
    Task("mbpp", "code", "code_pass_at_k", ("pass@1",), _mbpp_q,
         shot=lambda d: f"{_mbpp_q(d)}{d['code']}\n[DONE]", program=_mbpp_program, stop=("[DONE]",),
         max_new_tokens=512, select=_mbpp_test, shot_pool=_mbpp_shots),
    Task("mmlu", "loglik", "multiple_choice", ("acc",), _mmlu_q,
         shot=lambda d: f"{_mmlu_q(d)} {_LETTERS[d['answer']]}", choices=lambda d: [" A", " B", " C", " D"],
         labels=lambda d: _one_hot(4, d["answer"]), same_key="subject",
         description=_mmlu_description),
    Task("hellaswag", "loglik", "multiple_choice", ("acc_norm", "acc"),
         lambda d: d["ctx"], shot=lambda d: f"{d['ctx']} {d['endings'][d['label']]}",
         choices=lambda d: [" " + e for e in d["endings"]], labels=lambda d: _one_hot(4, d["label"])),
    Task("boolq", "loglik", "multiple_choice", ("acc",), _boolq_q,
         shot=lambda d: f"{_boolq_q(d)} {'yes' if d['answer'] else 'no'}", choices=lambda d: [" no", " yes"],
         labels=lambda d: _one_hot(2, int(bool(d["answer"])))),
    Task("truthfulqa", "loglik", "multiple_choice", ("mc2", "mc1"),
         lambda d: f"Q: {d['Question']}\nA:", choices=_truthfulqa_choices, labels=_truthfulqa_labels),
    Task("nq_open", "generate", "nq_exact_match", ("exact_match",), _nq_q,
         shot=lambda d: f"{_nq_q(d)} {d['answer'][0]}", target=lambda d: list(d["answer"]),
         stop=("\n", ".", ","), max_new_tokens=32),
    Task("mt_bench", "judge", "judge_score", ("judge_score",), lambda d: d["turns"][0],
         max_new_tokens=MT_ANSWER_TOKENS),
    Task("alpaca_eval_v2", "judge", "win_rate", ("win_rate",), lambda d: d["instruction"],
         max_new_tokens=ALPACA_ANSWER_TOKENS),
]}


def record_task(bench: Benchmark) -> Task:
    """The multiple-choice task a registry record describes in its `task:` section (no code of its own): the
    prompt and choices are format strings over a record's fields (or `choices` names a list field, each choice
    then preceded by a space, as lm-eval's target delimiter), `label` the field with the right choice's index.

    Raises:
        HubkitError: the record declares a metric the multiple-choice scorer does not report.
    """
    mc = bench.task
    assert mc is not None
    scored = ("acc", "acc_norm", "mc1", "mc2")
    unknown = [m for m in bench.metrics if m not in scored]
    if unknown:
        raise HubkitError(f"{bench.file}: a multiple-choice task reports {', '.join(scored)}, not {unknown[0]!r}")

    def prompt(doc: dict) -> str:
        return mc.prompt.format(**doc)

    def choices(doc: dict) -> list[str]:
        if isinstance(mc.choices, str):
            return [" " + str(c) for c in doc[mc.choices]]
        return [str(c).format(**doc) for c in mc.choices]

    def labels(doc: dict) -> list[int]:
        return _one_hot(len(choices(doc)), int(doc[mc.label]))

    return Task(bench.id, "loglik", "multiple_choice", (bench.headline, *[m for m in bench.metrics
                                                                         if m != bench.headline]),
                prompt, shot=lambda d: prompt(d) + choices(d)[int(d[mc.label])], choices=choices, labels=labels)


def tasks() -> dict[str, Task]:
    """Every task: hubkit's own (`TASKS`), then one per registry record with a `task:` section."""
    return {**TASKS, **{b.id: record_task(b) for b in BENCHMARKS.values() if b.task is not None and b.id not in TASKS}}


@dataclass(frozen=True)
class BenchmarkRun:
    """A task as a suite runs it: shot count, how many records (None: all) and the generation budget."""

    task: Task
    n_shot: int
    limit: int | None = None
    max_new_tokens: int | None = None

    @property
    def name(self) -> str:
        return self.task.name

    def settings(self) -> dict[str, Any]:
        """What determines the per-sample results, beyond the model (the cache key)."""
        return {"task": self.task.name, "version": self.task.version, "n_shot": self.n_shot, "limit": self.limit,
                "max_new_tokens": self.max_new_tokens or self.task.max_new_tokens}


STUDY_ORDER = ("gsm8k", "math", "humaneval", "mbpp", "mmlu", "hellaswag", "boolq", "truthfulqa", "nq_open")
# `quick`: a few records of each benchmark with shorter answers, for CPUs and CI (minutes on a 135M model)
QUICK = {"gsm8k": (4, 8, 96), "math500": (0, 8, 96), "humaneval": (0, 8, 128), "mbpp": (4, 8, 96),
         "mmlu": (5, 16, None), "hellaswag": (10, 16, None), "boolq": (5, 16, None), "truthfulqa": (0, 16, None),
         "nq_open": (1, 16, 16)}
# `tiny`: the four multiple-choice benchmarks the study also reports 0-shot, 8 records each: about half a
# minute per model for a 135M model on 2 CPU cores (what `hubkit quickstart` runs)
TINY = {"mmlu": (0, 8, None), "hellaswag": (0, 8, None), "boolq": (0, 8, None), "truthfulqa": (0, 8, None)}
# `judge`: MT-Bench and AlpacaEval 2 in full, graded by an LLM judge (FastChat's and AlpacaEval's answer budgets)
JUDGE = {"mt_bench": (0, None, None), "alpaca_eval_v2": (0, None, None)}
NAMED: dict[str, dict[str, tuple]] = {"quick": QUICK, "tiny": TINY, "judge": JUDGE}  # (shots, limit, max tokens)


def suites() -> tuple[str, ...]:
    """Every name `get_suite` takes: the named suites, then each benchmark with a task (registry records included)."""
    return ("study", *NAMED, *tasks())



def get_suite(name: str, limit: int | None = None, n_shot: int | None = None) -> list[BenchmarkRun]:
    """The benchmarks of a suite: `study` (all, full size), `quick` / `tiny` (small subsets), `judge` (MT-Bench and
    AlpacaEval 2) or one benchmark.

    A comma-separated list of names (`gsm8k,mmlu`) is a suite too. `limit` caps every benchmark's
    records; `n_shot` overrides every benchmark's shot count.

    Raises:
        HubkitError: an unknown suite or benchmark.
    """
    check()
    known = tasks()
    runs: list[BenchmarkRun] = []
    for part in [p.strip() for p in name.split(",") if p.strip()] or [""]:
        if part == "study":
            runs += [BenchmarkRun(TASKS[t], TASKS[t].n_shot) for t in STUDY_ORDER]
        elif part in NAMED:
            runs += [BenchmarkRun(TASKS[t], s, n, m) for t, (s, n, m) in NAMED[part].items()]
        elif part in known:
            runs.append(BenchmarkRun(known[part], known[part].n_shot))
        else:
            from ..utils import did_you_mean

            raise HubkitError(f"unknown suite or benchmark '{part}'{did_you_mean(part, suites())} "
                              f"(known: {', '.join(suites())})")
    if limit is not None:
        runs = [replace(r, limit=min(limit, r.limit) if r.limit else limit) for r in runs]
    if n_shot is not None:
        runs = [replace(r, n_shot=n_shot) for r in runs]
    return runs


@dataclass
class Instance:
    """One evaluated record: its position in the benchmark, the record, and the prompt the model sees."""

    doc_id: int
    doc: dict
    prompt: str
    requests: list[tuple[str, str]] = field(default_factory=list)


def evaluable(run: BenchmarkRun, docs: list[dict], shot_docs: list[dict] | None) -> tuple[list[dict], list[dict]]:
    """(the records the benchmark evaluates in full, the pool its shots come from).

    Its length is the benchmark's size as scores report it (`n_total`): MBPP's test ids, or a split less
    the records held back as shots.
    """
    task = run.task
    if task.select:
        return task.select(docs), task.shot_pool(docs) if task.shot_pool else []
    if shot_docs is None:
        return _held_back(docs) if run.n_shot else (docs, [])
    return docs, shot_docs


def build_instances(run: BenchmarkRun, docs: list[dict], shot_docs: list[dict] | None) -> list[Instance]:
    """The records `run` evaluates, each with its few-shot prompt, in a model-independent order.

    Args:
        run: the benchmark as the suite runs it.
        docs: the records of the evaluated split.
        shot_docs: the records of the shots split, when the task has one.
    """
    task = run.task
    docs, pool = evaluable(run, docs, shot_docs)
    order = list(range(len(docs)))
    if run.limit is not None and run.limit < len(docs):
        random.Random(DATA_SEED).shuffle(order)
        order = sorted(order[:run.limit])
    out = []
    for i in order:
        doc = docs[i]
        candidates = [d for d in pool if not task.same_key or d.get(task.same_key) == doc.get(task.same_key)]
        shots = random.Random(DATA_SEED + i).sample(candidates, min(run.n_shot, len(candidates))) \
            if run.n_shot and candidates else []
        shot = task.shot
        prefix = (task.description(doc) if task.description else "") + \
            ("".join(shot(s) + task.separator for s in shots) if shot else "")
        prompt = prefix + task.prompt(doc)
        requests = [(prompt, c) for c in _choices(task, doc)] if task.kind == "loglik" else []
        out.append(Instance(i, doc, prompt, requests))
    return out


def _choices(task: Task, doc: dict) -> list[str]:
    assert task.choices is not None, f"{task.name}: a loglik task has choices"
    return task.choices(doc)
