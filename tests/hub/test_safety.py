"""Hostile input over raw HTTP (the client validates some of it itself), concurrency, and Range edge cases."""

from __future__ import annotations

import base64
import json
import threading

import httpx
import pytest


def _commit(hub, token, rid, ops, summary="c"):
    lines = [json.dumps({"key": "header", "value": {"summary": summary}})] + [json.dumps(op) for op in ops]
    return httpx.post(f"{hub.url}/api/models/{rid}/commit/main", content="\n".join(lines).encode(),
                      headers={"authorization": f"Bearer {token}", "content-type": "application/x-ndjson"})


@pytest.mark.parametrize("path", ["../evil.txt", "/abs.txt", "a/../../b", "a//b", ".git/config", "a\\b", "x\x00y",
                                  "a/./b", "x" * 1200])
def test_commit_rejects_bad_paths(hub, alice, repo_name, path):
    rid = f"alice/{repo_name}"
    alice.create_repo(rid)
    head = alice.model_info(rid).sha
    op = {"key": "file", "value": {"path": path, "content": base64.b64encode(b"x").decode(), "encoding": "base64"}}
    r = _commit(hub, hub.tokens["alice"], rid, [op])
    assert r.status_code == 400 and "Invalid path" in r.json()["error"]
    assert alice.model_info(rid).sha == head
    assert not list(hub.root.parent.glob("evil.txt")) and not (hub.root / "evil.txt").exists()


@pytest.mark.parametrize("url", [
    "/alice/x/resolve/main/..%2F..%2Fusers.json",
    "/alice/x/resolve/main/../../users.json",
    "/api/models/alice/x/tree/main/..%2F..",
])
def test_reads_reject_traversal(hub, alice, url):
    alice.create_repo("alice/x", exist_ok=True)
    r = httpx.get(hub.url + url, headers={"authorization": f"Bearer {hub.tokens['alice']}"})
    assert r.status_code in (400, 404)
    assert "sha256" not in r.text  # users.json never leaks


@pytest.mark.parametrize("name", ["bad..name", "-lead", "trail-", "a--b", "x" * 97, "dot.git", "sp ace", "uni\u00e9"])
def test_create_rejects_bad_repo_names(hub, name):
    r = httpx.post(f"{hub.url}/api/repos/create", json={"name": name, "organization": "alice"},
                   headers={"authorization": f"Bearer {hub.tokens['alice']}"})
    assert r.status_code == 400, name


def test_malformed_bodies_give_400(hub, alice, repo_name):
    rid = f"alice/{repo_name}"
    alice.create_repo(rid)
    auth = {"authorization": f"Bearer {hub.tokens['alice']}"}
    assert httpx.post(f"{hub.url}/api/models/{rid}/commit/main", content=b"{not json", headers=auth).status_code == 400
    assert _commit(hub, hub.tokens["alice"], rid, [{"key": "file", "value": {"path": "a", "content": "!!"}}]).status_code == 400
    assert httpx.post(f"{hub.url}/api/models/{rid}/preupload/main", content=b"[]", headers=auth).status_code == 400
    r = httpx.post(f"{hub.url}/api/repos/create", content=b"nope", headers=auth)
    assert r.status_code == 400 and r.headers["x-error-message"].startswith("Malformed JSON")


def test_concurrent_commits_lose_nothing(alice, repo_name):
    rid = f"alice/{repo_name}"
    alice.create_repo(rid)
    errors = []

    def worker(i):
        try:
            alice.upload_file(path_or_fileobj=f"{i}".encode(), path_in_repo=f"f{i}.txt", repo_id=rid)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert {f"f{i}.txt" for i in range(8)} <= set(alice.list_repo_files(rid))
    assert len(alice.list_repo_commits(rid)) == 9


def test_range_edge_cases(hub, alice, repo_name):
    rid = f"alice/{repo_name}"
    alice.create_repo(rid)
    alice.upload_file(path_or_fileobj=b"0123456789", path_in_repo="d.txt", repo_id=rid)
    url = f"{hub.url}/{rid}/resolve/main/d.txt"
    r = httpx.get(url, headers={"Range": "bytes=2-4"})
    assert r.status_code == 206 and r.content == b"234" and r.headers["content-range"] == "bytes 2-4/10"
    assert httpx.get(url, headers={"range": "bytes=7-"}).content == b"789"
    assert httpx.get(url, headers={"range": "bytes=-3"}).content == b"789"
    r = httpx.get(url, headers={"range": "bytes=10-"})
    assert r.status_code == 416 and r.headers["content-range"] == "bytes */10"
    head = httpx.head(url)
    assert head.headers["content-length"] == "10" and len(head.headers["x-repo-commit"]) == 40
    assert "x-xet-hash" not in head.headers
    missing = httpx.head(f"{hub.url}/{rid}/resolve/main/none.txt")
    assert missing.status_code == 404 and missing.headers["x-error-code"] == "EntryNotFound"


def test_identical_files_are_stored_once(hub, alice, repo_name):
    payload = b"shared tokenizer bytes " * 1000
    for i in range(3):
        alice.create_repo(f"alice/{repo_name}-{i}")
        alice.upload_file(path_or_fileobj=payload, path_in_repo="tokenizer.json", repo_id=f"alice/{repo_name}-{i}")
    import hashlib

    digest = hashlib.sha256(payload).hexdigest()
    assert len(list((hub.root / "objects" / "blobs").rglob(digest))) == 1


def test_oversized_commit_lines_are_validated(hub, alice, repo_name):
    """Lines over 1 MB take the streaming decoder: it must reject what the JSON path rejects."""
    rid = f"alice/{repo_name}"
    alice.create_repo(rid)
    head = alice.model_info(rid).sha
    big_ok = base64.b64encode(b"\x07" * (2 * 1024 * 1024)).decode()
    bad_b64 = big_ok[:-8] + "!!!!!!!!"
    cases = [
        {"key": "file", "value": {"content": bad_b64, "path": "x.bin", "encoding": "base64"}},
        {"key": "file", "value": {"content": big_ok, "path": "../x.bin", "encoding": "base64"}},
        {"key": "header", "value": {"summary": "x" * (2 * 1024 * 1024)}},
        {"key": "file", "value": {"content": big_ok[:-1], "path": "x.bin", "encoding": "base64"}},
    ]
    for op in cases:
        r = _commit(hub, hub.tokens["alice"], rid, [op])
        assert r.status_code == 400, r.text[:200]
    assert alice.model_info(rid).sha == head
    import hashlib

    digest = hashlib.sha256(b"\x07" * (2 * 1024 * 1024)).hexdigest()
    assert not list((hub.root / "objects" / "blobs").rglob(digest))  # paths are checked before content is stored
    r = _commit(hub, hub.tokens["alice"], rid, [{"key": "file", "value": {"content": big_ok, "path": "ok.bin"}}])
    assert r.status_code == 200
    assert alice.get_paths_info(rid, ["ok.bin"])[0].size == 2 * 1024 * 1024
