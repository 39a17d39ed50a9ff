"""Runs over several processes (`run.gpus`, `run.distributed`): FSDP over 2 gloo processes on CPU against one."""

from __future__ import annotations

import importlib.util
import json

import pytest

from hubkit.config import RunSpec, run_id
from hubkit.distributed import check_deepspeed, deepspeed_config
from hubkit.errors import HubkitError
from hubkit.train import train

from ..test_cli import _assert_one_line_error, hubkit

# Loss values logged by one process and by two (FSDP over gloo) agree to this absolute tolerance: measured
# differences on this run are below 1e-5 (reductions in a different order); 1e-4 leaves room for other CPUs.
LOSS_TOLERANCE = 1e-4
WEIGHT_TOLERANCE = 1e-4


def _settings(tiny_model, out) -> list[str]:
    # 32 short examples that max_length keeps whole: every optimiser step sees a full global batch of 8 (a ragged
    # last batch is where processes differ: accelerate pads it by repeating examples)
    return [f"model={tiny_model}", "dataset=code_alpaca", "data_size=32", "epochs=2", "batch_size=8",
            "micro_batch_size=8", "max_length=256", "learning_rate=1e-3", "logging_steps=1", f"output_dir={out}"]


def _state(folder):
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


@pytest.mark.slow
def test_fsdp_over_two_processes_matches_one(tiny_model, seeded_training, tmp_path):
    from hubkit.cards import render_card
    from hubkit.config import parse_config
    from hubkit.runs import load_run

    one = train(parse_config(RunSpec, None, _settings(tiny_model, tmp_path / "one")), progress=False)
    proc = hubkit("train", *_settings(tiny_model, tmp_path / "two"), "gpus=2", "distributed=fsdp", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    two = load_run(tmp_path / "two" / one.run_id)  # the same id: processes and sharding are not hashed
    assert one.run_id in proc.stdout

    assert (one.metrics.world_size, one.metrics.distributed) == (1, "none")
    assert (two.metrics.world_size, two.metrics.distributed) == (2, "fsdp")
    assert two.metrics.steps == one.metrics.steps == 8 and two.metrics.examples_trained == 32
    a = [p.loss for p in one.metrics.loss_curve]
    b = [p.loss for p in two.metrics.loss_curve]
    assert len(a) == len(b) == 8 and a[-1] < a[0]
    assert max(abs(x - y) for x, y in zip(a, b)) < LOSS_TOLERANCE, (a, b)
    assert two.metrics.train_loss == pytest.approx(one.metrics.train_loss, abs=LOSS_TOLERANCE)
    # the gathered weights are whole (not shards) and equal to the single process's
    w1, w2 = _state(one.run_dir / "model"), _state(two.run_dir / "model")
    assert w1.keys() == w2.keys() and all(w1[k].shape == w2[k].shape for k in w1)
    assert max(float((w1[k] - w2[k]).abs().max()) for k in w1) < WEIGHT_TOLERANCE
    assert not (two.run_dir / "model" / "training_args.bin").exists()
    assert two.metrics.trainable_parameters == one.metrics.trainable_parameters > 0
    assert json.loads((two.run_dir / "run.json").read_text())["axes"] == one.record.axes

    # the card: the same metadata and the same lines, but for the hardware and the timings
    cards = [render_card(r, "alice/run", "alice/tiny-base") for r in (one, two)]
    front = [c.split("\n---\n", 1)[0] for c in cards]
    assert front[0] == front[1]
    timing = ("training time", "tokens/s")
    lines = [[ln for ln in c.splitlines() if not any(t in ln for t in timing)] for c in cards]
    assert lines[0] == lines[1]
    assert "on 2 × cpu (fsdp)" in cards[1] and "on cpu" in cards[0]

    # FSDP in one process (how a one-GPU machine checks the sharded path): launched too, the same curve
    solo = train(parse_config(RunSpec, None, [*_settings(tiny_model, tmp_path / "solo"), "distributed=fsdp"]),
                 progress=False)
    assert (solo.metrics.world_size, solo.metrics.distributed) == (1, "fsdp")
    assert max(abs(x.loss - y) for x, y in zip(solo.metrics.loss_curve, a)) < LOSS_TOLERANCE

    # a process that fails says why, in one line, through the launching command
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((tiny_model / "config.json").read_text())
    failed = hubkit("train", *_settings(broken, tmp_path / "failed"), "gpus=2", "--no-progress")
    _assert_one_line_error(failed, f"2-process run failed: cannot load base model {broken}")


def test_distributed_settings_are_checked_before_any_work(tiny_model, tmp_path):
    base = _settings(tiny_model, tmp_path)
    _assert_one_line_error(hubkit("train", *base, "gpus=0"), "`gpus` must be at least 1")
    _assert_one_line_error(hubkit("train", *base, "gpus=3"), "does not split over gpus=3")
    _assert_one_line_error(hubkit("train", *base, "distributed=zero3"), "`distributed` must be one of")
    _assert_one_line_error(hubkit("train", *base, "attn_implementation=flash"), "`attn_implementation` must be one of")
    if importlib.util.find_spec("flash_attn") is None:
        _assert_one_line_error(hubkit("train", *base, "attn_implementation=flash_attention_2", "--no-progress"),
                               "needs flash-attn")
    spec = RunSpec(model=str(tiny_model), dataset="lima")
    for extra in ({"gpus": 8, "distributed": "deepspeed-zero3"}, {"gpus": 2}, {"attn_implementation": "sdpa"}):
        assert run_id(RunSpec(model=str(tiny_model), dataset="lima", **extra)) == run_id(spec)
    assert not list(tmp_path.iterdir())


def test_zero_configs_add_up_and_pass_deepspeeds_checker():
    for stage in (2, 3):
        config = deepspeed_config(stage, micro=4, accumulation=2, world=8, dtype="bfloat16")
        assert config["train_batch_size"] == 64 and config["zero_optimization"]["stage"] == stage
        assert config["bf16"]["enabled"] and not config["fp16"]["enabled"]
        check_deepspeed(config, world=8)
    with pytest.raises(HubkitError, match="is not 4 × 2 × 4 processes"):
        check_deepspeed(deepspeed_config(2, 4, 2, 8, "bfloat16"), world=4)


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="DeepSpeed is not installed (GPU extra)")
def test_deepspeeds_own_checker_refuses_what_it_does_not_know():
    config = deepspeed_config(3, micro=4, accumulation=2, world=2, dtype="bfloat16")
    with pytest.raises(HubkitError, match="refused by DeepSpeed.*no_such_key"):
        check_deepspeed({**config, "zero_optimization": {"stage": 3, "no_such_key": 1}}, world=2)
    with pytest.raises(HubkitError, match="refused by DeepSpeed.*stage"):
        check_deepspeed({**config, "zero_optimization": {"stage": 7}}, world=2)
