"""The run directory's typed records (`hubkit.runs`): what train writes is what eval, publish and the sweep read."""

from __future__ import annotations

import json
import shutil

import pytest

from hubkit.config import RunSpec, StageOptions, SweepSpec
from hubkit.errors import HubkitError
from hubkit.runs import PublishRecord, RunDir, RunMetrics, RunRecord, load_run
from hubkit.train import train

from ..test_cli import _assert_one_line_error, hubkit


@pytest.fixture(scope="module")
def run(tiny_model, seeded, tmp_path_factory):
    spec = RunSpec(model=str(tiny_model), dataset="lima", data_size=16, epochs=2, save_epochs=True, batch_size=8,
                   max_length=128, logging_steps=1, output_dir=str(tmp_path_factory.mktemp("runs")))
    return train(spec, progress=False)


def test_records_are_what_train_wrote_field_for_field(run):
    paths = RunDir.of(run.spec)
    assert paths.root == run.run_dir and paths.run_id == run.run_id and paths.is_trained()
    on_disk = json.loads(paths.record_file.read_text())
    assert RunRecord.from_json(on_disk).to_json() == on_disk == run.record.to_json()
    assert on_disk["base_model_revision"] is None and on_disk["epochs"] == {"1": "epochs/epoch-1", "2": "model"}
    metrics = json.loads(paths.metrics_file.read_text())
    assert RunMetrics.from_json(metrics).to_json() == metrics == run.metrics.to_json()
    assert run.metrics.loss_curve[0].step == 1 and run.metrics.final_loss == run.metrics.loss_curve[-1].loss
    assert {p: getattr(paths, p).exists() for p in ("config", "model", "eval", "log")} == {
        "config": True, "model": True, "eval": False, "log": False}
    assert paths.epoch_model(1) == run.epoch_dirs[1] and not paths.is_evaluated() and not paths.is_published()


def test_unknown_keys_survive_a_round_trip(run, tmp_path):
    copy = tmp_path / run.run_id
    shutil.copytree(run.run_dir, copy)
    paths = RunDir(copy)
    record = json.loads(paths.record_file.read_text())
    paths.record_file.write_text(json.dumps({**record, "written_by_a_newer_hubkit": {"x": 1}}))
    loaded = load_run(copy)
    assert loaded.record.extra == {"written_by_a_newer_hubkit": {"x": 1}}
    loaded.record.write(paths.record_file)
    assert json.loads(paths.record_file.read_text())["written_by_a_newer_hubkit"] == {"x": 1}


def test_the_published_copy_names_the_base_by_its_hub_id_and_has_no_times(run):
    copy = run.record.for_repo("alice/base", run.spec.epochs, 1, "demo").to_json()
    assert copy["base_model"] == "alice/base" and copy["axes"]["base_model"] == "alice/base"
    assert copy["axes"]["epochs"] == 1 and copy["checkpoint_epoch"] == 1 and copy["sweep"] == "demo"
    assert "started_at" not in copy and "finished_at" not in copy
    assert copy["command"] == "hubkit train hubkit_config.yaml" and str(run.spec.model) not in json.dumps(copy)


def test_publish_record_and_stage_options_round_trip(tmp_path):
    record = PublishRecord("alice/run", "a" * 40, {"repo": "alice/x-results", "file": "results_1.json"})
    record.write(tmp_path / "published.json")
    assert PublishRecord.read(tmp_path / "published.json") == record
    assert "results" not in PublishRecord("alice/run", "b" * 40).to_json()
    options = SweepSpec(name="demo", eval_limit=4, private=True).stage_options()
    assert StageOptions.from_json(json.loads(json.dumps(options.to_json()))) == options
    assert StageOptions.from_json(None) == StageOptions()


def test_a_corrupted_run_record_is_one_line_and_nothing_is_written(run, tmp_path, hub):
    copy = tmp_path / run.run_id
    shutil.copytree(run.run_dir, copy)
    (copy / "run.json").write_text('{"run_id": ')  # cut off mid-write by hand
    before = sorted(p.relative_to(copy) for p in copy.rglob("*"))
    with pytest.raises(HubkitError, match="unreadable RunRecord"):
        load_run(copy)
    _assert_one_line_error(hubkit("publish", str(copy), env={"HF_TOKEN": hub.tokens["alice"]}), "unreadable RunRecord")
    _assert_one_line_error(hubkit("eval", str(copy), "--suite", "mmlu", "--limit", "1"), "unreadable RunRecord")
    (copy / "run.json").write_text("[1, 2]")  # valid JSON, not a record
    _assert_one_line_error(hubkit("publish", str(copy), env={"HF_TOKEN": hub.tokens["alice"]}), "unreadable RunRecord")
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == before
