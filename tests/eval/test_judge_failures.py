"""A flaky or changing judge: a fake OpenAI-compatible endpoint (a real HTTP server on 127.0.0.1, spoken to by the
`openai` client) that never answers, rejects one request, answers with something that is not JSON, or changes its
fingerprint; and the grades a test can re-derive offline from the samples file alone."""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hubkit.eval.judged import (
    LcTables,
    length_controlled_win_rate,
    preference_from,
    rating_from_follow_up,
)

TOL = 1e-9


class FakeJudge:
    """An OpenAI-compatible judge whose behaviour per request a test sets: `behave(messages) -> (status, body,
    content type)` or `("sleep", seconds)`. By default: MT-Bench judgments without a rating, the follow-up's top
    log-probabilities 0.5 on `7` and 0.5 on `9` (expectation 8), AlpacaEval P(m) = 0.7, P(M) = 0.3."""

    def __init__(self, name: str = "fake/judge", fingerprint: str = "fp_one"):
        self.name, self.fingerprint = name, fingerprint
        self.requests: list[list[dict]] = []
        self.behave = self.grade
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: bytes, kind: str = "application/json"):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._send(200, json.dumps({"object": "list", "data": [{"id": judge.name, "object": "model"}]}).encode())

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if request.get("model") != judge.name:
                    return self._send(404, json.dumps({"error": {"message": "no such model"}}).encode())
                judge.requests.append(request["messages"])
                answer = judge.behave(request["messages"])
                if answer[0] == "sleep":
                    time.sleep(answer[1])
                    return self._send(200, b"{}")
                self._send(*answer)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # a client that gave up waiting: not an error here
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def reply(self, text: str, top: dict[str, float] | None = None) -> tuple[int, bytes, str]:
        logprobs = None
        if top:
            logprobs = {"content": [{"token": text, "logprob": math.log(top.get(text, 1e-9)), "bytes": None,
                                     "top_logprobs": [{"token": t, "logprob": math.log(p), "bytes": None}
                                                      for t, p in top.items()]}]}
        body = {"id": "c", "object": "chat.completion", "created": 0, "model": self.name,
                "system_fingerprint": self.fingerprint,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop",
                             "logprobs": logprobs}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        return 200, json.dumps(body).encode(), "application/json"

    def grade(self, messages: list[dict]) -> tuple:
        text = messages[-1]["content"]
        if "Best Model Identifier" in text:
            return self.reply("m", {"m": 0.7, "M": 0.3})
        if text.startswith("Now give only your rating"):
            return self.reply("7", {"7": 0.5, "9": 0.5})
        if text == "Say OK.":
            return self.reply("OK")
        return self.reply("A fine answer, I think.")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_judge(monkeypatch, seeded_judged):
    judge = FakeJudge()
    monkeypatch.setenv("HUBKIT_JUDGE_URL", judge.url)
    monkeypatch.setenv("HUBKIT_JUDGE_MODEL", judge.name)
    monkeypatch.delenv("HUBKIT_JUDGE_API_KEY", raising=False)
    yield judge
    judge.stop()


@pytest.fixture
def own_cache(monkeypatch, tmp_path):
    """Answers and grades cached apart from the other tests'."""
    monkeypatch.setenv("HUBKIT_HOME", str(tmp_path / "home"))


def _evaluate(model: Path, out: Path, suite: str, limit: int = 3, **options):
    from hubkit.eval.harness import evaluate_model

    return evaluate_model(str(model), suite=suite, limit=limit, output_dir=out, compare_base=False,
                          max_new_tokens=6, progress=options.pop("progress", False), **options)


def _samples(report, name: str) -> list[dict]:
    return [json.loads(line) for line in report.samples_files[name].read_text().splitlines()]


def test_fastchat_is_the_default_and_the_follow_up_an_option(fake_judge, tiny_model, tmp_path, own_cache):
    report = _evaluate(tiny_model, tmp_path / "a", "mt_bench", limit=2)
    assert "mt_bench" not in report.scores  # FastChat: a judgment without [[n]] is no rating
    assert "no usable grade for any of 2 answers" in report.dropped["mt_bench"]
    assert not any(m[-1]["content"].startswith("Now give only") for m in fake_judge.requests)
    report = _evaluate(tiny_model, tmp_path / "b", "mt_bench", limit=2, mt_bench_follow_up=True)
    assert report.scores["mt_bench"] == pytest.approx(8.0, abs=TOL)
    # every request and reply, with its log-probabilities, is in the samples: the score re-derives offline
    ratings = []
    for sample in _samples(report, "mt_bench"):
        assert sample["fingerprint"] == "fp_one" and len(sample["requests"]) == 4  # 2 turns × (judgment, follow-up)
        for judgment, follow in zip(sample["requests"][::2], sample["requests"][1::2]):
            assert judgment["messages"][0]["role"] == "system" and judgment["reply"] == "A fine answer, I think."
            top = follow["logprobs"][0]["top"]
            ratings.append(rating_from_follow_up(follow["reply"], top, follow["logprobs"][0]["token"], None))
    assert abs(float(np.mean(ratings)) - report.scores["mt_bench"]) < TOL


def test_a_judge_that_never_answers_fails_each_grade_quickly_and_the_suite_finishes(
        fake_judge, tiny_model, tmp_path, own_cache, monkeypatch, capsys):
    fake_judge.behave = lambda messages: ("sleep", 5) if "Best Model Identifier" in messages[-1]["content"] \
        else fake_judge.grade(messages)
    monkeypatch.setenv("HUBKIT_JUDGE_TIMEOUT", "0.5")
    monkeypatch.setenv("HUBKIT_JUDGE_RETRIES", "1")
    started = time.monotonic()
    report = _evaluate(tiny_model, tmp_path / "out", "alpaca_eval_v2", limit=2, progress=True)
    assert time.monotonic() - started < 60  # 2 grades × 2 tries × 0.5 s, not 4 × 600 s each
    assert "alpaca_eval_v2" not in report.scores
    assert "2 judge request(s) failed" in report.dropped["alpaca_eval_v2"]
    failed = _samples(report, "alpaca_eval_v2")
    assert all("did not answer within 0.5 s (tried 2 times" in s["error"] for s in failed)
    err = capsys.readouterr().err
    assert err.count("judging alpaca_eval_v2 ") >= 2 and "failed: the judge endpoint" in err  # a line per grade
    monkeypatch.setenv("HUBKIT_JUDGE_TIMEOUT", "soon")
    from hubkit.errors import HubkitError

    with pytest.raises(HubkitError, match=r"\$HUBKIT_JUDGE_TIMEOUT='soon': expected seconds"):
        _evaluate(tiny_model, tmp_path / "x", "alpaca_eval_v2", limit=1)


def test_one_rejected_request_is_recorded_and_the_rest_is_published_as_a_subset(fake_judge, tiny_model, tmp_path,
                                                                              own_cache):
    from hubkit.importers import lm_eval_rows

    victim = {}

    def behave(messages):
        text = messages[-1]["content"]
        if "Best Model Identifier" in text and (not victim or victim["text"] == text):
            victim["text"] = text
            return 400, json.dumps({"error": {"message": "This model's maximum context length is 8192 tokens"}}).encode(), \
                "application/json"
        return fake_judge.grade(messages)

    fake_judge.behave = behave
    report = _evaluate(tiny_model, tmp_path / "a", "alpaca_eval_v2", limit=3)
    samples = _samples(report, "alpaca_eval_v2")
    errors = [s for s in samples if s.get("error")]
    assert len(errors) == 1 and "answered HTTP 400: This model's maximum context length" in errors[0]["error"]
    assert report.metrics["alpaca_eval_v2"]["errors"] == 1
    assert report.sizes["alpaca_eval_v2"] == (2, 805)
    kept = [s for s in samples if not s.get("error")]
    assert report.scores["alpaca_eval_v2"] == pytest.approx(100 * np.mean([s["preference"] - 1 for s in kept]), abs=TOL)
    row = next(r for r in lm_eval_rows(json.loads(report.results_file.read_text()), "a/b", "b", {}, source="hubkit")
               if r.benchmark == "alpaca_eval_v2" and r.headline)
    assert row.subset and row.n_samples == 2  # never published as the full benchmark
    # the failure was not cached: a rerun asks again for that grade only (and once for the judge's version)
    before = len(fake_judge.requests)
    fake_judge.behave = fake_judge.grade
    again = _evaluate(tiny_model, tmp_path / "b", "alpaca_eval_v2", limit=3)
    assert len(fake_judge.requests) - before == 2 and again.metrics["alpaca_eval_v2"]["errors"] == 0


def test_a_reply_that_is_not_json_is_named_as_the_judges(fake_judge, tiny_model, tmp_path, own_cache):
    fake_judge.behave = lambda messages: (200, b"<html>502 Bad Gateway</html>", "application/json") \
        if "Best Model Identifier" in messages[-1]["content"] else fake_judge.grade(messages)
    report = _evaluate(tiny_model, tmp_path / "a", "alpaca_eval_v2", limit=1)
    (sample,) = _samples(report, "alpaca_eval_v2")
    assert sample["error"].startswith("the judge endpoint ($HUBKIT_JUDGE_URL) answered with something that is not "
                                      "an OpenAI-style JSON reply")
    fake_judge.behave = lambda messages: (200, b"plain text", "text/plain") \
        if "Best Model Identifier" in messages[-1]["content"] else fake_judge.grade(messages)
    report = _evaluate(tiny_model, tmp_path / "b", "alpaca_eval_v2", limit=1, regrade_if_changed=True)
    (sample,) = _samples(report, "alpaca_eval_v2")
    assert "not an OpenAI-style JSON reply" in sample["error"]


def test_the_cache_key_is_the_configured_judge_and_a_changed_fingerprint_is_reported(
        fake_judge, tiny_model, tmp_path, own_cache, monkeypatch):
    first = _evaluate(tiny_model, tmp_path / "a", "alpaca_eval_v2", limit=2)
    graded = len(fake_judge.requests)
    assert first.metrics["alpaca_eval_v2"]["judge_versions"] == {"fp_one": 2}
    # the same judge again: no grade is requested again (AlpacaEval grades were re-bought on every rerun)
    again = _evaluate(tiny_model, tmp_path / "b", "alpaca_eval_v2", limit=2)
    assert len(fake_judge.requests) == graded + 1 and again.metrics["alpaca_eval_v2"]["judge_changed"] == 0
    # the endpoint now runs another version: the cached grades are kept, and the change is reported
    fake_judge.fingerprint = "fp_two"
    changed = _evaluate(tiny_model, tmp_path / "c", "alpaca_eval_v2", limit=2)
    assert changed.metrics["alpaca_eval_v2"]["judge_changed"] == 2
    assert all(s["fingerprint"] == "fp_one" and s["judge_changed"] for s in _samples(changed, "alpaca_eval_v2"))
    regraded = _evaluate(tiny_model, tmp_path / "d", "alpaca_eval_v2", limit=2, regrade_if_changed=True)
    assert regraded.metrics["alpaca_eval_v2"]["judge_versions"] == {"fp_two": 2}
    assert regraded.metrics["alpaca_eval_v2"]["judge_changed"] == 0
    # another judge model is another key: nothing graded by the first is reused under its name
    other = FakeJudge("fake/other-judge", "fp_one")
    try:
        monkeypatch.setenv("HUBKIT_JUDGE_URL", other.url)
        monkeypatch.setenv("HUBKIT_JUDGE_MODEL", other.name)
        _evaluate(tiny_model, tmp_path / "e", "alpaca_eval_v2", limit=2)
        assert sum("Best Model Identifier" in m[-1]["content"] for m in other.requests) == 2
    finally:
        other.stop()


def test_the_cli_reports_failed_grades_and_a_changed_judge(fake_judge, tiny_model, tmp_path, own_cache, monkeypatch,
                                                           capsys):
    from hubkit.cli.main import main

    args = ["eval", str(tiny_model), "--suite", "alpaca_eval_v2", "--limit", "2", "--no-gains", "--max-new-tokens", "4",
            "--no-progress"]
    main([*args, "-o", str(tmp_path / "a")])
    capsys.readouterr()
    fake_judge.fingerprint = "fp_new"
    main([*args, "-o", str(tmp_path / "b")])
    out = " ".join(capsys.readouterr().out.split())
    assert "grades by more than one version of the judge" in out or "2 cached grade(s) predate the judge" in out
    assert "--regrade-if-changed" in out
    fake_judge.behave = lambda messages: ("sleep", 3) if "Best Model Identifier" in messages[-1]["content"] \
        else fake_judge.grade(messages)
    main([*args, "-o", str(tmp_path / "c"), "--judge-timeout", "0.3", "--judge-retries", "0", "--regrade-if-changed"])
    out = " ".join(capsys.readouterr().out.split())
    assert "alpaca_eval_v2: no score: the judge gave no usable grade for any of 2 answers; 2 judge request(s) " \
           "failed" in out


def test_identical_outputs_tie_without_asking_the_judge(fake_judge, tiny_model, tmp_path, own_cache):
    from hubkit.eval.harness import eval_cache_dir

    first = _evaluate(tiny_model, tmp_path / "a", "alpaca_eval_v2", limit=2)
    reference = {s["doc_id"]: s["reference"] for s in _samples(first, "alpaca_eval_v2")}
    (answers,) = list(eval_cache_dir().rglob("*.answers.jsonl"))
    rows = [json.loads(line) for line in answers.read_text().splitlines()]
    doc = rows[0]["doc_id"]
    rows[0]["answers"] = [reference[doc]]  # the model wrote exactly the reference's output
    answers.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for grades in answers.parent.glob("*.judge-*.jsonl"):
        grades.unlink()
    asked = len(fake_judge.requests)
    report = _evaluate(tiny_model, tmp_path / "b", "alpaca_eval_v2", limit=2)
    by_doc = {s["doc_id"]: s for s in _samples(report, "alpaca_eval_v2")}
    assert by_doc[doc]["preference"] == 1.5 and by_doc[doc]["method"] == "identical" and by_doc[doc]["requests"] == []
    assert len(fake_judge.requests) - asked == 1  # only the other instruction went to the judge
    # the win rate re-derives from the stored replies: AlpacaEval's parser over exactly `m` and `M`
    prefs = [1.5 if s["method"] == "identical" else
             preference_from(s["requests"][0]["reply"], s["requests"][0]["logprobs"][0]["top"], s["model_first"])
             for s in by_doc.values()]
    assert abs(100 * np.mean([p - 1 for p in prefs]) - report.scores["alpaca_eval_v2"]) < TOL


def _reference_lc(preferences, model_lengths, reference_lengths, indices, tables):
    """AlpacaEval's `length_controlled_v1`, written out from its published code path: the annotations and the gamed
    baselines stacked, each row duplicated as a win and a loss, `LogisticRegressionCV` over 5 grouped folds scored
    by the soft-label log loss, the mean prediction at zero length difference."""
    import sklearn
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import make_scorer
    from sklearn.model_selection import GroupKFold

    delta = pd.Series(reference_lengths, dtype=float) - pd.Series(model_lengths, dtype=float)
    df = pd.DataFrame({"preference": np.asarray(preferences) - 1, "std_delta_len": delta / delta.std(),
                       "instruction_difficulty": tables.difficulty.loc[indices].to_numpy(), "not_gamed_baseline": True})
    both = pd.concat([tables.gamed[df.columns], df], axis=0).reset_index(drop=True)
    weight = both["not_gamed_baseline"].astype(float) + 0.2 * (~both["not_gamed_baseline"].astype(bool)).astype(float) / 2
    X = pd.DataFrame({"tanh": np.tanh(both["std_delta_len"]), "difficulty": both["instruction_difficulty"],
                      "not_gamed": both["not_gamed_baseline"].astype(float)})
    data = X.assign(preference=both["preference"]).reset_index(drop=True).reset_index(names=["group"])
    ones, zeros = data.assign(y=1), data.assign(y=0, preference=1 - data["preference"])
    dup = pd.concat([ones, zeros]).reset_index(drop=True)
    w = np.concatenate([weight, weight])

    def loss(y_true, y_pred, true_prob, true_sample_weight):
        target = np.where(y_true == 1, true_prob, 1 - true_prob)
        y_pred = np.clip(y_pred, 1e-15, 1 - 1e-15)
        return -np.mean((target * np.log(y_pred) + (1 - target) * np.log(1 - y_pred)) * true_sample_weight)

    with sklearn.config_context(enable_metadata_routing=True):
        scorer = make_scorer(loss, response_method="predict_proba", greater_is_better=False).set_score_request(
            true_sample_weight=True, true_prob=True)
        model = LogisticRegressionCV(cv=GroupKFold(n_splits=5), scoring=scorer, l1_ratios=(1.0,), solver="liblinear",
                                     fit_intercept=False, random_state=123, use_legacy_attributes=False)
        model.set_fit_request(sample_weight=True)
        model.fit(dup[["tanh", "difficulty", "not_gamed"]], dup["y"], sample_weight=dup["preference"] * w,
                  groups=dup["group"], true_sample_weight=w, true_prob=dup["preference"])
    test = pd.DataFrame({"tanh": 0.0, "difficulty": df["instruction_difficulty"], "not_gamed": 1.0})
    return 100 * model.predict_proba(test)[:, 1].mean(), float(np.ravel(model.C_)[0])


def test_length_controlled_win_rate_cross_validates_c_as_alpaca_eval(tmp_path):
    rng = np.random.default_rng(3)
    n = 805
    difficulty = pd.Series(rng.normal(0, 1, n), index=range(n))
    ref_len = rng.integers(300, 1500, n)
    model_len = ref_len + rng.integers(-200, 900, n)
    d = (ref_len - model_len) / (ref_len - model_len).std(ddof=1)
    prefs = 1 + 1 / (1 + np.exp(-(-0.8 - 1.2 * np.tanh(d) + 0.6 * difficulty.to_numpy() + rng.normal(0, 1, n))))
    gamed = pd.concat([pd.DataFrame({"index": range(n), "std_delta_len": rng.normal(s, 1, n),
                                     "preference": rng.uniform(0, 1, n), "instruction_difficulty": difficulty.to_numpy(),
                                     "not_gamed_baseline": False}) for s in (-1.0, 1.0)])
    folder = tmp_path / "lc"
    folder.mkdir()
    difficulty.rename("instruction_difficulty").to_csv(folder / "instruction_difficulty.csv")
    gamed.to_csv(folder / "df_gamed.csv", index=False)
    tables = LcTables.read(folder)
    args = (list(prefs), list(model_len), list(ref_len), list(range(n)), tables)
    expected, chosen_c = _reference_lc(*args)
    assert abs(length_controlled_win_rate(*args) - expected) < TOL
    fixed = length_controlled_win_rate(*args, n_splits=0)
    assert chosen_c != 100 and abs(fixed - expected) > 1e-4  # the fixed C = 100 is another estimate
