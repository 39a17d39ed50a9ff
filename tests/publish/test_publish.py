"""`hubkit publish`: runs as model repos with complete cards, against a real local Hub."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from huggingface_hub import ModelCard, hf_hub_download

from hubkit.config import RunSpec
from hubkit.publish import publish_run
from hubkit.train import train

from ..test_cli import _assert_one_line_error, hubkit

HOSTILE = "<img src=x onerror=alert(1)> **x** [y](javascript:z)"


@pytest.fixture(scope="module")
def runs(hub, seeded, tiny_base, tmp_path_factory):
    """A full and a LoRA run of the tiny base model on the Hub (alice/tiny-base)."""
    out = tmp_path_factory.mktemp("runs")
    common = {"model": tiny_base, "dataset": "lima", "data_size": 16, "epochs": 1, "batch_size": 8, "max_length": 128,
                  "learning_rate": 1e-3, "logging_steps": 1, "output_dir": str(out)}
    full = train(RunSpec(**{**common, "epochs": 2, "save_epochs": True}), progress=False)
    lora = train(RunSpec(**common, tuning="lora", lora_r=4), progress=False)
    return {"full": full, "lora": lora, "out": out}


def _files(api, repo_id):
    return {s.rfilename for s in api.model_info(repo_id).siblings}


def test_publish_full_run_with_complete_card(hub, runs):
    alice = hub.api("alice")
    run = runs["full"]
    result = publish_run(run.run_dir, sweep="demo", api=alice)
    assert result.repo_id == f"alice/{run.run_id}" and result.changed
    files = _files(alice, result.repo_id)
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md", "hubkit_config.yaml", "hubkit_run.json",
            "training_metrics.json", "loss_curve.png"} <= files
    commits = len(alice.list_repo_commits(result.repo_id))

    card = ModelCard.load(result.repo_id, token=hub.tokens["alice"])
    card.validate()  # the server's validate-yaml
    data = card.data.to_dict()
    assert data["base_model"] == "alice/tiny-base" and data["base_model_relation"] == "finetune"
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "text-generation"
    assert {"hubkit-sft", "sft-dataset-lima", "data-size-16", "tuning-full", "epochs-2", "schedule-cosine",
            "sweep-demo"} <= set(data["tags"])
    assert data["hubkit"]["run_id"] == run.run_id and data["hubkit"]["tuning"] == "full"
    assert data["datasets"] == ["hubkit-data/lima"]

    again = publish_run(run.run_dir, sweep="demo", api=alice)
    assert not again.changed and again.commit == result.commit
    assert len(alice.list_repo_commits(result.repo_id)) == commits  # re-publishing made no commit

    collections = alice.list_collections(owner="alice")
    assert any(c.title == "hubkit sweep demo" for c in collections)


def test_each_saved_epoch_publishes_as_a_model_of_its_own(hub, runs):
    alice = hub.api("alice")
    run = runs["full"]
    result = publish_run(run.run_dir, epoch=1, api=alice)
    assert "-e1of2-" in result.repo_id and result.repo_id != f"alice/{run.run_id}"
    data = ModelCard.load(result.repo_id, token=hub.tokens["alice"]).data.to_dict()
    assert {"epochs-1", "checkpoint-of-2-epochs"} <= set(data["tags"]) and data["hubkit"]["trained_epochs"] == 2
    local = (run.run_dir / "epochs" / "epoch-1" / "model.safetensors").read_bytes()
    assert Path(hf_hub_download(result.repo_id, "model.safetensors", token=hub.tokens["alice"])).read_bytes() == local
    found = {m.id for m in alice.list_models(author="alice", filter=["hubkit-sft", "epochs-1", "tuning-full"])}
    assert result.repo_id in found
    with pytest.raises(Exception, match="no model saved after epoch 5"):
        publish_run(run.run_dir, epoch=5, api=alice)


def test_published_content_holds_no_local_path_or_token(hub, runs):
    alice = hub.api("alice")
    run = runs["full"]
    result = publish_run(run.run_dir, api=alice)
    for name in ("README.md", "hubkit_config.yaml", "hubkit_run.json", "training_metrics.json"):
        text = Path(hf_hub_download(result.repo_id, name, token=hub.tokens["alice"])).read_text(encoding="utf-8")
        assert str(runs["out"]) not in text and "/tmp/" not in text and hub.tokens["alice"] not in text, name


def test_lora_run_publishes_an_adapter_that_loads_from_the_hub(hub, runs):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    alice = hub.api("alice")
    result = publish_run(runs["lora"].run_dir, api=alice)
    files = _files(alice, result.repo_id)
    assert "adapter_model.safetensors" in files and "model.safetensors" not in files
    data = ModelCard.load(result.repo_id, token=hub.tokens["alice"]).data.to_dict()
    assert data["base_model_relation"] == "adapter" and data["library_name"] == "peft"
    base = AutoModelForCausalLM.from_pretrained("alice/tiny-base", token=hub.tokens["alice"])
    model = PeftModel.from_pretrained(base, result.repo_id, token=hub.tokens["alice"])
    assert model(torch.tensor([[3, 4, 5]])).logits.shape[-1] == base.config.vocab_size


def test_metadata_filters_find_grid_slices(hub, runs):
    alice = hub.api("alice")
    for run in (runs["full"], runs["lora"]):
        publish_run(run.run_dir, api=alice)
    lora = {m.id for m in alice.list_models(author="alice", filter=["hubkit-sft", "tuning-lora"])}
    full = {m.id for m in alice.list_models(author="alice",
                                            filter=["hubkit-sft", "tuning-full", "sft-dataset-lima", "epochs-2"])}
    assert lora == {f"alice/{runs['lora'].run_id}"} and full == {f"alice/{runs['full'].run_id}"}


def test_cards_have_no_empty_section_or_placeholder_and_escape_hostile_text(hub, runs):
    alice = hub.api("alice")
    result = publish_run(runs["lora"].run_dir, repo_id="alice/hostile-card", sweep=HOSTILE, api=alice)
    text = ModelCard.load(result.repo_id, token=hub.tokens["alice"]).text
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    assert len(sections) >= 5
    for section in sections:
        heading, _, body = section.partition("\n")
        assert body.strip(), f"empty section {heading!r}"
    for placeholder in ("More Information Needed", "TODO", "{{", "None |", "| None"):
        assert placeholder not in text
    assert "<img" not in text and "](javascript" not in text and "&lt;img" in text


def test_cli_publish_and_its_errors(hub, runs, tmp_path):
    env = {"HF_TOKEN": hub.tokens["alice"]}
    proc = hubkit("publish", str(runs["full"].run_dir), "--repo-id", "alice/cli-published", env=env)
    assert proc.returncode == 0, proc.stderr
    again = hubkit("publish", str(runs["full"].run_dir), "--repo-id", "alice/cli-published", env=env)
    assert "unchanged: no commit" in again.stdout
    # a run without an evaluation publishes no rows, and the output says where they would go and how
    assert "Results: none (the run has no evaluation; `hubkit eval" in " ".join(again.stdout.split())
    assert "alice/hubkit-results" in again.stdout
    _assert_one_line_error(hubkit("publish", str(tmp_path), env=env), "not a hubkit run directory")
    _assert_one_line_error(hubkit("publish", str(runs["full"].run_dir), "--repo-id", "bob/nope", env=env),
                           "cannot publish")


@pytest.mark.slow
def test_sweep_carries_runs_from_training_to_published(hub, runs, tmp_path):
    import json

    config = tmp_path / "pub.yaml"
    config.write_text(f"name: pubsweep\noutput_dir: {tmp_path}\nstages: [train, eval, publish]\nnamespace: alice\n"
                      "eval_suite: mmlu\neval_limit: 3\n"
                      "run: {model: alice/tiny-base, dataset: lima, data_size: 16, epochs: 2, save_epochs: true,"
                      " batch_size: 8, max_length: 128}\n"
                      "grid: {tuning: [full, lora]}\n")
    env = {"HF_TOKEN": hub.tokens["alice"]}
    proc = hubkit("sweep", str(config), "--no-progress", env=env)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in hubkit("sweep", str(config), "--status", "--json").stdout.splitlines()]
    assert [r["state"] for r in rows] == ["published", "published"]
    assert all(set(r["timings"]) == {"train", "eval", "publish"} for r in rows)
    alice = hub.api("alice")
    collection = next(c for c in alice.list_collections(owner="alice") if c.title == "hubkit sweep pubsweep")
    items = {i.item_id for i in alice.get_collection(collection.slug).items}
    finals = {f"alice/{r['run_id']}" for r in rows}
    checkpoints = {f.replace("-e2-", "-e1of2-") for f in finals}  # each run's epoch-1 checkpoint, too
    assert items == finals | checkpoints
    assert all("sweep-pubsweep" in alice.model_info(i).tags for i in items)
    from hubkit.publish import load_results

    results = load_results("alice/pubsweep-results", api=alice)  # each final model's evaluation, with its gain
    assert set(results["model_id"]) == finals and set(results["benchmark"]) == {"mmlu"}
    assert results["gain"].notna().all()
    again = hubkit("sweep", str(config), "--no-progress", env=env)
    assert again.returncode == 0 and "(0 jobs this time)" in again.stdout


@pytest.mark.slow
def test_hub_down_mid_publish_keeps_the_previous_commit_and_a_rerun_completes(own_hub, runs, tmp_path):
    import json
    import shutil

    from hubkit.errors import HubkitError

    run_dir = tmp_path / runs["full"].run_id
    shutil.copytree(runs["full"].run_dir, run_dir)
    api = own_hub.api(lfs=True)
    first = publish_run(run_dir, repo_id="carol/run", base_model="alice/tiny-base", api=api)
    recorded = json.loads((run_dir / "published.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    (run_dir / "metrics.json").write_text(json.dumps({**metrics, "final_loss": 1.0}))  # the run changed

    port = int(own_hub.server.url.rsplit(":", 1)[1])
    own_hub.server.stop()
    with pytest.raises(HubkitError, match="cannot reach the Hub"):
        publish_run(run_dir, repo_id="carol/run", base_model="alice/tiny-base", api=api)
    assert json.loads((run_dir / "published.json").read_text()) == recorded  # the run's state is unchanged

    own_hub.restart(port=port)
    api = own_hub.api(lfs=True)
    assert api.model_info("carol/run").sha == first.commit  # the repo is still at its previous commit
    second = publish_run(run_dir, repo_id="carol/run", base_model="alice/tiny-base", api=api)
    assert second.changed and second.commit != first.commit
    weights = json.loads((run_dir / "published.json").read_text())["weights_commit"]
    # two commits a publish: the weights, then the card and evaluation that name them
    assert [c.commit_id for c in api.list_repo_commits("carol/run")][:3] == [second.commit, weights, first.commit]


def test_an_evaluated_run_publishes_its_results_to_the_card_and_the_results_dataset(hub, seeded, tiny_base, tmp_path):
    import json

    import pandas as pd
    import yaml

    from hubkit.eval.harness import evaluate_model
    from hubkit.publish import load_results

    alice = hub.api("alice")
    run = train(RunSpec(model=tiny_base, dataset="lima", data_size=16, epochs=1, batch_size=8, max_length=128,
                        learning_rate=1e-3, seed=7, output_dir=str(tmp_path)), progress=False)
    report = evaluate_model(str(run.run_dir), suite="mmlu,hellaswag", limit=4, progress=False)
    result = publish_run(run.run_dir, sweep="evald", api=alice)
    files = _files(alice, result.repo_id)
    assert f"eval/{report.results_file.name}" in files
    # 4 records per benchmark: subset scores, labelled everywhere and kept out of `.eval_results/` by default
    assert report.subset("mmlu") and report.sizes["mmlu"][0] == 4
    assert not any(f.startswith(".eval_results/") for f in files)

    card = ModelCard.load(result.repo_id, token=hub.tokens["alice"])
    card.validate()
    weights = json.loads((run.run_dir / "published.json").read_text())["weights_commit"]
    history = [c.commit_id for c in alice.list_repo_commits(result.repo_id)]
    assert history[:2] == [result.commit, weights]  # the card's commit names the weights' commit below it
    base_commit = alice.model_info(tiny_base).sha
    # `license: other` comes with a name and a link to the terms beside the card
    assert (card.data.license, card.data.license_name, card.data.license_link) == (
        "other", "base-model-and-data-terms", "LICENSE.md")
    assert "LICENSE.md" in files and f"revision `{weights}` of this repo" in card.text
    from huggingface_hub import ModelCardData

    assert ModelCardData(**card.data.to_dict()).to_dict() == card.data.to_dict()  # the YAML round-trips
    evals = {(r.dataset_type, r.metric_type): r for r in card.data.eval_results}
    assert set(evals) == {("cais/mmlu", "acc"), ("Rowan/hellaswag", "acc"), ("Rowan/hellaswag", "acc_norm")}
    mmlu = evals["cais/mmlu", "acc"]
    assert mmlu.metric_value == pytest.approx(report.scores["mmlu"], abs=1e-4)
    total = report.sizes["mmlu"][1]
    assert mmlu.dataset_args == {"num_few_shot": 5, "n_samples": 4, "n_total": total, "subset": True}
    import transformers

    from hubkit import __version__

    version = f"{__version__} (hf: transformers {transformers.__version__})"  # hubkit, and the backend that scored
    assert mmlu.metric_args == {"scale": "percent", "higher_is_better": True, "headline": True, "harness": "hubkit",
                                "harness_version": version, "model_revision": weights, "base_model": tiny_base,
                                "base_revision": base_commit}
    assert (mmlu.source_name, mmlu.source_url) == (f"hubkit {version}", f"{hub.url}/{result.repo_id}")
    assert evals["Rowan/hellaswag", "acc_norm"].metric_args["headline"] is False
    evals = {k[0]: v for k, v in evals.items() if v.metric_args["headline"]}
    assert f"subset: 4 of {total:,}" in evals["cais/mmlu"].metric_name
    assert "## Evaluation" in card.text and f"{report.gains['mmlu']:+.2f}" in card.text
    assert f"| 4 of {total:,} (subset) |" in card.text and "**Subset scores.**" in card.text

    # the results dataset: the model's folder (results JSON + per-sample details) and its consolidated rows
    assert result.results is not None and result.results.repo_id == "alice/evald-results"
    key = result.repo_id.split("/")[-1]
    data_files = set(alice.list_repo_files("alice/evald-results", repo_type="dataset"))
    assert f"models/{key}/{report.results_file.name}" in data_files
    assert {f"models/{key}/{p.name}" for p in report.samples_files.values()} <= data_files
    rows = load_results("alice/evald-results", api=alice)
    everything = rows[rows["run_id"] == run.run_id]
    assert set(zip(everything["benchmark"], everything["metric"])) == {("mmlu", "acc"), ("hellaswag", "acc"),
                                                                     ("hellaswag", "acc_norm")}
    # the rows name the Hub commits of the evaluated weights and of the base (not a local hash)
    assert set(everything["model_revision"]) == {weights} and set(everything["base_revision"]) == {base_commit}
    mine = everything[everything["headline"]].set_index("benchmark")
    assert set(mine.index) == {"mmlu", "hellaswag"} and (mine["model_id"] == result.repo_id).all()
    assert mine.loc["mmlu", "gain"] == pytest.approx(report.gains["mmlu"])
    assert mine.loc["mmlu", "base_model"] == tiny_base and mine.loc["mmlu", "dataset"] == "lima"
    assert (mine.loc["mmlu", "n_samples"], mine.loc["mmlu", "n_total"], mine.loc["mmlu", "subset"]) == (4, total, True)
    assert (mine.loc["mmlu", "harness"], mine.loc["mmlu", "source"], mine.loc["mmlu", "n_shot"]) == ("hubkit", "hubkit", 5)
    assert not pd.isna(mine.loc["hellaswag", "evaluated_at"])
    # round trip: the results file as published re-imports elsewhere as the very same rows
    from hubkit.importers import import_lm_eval

    published = hf_hub_download("alice/evald-results", f"models/{key}/{report.results_file.name}",
                                repo_type="dataset", token=hub.tokens["alice"])
    again_rows = import_lm_eval([published]).frame
    keep = [c for c in again_rows.columns if c not in ("sequence", "source_file")]
    ordered = ["benchmark", "metric"]
    pd.testing.assert_frame_equal(again_rows[keep].sort_values(ordered).reset_index(drop=True),
                                  everything[keep].sort_values(ordered).reset_index(drop=True), check_dtype=False)
    details = hf_hub_download("alice/evald-results", f"models/{key}/{report.samples_files['mmlu'].name}",
                              repo_type="dataset", token=hub.tokens["alice"])
    assert len([json.loads(x) for x in Path(details).read_text(encoding="utf-8").splitlines()]) == 4
    for path in [f"eval/{report.results_file.name}", "README.md"]:
        with open(hf_hub_download(result.repo_id, path, token=hub.tokens["alice"]), encoding="utf-8") as f:
            text = f.read()
        assert str(tmp_path) not in text and hub.tokens["alice"] not in text, path

    # the leaderboard Space (no hubkit there) reads the card hubkit wrote back into the same rows, field by field
    from hubkit.space import space_module

    from_cards = space_module().rows_from_cards("alice", endpoint=hub.url, token=hub.tokens["alice"])
    carded = from_cards[from_cards["model_id"] == result.repo_id].set_index(["benchmark", "metric"])
    rows_by_key = everything.set_index(["benchmark", "metric"])
    assert set(carded.index) == set(rows_by_key.index)
    fields = ["run_id", "base_model", "dataset", "data_size", "tuning", "epochs", "lr_schedule", "n_shot", "headline",
              "scale", "higher_is_better", "n_samples", "n_total", "subset", "model_revision", "harness",
              "harness_version"]
    for key in rows_by_key.index:
        for field in fields:
            assert str(carded.loc[key, field]) == str(rows_by_key.loc[key, field]), (key, field)
        assert carded.loc[key, "score"] == pytest.approx(rows_by_key.loc[key, "score"], abs=1e-4)  # 4 decimals

    # an unchanged run re-publishes as one request: no commit in either repo
    model_commits = len(alice.list_repo_commits(result.repo_id))
    data_commits = len(alice.list_repo_commits("alice/evald-results", repo_type="dataset"))
    again = publish_run(run.run_dir, sweep="evald", api=alice)
    assert not again.changed and again.results is None
    assert len(alice.list_repo_commits(result.repo_id)) == model_commits
    assert len(alice.list_repo_commits("alice/evald-results", repo_type="dataset")) == data_commits

    # opting in puts the subset scores in `.eval_results/` too, each marked SUBSET with its sample count
    opted = publish_run(run.run_dir, repo_id="alice/evald-opt-in", subset_eval_results=True, api=alice)
    # outside a sweep, the rows go to the owner's default results dataset
    assert opted.results is not None and opted.results.repo_id == "alice/hubkit-results"
    assert set(load_results("alice/hubkit-results", api=alice)["model_id"]) == {"alice/evald-opt-in"}
    # one file per score (benchmark, shots, metric): acc and acc_norm of HellaSwag do not overwrite each other
    assert {f for f in _files(alice, opted.repo_id) if f.startswith(".eval_results/")} == {
        ".eval_results/mmlu-5shot-acc.yaml", ".eval_results/hellaswag-10shot-acc.yaml",
        ".eval_results/hellaswag-10shot-acc_norm.yaml"}
    with open(hf_hub_download(opted.repo_id, ".eval_results/mmlu-5shot-acc.yaml", token=hub.tokens["alice"]),
              encoding="utf-8") as f:
        text = f.read()
    entry = yaml.safe_load(text)[0]
    assert entry["dataset"]["id"] == "cais/mmlu" and entry["value"] == pytest.approx(report.scores["mmlu"], abs=1e-4)
    assert entry["notes"].startswith(f"SUBSET: 5-shot acc; percent (0–100), higher is better; 4 of {total:,} (subset)")
    opted_weights = json.loads((run.run_dir / "published.json").read_text())["weights_commit"]
    assert f"model revision {opted_weights}" in entry["notes"] and f"base revision {base_commit}" in entry["notes"]
    assert entry["source"] == {"name": f"hubkit eval {version}", "url": f"{hub.url}/{opted.repo_id}"}
    assert str(tmp_path) not in text and hub.tokens["alice"] not in text
    opt_card = ModelCard.load(opted.repo_id, token=hub.tokens["alice"]).text
    assert "each marked SUBSET" in opt_card
