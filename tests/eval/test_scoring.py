"""Known-answer tests for the scorers and their local `evaluate` modules, on the real benchmark files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from hubkit.errors import HubkitError
from hubkit.eval.metrics import METRICS, load_metric, metric_path
from hubkit.eval.scoring import gsm8k_match, math_match, math_normalize, nq_match, squad_normalize

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def _jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def gsm8k():
    return _jsonl(DATA / "gsm8k" / "test.jsonl")


def _shifted(items, key):
    """Pairs of (item, a different item's gold) where the two golds differ."""
    return [(a, b[key]) for a, b in zip(items, items[1:] + items[:1]) if a[key] != b[key]]


def test_gsm8k_gold_scores_100_and_wrong_scores_0(gsm8k):
    golds = [t["answer"].split("####")[-1].strip() for t in gsm8k]
    assert all(gsm8k_match(t["answer"], g) for t, g in zip(gsm8k, golds))
    wrong = [(t["answer"], g) for t, g, right in zip(gsm8k, golds[1:] + golds[:1], golds) if g != right]
    assert wrong and not any(gsm8k_match(p, g) for p, g in wrong)
    for garbage in ("", "no idea", "\x00\x01", "####"):
        assert not gsm8k_match(garbage, "18")
    assert gsm8k_match("The answer is $1,234.00.", "1234") and gsm8k_match("so -3.5 is it", "-3.50")


def test_gsm8k_extraction_agrees_with_the_released_correctness_labels():
    """OpenAI's 4 x 1,319 model solutions carry human-checked is_correct labels."""
    solutions = _jsonl(DATA / "gsm8k" / "example_model_solutions.jsonl.gz")
    for model in ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"):
        agree = [gsm8k_match(s[model]["solution"], s["ground_truth"]) == s[model]["is_correct"] for s in solutions]
        assert all(agree), model


def test_math500_reference_solutions_match_their_answers_and_not_others():
    items = _jsonl(DATA / "math500" / "test.jsonl")
    assert all(math_match(x["solution"], x["answer"]) for x in items)
    wrong = [(x["solution"], other) for x, other in _shifted(items, "answer")
             if math_normalize(other) != math_normalize(x["answer"])]
    assert not any(math_match(p, g) for p, g in wrong)
    assert math_match("$\\boxed{\\dfrac12}$", "\\frac{1}{2}") and math_match("\\boxed{0.5}", "\\frac12")
    assert math_match("\\boxed{10^\\circ}", "10") and not math_match("no box here", "1")


def test_nq_gold_answers_match_and_others_do_not():
    items = [q for q in _jsonl(DATA / "nq_open" / "NQ-open.dev.jsonl") if squad_normalize(q["answer"][0])]
    assert len(items) >= 3600
    assert all(nq_match(q["answer"][0] + "\nmore text", q["answer"]) for q in items)
    wrong = [(q["answer"][0], other["answer"]) for q, other in zip(items, items[1:])
             if not {squad_normalize(a) for a in q["answer"]} & {squad_normalize(a) for a in other["answer"]}]
    assert not any(nq_match(p, golds) for p, golds in wrong)
    assert nq_match("The Beatles.", ["beatles"]) and not nq_match("", ["x"])


def test_local_evaluate_modules_load_offline_and_agree(gsm8k):
    for name in METRICS:
        assert Path(metric_path(name)).is_file()
    metric = load_metric("gsm8k_exact_match")
    preds = [t["answer"] for t in gsm8k[:40]]
    golds = [t["answer"].split("####")[-1].strip() for t in gsm8k[:40]]
    assert metric.compute(predictions=preds, references=golds)["exact_match"] == 1.0
    wrong = [(p, g) for p, g, right in zip(preds, golds[1:] + golds[:1], golds) if g != right]
    assert metric.compute(predictions=[p for p, _ in wrong], references=[g for _, g in wrong])["exact_match"] == 0.0
    nq = load_metric("nq_exact_match")
    assert nq.compute(predictions=["Bobby Scott", "Paris"], references=[["Bob Russell", "Bobby Scott"], ["Rome"]]) \
        == {"exact_match": 0.5}
    math = load_metric("math_equivalence")
    assert math.compute(predictions=["$\\boxed{3}$"], references=["3"]) == {"exact_match": 1.0}
    with pytest.raises(HubkitError, match="unknown metric 'bleu'"):
        metric_path("bleu")
