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


def test_inline_content_decodes_the_same_whatever_the_piece_boundaries(tmp_path):
    """The commit body arrives in pieces of any size (a byte, a TCP segment, a megabyte): the stored blobs are the
    same as a one-shot decode, and a bad character is refused wherever it falls."""
    import base64
    import json
    import random

    from hubkit.hub.server.errors import BadRequest
    from hubkit.hub.server.ndjson import CommitReader
    from hubkit.hub.server.storage import Store

    store = Store(tmp_path / "store")
    data = os.urandom(3 * MB + 1)  # over the 1 MB line limit: streamed; 3 MB + 1 leaves base64 padding
    lines = [{"key": "header", "value": {"summary": "x"}},
             {"key": "file", "value": {"content": base64.b64encode(data).decode(), "path": "a.bin", "encoding": "base64"}},
             {"key": "file", "value": {"content": base64.b64encode(b"small").decode(), "path": "b.txt"}}]
    body = "\n".join(json.dumps(x) for x in lines).encode()
    rng = random.Random(0)
    for _ in range(10):
        reader, pos = CommitReader(store), 0
        while pos < len(body):
            n = rng.choice([1, 2, 3, 5, 4096, 65536, MB])
            reader.feed(body[pos:pos + n])
            pos += n
        items = reader.close()
        assert items[1][2][:2] == (hashlib.sha256(data).hexdigest(), len(data))
        assert items[2][2][:2] == (hashlib.sha256(b"small").hexdigest(), 5)
    broken = body[:body.index(b"a.bin") - 200_000] + b"*" + body[body.index(b"a.bin") - 199_999:]
    reader = CommitReader(store)
    with pytest.raises(BadRequest, match="Invalid base64"):
        for i in range(0, len(broken), 7919):
            reader.feed(broken[i:i + 7919])
        reader.close()
    reader.abort()
