"""The local Hub against a hostile user: other repos' objects, private repos in collections, parser bombs,
malformed parameters, tokens, and storage left behind. Every attack goes over real HTTP."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
import time
from pathlib import Path

import httpx
import pytest

from hubkit.hub.server import records, storage
from hubkit.hub.server.auth import Users
from hubkit.hub.server.storage import objects as _objects  # noqa: F401  (storage.objects, patched below)

from ..test_cli import _assert_one_line_error, hubkit


def _auth(hub, user: str) -> dict[str, str]:
    return {"authorization": f"Bearer {hub.tokens[user]}"}


def _batch(url: str, rid: str, headers: dict, operation: str, oid: str, size: int) -> dict:
    r = httpx.post(f"{url}/{rid}.git/info/lfs/objects/batch", headers=headers,
                   json={"operation": operation, "transfers": ["basic"], "objects": [{"oid": oid, "size": size}]})
    assert r.status_code == 200, r.text
    return r.json()["objects"][0]


def _lfs_commit(url: str, rid: str, headers: dict, path: str, oid: str, size: int) -> httpx.Response:
    lines = [{"key": "header", "value": {"summary": "add"}},
             {"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": oid, "size": size}}]
    return httpx.post(f"{url}/api/models/{rid}/commit/main", headers=headers,
                      content="\n".join(json.dumps(x) for x in lines).encode())


def _upload(url: str, rid: str, headers: dict, data: bytes) -> str:
    oid = hashlib.sha256(data).hexdigest()
    obj = _batch(url, rid, headers, "upload", oid, len(data))
    if "actions" in obj:
        assert httpx.put(obj["actions"]["upload"]["href"], content=data).status_code == 200
    return oid


def test_knowing_a_private_files_hash_gives_no_access_to_it(hub, alice, bob, repo_name):
    secret = b"alice's private weights " + os.urandom(16)
    private, theirs = f"alice/{repo_name}-private", f"bob/{repo_name}"
    alice.create_repo(private, private=True)
    bob.create_repo(theirs)
    oid = _upload(hub.url, private, _auth(hub, "alice"), secret)
    assert _lfs_commit(hub.url, private, _auth(hub, "alice"), "secret.bin", oid, len(secret)).status_code == 200

    # bob names the hash in a commit to his own repo: refused, exactly as for a hash that exists nowhere
    stolen = _lfs_commit(hub.url, theirs, _auth(hub, "bob"), "stolen.bin", oid, len(secret))
    nowhere = _lfs_commit(hub.url, theirs, _auth(hub, "bob"), "stolen.bin", "0" * 64, len(secret))
    assert stolen.status_code == nowhere.status_code == 400
    assert stolen.json()["error"].replace(oid, "X") == nowhere.json()["error"].replace("0" * 64, "X")
    assert "stolen.bin" not in bob.list_repo_files(theirs)
    # the batch endpoint is no oracle: the object is asked for again, and never offered for download
    asked = _batch(hub.url, theirs, _auth(hub, "bob"), "upload", oid, len(secret))
    assert "actions" in asked and "upload" in asked["actions"]
    assert _batch(hub.url, theirs, _auth(hub, "bob"), "download", oid, len(secret))["error"]["code"] == 404
    # an upload URL signed for alice's repo does not grant bob's
    href = _batch(hub.url, private, _auth(hub, "alice"), "upload", "1" * 64, 3)["actions"]["upload"]["href"]
    forged = href.replace(f"model%3A{private.replace('/', '%2F')}", f"model%3A{theirs.replace('/', '%2F')}")
    assert forged != href and httpx.put(forged, content=b"abc").status_code == 403

    # uploading the same bytes himself is fine: he has them, so he may commit them
    assert _upload(hub.url, theirs, _auth(hub, "bob"), secret) == oid
    assert _lfs_commit(hub.url, theirs, _auth(hub, "bob"), "mine.bin", oid, len(secret)).status_code == 200


def test_collections_never_show_private_repos_to_others(hub, alice, bob, repo_name):
    private, public = f"alice/{repo_name}-private", f"alice/{repo_name}-public"
    alice.create_repo(private, private=True)
    alice.create_repo(public)
    coll = alice.create_collection(title=f"mixed {repo_name}", namespace="alice")
    for rid in (private, public):
        alice.add_collection_item(coll.slug, rid, "model")
    assert {i.item_id for i in alice.get_collection(coll.slug).items} == {private, public}
    assert [i.item_id for i in bob.get_collection(coll.slug).items] == [public]
    anon = httpx.get(f"{hub.url}/api/collections/{coll.slug}").json()
    assert [i["id"] for i in anon["items"]] == [public] and private not in json.dumps(anon)
    # nor can they search collections by a private repo's id
    found = httpx.get(f"{hub.url}/api/collections", params={"item": f"models/{private}"}, headers=_auth(hub, "bob"))
    assert found.status_code == 200 and found.json() == []
    listed = httpx.get(f"{hub.url}/api/collections", params={"owner": "alice"}, headers=_auth(hub, "bob")).json()
    assert private not in json.dumps(listed)


BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))


def test_a_yaml_alias_bomb_is_refused_in_a_card_and_by_validate_yaml(hub, alice, repo_name):
    rid = f"alice/{repo_name}"
    alice.create_repo(rid)
    head = alice.model_info(rid).sha
    card = f"---\n{BOMB}---\n# bomb\n"
    assert len(card) < 1000
    r = httpx.post(f"{hub.url}/api/models/{rid}/commit/main", headers=_auth(hub, "alice"), content="\n".join(
        json.dumps(x) for x in [{"key": "header", "value": {"summary": "bomb"}},
                                {"key": "file", "value": {"path": "README.md", "encoding": "base64",
                                                          "content": __import__("base64").b64encode(card.encode()).decode()}}]))
    assert r.status_code == 400 and "alias expansion" in r.json()["error"]
    assert alice.model_info(rid).sha == head  # nothing stored
    info = httpx.get(f"{hub.url}/api/models/{rid}")
    assert len(info.content) < 10_000
    v = httpx.post(f"{hub.url}/api/validate-yaml", json={"content": card, "repoType": "model"})
    assert v.status_code == 400 and "alias expansion" in v.text


def test_a_nested_body_does_not_stall_the_server(hub):
    deep = "---\n" + "a: " + "[" * 5000 + "]" * 5000 + "\n---\n"
    results: dict[str, float] = {}

    def attack():
        started = time.perf_counter()
        r = httpx.post(f"{hub.url}/api/validate-yaml", json={"content": deep}, timeout=30)
        results["status"], results["attack"] = r.status_code, time.perf_counter() - started

    threads = [threading.Thread(target=attack) for _ in range(4)]
    for t in threads:
        t.start()
    started = time.perf_counter()
    assert httpx.get(f"{hub.url}/api/models", params={"limit": 1}).status_code == 200
    others = time.perf_counter() - started
    for t in threads:
        t.join()
    assert results["status"] == 400  # refused within the depth limit, not a 500
    assert others < 2.0, f"a concurrent request waited {others:.2f} s"
    too_big = httpx.post(f"{hub.url}/api/validate-yaml", json={"content": "x" * (3 << 20)})
    assert too_big.status_code == 413


def test_the_commit_cache_is_bounded_by_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(storage.objects, "COMMIT_CACHE_BYTES", 200_000)
    store = storage.Store(tmp_path / "hub", owner=True)
    store.create_repo("model", "alice/big")
    ops = [records.Operation("add", f"f{i:05d}.txt", records.FileEntry("a" * 64, 1, "b" * 40, False))
           for i in range(2000)]  # a tree of 2,000 files: ~200 KB of commit JSON
    for n in range(20):
        store.commit("model", "alice/big", "main", ops[: 100 * (n + 1)], title=f"c{n}", author="alice")
    repo = store.get_repo("model", "alice/big")
    assert len(list(store.log(repo, "main"))) == 21
    assert store._commit_bytes <= 200_000 and len(store._commits) < 21


@pytest.mark.parametrize("method, url, body", [
    ("GET", "/api/models?cursor=abc", None),
    ("GET", "/api/models?limit=abc", None),
    ("GET", "/api/models?limit=-3", None),
    ("GET", "/api/models/{rid}/tree/main?cursor=x", None),
    ("GET", "/api/models/{rid}/commits/main?p=x", None),
    ("GET", "/api/collections?limit=many", None),
    ("POST", "/api/repos/create", {"name": "typed", "type": ["model"]}),
    ("POST", "/api/models/{rid}/preupload/main", {"files": [{"path": "a.txt", "size": "abc"}]}),
    ("POST", "/{rid}.git/info/lfs/objects/batch", {"operation": "upload", "objects": "all of them"}),
    ("POST", "/{rid}.git/info/lfs/objects/batch", {"operation": ["upload"], "objects": []}),
    ("NDJSON", "/api/models/{rid}/commit/main", {"parentCommit": 123}),
    ("NDJSON", "/api/models/{rid}/commit/main", {"parentCommit": ["zz"]}),
    ("NDJSON", "/api/models/{rid}/commit/main", {"lfs_size": "abc"}),
])
def test_malformed_parameters_are_400_with_a_message(hub, alice, method, url, body):
    rid = "alice/hostile-params"
    alice.create_repo(rid, exist_ok=True)
    url = hub.url + url.format(rid=rid)
    headers = _auth(hub, "alice")
    if method == "NDJSON":
        header = {"summary": "x", **({"parentCommit": body["parentCommit"]} if "parentCommit" in body else {})}
        lines = [{"key": "header", "value": header}]
        if "lfs_size" in body:
            lines.append({"key": "lfsFile", "value": {"path": "a.bin", "oid": "0" * 64, "size": body["lfs_size"]}})
        r = httpx.post(url, headers=headers, content="\n".join(json.dumps(x) for x in lines).encode())
    elif method == "GET":
        r = httpx.get(url, headers=headers)
    else:
        r = httpx.post(url, headers=headers, json=body)
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.headers.get("x-error-message") or r.json().get("error")


def test_add_user_rotates_and_revoke_stops_a_token(hub, tmp_path):
    users = Users(hub.root)
    first = users.add_user("dave")
    who = lambda token: httpx.get(f"{hub.url}/api/whoami-v2", headers={"authorization": f"Bearer {token}"})  # noqa: E731
    assert who(first).json()["name"] == "dave"
    proc = hubkit("hub", "add-user", "dave", "--root", str(hub.root))
    second = proc.stdout.strip()
    assert proc.returncode == 0 and second.startswith("hf_") and second != first
    assert who(first).status_code == 401 and who(second).status_code == 200  # rotated while serving
    revoked = hubkit("hub", "revoke", "dave", "--root", str(hub.root))
    assert revoked.returncode == 0 and "Revoked 1 token(s) of dave" in revoked.stdout
    assert who(second).status_code == 401
    _assert_one_line_error(hubkit("hub", "revoke", "nobody", "--root", str(hub.root)), "no user 'nobody'")


def test_gc_removes_what_nothing_reaches_while_the_hub_serves(own_hub, tmp_path):
    api = own_hub.api()
    url = own_hub.server.url
    headers = {"authorization": f"Bearer {own_hub.token}"}
    for name in ("carol/keep", "carol/drop"):
        api.create_repo(name)
    shared, dropped = b"shared by both repos", b"only in the repo that goes" + os.urandom(8)
    for rid, data in (("carol/keep", shared), ("carol/drop", shared), ("carol/drop", dropped)):
        api.upload_file(path_or_fileobj=data, path_in_repo=f"{hashlib.sha1(data).hexdigest()}.txt", repo_id=rid)
    never = b"uploaded, never committed"
    pending = _upload(url, "carol/keep", headers, never)
    (own_hub.root / "tmp" / "crash-debris").write_bytes(b"partial")
    api.delete_repo("carol/drop")

    store = storage.Store(own_hub.root)
    assert store.gc(min_age=3600)["blobs"] == 0  # everything is younger than an hour: kept
    dry = hubkit("hub", "gc", "--root", str(own_hub.root), "--min-age", "0", "--dry-run")
    assert dry.returncode == 0 and "Would remove" in dry.stdout
    assert store.has_blob(hashlib.sha256(dropped).hexdigest())
    report = store.gc(min_age=0)
    assert report["blobs"] == 2 and report["uploads"] == 1 and report["debris"] >= 1 and report["commits"] >= 3
    assert not store.has_blob(hashlib.sha256(dropped).hexdigest()) and not store.has_blob(pending)
    assert store.has_blob(hashlib.sha256(shared).hexdigest())
    # the Hub still serves the repo that stayed, byte for byte
    from huggingface_hub import hf_hub_download

    path = hf_hub_download("carol/keep", f"{hashlib.sha1(shared).hexdigest()}.txt", token=own_hub.token,
                           endpoint=url, cache_dir=tmp_path / "cache")
    assert Path(path).read_bytes() == shared
    api.upload_file(path_or_fileobj=b"after gc", path_in_repo="after.txt", repo_id="carol/keep")
    assert "after.txt" in api.list_repo_files("carol/keep")


def test_hub_storage_is_private_to_its_user(own_hub):
    own_hub.api().create_repo("carol/private-files")
    own_hub.api().upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="carol/private-files")
    root = own_hub.root
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    for path in [p for p in root.rglob("*") if not p.name.endswith(".lock")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path.relative_to(root)} is {oct(mode)}"
