"""`hubkit pull`: card-metadata selection, file patterns, and completeness checks against the local Hub."""

from __future__ import annotations

import json

import pytest

from hubkit.config import RunSpec
from hubkit.errors import HubkitError
from hubkit.publish import publish_run
from hubkit.pull import pull, select_models
from hubkit.train import train

from ..test_cli import _assert_one_line_error, hubkit


@pytest.fixture(scope="module")
def published(hub, seeded, tiny_base, tmp_path_factory):
    bob = hub.api("bob")
    out = tmp_path_factory.mktemp("pull-runs")
    common = {"model": tiny_base, "dataset": "lima", "data_size": 16, "epochs": 1, "batch_size": 8, "max_length": 128,
                  "output_dir": str(out)}
    full = publish_run(train(RunSpec(**common), progress=False).run_dir, api=bob)
    lora = publish_run(train(RunSpec(**common, tuning="lora", lora_r=4), progress=False).run_dir, api=bob)
    return {"full": full.repo_id, "lora": lora.repo_id}


def test_select_by_card_metadata(hub, published):
    assert select_models(author="bob", tuning="lora") == [published["lora"]]
    assert select_models(author="bob", dataset="lima", base_model="alice/tiny-base") == \
        sorted(published.values())
    with pytest.raises(HubkitError, match="no model of bob matches"):
        select_models(author="bob", dataset="math")


def test_pull_verifies_and_repairs_a_partial_snapshot(hub, published, tmp_path):
    env = {"HF_TOKEN": hub.tokens["bob"]}
    proc = hubkit("pull", "--author", "bob", "--tuning", "full", "--only", "weights", "--output", str(tmp_path),
                  "--no-progress", env=env)
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / published["full"].replace("/", "--")
    names = {p.name for p in folder.iterdir() if p.is_file()}
    assert {"model.safetensors", "config.json", "pulled.json"} <= names and "README.md" not in names
    weights = folder / "model.safetensors"
    size = weights.stat().st_size
    with open(weights, "r+b") as f:  # a download cut short
        f.truncate(size // 2)
    (folder / "config.json").unlink()
    [again] = pull(tmp_path, only="weights", progress=False, repo_ids=[published["full"]])
    assert weights.stat().st_size == size and (folder / "config.json").is_file()
    # snapshot_download trusts its local metadata for the cut file: only the size check catches it
    assert again.refetched == ["model.safetensors"]
    # a same-size corruption (one flipped byte) fails the sha256 check and is fetched again
    good = weights.read_bytes()
    with open(weights, "r+b") as f:
        f.seek(size // 3)
        f.write(bytes([good[size // 3] ^ 0xFF]))
    proc = hubkit("pull", published["full"], "--only", "weights", "--output", str(tmp_path), "--no-progress", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "1 re-fetched" in proc.stdout and "checksums verified" in proc.stdout
    assert weights.read_bytes() == good
    record = json.loads((folder / "pulled.json").read_text())
    assert record["repo_id"] == published["full"] and record["files"] == again.files


def test_configs_only_and_errors(hub, published, tmp_path):
    [lora] = pull(tmp_path, only="configs", progress=False, repo_ids=[published["lora"]])
    folder = tmp_path / lora.folder
    assert (folder / "adapter_config.json").is_file() and (folder / "hubkit_config.yaml").is_file()
    assert not list(folder.glob("*.safetensors"))
    _assert_one_line_error(hubkit("pull", "bob/no-such-model", "--output", str(tmp_path)), "pull bob/no-such-model")
    _assert_one_line_error(hubkit("pull", "--output", str(tmp_path)), "give repo ids, or --author")
    _assert_one_line_error(hubkit("pull", published["lora"], "--only", "half", "--output", str(tmp_path)),
                           "--only must be one of")
