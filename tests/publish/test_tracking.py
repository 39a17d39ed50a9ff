"""`run.report_to: trackio`: the trainer's metrics in trackio's local store, kept in the run directory, synced to a
Hub dataset beside the model on publish, and linked from the card — on the local Hub, with the real trackio."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest
from huggingface_hub import ModelCard, hf_hub_download

from hubkit.config import RunSpec
from hubkit.publish import publish_run
from hubkit.train import train

from ..test_cli import _assert_one_line_error, hubkit


@pytest.fixture(scope="module")
def tracked(hub, seeded, tiny_base, tmp_path_factory):
    out = tmp_path_factory.mktemp("tracked")
    spec = RunSpec(model=tiny_base, dataset="lima", data_size=16, epochs=2, batch_size=4, max_length=128,
                   learning_rate=1e-3, logging_steps=1, output_dir=str(out), report_to="trackio",
                   trackio_project="tracking-test")
    return spec, train(spec, progress=False)


def test_the_trainer_logs_to_trackio_and_the_run_keeps_its_rows(tracked):
    import trackio

    spec, run = tracked
    rows = pd.read_parquet(run.paths.tracking / "metrics.parquet")
    losses = [p.loss for p in run.metrics.loss_curve]
    assert len(losses) == run.metrics.steps >= 4  # a row per optimiser step (logging_steps=1), 2 epochs
    logged = rows.dropna(subset=["train/loss"])["train/loss"].tolist()
    assert logged == pytest.approx(losses, rel=1e-6)  # what trackio holds is what the trainer logged
    assert {"step", "timestamp", "train/learning_rate", "train/grad_norm", "train/epoch"} <= set(rows.columns)
    assert [r.name for r in trackio.Api().runs("tracking-test")] == [run.run_id]  # trackio's own store has it
    again = train(spec, force=True, progress=False)  # trained again: its rows replace the first training's
    assert [r.name for r in trackio.Api().runs("tracking-test")] == [run.run_id]
    assert len(pd.read_parquet(again.paths.tracking / "metrics.parquet")) == len(rows)


def test_publishing_syncs_them_beside_the_model_and_the_card_links_them(hub, tracked):
    alice = hub.api("alice")
    _, run = tracked
    result = publish_run(run.run_dir, api=alice)
    dataset = "alice/tracking-test-trackio"
    files = set(alice.list_repo_files(dataset, repo_type="dataset"))
    assert {f"runs/{run.run_id}/metrics.parquet", f"runs/{run.run_id}/run.json", "README.md"} <= files
    synced = pd.read_parquet(hf_hub_download(dataset, f"runs/{run.run_id}/metrics.parquet", repo_type="dataset",
                                             token=hub.tokens["alice"]))
    assert synced.equals(pd.read_parquet(run.paths.tracking / "metrics.parquet"))
    card = ModelCard.load(result.repo_id, token=hub.tokens["alice"])
    link = f"{hub.url}/datasets/{dataset}"
    assert f"]({link})" in card.text and f"runs/{run.run_id}/metrics.parquet" in card.text
    assert card.data.to_dict()["hubkit"]["trackio"] == f"{dataset}/runs/{run.run_id}"
    page = httpx.get(link, timeout=30)  # the card's link opens the dataset's page on the same Hub
    assert page.status_code == 200 and "training metrics" in page.text
    assert not publish_run(run.run_dir, api=alice).changed  # nothing new: no commit anywhere


def test_a_run_that_does_not_report_has_no_trackio_dataset_or_link(hub, runs_without_tracking):
    alice = hub.api("alice")
    result = publish_run(runs_without_tracking.run_dir, api=alice)
    card = ModelCard.load(result.repo_id, token=hub.tokens["alice"])
    assert "trackio" not in card.text and "trackio" not in card.data.to_dict()["hubkit"]


@pytest.fixture(scope="module")
def runs_without_tracking(seeded, tiny_base, tmp_path_factory):
    out = tmp_path_factory.mktemp("untracked")
    return train(RunSpec(model=tiny_base, dataset="lima", data_size=8, epochs=1, batch_size=4, max_length=128,
                         logging_steps=1, output_dir=str(out), seed=7), progress=False)


def test_bad_tracker_settings_are_one_line(tmp_path):
    args = ["train", "model=x/y", "dataset=lima", f"output_dir={tmp_path}"]
    _assert_one_line_error(hubkit(*args, "report_to=wandb"), "report_to")
    _assert_one_line_error(hubkit(*args, "report_to=trackio", "trackio_project=a b"), "`trackio_project` 'a b'")


@pytest.mark.slow
def test_a_sweeps_runs_log_to_one_trackio_project_named_after_it(tiny_model, seeded, tmp_path):
    """Through `hubkit sweep` (each run trained in its worker process): the runs share the trackio project named
    after the sweep, so that `trackio show --project <sweep>` compares them."""
    import trackio

    sweep = tmp_path / "tracked.yaml"
    sweep.write_text("\n".join([
        "name: tracked-sweep", f"output_dir: {tmp_path / 'sweeps'}", "stages: [train]",
        f"run: {{model: {tiny_model}, dataset: lima, data_size: 8, epochs: 1, batch_size: 4, max_length: 64, "
        "logging_steps: 1, "
        "report_to: trackio}", "grid: {tuning: [full, lora]}"]) + "\n")
    proc = hubkit("sweep", str(sweep), "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = sorted(p.name for p in (tmp_path / "sweeps" / "tracked-sweep" / "runs").iterdir()
                  if not p.name.startswith("."))
    assert len(runs) == 2 and sorted(r.name for r in trackio.Api().runs("tracked-sweep")) == runs
    for run in runs:
        rows = pd.read_parquet(tmp_path / "sweeps" / "tracked-sweep" / "runs" / run / "trackio" / "metrics.parquet")
        assert rows["train/loss"].notna().any()
