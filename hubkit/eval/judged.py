"""Judged benchmarks: MT-Bench (2 turns, graded 1–10) and AlpacaEval 2 (preference against reference outputs).

The evaluated model answers; an LLM judge (`hubkit.eval.judge`) grades. Both follow their published protocols,
with the prompts read from the seeded data, never rewritten here:

**MT-Bench** (FastChat `llm_judge`): the model answers both turns of 80 questions with its chat template,
greedily (FastChat samples some categories at temperature 0.7; greedy keeps scores reproducible). The judge
grades each turn with FastChat's single-answer prompts — `single-v1` / `single-v1-multi-turn`, and
`single-math-v1*` with GPT-4's reference answers for math, reasoning and coding — at temperature 0. The
rating is read from `[[n]]` (then `[n]`) and kept whatever its value, as FastChat does; a judgment without one
is FastChat's −1: `failed`, left out of the mean. Option (`--mt-bench-follow-up`, not FastChat's): one
follow-up turn asks for the number alone and takes the expectation of 1–10 under the judge's first-token
probabilities — small local judges rarely write `[[n]]`. Every rating records which way it was read (`parsed`,
`follow-up`, `failed`) and the results count them. `mt_bench` is the mean of all ratings of both turns;
`mt_bench_<category>` the mean within a category (10 questions each). Scale: 1–10.

**AlpacaEval 2** (`weighted_alpaca_eval_gpt4_turbo`): the model answers 805 instructions; the judge sees the
instruction, the reference output (GPT-4 Turbo, `gpt4_1106_preview`) and the model's, as `m` and `M` in a
per-instruction seeded random order, and answers one token. The preference is the judge's probability of the
model's identifier among the two tokens `m` and `M` exactly, from the first position's `top_logprobs` (as
AlpacaEval's `logprob_parser`; with neither among them there is no preference). An output identical to the
reference is a tie, 1.5, without asking the judge (as AlpacaEval). `alpaca_eval_v2` is the win rate: the mean
preference, in percent. `alpaca_eval_v2_lc` is the length-controlled win rate (`length_controlled_winrate`):
AlpacaEval's `length_controlled_v1` GLM, `tanh(std_delta_len) + instruction_difficulty + not_gamed_baseline − 1`,
fit to the preferences with C chosen by 5-fold cross-validation (`--lc-folds 0`: a fixed C = 100) and predicted
with no length difference. The instruction-difficulty term and the regularisation towards AlpacaEval's gamed
baselines need AlpacaEval's published `instruction_difficulty.csv` and `df_gamed.csv` (`--lc-tables DIR`);
without them the row is not published, because the length term alone is not identified for one model
(on the stored alpaca-7b judgements it gives 19.8 where the official LC is 5.9).

**Grades, cached and kept.** Grades are cached per model answers and per judge key: the judge as configured
(model id; the local judge's weights), the hash of the prompt templates, and the decoding settings — never a
value known only after a call. Each grade records the fingerprint its reply carried, and every request and reply
with its log-probabilities (the samples files keep them, so a score can be re-derived offline). A score whose
grades come from several judge fingerprints says so (`judge_versions`); `--regrade-if-changed` regrades the cached
grades whose fingerprint is not the judge's now. A request that fails (rejected, timed out after
`$HUBKIT_JUDGE_RETRIES` retries of `$HUBKIT_JUDGE_TIMEOUT` s, not JSON) is recorded against its grade with the
reason, never cached, and the suite finishes: the row counts the failed grades (`errors`) and is published as
scored on fewer samples than the benchmark has, never as the full benchmark.
Example:
    >>> from hubkit.eval.harness import evaluate_model
    >>> report = evaluate_model("my-org/run-a", suite="judge", limit=10)
    >>> report.scores["mt_bench"], report.judge.text()
    (3.4, 'HuggingFaceTB/SmolLM2-135M-Instruct (hubkit-judge-0.1.0-local-0fce86e839e6; hubkit local judge)')
"""

# size: MT-Bench and AlpacaEval 2 share one judge protocol (prompts, budgets, caching, retries, fingerprints); kept in
# one file so that the two cannot drift apart.

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import HubkitError
from .judge import Judge, JudgeFailure, Reply

MT_CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")
NEED_REFERENCE = ("math", "reasoning", "coding")  # FastChat's NEED_REF_CATS
MT_JUDGE_MAX_TOKENS = 2048  # FastChat's judge budget
ALPACA_REFERENCE = "gpt4_1106_preview"
FOLLOW_UP = "Now give only your rating of the assistant's answer: one integer from 1 to 10."
_RATING = (re.compile(r"\[\[(\d+\.?\d*)\]\]"), re.compile(r"\[(\d+\.?\d*)\]"))

ALPACA_SYSTEM = ("You are a highly efficient assistant, who evaluates and selects the best large language model "
                 "(LLMs) based on the quality of their responses to a given instruction. This process will be used "
                 "to create a leaderboard reflecting the most accurate and human-preferred answers.")
ALPACA_TEMPLATE = """I require a leaderboard for various large language models. I'll provide you with prompts given to these models and their corresponding outputs. Your task is to assess these responses, and select the model that produces the best output from a human perspective.

## Instruction

{{
    "instruction": \"\"\"{instruction}\"\"\",
}}

## Model Outputs

Here are the unordered outputs from the models. Each output is associated with a specific model, identified by a unique model identifier.

{{
    {{
        "model_identifier": "m",
        "output": \"\"\"{output_1}\"\"\"
    }},
    {{
        "model_identifier": "M",
        "output": \"\"\"{output_2}\"\"\"
    }}
}}

## Task

Evaluate the models based on the quality and relevance of their outputs, and select the model that generated the best output. Answer by providing the model identifier of the best model. We will use your output as the name of the best model, so make sure your output only contains one of the following model identifiers and nothing else (no quotes, no spaces, no new lines, ...): m or M.

## Best Model Identifier"""


# -- MT-Bench --------------------------------------------------------------------------------------------

def parse_rating(judgment: str) -> float | None:
    """FastChat's rating: the number in `[[n]]`, else in `[n]`, whatever its value (FastChat keeps a `[[0]]` or an
    `[[11]]`); None when there is neither (FastChat's −1)."""
    for pattern in _RATING:
        found = pattern.search(judgment)
        if found:
            try:
                return float(found.group(1))
            except ValueError:
                continue
    return None


def expected_rating(top: dict[str, float] | None, first: str | None = None,
                    after: dict[str, float] | None = None) -> float | None:
    """The expected rating under a judge's first-token probabilities over `1`…`10` (renormalised), or None.

    A tokenizer that splits digits writes 10 as `1`, `0`: when the judge answered `1` first, the
    probability of `0` next (`after`) moves that share of `1`'s mass to 10.
    """
    if not top:
        return None
    weights: dict[int, float] = {}
    for token, logprob in top.items():
        text = token.strip()
        if text.isdigit() and 1 <= int(text) <= 10:
            p = math.exp(logprob)
            if text == "1" and first is not None and first.strip() == "1" and after:
                zero = sum(math.exp(v) for t, v in after.items() if t.strip() == "0" and t == t.lstrip())
                weights[10] = weights.get(10, 0.0) + p * min(zero, 1.0)
                p *= 1.0 - min(zero, 1.0)
            weights[int(text)] = weights.get(int(text), 0.0) + p
    total = sum(weights.values())
    return sum(k * w for k, w in weights.items()) / total if total > 0 else None


def mt_bench_prompt(prompts: dict[str, dict], question: dict, answers: list[str], turn: int,
                    reference: list[str] | None) -> list[dict[str, str]]:
    """The judge's messages for one turn (0 or 1) of one question, from FastChat's published prompts."""
    reference = reference or []
    math_like = question["category"] in NEED_REFERENCE and bool(reference)
    name = ("single-math-v1" if math_like else "single-v1") + ("-multi-turn" if turn else "")
    spec = prompts.get(name)
    if spec is None:
        raise HubkitError(f"MT-Bench judge prompt {name!r} is not in the seeded judge prompts")
    q = question["turns"]
    if turn == 0:
        fields = {"question": q[0], "answer": answers[0]}
        if math_like:
            fields["ref_answer_1"] = reference[0]
    else:
        fields = {"question_1": q[0], "question_2": q[1], "answer_1": answers[0], "answer_2": answers[1]}
        if math_like:
            fields.update(ref_answer_1=reference[0], ref_answer_2=reference[1])
    return [{"role": "system", "content": spec["system_prompt"]},
            {"role": "user", "content": spec["prompt_template"].format(**fields)}]


FOLLOW_UP_LOGPROBS = 20


def asked(judge: Judge, messages: list[dict[str, str]], max_tokens: int, top_logprobs: int | None = None,
          requests: list[dict] | None = None) -> Reply:
    """`judge.chat`, with the request and its reply (text, fingerprint, every position's log-probabilities) appended
    to `requests`: what a grade's record keeps so that it can be re-derived offline."""
    reply = judge.chat(messages, max_tokens=max_tokens, top_logprobs=top_logprobs)
    if requests is not None:
        requests.append({"messages": messages, "max_tokens": max_tokens, "temperature": 0,
                         "top_logprobs": top_logprobs, "reply": reply.text, "logprobs": reply.logprobs,
                         "fingerprint": reply.fingerprint, "model": reply.model})
    return reply


def grade_turn(judge: Judge, messages: list[dict[str, str]], max_tokens: int,
               follow_up: bool = False) -> dict[str, Any]:
    """One MT-Bench grade: FastChat's parse of the judgment; with `follow_up`, when there is no rating, the
    expectation under the judge's log-probabilities for the number alone. Keeps every request and reply."""
    requests: list[dict] = []
    judgment = asked(judge, messages, max_tokens, requests=requests).text
    rating = parse_rating(judgment)
    if rating is not None or not follow_up:
        return {"rating": rating, "method": "parsed" if rating is not None else "failed", "judgment": judgment,
                "requests": requests}
    follow = asked(judge, [*messages, {"role": "assistant", "content": judgment}, {"role": "user", "content": FOLLOW_UP}],
                   2, FOLLOW_UP_LOGPROBS, requests)
    rating = rating_from_follow_up(follow.text, follow.top_logprobs, follow.first_token, follow.next_logprobs)
    return {"rating": rating, "method": "follow-up" if rating is not None else "failed", "judgment": judgment,
            "requests": requests}


def rating_from_follow_up(text: str, top: dict[str, float] | None, first: str | None,
                          after: dict[str, float] | None) -> float | None:
    """The follow-up's rating: the expectation under its log-probabilities, else the number it wrote (1–10)."""
    rating = expected_rating(top, first, after)
    if rating is None:
        rating = parse_rating(f"[[{text.strip()}]]")
        rating = rating if rating is not None and 1 <= rating <= 10 else None
    return rating


def mt_bench_metrics(samples: list[dict]) -> dict[str, dict[str, Any]]:
    """`mt_bench` and each `mt_bench_<category>`: mean rating (1–10), its standard error, and counts."""
    groups: dict[str, list[dict]] = {"mt_bench": samples}
    for c in MT_CATEGORIES:
        groups[f"mt_bench_{c}"] = [s for s in samples if s["category"] == c]
    out = {}
    for name, group in groups.items():
        graded = [s for s in group if not s.get("error")]
        ratings = [r for s in graded for r in s["ratings"] if r is not None]
        methods = [m for s in graded for m in s["methods"]]
        if not group:
            continue
        out[name] = {"judge_score": statistics.fmean(ratings) if ratings else None,
                     "judge_score_stderr": statistics.stdev(ratings) / math.sqrt(len(ratings)) if len(ratings) > 1
                     else 0.0, "questions": len(group), "grades": len(ratings),
                     "parsed": methods.count("parsed"), "follow_up": methods.count("follow-up"),
                     "failed": methods.count("failed"), "out_of_range": sum(1 for r in ratings if not 1 <= r <= 10),
                     "errors": len(group) - len(graded), "judge_versions": _versions(graded),
                     "judge_changed": sum(1 for s in graded if s.get("judge_changed"))}
    return out


def _versions(samples: list[dict]) -> dict[str, int]:
    """Judge fingerprint → how many of these grades it answered."""
    counts: dict[str, int] = {}
    for s in samples:
        if s.get("method") == "identical":  # a tie the judge was not asked about
            continue
        key = s.get("fingerprint") or "unknown"
        counts[key] = counts.get(key, 0) + 1
    return counts


# -- AlpacaEval 2 ------------------------------------------------------------------------------------------

def alpaca_order(doc_id: int, seed: int) -> bool:
    """Whether the model's output is shown first (as `m`) for this instruction: seeded, the same for every model."""
    return random.Random(seed * 1_000_003 + doc_id).random() < 0.5


def alpaca_messages(instruction: str, output_1: str, output_2: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": ALPACA_SYSTEM},
            {"role": "user", "content": ALPACA_TEMPLATE.format(instruction=instruction, output_1=output_1,
                                                               output_2=output_2)}]


def preference_from(reply_text: str, top: dict[str, float] | None, model_first: bool) -> float | None:
    """AlpacaEval's preference in [1, 2] (2: the model's output preferred), or None when the judge named neither.

    As AlpacaEval's `logprob_parser`: 1 + P(model's identifier) / (P(m) + P(M)) over the first position's top
    log-probabilities of exactly `m` and `M` (not ` M` or `m\n`); None without log-probabilities or with neither
    token among them (`reply_text` is kept in the record, not used).
    """
    model_id = "m" if model_first else "M"
    if top:
        pm, pM = math.exp(top.get("m", -math.inf)), math.exp(top.get("M", -math.inf))
        if pm + pM > 0:
            return 1.0 + (pm if model_id == "m" else pM) / (pm + pM)
    return None


def win_rate(preferences: list[float]) -> tuple[float, float]:
    """AlpacaEval's win rate and its standard error, in percent, from preferences in [1, 2]."""
    wins = [p - 1.0 for p in preferences]
    if not wins:
        return math.nan, math.nan
    se = statistics.stdev(wins) / math.sqrt(len(wins)) if len(wins) > 1 else 0.0
    return 100.0 * statistics.fmean(wins), 100.0 * se


@dataclass
class LcTables:
    """AlpacaEval's published inputs to the length-controlled GLM.

    Attributes:
        difficulty: instruction index → instruction difficulty (`instruction_difficulty.csv`).
        gamed: annotations of the gamed baselines (`df_gamed.csv`: `index`, `preference`, `std_delta_len`,
            `instruction_difficulty`, `not_gamed_baseline`).
    """

    difficulty: Any
    gamed: Any

    @classmethod
    def read(cls, folder: str | Path) -> LcTables:
        """Read `instruction_difficulty.csv` and `df_gamed.csv` from `folder`.

        Raises:
            HubkitError: a file is missing or lacks the columns the GLM needs.
        """
        import pandas as pd

        folder = Path(folder)
        try:
            difficulty = pd.read_csv(folder / "instruction_difficulty.csv", index_col=0).squeeze("columns")
            gamed = pd.read_csv(folder / "df_gamed.csv")
        except (OSError, ValueError, pd.errors.ParserError) as e:
            raise HubkitError(f"--lc-tables {folder.name}: {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
        needed = {"index", "preference", "std_delta_len", "instruction_difficulty", "not_gamed_baseline"}
        if not needed <= set(gamed.columns):
            raise HubkitError(f"--lc-tables {folder.name}: df_gamed.csv lacks {sorted(needed - set(gamed.columns))[0]}")
        return cls(difficulty, gamed)


LC_SPLITS = 5  # AlpacaEval's `length_controlled_v1`: C chosen by 5-fold cross-validation (`n_splits=5`)


def _logloss_continuous(y_true, y_pred, true_prob, true_sample_weight=None):
    """AlpacaEval's cross-validation score: the log loss against the soft label each duplicated row stands for."""
    import numpy as np

    target = np.where(y_true == 1, true_prob, 1 - true_prob)
    y_pred = np.clip(y_pred, 1e-15, 1 - 1e-15)
    losses = target * np.log(y_pred) + (1 - target) * np.log(1 - y_pred)
    if true_sample_weight is not None:
        losses = losses * true_sample_weight
    return -np.mean(losses)


def length_controlled_win_rate(preferences: list[float], model_lengths: list[int], reference_lengths: list[int],
                               indices: list[int], tables: LcTables, regularize: float = 0.2,
                               n_splits: int = LC_SPLITS, C: float = 100.0) -> float:
    """AlpacaEval's `length_controlled_v1` win rate (percent) of one model against the reference.

    Fits `preference ~ tanh(std_delta_len) + instruction_difficulty + not_gamed_baseline − 1` by L1 logistic
    regression on soft labels (the model's annotations with weight 1, the gamed baselines' with `regularize / 2`),
    then predicts every instruction with no length difference and averages. As AlpacaEval does, the penalty C is
    chosen by `n_splits`-fold cross-validation (grouped so that both copies of a soft label stay in one fold,
    scored by the soft-label log loss, over scikit-learn's 10 default values); `n_splits=0` fits the fixed `C`
    instead (AlpacaEval's `n_splits=0`, not its default).

    Args:
        preferences: in [1, 2] per instruction (2: the model preferred).
        model_lengths, reference_lengths: output lengths in characters.
        indices: each instruction's position in the 805 (the difficulty table's index).
        tables: AlpacaEval's published tables.
        n_splits: cross-validation folds (0: no cross-validation, `C` fixed).
    """
    import numpy as np
    import pandas as pd
    import sklearn
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    delta = np.asarray(reference_lengths, float) - np.asarray(model_lengths, float)
    std = delta.std(ddof=1) if len(delta) > 1 and delta.std(ddof=1) > 0 else 1.0
    own = pd.DataFrame({"preference": np.asarray(preferences, float) - 1.0, "std_delta_len": delta / std,
                        "instruction_difficulty": [float(tables.difficulty[i]) for i in indices],
                        "not_gamed_baseline": 1.0})
    gamed = tables.gamed.assign(not_gamed_baseline=tables.gamed["not_gamed_baseline"].astype(float))
    data = pd.concat([gamed[own.columns], own], ignore_index=True)
    weight = np.where(data["not_gamed_baseline"] > 0, 1.0, regularize / 2)

    def design(frame):
        return np.column_stack([np.tanh(frame["std_delta_len"]), frame["instruction_difficulty"],
                                frame["not_gamed_baseline"]])

    X, y = design(data), data["preference"].clip(0, 1).to_numpy()
    X2 = np.vstack([X, X])  # soft labels: each row once as a win (weight y) and once as a loss (weight 1 − y)
    y2 = np.concatenate([np.ones(len(y)), np.zeros(len(y))])
    w2 = np.concatenate([y * weight, (1 - y) * weight])
    common = {"solver": "liblinear", "fit_intercept": False, "random_state": 123, "dual": False}
    if n_splits > 0:
        from sklearn.metrics import make_scorer
        from sklearn.model_selection import GroupKFold

        with sklearn.config_context(enable_metadata_routing=True):
            scorer = make_scorer(_logloss_continuous, response_method="predict_proba", greater_is_better=False)
            scorer = scorer.set_score_request(true_sample_weight=True, true_prob=True)
            model = LogisticRegressionCV(cv=GroupKFold(n_splits=n_splits), scoring=scorer, l1_ratios=(1.0,),
                                         use_legacy_attributes=False, **common)
            model.set_fit_request(sample_weight=True)
            model.fit(X2, y2, sample_weight=w2, groups=np.concatenate([np.arange(len(y))] * 2),
                      true_sample_weight=np.concatenate([weight, weight]), true_prob=np.concatenate([y, 1 - y]))
    else:
        model = LogisticRegression(C=C, l1_ratio=1.0, **common)
        model.fit(X2, y2, sample_weight=w2)
    test = own.assign(std_delta_len=0.0)
    return float(100.0 * model.predict_proba(design(test))[:, 1].mean())


def alpaca_metrics(samples: list[dict], tables: LcTables | None, lc_folds: int = LC_SPLITS) -> dict[str, dict[str, Any]]:
    """`alpaca_eval_v2` (win rate) and, with AlpacaEval's tables, `alpaca_eval_v2_lc` (length-controlled)."""
    graded = [s for s in samples if not s.get("error")]
    scored = [s for s in graded if s["preference"] is not None]
    rate, se = win_rate([s["preference"] for s in scored])
    counts = {"questions": len(samples), "grades": len(scored), "failed": len(graded) - len(scored),
              "errors": len(samples) - len(graded), "judge_versions": _versions(graded),
              "judge_changed": sum(1 for s in graded if s.get("judge_changed")),
              "avg_length": round(statistics.fmean(len(s["output"]) for s in samples)) if samples else 0}
    out = {"alpaca_eval_v2": {"win_rate": rate if scored else None, "win_rate_stderr": se if scored else None,
                              "discrete_win_rate": 100.0 * statistics.fmean(
                                  1.0 if s["preference"] > 1.5 else 0.5 if s["preference"] == 1.5 else 0.0
                                  for s in scored) if scored else None, **counts}}
    if tables is not None and len(scored) > 1:
        lc = length_controlled_win_rate([s["preference"] for s in scored], [len(s["output"]) for s in scored],
                                        [len(s["reference"]) for s in scored], [s["doc_id"] for s in scored], tables,
                                        n_splits=lc_folds)
        out["alpaca_eval_v2_lc"] = {"length_controlled_winrate": lc, **counts}
    return out


# -- answering ------------------------------------------------------------------------------------------------

def answer_all(lm, conversations: list[list[dict[str, str]]], max_new_tokens: int, progress: bool,
               desc: str) -> list[str]:
    """The model's greedy replies to conversations, through its chat template (the study's
    `###Question:`/`###Answer:` template when it has none)."""
    prompts = [lm.chat_prompt(c) for c in conversations]
    templated = bool(getattr(lm.tokenizer, "chat_template", None))  # a rendered template holds its special tokens
    return [t.strip() for t in lm.generate(prompts, max_new_tokens=max_new_tokens,
                                           stop=() if templated else ("###Question:",), progress=progress,
                                           desc=desc, add_special_tokens=not templated)]


def grade_all(fn: Callable[[Any], dict], items: list, workers: int, progress: bool, desc: str,
              done: int = 0, total: int | None = None) -> list[dict]:
    """`fn` over items, `workers` at a time (a remote judge serves many requests at once), with a progress bar and,
    when `progress`, one line per grade as it lands (what it gave, or why it failed, and how long it took)."""
    import sys
    import time
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    total = total or len(items)

    def timed(item):
        started = time.monotonic()
        record = fn(item)
        return record, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
            tqdm(total=len(items), desc=desc, disable=not progress, unit="grade") as bar:
        futures = [pool.submit(timed, item) for item in items]
        out = []
        for i, f in enumerate(futures):
            record, seconds = f.result()
            out.append(record)
            if progress:
                tqdm.write(f"{desc} {done + i + 1}/{total} doc {record['doc_id']}: {_grade_text(record)} "
                           f"({seconds:.1f} s)", file=sys.stderr)
            bar.update(1)
    return out


def _grade_text(record: dict) -> str:
    if record.get("error"):
        return f"failed: {record['error']}"
    if "ratings" in record:
        return "ratings " + ", ".join("—" if r is None else f"{r:g}" for r in record["ratings"]) + \
            f" ({', '.join(record['methods'])})"
    p = record.get("preference")
    return "no preference" if p is None else f"preference {p:.3f}" + (" (identical outputs)" if record.get(
        "method") == "identical" else "")


# -- one benchmark, from answers to grades, cached ---------------------------------------------------------------

@dataclass
class JudgedContext:
    """What a judged benchmark needs beyond the model: the judge, its budget, the reference data, and the options
    that differ from the references (each off by default) or act on the cache."""

    judge: Judge
    data: Any  # harness.BenchmarkData
    judge_max_tokens: int = MT_JUDGE_MAX_TOKENS
    workers: int = 1
    lc_tables: LcTables | None = None
    follow_up: bool = False  # MT-Bench: hubkit's follow-up for a judgment without a rating (FastChat: failed)
    regrade_if_changed: bool = False  # regrade cached grades whose judge fingerprint is not the judge's now
    lc_folds: int = LC_SPLITS  # AlpacaEval LC: cross-validation folds for C (0: fixed C = 100)


def _reference_answers(ctx: JudgedContext) -> dict[int, list[str]]:
    refs, _ = ctx.data.split("mt_bench", "test", "mt_bench", config="reference")
    return {int(r["question_id"]): list(r["choices"][0]["turns"]) for r in refs}


def _judge_prompts(ctx: JudgedContext) -> dict[str, dict]:
    prompts, _ = ctx.data.split("mt_bench", "train", "mt_bench", config="judge_prompts")
    return {p["name"]: p for p in prompts}


def grade_key(name: str, ctx: JudgedContext, prompts: dict[str, dict] | None = None) -> dict[str, Any]:
    """What a cached grade depends on, all known before any call: the judge as configured, the hash of the prompt
    templates, the decoding settings."""
    if name == "mt_bench":
        templates = json.dumps({"prompts": prompts or {}, "follow_up": FOLLOW_UP if ctx.follow_up else None},
                               sort_keys=True)
        decoding = {"temperature": 0, "max_tokens": ctx.judge_max_tokens,
                    "follow_up": {"max_tokens": 2, "top_logprobs": FOLLOW_UP_LOGPROBS} if ctx.follow_up else None}
    else:
        templates = json.dumps({"system": ALPACA_SYSTEM, "template": ALPACA_TEMPLATE})
        decoding = {"temperature": 0, "max_tokens": 1, "top_logprobs": ALPACA_LOGPROBS}
    return {"judge": ctx.judge.cache_key, "templates": hashlib.sha256(templates.encode()).hexdigest()[:16],
            "decoding": decoding}


ALPACA_LOGPROBS = 5  # weighted_alpaca_eval_gpt4_turbo's top_logprobs


def _probe_fingerprint(judge: Judge) -> str | None:
    """The judge's fingerprint now: the local judge's weights, else what a one-token request answers with."""
    from .judge import LOCAL

    if judge.served_by != LOCAL:
        try:
            judge.chat([{"role": "user", "content": "Say OK."}], max_tokens=1)
        except JudgeFailure:
            return None
    return judge.fingerprint


def run_judged(run, instances: list, lm: Callable[[], Any], cache: Path, ctx: JudgedContext, batch_size: int,
               progress: bool, read_cache: Callable, append: Callable) -> list[dict]:
    """Per-sample records of a judged benchmark: answers (cached per model and settings), then grades (cached per
    model, settings and judge key: `grade_key`), so an interrupted run resumes and a new judge, template or
    decoding setting regrades without regenerating answers. A grade whose request failed is recorded with its
    reason (`error`) and not cached.

    Args:
        run: the benchmark as the suite runs it (`mt_bench` or `alpaca_eval_v2`).
        instances: the records to evaluate, in order (`tasks.build_instances`).
        lm: returns the loaded model (loaded only when answers are missing).
        cache: the settings' cache path (`<key>.jsonl`); answers and grades go beside it.
    """
    from .tasks import DATA_SEED

    name = run.task.name
    answers = _answers(run, instances, lm, cache, batch_size, progress, read_cache, append)

    refs, prompts = (_reference_answers(ctx), _judge_prompts(ctx)) if name == "mt_bench" else ({}, {})
    key = grade_key(name, ctx, prompts)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", ctx.judge.model)[:60]
    grades_path = cache.with_name(f"{cache.stem}.judge-{slug}-{digest}.jsonl")
    grades = read_cache(grades_path)
    wanted = {inst.doc_id for inst in instances}
    # grades reused from the cache: is the judge still the version that made them? (one 1-token request)
    now = _probe_fingerprint(ctx.judge) if wanted & set(grades) else None
    stale = {d for d, g in grades.items() if now and g.get("fingerprint") and g["fingerprint"] != now}
    todo = [inst for inst in instances if inst.doc_id not in grades or (ctx.regrade_if_changed and inst.doc_id in stale)]
    if name == "mt_bench":
        def grade(inst) -> dict:
            try:
                turns = [grade_turn(ctx.judge, mt_bench_prompt(prompts, inst.doc, answers[inst.doc_id], t,
                                                                refs.get(int(inst.doc["question_id"]))),
                                    ctx.judge_max_tokens, ctx.follow_up) for t in (0, 1)]
            except JudgeFailure as e:
                return {"doc_id": inst.doc_id, "error": str(e)}
            replies = [r for t in turns for r in t["requests"]]
            return {"doc_id": inst.doc_id, "ratings": [t["rating"] for t in turns],
                    "methods": [t["method"] for t in turns], "judgments": [t["judgment"] for t in turns],
                    "fingerprint": next((r["fingerprint"] for r in reversed(replies) if r["fingerprint"]), None),
                    "requests": replies}
    else:
        def grade(inst) -> dict:
            model_first = alpaca_order(inst.doc_id, DATA_SEED)
            ours, ref = answers[inst.doc_id][0], inst.doc["output"]
            if ours == ref:  # AlpacaEval: identical outputs are a tie, not a question for the judge
                return {"doc_id": inst.doc_id, "preference": 1.5, "model_first": model_first, "judge_answer": None,
                        "method": "identical", "fingerprint": None, "requests": []}
            requests: list[dict] = []
            messages = alpaca_messages(inst.doc["instruction"], *((ours, ref) if model_first else (ref, ours)))
            try:
                reply = asked(ctx.judge, messages, 1, ALPACA_LOGPROBS, requests)
            except JudgeFailure as e:
                return {"doc_id": inst.doc_id, "error": str(e)}
            return {"doc_id": inst.doc_id, "preference": preference_from(reply.text, reply.top_logprobs, model_first),
                    "model_first": model_first, "judge_answer": reply.text, "method": "logprobs",
                    "fingerprint": reply.fingerprint, "requests": requests}
    step = max(1, ctx.workers) * 4
    failed: dict = {}
    for start in range(0, len(todo), step):  # each chunk is cached once graded; failures are not
        records = grade_all(grade, todo[start:start + step], ctx.workers, progress, f"judging {name}", start, len(todo))
        good = [r for r in records if not r.get("error")]
        append(grades_path, good)
        grades.update({r["doc_id"]: r for r in good})
        failed.update({r["doc_id"]: r for r in records if r.get("error")})

    out = []
    for inst in instances:
        g = failed.get(inst.doc_id) or grades[inst.doc_id]
        if name == "mt_bench":
            base = {"doc_id": inst.doc_id, "question_id": inst.doc["question_id"], "category": inst.doc["category"],
                    "prompt": inst.doc["turns"], "output": answers[inst.doc_id]}
            if g.get("error"):
                out.append({**base, "error": g["error"], "ratings": [None, None], "methods": [], "score": None})
                continue
            valid = [r for r in g["ratings"] if r is not None]
            out.append({**base, "ratings": g["ratings"], "methods": g["methods"], "judgments": g["judgments"],
                        "fingerprint": g.get("fingerprint"), "judge_changed": _changed(g, now),
                        "requests": g.get("requests", []), "score": statistics.fmean(valid) if valid else None})
        else:
            base = {"doc_id": inst.doc_id, "prompt": inst.doc["instruction"], "output": answers[inst.doc_id][0],
                    "reference": inst.doc["output"]}
            if g.get("error"):
                out.append({**base, "error": g["error"], "preference": None, "score": None})
                continue
            out.append({**base, "preference": g["preference"], "model_first": g["model_first"],
                        "judge_answer": g["judge_answer"], "method": g.get("method"),
                        "fingerprint": g.get("fingerprint"), "judge_changed": _changed(g, now),
                        "requests": g.get("requests", []),
                        "score": None if g["preference"] is None else g["preference"] - 1.0})
    return out


def _answers(run, instances: list, lm: Callable[[], Any], cache: Path, batch_size: int, progress: bool,
             read_cache: Callable, append: Callable) -> dict[Any, list[str]]:
    """The model's answers per record (both turns for MT-Bench), generated only where the cache lacks them."""
    name = run.task.name
    budget = run.max_new_tokens or run.task.max_new_tokens
    answers_path = cache.with_name(cache.stem + ".answers.jsonl")
    answers = {k: v["answers"] for k, v in read_cache(answers_path).items()}
    todo = [inst for inst in instances if inst.doc_id not in answers]
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        model = lm()
        if name == "mt_bench":
            first = answer_all(model, [[{"role": "user", "content": i.doc["turns"][0]}] for i in chunk], budget,
                               progress, f"{name} turn 1")
            second = answer_all(model, [[{"role": "user", "content": i.doc["turns"][0]},
                                         {"role": "assistant", "content": a},
                                         {"role": "user", "content": i.doc["turns"][1]}] for i, a in zip(chunk, first)],
                                budget, progress, f"{name} turn 2")
            records = [{"doc_id": i.doc_id, "answers": [a, b]} for i, a, b in zip(chunk, first, second)]
        else:
            outs = answer_all(model, [[{"role": "user", "content": i.doc["instruction"]}] for i in chunk], budget,
                              progress, name)
            records = [{"doc_id": i.doc_id, "answers": [a]} for i, a in zip(chunk, outs)]
        append(answers_path, records)
        answers.update({r["doc_id"]: r["answers"] for r in records})
    return answers


def _changed(grade: dict, now: str | None) -> bool:
    """Whether a grade was made by another version of the judge than the one answering now."""
    return bool(now and grade.get("fingerprint") and grade["fingerprint"] != now)


def judged_metrics(run, samples: list[dict], tables: LcTables | None,
                   lc_folds: int = LC_SPLITS) -> dict[str, dict[str, Any]]:
    """Benchmark name → metrics (main metric first) of a judged benchmark's samples."""
    return mt_bench_metrics(samples) if run.task.name == "mt_bench" else alpaca_metrics(samples, tables, lc_folds)


#: What a judged benchmark's metrics carry beside its metrics: grade counts (not scores; kept in the results file's
#: metadata).
COUNTS = ("questions", "grades", "parsed", "follow_up", "failed", "out_of_range", "errors", "judge_versions",
          "judge_changed", "avg_length")


def category_totals(docs: list[dict]) -> dict[str, int]:
    """How many questions each MT-Bench row covers in the whole benchmark."""
    totals = {"mt_bench": len(docs)}
    for c in MT_CATEGORIES:
        totals[f"mt_bench_{c}"] = sum(1 for d in docs if d.get("category") == c)
    return totals
