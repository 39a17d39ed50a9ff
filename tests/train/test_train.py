"""`hubkit train`: a tiny random Llama trained full and LoRA on seeded real data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from hubkit.config import RunSpec, run_id
from hubkit.errors import HubkitError
from hubkit.runs import load_run
from hubkit.train import train

from ..test_cli import _assert_one_line_error, hubkit


def _spec(tiny_model, out, **kw) -> RunSpec:
    values = {"model": str(tiny_model), "dataset": "lima", "data_size": 24, "epochs": 2, "batch_size": 8, "max_length": 192,
                  "learning_rate": 1e-3, "logging_steps": 1, "output_dir": str(out)}
    values.update(kw)
    return RunSpec(**values)


def _state(folder):
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    assert files, f"no safetensors in {folder}"
    return {k: v for f in files for k, v in load_file(f).items()}


def test_full_run_directory(tiny_model, seeded, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    result = train(_spec(tiny_model, tmp_path, save_epochs=True), progress=False)
    run_dir = tmp_path / result.run_id
    assert result.run_dir == run_dir and not result.skipped
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml", "epochs", "metrics.json", "model", "run.json"]
    assert not list(tmp_path.glob(".*partial"))
    assert (run_dir / "model" / "model.safetensors").is_file() and (run_dir / "model" / "tokenizer.json").is_file()
    assert (run_dir / "epochs" / "epoch-1" / "model.safetensors").is_file()
    assert result.epoch_dirs == {1: run_dir / "epochs" / "epoch-1", 2: run_dir / "model"}

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["steps"] == 6 and len(metrics["loss_curve"]) == 6
    assert metrics["loss_curve"][-1]["loss"] < metrics["loss_curve"][0]["loss"]  # it learned something
    assert metrics["train_tokens"] > 0 and metrics["tokens_per_second"] > 0 and metrics["peak_cpu_memory_mb"] > 0
    assert {"torch", "transformers", "trl", "peft", "datasets", "hubkit", "python"} <= set(metrics["versions"])

    record = json.loads((run_dir / "run.json").read_text())
    assert record["axes"] == {"base_model": str(tiny_model), "dataset": "lima", "data_size": 24, "tuning": "full",
                              "epochs": 2, "lr_schedule": "cosine"}
    assert record["data_sources"][0]["repo"] == "hubkit-data/lima" and record["data_sources"][0]["rows_used"] == 24
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert "output_dir" not in config and config["learning_rate"] == 1e-3
    assert load_run(run_dir).run_id == result.run_id == run_id(RunSpec(**config))

    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    tuned = AutoModelForCausalLM.from_pretrained(run_dir / "model")
    epoch1 = _state(run_dir / "epochs" / "epoch-1")
    changed = [k for k, v in tuned.state_dict().items() if not torch.equal(v, base.state_dict()[k])]
    assert changed and any(not torch.equal(epoch1[k], tuned.state_dict()[k]) for k in changed)


def test_lora_run_saves_an_adapter_that_loads_over_its_base(tiny_model, seeded, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result = train(_spec(tiny_model, tmp_path, tuning="lora", lora_r=4, lora_alpha=8), progress=False)
    model_dir = result.run_dir / "model"
    assert (model_dir / "adapter_model.safetensors").is_file() and not (model_dir / "model.safetensors").exists()
    config = json.loads((model_dir / "adapter_config.json").read_text())
    assert config["r"] == 4 and config["lora_alpha"] == 8
    assert result.metrics.trainable_parameters < result.metrics.parameters / 5
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    ids = torch.tensor([[5, 6, 7, 8]])
    before = base(ids).logits
    tuned = PeftModel.from_pretrained(base, model_dir)
    assert not torch.allclose(before, tuned(ids).logits)  # the adapter learned something non-zero


@pytest.mark.parametrize("tuning", ["full", "lora"])
@pytest.mark.slow
def test_same_seed_same_weights(tiny_model, seeded, tmp_path, tuning):
    a = train(_spec(tiny_model, tmp_path / "a", tuning=tuning, epochs=1), progress=False)
    b = train(_spec(tiny_model, tmp_path / "b", tuning=tuning, epochs=1), progress=False)
    c = train(_spec(tiny_model, tmp_path / "c", tuning=tuning, epochs=1, seed=7), progress=False)
    name = "adapter_model.safetensors" if tuning == "lora" else "model.safetensors"
    blob = lambda r: (r.run_dir / "model" / name).read_bytes()  # noqa: E731
    assert blob(a) == blob(b)
    assert blob(a) != blob(c)


def test_a_finished_run_is_not_trained_again(tiny_model, seeded, tmp_path):
    spec = _spec(tiny_model, tmp_path, epochs=1)
    first = train(spec, progress=False)
    again = train(spec, progress=False)
    assert again.skipped and again.record.finished_at == first.record.finished_at
    forced = train(spec, force=True, progress=False)
    assert not forced.skipped and forced.record.finished_at != first.record.finished_at
    assert [p.name for p in tmp_path.glob(".*")] == [".locks"]  # no partial or swapped-out directory left behind


def test_chat_template_prompt_format(tiny_model, seeded, tmp_path, monkeypatch):
    """What the trainer is given is the conversation in the tokenizer's chat template (ChatML here), not the study's
    `###Question:` prompt, which the default format trains on."""
    import trl

    trained_on = []
    original = trl.SFTTrainer.train

    def recording(self, *args, **kwargs):
        trained_on.append(self.processing_class.decode(self.train_dataset[0]["input_ids"]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(trl.SFTTrainer, "train", recording)
    chat = train(_spec(tiny_model, tmp_path / "chat", epochs=1, prompt_format="chat_template"), progress=False)
    study = train(_spec(tiny_model, tmp_path / "study", epochs=1), progress=False)
    assert chat.metrics.examples_trained > 0 and study.metrics.examples_trained > 0
    templated, plain = trained_on
    assert "<|im_start|>user\n" in templated and "<|im_end|>" in templated and "<|im_start|>assistant\n" in templated
    assert "###Question:" not in templated
    assert "###Question:" in plain and "###Answer:" in plain and "<|im_start|>" not in plain


@pytest.mark.slow
def test_cli_train_and_its_errors(tiny_model, seeded, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(f"model: {tiny_model}\ndataset: lima\ndata_size: 16\nbatch_size: 8\nmax_length: 128\n"
                      f"output_dir: {tmp_path / 'runs'}\n")
    proc = hubkit("train", str(config), "epochs=1", "--tuning", "lora", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "Trained" in proc.stdout and "-lima-16-lora-e1-cosine-" in proc.stdout
    again = hubkit("train", str(config), "epochs=1", "--tuning", "lora", "--no-progress")
    assert again.returncode == 0 and "already trained" in again.stdout

    _assert_one_line_error(hubkit("train", str(config), "epochz=1"), "unknown setting `epochz`")
    _assert_one_line_error(hubkit("train", str(tmp_path / "none.yaml")), "config file not found")
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_model, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    _assert_one_line_error(hubkit("train", str(config), f"model={broken}"), f"cannot load base model {broken}")
    assert not list((tmp_path / "runs").glob(".*partial"))  # a failed load leaves nothing behind


def test_errors_before_any_work(tiny_model, seeded, tmp_path):
    with pytest.raises(HubkitError, match="`model` is required"):
        train(RunSpec(dataset="lima", output_dir=str(tmp_path)))
    with pytest.raises(HubkitError, match="unknown dataset 'limaa'"):
        train(_spec(tiny_model, tmp_path, dataset="limaa"))
    with pytest.raises(HubkitError, match="base model nobody/no-such-model: not a local directory and not found"):
        train(_spec(tiny_model, tmp_path, model="nobody/no-such-model"))
    assert [p.name for p in tmp_path.iterdir()] == [".locks"]  # no run, no partial: only the (empty) lock file


@pytest.mark.slow
def test_train_seeds_a_registry_set_missing_from_the_local_hub(hub, tiny_model, tmp_path):
    """`hubkit train dataset=ultrachat` on a local Hub without its seeded copy seeds it first (as the quickstart
    does) instead of failing; an unknown name is refused before torch and TRL are imported."""
    from huggingface_hub.errors import RepositoryNotFoundError

    api = hub.api("hubkit")
    repo = "hubkit-data/fastchat_dummy_conversation"  # what `ultrachat` reads offline
    try:
        api.delete_repo(repo, repo_type="dataset")
    except RepositoryNotFoundError:
        pass
    env = {"HF_TOKEN": hub.tokens["hubkit"]}
    proc = hubkit("train", f"model={tiny_model}", "dataset=ultrachat", "data_size=8", "epochs=1", "batch_size=8",
                  "max_length=128", f"output_dir={tmp_path}", "--no-progress", env=env)
    assert proc.returncode == 0, proc.stderr
    assert api.repo_exists(repo, repo_type="dataset") and "Trained" in proc.stdout
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "hubkit", "train", f"model={tiny_model}",
                          "dataset=ultrachatt"], capture_output=True, text=True, env={**os.environ, **env})
    assert "did you mean `ultrachat`" in out.stderr.splitlines()[-1]
    assert "| torch" not in out.stderr and "| trl" not in out.stderr  # refused before the heavy imports
