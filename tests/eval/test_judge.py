"""Judged benchmarks: MT-Bench and AlpacaEval 2 graded through an OpenAI-compatible endpoint.

The judge is always a real HTTP server spoken to by the `openai` client: `hubkit judge serve` (SmolLM2) as a
process of its own, or hubkit's judge server in this process with a scripted model whose grades are known,
so that the scores can be checked exactly.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hubkit.eval.judge_server import Completion, JudgeServer
from hubkit.eval.judged import (
    LcTables,
    alpaca_order,
    expected_rating,
    length_controlled_win_rate,
    parse_rating,
    preference_from,
    win_rate,
)
from hubkit.eval.tasks import DATA_SEED
from hubkit.hub.seed import find_data_dir

SHARED = find_data_dir()
SECRET = "sk-test-judge-key-4f1c9a"


class ScriptedModel:
    """A judge with known answers: MT-Bench turn 1 gets [[8]], turn 2 (the multi-turn prompt) no rating and a
    follow-up whose top log-probabilities put 0.75 on `4` and 0.25 on `6` (expectation 4.5); AlpacaEval gets
    P(m) = 0.8, P(M) = 0.2."""

    name = "scripted/judge-1"
    fingerprint = "fp_scripted_1"

    def __init__(self):
        self.requests: list[list[dict]] = []

    def complete(self, messages, max_tokens, top_logprobs=None, stop=None) -> Completion:
        self.requests.append(messages)
        text = messages[-1]["content"]
        if "Best Model Identifier" in text:
            return Completion("m", "length", 10, [_tok("m", 0.8, {"m": 0.8, "M": 0.2})])
        if text.startswith("Now give only your rating"):
            return Completion("4", "length", 10, [_tok("4", 0.75, {"4": 0.75, "6": 0.25})])
        if "<|The Start of Assistant A's Conversation with User|>" in text:
            return Completion("The second answer is fine.", "stop", 10, [])
        return Completion("Good answer. Rating: [[8]]", "stop", 10, [])


def _tok(token: str, p: float, top: dict[str, float]) -> dict:
    return {"token": token, "logprob": math.log(p), "bytes": list(token.encode()),
            "top_logprobs": [{"token": t, "logprob": math.log(v), "bytes": list(t.encode())} for t, v in top.items()]}


@pytest.fixture
def scripted_judge(monkeypatch):
    model = ScriptedModel()
    server = JudgeServer(model, api_key=SECRET).start()
    monkeypatch.setenv("HUBKIT_JUDGE_URL", server.url + "/v1")
    monkeypatch.setenv("HUBKIT_JUDGE_MODEL", model.name)
    monkeypatch.setenv("HUBKIT_JUDGE_API_KEY", SECRET)
    yield model
    server.stop()


def _all_text(folder: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in folder.rglob("*") if p.is_file())


def test_scores_follow_the_published_protocols_exactly(hub, seeded_judged, tiny_model, tmp_path, scripted_judge):
    """MT-Bench: the mean of every turn's rating, per category too, turn 2 read by the follow-up; AlpacaEval: the
    mean preference for the model's output with the seeded order; the judge's identity in every score's provenance."""
    from hubkit.eval.harness import evaluate_model
    from hubkit.importers import lm_eval_rows

    report = evaluate_model(str(tiny_model), suite="judge", limit=6, output_dir=tmp_path / "out", compare_base=False,
                            max_new_tokens=8, progress=False, mt_bench_follow_up=True)
    assert report.scores["mt_bench"] == pytest.approx((8 + 4.5) / 2)
    mt = report.metrics["mt_bench"]
    assert (mt["questions"], mt["grades"], mt["parsed"], mt["follow_up"], mt["failed"]) == (6, 12, 6, 6, 0)
    categories = [k for k in report.scores if k.startswith("mt_bench_")]
    assert categories and all(report.scores[k] == pytest.approx(6.25) for k in categories)
    assert sum(report.sizes[k][0] for k in categories) == 6 and all(report.sizes[k][1] == 10 for k in categories)

    expected = [1.8 if alpaca_order(i, DATA_SEED) else 1.2 for i in _alpaca_doc_ids(tmp_path / "out")]
    assert report.scores["alpaca_eval_v2"] == pytest.approx(100 * sum(p - 1 for p in expected) / len(expected))
    assert "alpaca_eval_v2_lc" not in report.scores  # AlpacaEval's tables were not given: no LC row
    assert report.sizes["alpaca_eval_v2"] == (6, 805) and report.sizes["mt_bench"] == (6, 80)

    # the judge saw the published prompts: a math question with GPT-4's reference answer, a writing one without
    prompts = [m[-1]["content"] for m in scripted_judge.requests]
    assert any("[The Start of Reference Answer]" in p for p in prompts) or \
        any("<|The Start of Reference Answer|>" in p for p in prompts) or \
        not any(c in report.scores for c in ("mt_bench_math", "mt_bench_reasoning", "mt_bench_coding"))
    assert any(p.startswith("[Instruction]\nPlease act as an impartial judge") for p in prompts)

    data = json.loads(report.results_file.read_text())
    every = lm_eval_rows(data, "alice/tiny", "tiny", {}, source="hubkit")
    rows = {r.benchmark: r for r in every if r.headline}
    # AlpacaEval's discrete win rate is its own score beside the headline; the grade counts are not scores
    assert {r.metric for r in every if r.benchmark == "alpaca_eval_v2"} == {"win_rate", "discrete_win_rate"}
    assert not {r.metric for r in every} & {"questions", "grades", "parsed", "follow_up", "failed", "avg_length"}
    assert rows["mt_bench"].scale == "1-10" and rows["mt_bench"].metric == "judge_score"
    assert rows["alpaca_eval_v2"].scale == "percent" and rows["alpaca_eval_v2"].metric == "win_rate"
    assert rows["mt_bench"].subset and rows["mt_bench"].n_total == 80
    assert rows["mt_bench"].n_shot is None  # no shots, like the study's MT-Bench column
    assert rows["mt_bench"].judge == "scripted/judge-1 (fp_scripted_1; OpenAI-compatible endpoint)"
    assert all(r.judge for r in rows.values())
    text = _all_text(tmp_path / "out")
    assert SECRET not in text and os.environ["HUBKIT_JUDGE_URL"] not in text and "127.0.0.1" not in text

    # the rows flow on like any other benchmark's: card provenance, `.eval_results/`, the leaderboard's details
    from hubkit.cards import eval_results_files, measured
    from hubkit.results import rows_frame

    line = measured(rows["mt_bench"])
    assert "grade from 1 to 10 (LLM judge)" in line and "judged by scripted/judge-1 (fp_scripted_1" in line
    files = eval_results_files(list(rows.values()), "alice/tiny", include_subsets=True)
    assert "judged by scripted/judge-1" in " ".join(files[".eval_results/mt_bench-judge_score.yaml"].split())
    assert eval_results_files(list(rows.values()), "alice/tiny") == {}  # subsets stay out by default
    from hubkit.space import space_module

    Board = space_module().Board

    board = Board(rows_frame(list(rows.values())))
    details = board.details("tiny")
    assert "judged by scripted/judge\\-1" in details or "judged by scripted/judge-1" in details
    assert "grade 1–10 (LLM judge)" in details

    # a card's model-index alone rebuilds them: MT-Bench's categories share one public dataset, told by title
    from huggingface_hub import ModelCard, ModelCardData

    from hubkit.cards import eval_results
    from hubkit.space import load_board

    data = ModelCardData(base_model="alice/tiny-base", tags=["hubkit-sft"], model_name="judged-card",
                         hubkit={"run_id": "judged-card", "dataset": "lima", "tuning": "full", "epochs": 1},
                         eval_results=eval_results(list(rows.values())))
    hub.api("bob").create_repo("bob/judged-card", exist_ok=True)
    ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n# judged\n").push_to_hub(
        "bob/judged-card", token=hub.tokens["bob"])
    rebuilt = load_board("bob/no-such-results").long
    got = dict(zip(rebuilt["benchmark"].astype(str), rebuilt["score"]))
    assert got == pytest.approx({r.benchmark: r.score for r in rows.values()})


def _alpaca_doc_ids(folder: Path) -> list[int]:
    path = next(folder.glob("samples_alpaca_eval_v2_*.jsonl"))
    return [json.loads(line)["doc_id"] for line in path.read_text().splitlines()]


def test_grades_are_cached_per_judge_and_answers_reused(hub, seeded_judged, tiny_model, tmp_path, scripted_judge):
    from hubkit.eval.harness import evaluate_model

    evaluate_model(str(tiny_model), suite="mt_bench", limit=2, output_dir=tmp_path / "a", compare_base=False,
                   max_new_tokens=8, progress=False)
    asked = len(scripted_judge.requests)
    evaluate_model(str(tiny_model), suite="mt_bench", limit=2, output_dir=tmp_path / "b", compare_base=False,
                   max_new_tokens=8, progress=False)
    # the same judge: every grade from the cache, and one 1-token request asking the judge for its version now
    assert len(scripted_judge.requests) == asked + 1 and scripted_judge.requests[-1][-1]["content"] == "Say OK."


def test_a_refused_key_or_unreachable_judge_is_one_line(hub, seeded_judged, tiny_model, tmp_path, scripted_judge,
                                                        monkeypatch, capsys):
    from hubkit.cli.main import main

    monkeypatch.setenv("HUBKIT_JUDGE_API_KEY", "wrong-key-77")
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(tiny_model), "--suite", "alpaca_eval_v2", "--limit", "1", "--no-gains", "--max-new-tokens",
              "4", "-o", str(tmp_path / "x"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 1 and err.count("\n") == 0
    assert "refused the key ($HUBKIT_JUDGE_API_KEY)" in err and "wrong-key-77" not in err and "127.0.0.1" not in err
    monkeypatch.setenv("HUBKIT_JUDGE_URL", "http://127.0.0.1:9/v1")  # nothing listens on the discard port
    with pytest.raises(SystemExit):
        main(["eval", str(tiny_model), "--suite", "alpaca_eval_v2", "--limit", "1", "--no-gains", "-o",
              str(tmp_path / "y"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: cannot reach the judge endpoint ($HUBKIT_JUDGE_URL)") and err.count("\n") == 0
    monkeypatch.delenv("HUBKIT_JUDGE_MODEL")
    with pytest.raises(SystemExit):
        main(["eval", str(tiny_model), "--suite", "judge", "--no-gains", "-o", str(tmp_path / "z"), "--no-progress"])
    assert "HUBKIT_JUDGE_MODEL is not" in capsys.readouterr().err


def test_the_judge_server_refuses_what_a_hostile_client_sends(scripted_judge):
    import httpx

    url = os.environ["HUBKIT_JUDGE_URL"]
    auth = {"Authorization": f"Bearer {SECRET}"}
    ok = {"model": "scripted/judge-1", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    assert httpx.post(f"{url}/chat/completions", json=ok).status_code == 401
    assert httpx.get(f"{url}/models").status_code == 401
    assert httpx.post(f"{url}/chat/completions", json=ok, headers=auth).status_code == 200
    for bad in ({**ok, "max_tokens": 10**9}, {**ok, "messages": [{"role": "root", "content": "x"}]},
                {**ok, "messages": []}, {**ok, "top_logprobs": 500, "logprobs": True}, [1, 2]):
        r = httpx.post(f"{url}/chat/completions", json=bad, headers=auth)
        assert r.status_code == 400 and r.json()["error"]["message"], bad
    r = httpx.post(f"{url}/chat/completions", content=b"x" * (5 * 2**20), headers=auth)
    assert r.status_code == 413
    r = httpx.post(f"{url}/chat/completions", json={**ok, "model": "<script>x</script>"}, headers=auth)
    assert r.status_code == 404


def test_a_hostile_judge_cannot_write_markup_into_provenance():
    from hubkit.eval.judge import Judge

    judge = Judge("http://127.0.0.1:1/v1", "m")
    judge._answered_as = "evil\n## <img src=x onerror=alert(1)> [link](javascript:x)"
    judge._fingerprint = "fp|`rm -rf`"
    text = judge.identity.text()
    assert "\n" not in text and "<" not in text and "(" not in text.split(" (", 1)[0] and "`" not in text


def test_rating_parsers_follow_fastchat():
    assert parse_rating("The answer is good. Rating: [[7]]") == 7
    assert parse_rating("Rating: [[8.5]] and [[3]]") == 8.5
    assert parse_rating("I give it [6]") == 6
    assert parse_rating("no rating here, 7/10") is None
    assert parse_rating("Rating: [[0]]") == 0 and parse_rating("[[11]]") == 11  # FastChat keeps them
    assert expected_rating({" 4": math.log(0.6), "6": math.log(0.2), "The": math.log(0.2)}) == pytest.approx(4.5)
    assert expected_rating({"The": -0.1}) is None
    # digits split: `1` then `0` is a 10, in the share the next position gives `0`
    assert expected_rating({"1": math.log(0.8), "5": math.log(0.2)}, "1", {"0": math.log(0.75), ".": math.log(0.25)}) \
        == pytest.approx(0.8 * 0.75 * 10 + 0.8 * 0.25 * 1 + 0.2 * 5)
    assert expected_rating({"10": math.log(0.5), "9": math.log(0.5)}) == pytest.approx(9.5)
    assert preference_from("M", {"m": math.log(0.3), "M": math.log(0.7)}, model_first=False) == pytest.approx(1.7)
    assert preference_from("M", {"m": math.log(0.3), "M": math.log(0.7)}, model_first=True) == pytest.approx(1.3)
    # AlpacaEval's logprob_parser: exactly `m` and `M`, from log-probabilities only
    assert preference_from("M", None, model_first=False) is None and preference_from("x", None, True) is None
    assert preference_from("M", {" M": math.log(0.6), "m": math.log(0.2), "M": math.log(0.2)}, False) == \
        pytest.approx(1.5)


def test_win_rate_reproduces_the_published_alpaca_eval_leaderboard():
    """alpaca-7b's 805 stored GPT-4 Turbo judgements give the leaderboard's win rate and standard error."""
    with gzip.open(SHARED / "alpaca_eval/results/alpaca-7b/weighted_alpaca_eval_gpt4_turbo/annotations.json.gz") as f:
        annotations = json.load(f)
    rate, se = win_rate([float(a["preference"]) for a in annotations])
    import csv

    with open(SHARED / "alpaca_eval/leaderboards/data_AlpacaEval_2/weighted_alpaca_eval_gpt4_turbo_leaderboard.csv") as f:
        row = next(r for r in csv.DictReader(f) if r[""] == "alpaca-7b")
    assert rate == pytest.approx(float(row["win_rate"]), abs=1e-9)
    assert se == pytest.approx(float(row["standard_error"]), abs=1e-9)


def test_length_controlled_win_rate_removes_a_known_length_bias(tmp_path):
    """Preferences drawn from a judge that favours longer outputs: the GLM's prediction at equal length recovers
    the win rate the judge would give without the bias, which the raw win rate overstates."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 805
    difficulty = pd.Series(rng.normal(0, 1, n), index=range(n))
    quality, slope, weight = -1.0, -1.5, 0.8  # the model's skill, the judge's length bias, the difficulty weight

    def prefs(delta_std):
        return 1 / (1 + np.exp(-(quality + slope * np.tanh(delta_std) + weight * difficulty.to_numpy())))

    ref_len = rng.integers(800, 1600, n)
    model_len = ref_len + rng.integers(200, 900, n)  # the model writes longer: the judge likes it more
    delta = (ref_len - model_len).astype(float)
    p_model = prefs(delta / delta.std(ddof=1))
    gamed_rows = []
    for factor in (0.5, 2.0):  # the reference made shorter and longer: quality fixed, only length moves
        d = (ref_len - ref_len * factor).astype(float)
        gamed_rows.append(pd.DataFrame({"index": range(n), "std_delta_len": d / d.std(ddof=1),
                                        "preference": 1 / (1 + np.exp(-(slope * np.tanh(d / d.std(ddof=1))
                                                                        + weight * difficulty.to_numpy()))),
                                        "instruction_difficulty": difficulty.to_numpy(), "not_gamed_baseline": False}))
    folder = tmp_path / "lc"
    folder.mkdir()
    difficulty.rename("instruction_difficulty").to_csv(folder / "instruction_difficulty.csv")
    pd.concat(gamed_rows).to_csv(folder / "df_gamed.csv", index=False)
    tables = LcTables.read(folder)
    truth = 100 * float(np.mean(1 / (1 + np.exp(-(quality + weight * difficulty.to_numpy())))))
    raw = win_rate(list(1 + p_model))[0]
    lc = length_controlled_win_rate(list(1 + p_model), list(model_len), list(ref_len), list(range(n)), tables)
    assert raw > truth + 10  # the bias is large
    assert abs(lc - truth) < 2.5, (lc, truth, raw)


@pytest.mark.slow
def test_judge_serve_process_grades_end_to_end(hub, seeded_judged, tiny_model, tmp_path):
    """`hubkit judge serve` (SmolLM2) as its own process; `hubkit eval --suite judge` reaches it by URL, model and
    key from the environment; the scores land in the results file with the judge's identity, and nothing written
    holds the address or the key."""
    env = {**os.environ, "HUBKIT_JUDGE_API_KEY": SECRET}
    ready = tmp_path / "judge.json"
    server = subprocess.Popen([sys.executable, "-m", "hubkit", "judge", "serve", "--port", "0", "--ready-file",
                               str(ready)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 240
        while not ready.exists():
            assert server.poll() is None, server.stdout.read()
            assert time.time() < deadline, "the judge server did not start"
            time.sleep(0.2)
        url = json.loads(ready.read_text())["url"] + "/v1"
        env.update(HUBKIT_JUDGE_URL=url, HUBKIT_JUDGE_MODEL="HuggingFaceTB/SmolLM2-135M-Instruct")
        out = tmp_path / "out"
        done = subprocess.run([sys.executable, "-m", "hubkit", "eval", str(tiny_model), "--suite", "judge", "--limit",
                               "2", "--no-gains", "--max-new-tokens", "12", "--judge-max-tokens", "16", "-o", str(out),
                               "--no-progress", "--mt-bench-follow-up"], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        said = " ".join(done.stdout.split())
        assert "Judged by HuggingFaceTB/SmolLM2-135M-Instruct (hubkit-judge-" in said, said
        assert "MT-Bench grades:" in said
        data = json.loads(next(out.glob("results_*.json")).read_text())
        assert {"mt_bench", "alpaca_eval_v2"} <= set(data["results"])
        assert 1 <= data["results"]["mt_bench"]["judge_score,none"] <= 10
        assert 0 <= data["results"]["alpaca_eval_v2"]["win_rate,none"] <= 100
        assert data["hubkit"]["judge"]["served_by"] == "OpenAI-compatible endpoint"
        assert data["configs"]["mt_bench"]["metadata"]["judge"].startswith("HuggingFaceTB/SmolLM2-135M-Instruct (")
        text = _all_text(out) + done.stdout + done.stderr
        assert SECRET not in text and url not in text
    finally:
        server.terminate()
        server.wait(timeout=30)


class SilentModel(ScriptedModel):
    """A judge that never grades: no rating, no digits, no identifier."""

    name = "silent/judge"

    def complete(self, messages, max_tokens, top_logprobs=None, stop=None) -> Completion:
        return Completion("I cannot say.", "stop", 10, [_tok("I", 0.9, {"I": 0.9, "The": 0.1})] if top_logprobs else [])


def test_a_judge_that_never_grades_publishes_no_score(hub, seeded_judged, tiny_model, tmp_path, monkeypatch):
    from hubkit.eval.harness import evaluate_model

    server = JudgeServer(SilentModel()).start()
    monkeypatch.setenv("HUBKIT_JUDGE_URL", server.url + "/v1")
    monkeypatch.setenv("HUBKIT_JUDGE_MODEL", SilentModel.name)
    monkeypatch.delenv("HUBKIT_JUDGE_API_KEY", raising=False)
    try:
        report = evaluate_model(str(tiny_model), suite="judge", limit=2, output_dir=tmp_path / "out",
                                compare_base=False, max_new_tokens=4, progress=False)
    finally:
        server.stop()
    assert "mt_bench" not in report.scores and "alpaca_eval_v2" not in report.scores
    assert "no usable grade for any of 2 answers" in report.dropped["mt_bench"]
    assert "alpaca_eval_v2" in report.dropped
    data = json.loads(report.results_file.read_text())
    assert data["results"] == {}  # nothing that could pass for a score
