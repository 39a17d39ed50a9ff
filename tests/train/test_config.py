"""RunSpec / SweepSpec parsing, run ids and grid expansion (no training)."""

from __future__ import annotations

import re

import pytest

from hubkit.config import MAX_RUN_ID, RunSpec, SweepSpec, parse_config, run_id
from hubkit.errors import HubkitError
from hubkit.sweep import expand


def _write(tmp_path, text: str, name: str = "c.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_then_overrides(tmp_path):
    path = _write(tmp_path, "model: org/base\ndataset: lima\nepochs: 3\nlora_target_modules: [q_proj, v_proj]\n")
    spec = parse_config(RunSpec, path, ["epochs=1", "--tuning", "lora", "--learning-rate=3e-4", "data_size=1000"])
    assert (spec.epochs, spec.tuning, spec.learning_rate, spec.data_size) == (1, "lora", 3e-4, 1000)
    assert spec.lora_target_modules == ["q_proj", "v_proj"]
    resolved = RunSpec(model="m", dataset="lima", tuning="lora").resolved()
    assert (resolved.learning_rate, resolved.batch_size) == (2e-6, 128)  # the study's LoRA settings


@pytest.mark.parametrize("text, overrides, message", [
    ("model: m\ndataset: lima\nepoch: 3\n", [], "unknown setting `epoch` for RunSpec (did you mean `epochs`?)"),
    ("model: m\ndataset: lima\n", ["tuning=qlora"], "`tuning` must be one of full, lora"),
    ("model: m\ndataset: lima\nepochs: three\n", [], "`epochs` must be an integer"),
    ("model: m\ndataset: lima\n", ["epochs=0"], "`epochs` must be positive"),
    ("model: m\ndataset: lima\n", ["learning_rate=2"], "`learning_rate` must be in (0, 1)"),
    ("model: m\ndataset: lima\nbatch_size: 12\nmicro_batch_size: 8\n", [], "not a multiple of micro_batch_size"),
    ("dataset: lima\n", [], "`model` is required"),
    ("model: m\ndataset: [lima]]\nepochs: 1\n", [], "invalid YAML (line 2)"),
    ("- model\n", [], "expected a mapping"),
    ("model: m\ndataset: lima\n", ["epochs"], "not key=value"),
    ("model: \"m\\u0007\"\ndataset: lima\n", [], "control characters"),
])
def test_bad_configs_name_the_problem(tmp_path, text, overrides, message):
    with pytest.raises(HubkitError) as err:
        parse_config(RunSpec, _write(tmp_path, text), overrides)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(HubkitError, match="config file not found"):
        parse_config(RunSpec, tmp_path / "nope.yaml")


HUB_NAME = re.compile(r"^(?![.-])(?!.*(--|\.\.))[A-Za-z0-9._-]{1,96}(?<![.-])$")


def test_run_id_is_deterministic_documented_and_hub_valid():
    from huggingface_hub.utils import validate_repo_id

    spec = RunSpec(model="HuggingFaceTB/SmolLM2-135M-Instruct", dataset="lima", data_size=1000, tuning="lora",
                   epochs=10)
    rid = run_id(spec)
    assert rid.startswith("smollm2-135m-instruct-lima-1k-lora-e10-cosine-") and len(rid.rsplit("-", 1)[1]) == 8
    assert run_id(RunSpec(**spec.to_dict())) == rid  # same config, same id
    assert run_id(RunSpec(**{**spec.to_dict(), "output_dir": "elsewhere", "logging_steps": 1})) == rid
    assert run_id(RunSpec(**{**spec.to_dict(), "learning_rate": 1e-4})) != rid  # a hidden change changes the hash
    # the study's default learning rate written out gives the same id as leaving it empty
    assert run_id(RunSpec(**{**spec.to_dict(), "learning_rate": 2e-6})) == rid

    hostile = RunSpec(model="/tmp/" + "Very--Long..Model Name!" * 10, dataset="w/o-lima", data_size=9000)
    for s in (spec, hostile, RunSpec(model="x", dataset="../../etc/passwd.jsonl")):
        rid = run_id(s)
        assert len(rid) <= MAX_RUN_ID and HUB_NAME.match(rid), rid
        validate_repo_id(f"ns/{rid}")
    assert "-wo-lima-9k-full-e3-cosine-" in run_id(hostile)


def test_grid_expansion_with_coupled_axes_excludes_and_includes(tmp_path):
    path = _write(tmp_path, """
name: grid
run: {model: org/base, data_size: 1000, epochs: 2}
grid:
  dataset: [lima, math, all]
  tuning:
    - {tuning: full, learning_rate: 1.0e-5, batch_size: 32}
    - {tuning: lora, learning_rate: 2.0e-6, batch_size: 128}
  lr_schedule: [cosine, constant]
exclude: [{dataset: all, tuning: lora}]
include: [{dataset: w/o-lima, data_size: 9000}]
""")
    sweep = parse_config(SweepSpec, path, ["run.epochs=3", "workers=2"])
    runs = expand(sweep)
    assert len(runs) == 3 * 2 * 2 - 2 + 1
    assert sweep.workers == 2 and all(spec.epochs == 3 for _, spec in runs)
    assert not any(s.dataset == "all" and s.tuning == "lora" for _, s in runs)
    assert len({rid for rid, _ in runs}) == len(runs)
    lora = [s for _, s in runs if s.tuning == "lora"]
    assert all(s.learning_rate == 2e-6 and s.batch_size == 128 for s in lora)


@pytest.mark.parametrize("text, message", [
    ("name: g\nrun: {model: m}\ngrid: {dataset: []}\n", "grid axis `dataset` must be a non-empty list"),
    ("name: g\nrun: {model: m}\ngrid: {datset: [lima]}\n", "grid axis `datset` is not a run setting"),
    ("name: g\nrun: {model: m}\ngrid: {dataset: [lima], epochs: [1, x]}\n", "`epochs` must be an integer"),
    ("name: g\nrun: {model: m, dataset: lima}\nstages: [train, deploy]\n", "unknown stage `deploy`"),
    ("name: 'bad name'\nrun: {model: m, dataset: lima}\n", "`name` 'bad name' must be"),
    ("name: g\nrun: {model: m, dataset: lima}\nexecutor: lsf\n", "`executor` must be one of local, ray, slurm"),
    ("name: g\nrun: {model: m}\ngrid: {dataset: [lima, lmia]}\n", "unknown dataset 'lmia' (did you mean `lima`?)"),
])
def test_bad_sweeps(tmp_path, text, message):
    from hubkit.sweep import plan_sweep

    with pytest.raises(HubkitError) as err:
        plan_sweep(parse_config(SweepSpec, _write(tmp_path, text)))
    assert message in str(err.value)
