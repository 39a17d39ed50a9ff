"""`hubkit eval --backend`: an OpenAI-compatible server gives the `hf` scores; many models in one process."""

from __future__ import annotations

import json

import pytest

from hubkit.eval.harness import evaluate_model, evaluate_models

from ..test_cli import _assert_one_line_error, hubkit

SUITE = "mmlu,hellaswag,gsm8k"  # two multiple-choice benchmarks (log-likelihood) and a generated one


@pytest.fixture(scope="module")
def served(tiny_model):
    """The tiny model behind hubkit's OpenAI-compatible server: a real HTTP server on 127.0.0.1, with a key."""
    from hubkit.eval.judge_server import JudgeServer, LocalChatModel

    server = JudgeServer(LocalChatModel.load(str(tiny_model)), api_key="k3y").start()
    yield server
    server.stop()


def _samples(report, name):
    return [json.loads(x) for x in report.samples_files[name].read_text().splitlines()]


@pytest.mark.slow
def test_the_openai_backend_scores_what_hf_scores(hub, seeded_benchmarks, tiny_model, served, tmp_path, monkeypatch):
    monkeypatch.setenv("HUBKIT_EVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HUBKIT_EVAL_API_KEY", "k3y")
    kw = {"suite": SUITE, "limit": 6, "n_shot": 0, "max_new_tokens": 24, "batch_size": 4, "progress": False}
    hf = evaluate_model(str(tiny_model), output_dir=tmp_path / "hf", **kw)
    remote = evaluate_model(str(tiny_model), output_dir=tmp_path / "openai", backend="openai", endpoint=served.url, **kw)
    assert remote.scores == hf.scores and set(hf.scores) == set(SUITE.split(","))
    for name in ("mmlu", "hellaswag"):  # the same log-likelihood of every choice, within float noise
        for a, b in zip(_samples(hf, name), _samples(remote, name)):
            assert a["doc_id"] == b["doc_id"] and a["output"] == b["output"]
            assert b["logliks"] == pytest.approx(a["logliks"], rel=1e-6, abs=1e-4)  # float32 sums, other batching
    assert [s["output"] for s in _samples(hf, "gsm8k")] == [s["output"] for s in _samples(remote, "gsm8k")]
    assert any(s["output"] for s in _samples(hf, "gsm8k"))  # greedy generations, not empty strings
    # provenance: which backend computed the scores, and its version
    data = json.loads(remote.results_file.read_text())
    assert data["config"]["model"] == "openai" and data["hubkit"]["backend"]["name"] == "openai"
    assert data["hubkit"]["backend"]["version"].startswith("server hubkit ")
    assert json.loads(hf.results_file.read_text())["hubkit"]["backend"]["version"].startswith("transformers ")
    assert served.url not in json.dumps(data) and "k3y" not in json.dumps(data)  # no address, no key

    from hubkit.importers import import_lm_eval

    versions = set(import_lm_eval([remote.results_file]).frame["harness_version"])
    assert len(versions) == 1 and "(openai: server hubkit" in versions.pop()


@pytest.mark.slow
def test_backend_errors_are_one_line(hub, seeded_benchmarks, tiny_model, served, tmp_path):
    env = {"HUBKIT_EVAL_CACHE": str(tmp_path / "cache")}
    base = ["eval", str(tiny_model), "--suite", "boolq", "--limit", "2", "--no-progress", "--no-gains"]
    _assert_one_line_error(hubkit(*base, "--backend", "tgi"), "unknown --backend `tgi`")
    _assert_one_line_error(hubkit(*base, "--backend", "openai", env=env), "needs a server: --endpoint URL")
    _assert_one_line_error(hubkit(*base, "--endpoint", served.url), "go with --backend openai")
    _assert_one_line_error(hubkit(*base, "--backend", "openai", "--endpoint", served.url, env=env), "invalid API key")
    keyed = {**env, "HUBKIT_EVAL_API_KEY": "k3y"}
    _assert_one_line_error(hubkit(*base, "--backend", "openai", "--endpoint", served.url, "--served-model", "gpt-9",
                                  env=keyed), "does not serve `gpt-9`")
    dead = "http://127.0.0.1:9"
    _assert_one_line_error(hubkit(*base, "--backend", "openai", "--endpoint", dead, env=keyed), "cannot list the models")
    try:
        import vllm  # noqa: F401
    except ImportError:
        _assert_one_line_error(hubkit(*base, "--backend", "vllm"), "needs vLLM and a GPU")
    ok = hubkit(*base, "--backend", "openai", "--endpoint", served.url, env=keyed)
    assert ok.returncode == 0, ok.stderr
    assert "openai (server hubkit" in ok.stdout


def _adapters(tiny_model, folder, n: int):
    """`n` LoRA adapters of the tiny model with random (non-zero) weights: each changes the model's outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = []
    for i in range(n):
        torch.manual_seed(i)
        model = AutoModelForCausalLM.from_pretrained(tiny_model)
        config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False,
                            task_type="CAUSAL_LM")
        peft = get_peft_model(model, config)
        path = folder / f"adapter-{i}"
        peft.save_pretrained(path)
        AutoTokenizer.from_pretrained(tiny_model).save_pretrained(path)
        out.append(str(path))
    return out


@pytest.mark.slow
def test_many_adapters_of_one_base_load_it_once_and_score_as_alone(hub, seeded_benchmarks, tiny_model, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv("HUBKIT_EVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # results of models that are not runs go to ./eval-results/<model>
    adapters = _adapters(tiny_model, tmp_path, 3)
    kw = {"suite": "mmlu,boolq", "limit": 4, "n_shot": 0, "batch_size": 4, "progress": False}
    reads = []
    from hubkit.eval import backends

    original = backends.ModelPool.load

    def counting(self, source, batch_size):
        lm = original(self, source, batch_size)
        reads.append(self.reads)
        return lm

    monkeypatch.setattr(backends.ModelPool, "load", counting)
    together = evaluate_models(adapters, **kw)
    assert reads == [1, 1, 1, 1]  # three adapters and the base's own evaluation (gains): the base was read once
    monkeypatch.setenv("HUBKIT_EVAL_CACHE", str(tmp_path / "cache-alone"))
    alone = [evaluate_model(a, output_dir=tmp_path / f"alone-{i}", **kw) for i, a in enumerate(adapters)]
    for t, a in zip(together, alone):
        assert t.scores == a.scores and t.base_scores == a.base_scores
        for name in ("mmlu", "boolq"):
            assert [s["logliks"] for s in _samples(t, name)] == [s["logliks"] for s in _samples(a, name)]  # exact
    logliks = {tuple(tuple(s["logliks"]) for s in _samples(t, "mmlu")) for t in together}
    assert len(logliks) == 3  # each adapter scored with its own weights, none with another's or the base's
    with pytest.raises(Exception, match="--output takes one model"):
        evaluate_models(adapters[:2], output_dir=tmp_path / "one", **kw)
