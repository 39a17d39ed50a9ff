"""`hubkit eval` end to end on tiny models against the seeded benchmark repos of a real local Hub."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from hubkit.config import RunSpec
from hubkit.errors import HubkitError
from hubkit.eval.harness import eval_cache_dir, evaluate_model
from hubkit.eval.lm import LM, resolve_model
from hubkit.eval.tasks import TASKS, build_instances, get_suite
from hubkit.importers import import_lm_eval
from hubkit.train import train

from ..test_cli import _assert_one_line_error, hubkit


@pytest.fixture(scope="module")
def lm(tiny_model):
    return LM.load(str(tiny_model), batch_size=8)


def _mc_requests(n: int = 6) -> list[tuple[str, str]]:
    reqs = []
    for q in range(n):
        context = f"Question {q}: what is {q} plus {q * 3}?" + " Think." * q + " Answer:"
        reqs += [(context, c) for c in (" four", " 12", " a long answer of many tokens, surely", " x")]
    return reqs


def test_shared_prefix_scoring_equals_one_pass_per_choice_at_any_batch_size(lm):
    reqs = _mc_requests()
    shared = lm.loglikelihood(reqs)
    separate = lm.loglikelihood(reqs, share_prefix=False)
    lm.batch_size = 1
    try:
        single = lm.loglikelihood(reqs)
    finally:
        lm.batch_size = 8
    for a, b, c in zip(shared, separate, single):
        assert a.tokens == b.tokens == c.tokens
        assert a.logprob == pytest.approx(b.logprob, rel=1e-5, abs=1e-4)
        assert a.logprob == pytest.approx(c.logprob, rel=1e-5, abs=1e-4)
    # the answers picked (what a score counts) are the same
    pick = lambda lls: [max(range(4), key=lambda i: lls[q * 4 + i].logprob) for q in range(len(lls) // 4)]  # noqa: E731
    assert pick(shared) == pick(separate) == pick(single)


def test_loglikelihood_equals_a_direct_forward_pass(lm):
    import torch

    context, continuation = "The cat sat on the", " mat today"
    ctx, cont = lm.split(context, continuation)
    with torch.inference_mode():
        logits = lm.model(torch.tensor([ctx + cont])).logits[0].float().log_softmax(-1)
    direct = sum(float(logits[len(ctx) - 1 + j, t]) for j, t in enumerate(cont))
    assert lm.loglikelihood([(context, continuation)])[0].logprob == pytest.approx(direct, rel=1e-5)


def test_generation_is_the_same_at_batch_size_1_and_8(lm):
    prompts = ["def add(a, b):", "Question: what is 2 + 2?\nAnswer:", "x", "The capital of France is",
               "A much longer prompt that needs more padding than the others in its batch, surely"] * 2
    batched = lm.generate(prompts, max_new_tokens=16, stop=["\n\n"])
    lm.batch_size = 1
    try:
        single = lm.generate(prompts, max_new_tokens=16, stop=["\n\n"])
    finally:
        lm.batch_size = 8
    assert batched == single
    assert all("\n\n" not in text for text in batched)


def test_suites_and_instances():
    assert [r.name for r in get_suite("study")] == ["gsm8k", "math", "humaneval", "mbpp", "mmlu", "hellaswag",
                                                    "boolq", "truthfulqa", "nq_open"]
    assert {r.name: r.n_shot for r in get_suite("study")}["mmlu"] == 5
    assert all(r.limit for r in get_suite("quick"))
    # `tiny`: the multiple-choice benchmarks at 0 shots, as the study's 0-shot columns (the quickstart's suite)
    assert [(r.name, r.n_shot, r.limit) for r in get_suite("tiny")] == \
        [("mmlu", 0, 8), ("hellaswag", 0, 8), ("boolq", 0, 8), ("truthfulqa", 0, 8)]
    assert all(r.task.kind == "loglik" for r in get_suite("tiny"))
    assert [(r.name, r.limit, r.n_shot) for r in get_suite("gsm8k,mmlu", limit=3, n_shot=1)] == \
        [("gsm8k", 3, 1), ("mmlu", 3, 1)]
    with pytest.raises(HubkitError, match="unknown suite or benchmark 'gsm9k'.*did you mean `gsm8k`"):
        get_suite("gsm9k")
    # MMLU shots come from the same subject's dev questions; limited docs are a fixed choice
    run = get_suite("mmlu", limit=5)[0]
    docs = [{"subject": s, "question": f"q{i}", "choices": list("wxyz"), "answer": i % 4}
            for i, s in enumerate(["algebra"] * 10 + ["law"] * 10)]
    dev = [{"subject": s, "question": f"dev {s} {i}", "choices": list("wxyz"), "answer": 0}
           for s in ("algebra", "law") for i in range(5)]
    first = build_instances(run, docs, dev)
    assert [i.doc_id for i in first] == [i.doc_id for i in build_instances(run, docs, dev)]
    for inst in first:
        subject = inst.doc["subject"]
        assert inst.prompt.count("dev ") == 5 and f"dev {'law' if subject == 'algebra' else 'algebra'}" not in inst.prompt
        assert inst.requests == [(inst.prompt, c) for c in (" A", " B", " C", " D")]


@pytest.mark.slow
def test_eval_cli_quick_suite_end_to_end(hub, seeded_benchmarks, tiny_model, tmp_path):
    """The `quick` suite on a tiny model: every benchmark scored, lm-eval layout, per-sample details."""
    out = tmp_path / "out"
    result = hubkit("eval", str(tiny_model), "--suite", "quick", "--limit", "3", "--output", str(out),
                    "--no-progress", "--batch-size", "4")
    assert result.returncode == 0, result.stderr
    results = json.loads(next(out.glob("results_*.json")).read_text())
    assert set(results["results"]) == {t for t, task in TASKS.items() if task.kind != "judge"} - {"math"}
    for key in ("results", "configs", "versions", "n-shot", "higher_is_better", "n-samples", "config", "date"):
        assert key in results
    assert results["n-shot"]["mmlu"] == 5 and results["n-samples"]["gsm8k"] == {"original": 1319, "effective": 3}
    assert 0.0 <= results["results"]["mmlu"]["acc,none"] <= 1.0
    assert str(tmp_path) not in json.dumps(results)  # no local path
    for name in results["results"]:
        lines = [json.loads(x) for x in next(out.glob(f"samples_{name}_*.jsonl")).read_text().splitlines()]
        assert len(lines) == 3 and all({"doc_id", "prompt", "output", "target", "score"} <= set(s) for s in lines)
    # a model that emits garbage scores 0 on generated answers, and the code it wrote ran in the sandbox
    humaneval = [json.loads(x) for x in next(out.glob("samples_humaneval_*.jsonl")).read_text().splitlines()]
    assert all(s["score"] == 0.0 and s["status"] in ("failed", "timeout") for s in humaneval)
    # hubkit's import reads its own results files
    table = import_lm_eval([next(out.glob("results_*.json"))])
    assert set(table.frame["benchmark"]) == set(results["results"])


@pytest.mark.slow
def test_eval_errors_are_one_line(hub, seeded_benchmarks, tiny_model, tmp_path):
    _assert_one_line_error(hubkit("eval", str(tiny_model), "--suite", "gsm9k"), "unknown suite or benchmark 'gsm9k'")
    _assert_one_line_error(hubkit("eval", str(tiny_model), "--suite", "gsm8k", "--data-namespace", "nobody"),
                           "benchmark gsm8k: repo nobody/gsm8k not found")
    _assert_one_line_error(hubkit("eval", "alice/no-such-model", "--suite", "gsm8k"), "not found on the Hub")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((tiny_model / "config.json").read_text())
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)
    _assert_one_line_error(hubkit("eval", str(broken), "--suite", "gsm8k", "--limit", "1"), "cannot load model")


@pytest.mark.slow
def test_an_interrupted_evaluation_resumes_from_its_cache(hub, seeded_benchmarks, tiny_model, tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    (model / "note.txt").write_text("a copy with its own cache key")
    cache = eval_cache_dir() / resolve_model(str(model)).key
    args = [sys.executable, "-m", "hubkit", "eval", str(model), "--suite", "gsm8k", "--limit", "8", "--n-shot", "0",
            "--batch-size", "2", "--output", str(tmp_path / "out"), "--no-progress"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    lines = []
    while time.monotonic() < deadline and proc.poll() is None:
        files = list(cache.glob("gsm8k-*.jsonl"))
        lines = files[0].read_text().splitlines() if files else []
        if 2 <= len(lines) < 8:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    assert 2 <= len(lines) < 8, "the evaluation was not caught mid-way"
    kept = files[0].read_text().splitlines()
    report = evaluate_model(str(model), suite="gsm8k", limit=8, n_shot=0, batch_size=2, output_dir=tmp_path / "out",
                            progress=False)
    after = files[0].read_text().splitlines()
    assert after[:len(kept)] == kept  # what was scored before the kill was not redone
    assert sorted(json.loads(x)["doc_id"] for x in after) == sorted({json.loads(x)["doc_id"] for x in after})
    other = tmp_path / "same-weights"
    shutil.copytree(tiny_model, other)  # same weights, another cache key: an uninterrupted evaluation
    fresh = evaluate_model(str(other), suite="gsm8k", limit=8, n_shot=0, batch_size=8, output_dir=tmp_path / "fresh",
                           progress=False)
    assert report.scores == fresh.scores
    samples = lambda r: [json.loads(x) for x in r.samples_files["gsm8k"].read_text().splitlines()]  # noqa: E731
    assert samples(report) == samples(fresh)


@pytest.mark.slow
def test_gains_over_the_base_are_computed_once_per_base(hub, seeded_benchmarks, tiny_base, tmp_path, monkeypatch):
    monkeypatch.setenv("HUBKIT_EVAL_CACHE", str(tmp_path / "eval-cache"))  # whatever other tests cached of this base
    common = {"model": tiny_base, "dataset": "lima", "data_size": 16, "epochs": 1, "batch_size": 8, "max_length": 128,
                  "learning_rate": 1e-3, "output_dir": str(tmp_path / "runs")}
    full = train(RunSpec(**common), progress=False)
    lora = train(RunSpec(**{**common, "learning_rate": 1e-2}, tuning="lora", lora_r=4), progress=False)
    suite = "mmlu,boolq"
    first = evaluate_model(str(full.run_dir), suite=suite, limit=6, progress=False)
    assert first.results_file.parent == full.run_dir / "eval"
    assert first.base is not None and first.base.name == tiny_base
    base_cache = eval_cache_dir() / first.base.key
    stamps = {p.name: p.stat().st_mtime_ns for p in base_cache.glob("*.jsonl")}
    assert len(stamps) == 2
    second = evaluate_model(str(lora.run_dir), suite=suite, limit=6, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in base_cache.glob("*.jsonl")} == stamps  # the base was not re-run
    base_direct = evaluate_model(tiny_base, suite=suite, limit=6, output_dir=tmp_path / "base", progress=False)
    for report in (first, second):
        assert report.base_scores == base_direct.scores
        for name, gain in report.gains.items():
            assert gain == pytest.approx(report.scores[name] - base_direct.scores[name])
    data = json.loads(second.results_file.read_text())
    assert data["hubkit"]["base_model"] == tiny_base and data["hubkit"]["gains"] == second.gains
    # the base is compared (and a LoRA merged) at the revision the run trained from, not the base's current head
    trained_from = full.record.base_model_revision
    assert trained_from == hub.api("alice").model_info(tiny_base).sha
    assert resolve_model(str(full.run_dir)).base_revision == trained_from
    assert first.base.revision == trained_from and data["hubkit"]["base_revision"] == trained_from
    assert data["config"]["model_args"]["pretrained"] == lora.run_id  # a run id, not a local path
