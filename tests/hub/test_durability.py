"""Large files, restarts and crashes: a server of its own per test, killed and restarted for real."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from huggingface_hub import hf_hub_download

from hubkit.hub import push_folder
from hubkit.hub.server.storage import Store


def _write_random(path: Path, size: int, seed: int = 0) -> str:
    """Write `size` pseudo-random bytes; returns their sha256."""
    import random

    rng = random.Random(seed)
    block = rng.randbytes(1 << 20)
    sha = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        i = 0
        while left:
            chunk = (block[i % 97:] + block[: i % 97])[: min(left, len(block))]
            f.write(chunk)
            sha.update(chunk)
            left -= len(chunk)
            i += 1
    return sha.hexdigest()


def _sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def test_state_persists_across_restarts(own_hub):
    api = own_hub.api()
    api.create_repo("carol/persist", private=True)
    api.upload_file(path_or_fileobj=b"v1", path_in_repo="f.txt", repo_id="carol/persist")
    api.create_tag("carol/persist", tag="v1")
    api.create_branch("carol/persist", branch="dev")
    head = api.model_info("carol/persist").sha
    coll = api.create_collection(title="Persisted runs", private=True)
    api.add_collection_item(coll.slug, "carol/persist", "model", note="kept across restarts")
    own_hub.server.stop()
    own_hub.restart()
    api = own_hub.api()
    info = api.model_info("carol/persist")
    assert info.sha == head and info.private
    assert {b.name for b in api.list_repo_refs("carol/persist").branches} == {"main", "dev"}
    assert [t.name for t in api.list_repo_refs("carol/persist").tags] == ["v1"]
    path = hf_hub_download("carol/persist", "f.txt", endpoint=own_hub.server.url, token=own_hub.token,
                           cache_dir=own_hub.root.parent / "cache")
    assert Path(path).read_bytes() == b"v1"
    assert api.whoami()["name"] == "carol"  # users persist too
    kept = api.get_collection(coll.slug)  # collections are stored by `Store` like repos
    assert kept.private and [(i.item_id, i.note) for i in kept.items] == [("carol/persist", "kept across restarts")]
    assert api.create_collection(title="Persisted runs", exists_ok=True).slug == coll.slug


@pytest.mark.slow
def test_stock_client_uploads_and_downloads_100mb(own_hub, tmp_path):
    """hf_xet installed, default settings: the server keeps the client on the inline (regular) path."""
    api = own_hub.api()
    api.create_repo("carol/big")
    folder = tmp_path / "big"
    folder.mkdir()
    digest = _write_random(folder / "model.safetensors.bin", 101 * 1024 * 1024)
    (folder / "config.json").write_text("{}")
    api.upload_folder(folder_path=folder, repo_id="carol/big")
    files = {f.path: f for f in api.list_repo_tree("carol/big")}
    assert files["model.safetensors.bin"].size == 101 * 1024 * 1024
    assert files["model.safetensors.bin"].lfs.sha256 == digest
    path = hf_hub_download("carol/big", "model.safetensors.bin", endpoint=own_hub.server.url, token=own_hub.token,
                           cache_dir=tmp_path / "cache")
    assert _sha256(path) == digest


@pytest.mark.slow
def test_hubkit_push_streams_large_files_through_lfs(own_hub, tmp_path):
    api = own_hub.api(lfs=True)
    api.create_repo("carol/stream")
    folder = tmp_path / "run"
    folder.mkdir()
    digest = _write_random(folder / "model.safetensors", 64 * 1024 * 1024, seed=3)
    (folder / "config.json").write_text('{"a": 1}')
    first = push_folder("carol/stream", folder, api=api)
    assert first.changed and first.files == 2
    again = push_folder("carol/stream", folder, api=api)
    assert not again.changed and again.commit == first.commit  # unchanged: no upload, no commit
    assert len(api.list_repo_commits("carol/stream")) == 2
    tree = {f.path: f for f in api.list_repo_tree("carol/stream")}
    assert tree["model.safetensors"].lfs.sha256 == digest
    store = Store(own_hub.root)
    assert store.has_blob(digest, 64 * 1024 * 1024)


@pytest.mark.slow
def test_sigkill_mid_upload_keeps_previous_commit_and_retry_succeeds(own_hub, tmp_path):
    api = own_hub.api(lfs=True)
    api.create_repo("carol/crash")
    api.upload_file(path_or_fileobj=b"before", path_in_repo="before.txt", repo_id="carol/crash")
    head = api.model_info("carol/crash").sha
    folder = tmp_path / "run"
    folder.mkdir()
    digest = _write_random(folder / "model.safetensors", 400 * 1024 * 1024, seed=7)
    port = int(own_hub.server.url.rsplit(":", 1)[1])
    outcome: dict = {}

    def upload():
        try:
            outcome["result"] = push_folder("carol/crash", folder, api=api)
        except Exception as e:
            outcome["error"] = e

    t = threading.Thread(target=upload)
    t.start()
    tmp_dir = own_hub.root / "tmp"
    deadline = time.time() + 120
    while time.time() < deadline:
        sizes = [p.stat().st_size for p in tmp_dir.iterdir() if p.is_file()] if tmp_dir.exists() else []
        if any(s > 40 * 1024 * 1024 for s in sizes):
            break
        time.sleep(0.02)
    else:
        pytest.fail("upload never started")
    os.kill(own_hub.server.pid, signal.SIGKILL)
    time.sleep(0.5)
    # While the server is down, the on-disk state is the previous commit, with no partial object published.
    store = Store(own_hub.root)
    repo = store.get_repo("model", "carol/crash")
    assert repo.branches["main"] == head
    assert not store.has_blob(digest)
    own_hub.restart(port=port)
    t.join(timeout=300)
    api = own_hub.api(lfs=True)
    if "error" in outcome or api.model_info("carol/crash").sha == head:
        retried = push_folder("carol/crash", folder, api=api)
        assert retried.changed
    files = {f.path: f for f in api.list_repo_tree("carol/crash")}
    assert files["model.safetensors"].lfs.sha256 == digest and "before.txt" in files
    assert len(api.list_repo_commits("carol/crash")) == 3
