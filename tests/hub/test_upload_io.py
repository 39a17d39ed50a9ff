"""Each upload streams once to its content-addressed place: the server writes the payload once and reads none
of it back (counted by the kernel in /proc/PID/io), for LFS uploads and inline (base64) commits alike; git
oids of streamed files are computed when a listing or a client's comparison needs them, and are right."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from hubkit.hub import push_folder
from hubkit.hub.server.records import git_blob_oid

MB = 1024 * 1024


def _io(pid: int) -> dict[str, int]:
    return {k: int(v) for k, v in (line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())}


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux's /proc/PID/io")
@pytest.mark.parametrize("path", ["lfs", "inline"])
def test_the_server_writes_an_upload_once_and_reads_none_of_it(own_hub, tmp_path, path):
    size = 24 * MB
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(os.urandom(size))
    api = own_hub.api(lfs=path == "lfs")
    api.create_repo("carol/io")
    pid = own_hub.server.pid
    before = _io(pid)
    if path == "lfs":
        push_folder("carol/io", folder, api=api)
    else:
        api.upload_file(path_or_fileobj=str(folder / "model.safetensors"), path_in_repo="model.safetensors",
                        repo_id="carol/io")
    after = _io(pid)
    written, read = after["wchar"] - before["wchar"], after["rchar"] - before["rchar"]
    assert written <= 1.05 * size, f"{path}: the server wrote {written / size:.2f}x the payload"
    assert read <= 0.05 * size, f"{path}: the server read {read / size:.2f}x the payload back"
    info = api.get_paths_info("carol/io", ["model.safetensors"])[0]
    assert info.lfs.sha256 == hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def test_streamed_files_get_their_git_oids_when_needed(own_hub, tmp_path):
    """An inline file over 1 MB is streamed without its git oid; a non-LFS one gets it at commit (listings show
    it), an LFS one when the stock client compares it, so an unchanged re-upload is still skipped."""
    api = own_hub.api()
    api.create_repo("carol/oids")
    text = b"".join(b"line %d of a large text file\n" % i for i in range(100_000))  # ~3 MB, not an LFS path
    weights = os.urandom(3 * MB)
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "notes.txt").write_bytes(text)
    (folder / "model.safetensors").write_bytes(weights)
    first = api.upload_folder(folder_path=folder, repo_id="carol/oids")
    files = {f.path: f for f in api.list_repo_tree("carol/oids")}
    assert files["notes.txt"].lfs is None and files["notes.txt"].blob_id == git_blob_oid(text)
    assert files["model.safetensors"].lfs.sha256 == hashlib.sha256(weights).hexdigest()
    again = api.upload_folder(folder_path=folder, repo_id="carol/oids")
    assert again.oid == first.oid  # both compared equal: nothing uploaded, no empty commit
    blobs = own_hub.root / "objects" / "blobs"
    meta = (blobs / hashlib.sha256(weights).hexdigest()[:2] / f"{hashlib.sha256(weights).hexdigest()}.json")
    assert git_blob_oid(weights) in meta.read_text()  # recorded once computed
