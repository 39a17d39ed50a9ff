"""`hubkit sweep plan`: runs, GPU-hours, disk and Hub bytes before anything runs, from the throughput tables."""

from __future__ import annotations

import pytest

from hubkit.config import RunSpec, SweepSpec, parse_config
from hubkit.sweep.plan import model_size, plan_cost, tables

from ..test_cli import _assert_one_line_error, hubkit
from .test_recipes import RECIPES


def test_the_study_grid_shows_its_scale_before_it_runs(tmp_path):
    proc = hubkit("sweep", "plan", str(RECIPES / "study-main-grid.yaml"), f"output_dir={tmp_path}", env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "study-main-grid" in out and "study-gpu" in out and "total" in out
    assert "220" in out and "2,200" in out  # runs, and the models their saved epochs make
    assert "TB" in out and "GPU-h" in out and "16,700 GPU-h to evaluate 1,027 models" in out
    assert "derived from the study's figures" in out and "the size in its name" in out
    assert not (tmp_path / "study-main-grid").exists()  # a plan writes nothing

    plan = plan_cost(parse_config(SweepSpec, RECIPES / "study-main-grid.yaml"))
    assert plan.total.runs == 220 and plan.total.models == 2200
    assert plan.sizes["llm-jp/llm-jp-3-7.2b"].params == 7.2e9 and plan.sizes["google/gemma-2-9b"].params == 9e9
    # the scale the study reports: thousands of GPU-hours of evaluation, tens of TB of checkpoints
    assert plan.total.eval_gpu_hours > 10 * plan.total.train_gpu_hours > 0
    assert 10e12 < plan.total.disk_bytes == plan.total.hub_bytes < 100e12


def test_costs_are_the_stated_arithmetic(tiny_model):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    size = model_size(str(tiny_model), ask_hub=False)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert size.source == "safetensors headers" and size.params == sum(p.numel() for p in model.parameters())
    lora = get_peft_model(model, LoraConfig(r=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    trainable = sum(p.numel() for p in lora.parameters() if p.requires_grad)
    spec = RunSpec(model=str(tiny_model), dataset="lima", tuning="lora", lora_r=8)
    assert size.adapter(spec) == trainable  # the adapter size from config.json is peft's own count

    sweep = parse_config(SweepSpec, None, ["name=one", f"run.model={tiny_model}", "run.dataset=lima",
                                           "run.data_size=100", "run.epochs=2", "run.save_epochs=true",
                                           "run.max_length=512", "stages=[train,eval,publish]", "eval_suite=tiny",
                                           "base_model_id=alice/tiny-base"])
    cpu = tables()["hardware"]["cpu"]
    plan = plan_cost(sweep, "cpu")
    tokens = 100 * min(tables()["datasets"]["lima"]["tokens"], 512) * 2
    assert plan.total.train_tokens == pytest.approx(tokens)
    assert plan.total.train_gpu_hours == pytest.approx(6 * size.params * tokens / cpu["train_flops_per_s"]["full"] / 3600)
    per_model = 32 * cpu["eval_seconds_per_record"] * size.params / cpu["params"] / 3600
    assert plan.total.eval_gpu_hours == pytest.approx(2 * per_model) and plan.base_eval_gpu_hours == pytest.approx(per_model)
    assert plan.total.disk_bytes == plan.total.hub_bytes == 2 * size.params * 4  # two float32 checkpoints on CPU
    on_gpu = plan_cost(sweep, "study-gpu")
    assert on_gpu.total.disk_bytes == 2 * size.params * 2  # bf16 where a GPU trains


def test_the_study_gpu_profile_reproduces_the_studys_own_figure():
    study = tables()["study"]
    gpu = tables()["hardware"]["study-gpu"]
    from hubkit.data.registry import REGISTRY

    mean = sum(min(tables()["datasets"][n]["tokens"], 2048) for n in REGISTRY) / len(REGISTRY)
    hours = 6 * study["params"] * 1000 * mean * 10 / gpu["train_flops_per_s"]["full"] / 3600
    assert hours == pytest.approx(study["gpu_hours_per_run"], rel=1e-3)
    evaluated = gpu["eval_seconds_per_record"] * tables()["suites"]["study"] * study["models_evaluated"] / 3600
    assert evaluated == pytest.approx(study["eval_gpu_hours"], rel=1e-3)


def test_plan_errors_are_one_line(tmp_path):
    _assert_one_line_error(hubkit("sweep", "plan"), "give a sweep file to plan")
    _assert_one_line_error(hubkit("sweep", "plan", str(RECIPES / "cpu-demo.yaml"), "--hardware", "tpu"),
                           "unknown hardware `tpu`")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\nrun: {model: someone/mystery-model, dataset: lima}\n")
    _assert_one_line_error(hubkit("sweep", "plan", str(recipe), env={"HF_ENDPOINT": ""}),
                           "cannot tell the size of someone/mystery-model")
    _assert_one_line_error(hubkit("sweep", str(recipe), "--hardware", "cpu"), "--hardware goes with `plan`")
