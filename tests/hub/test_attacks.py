"""The local Hub stays up, and tells nothing, while one client attacks it. Each attack runs against a real
server over HTTP (the hostile client connects from 127.0.0.2, the honest one from 127.0.0.1)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from hubkit.hub.server import limits, storage, yamlsafe
from hubkit.hub.server.auth import Users
from hubkit.hub.server.records import FileEntry, Operation

ATTACKER = "127.0.0.2"


def _hostport(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


def _connect(url: str) -> socket.socket:
    sock = socket.create_connection(_hostport(url), timeout=10, source_address=(ATTACKER, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
    return sock


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _ndjson(*lines: dict) -> bytes:
    return "\n".join(json.dumps(x) for x in lines).encode()


def _file_line(path: str, data: bytes) -> dict:
    return {"key": "file", "value": {"path": path, "encoding": "base64", "content": base64.b64encode(data).decode()}}


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def attacked(own_hub):
    """carol's Hub with one model repo holding a file."""
    api = own_hub.api()
    api.create_repo("carol/target")
    api.upload_file(path_or_fileobj=b"weights" * 1000, path_in_repo="model.bin", repo_id="carol/target")
    return own_hub


@pytest.mark.slow
def test_one_address_holding_a_thousand_connections_does_not_take_the_server_down(attacked, tmp_path):
    url = attacked.server.url
    held: list[socket.socket] = []
    for i in range(1000):  # idle connections and half-sent headers (slowloris), all from one address
        try:
            sock = _connect(url)
        except OSError:
            continue
        if i % 2:
            sock.sendall(b"GET /api/models HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        held.append(sock)
    try:
        over = held[-1]
        assert _closed_by_server(over, 2.0), "a connection over the per-address cap stays open"
        # the honest client, meanwhile: reads, downloads and commits all answer
        api = attacked.api()
        for n in range(5):
            assert api.model_info("carol/target").id == "carol/target"
            path = api.hf_hub_download("carol/target", "model.bin", cache_dir=tmp_path / f"cache{n}")
            assert Path(path).read_bytes() == b"weights" * 1000
            api.upload_file(path_or_fileobj=f"{n}".encode(), path_in_repo=f"honest-{n}.txt", repo_id="carol/target")
        # and the half-sent requests are dropped once the header deadline passes
        slow = [s for i, s in enumerate(held[: limits.MAX_CONNECTIONS_PER_CLIENT]) if i % 2]
        assert all(_closed_by_server(s, limits.HEADER_SECONDS + 3) for s in slow[:5])
    finally:
        for sock in held:
            sock.close()


def _trickle(url: str, path: str, headers: dict[str, str], length: int) -> tuple[int | None, float]:
    """Send a request whose body arrives one byte a second; (status the server answered with, seconds)."""
    host, port = _hostport(url)
    sock = _connect(url)
    head = f"{'PUT' if 'lfs-upload' in path else 'POST'} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + f"Content-Length: {length}\r\n\r\n"
    started = time.monotonic()
    sock.sendall(head.encode() + b"{")
    sock.settimeout(1.0)
    try:
        while time.monotonic() - started < 40:
            try:
                answer = sock.recv(4096)
            except TimeoutError:
                try:
                    sock.sendall(b" ")
                except OSError:
                    return None, time.monotonic() - started
                continue
            if not answer:
                return None, time.monotonic() - started
            return int(answer.split(b" ", 2)[1]), time.monotonic() - started
        return None, time.monotonic() - started
    finally:
        sock.close()


@pytest.mark.slow
def test_trickled_bodies_are_dropped_on_every_route(attacked):
    url, token = attacked.server.url, attacked.token
    r = httpx.post(f"{url}/carol/target.git/info/lfs/objects/batch", headers=_auth(token),
                   json={"operation": "upload", "objects": [{"oid": "ab" * 32, "size": 100_000}]})
    upload = urlsplit(r.json()["objects"][0]["actions"]["upload"]["href"])
    routes = {
        "streamed commit": ("/api/models/carol/target/commit/main", _auth(token)),
        "LFS upload": (f"{upload.path}?{upload.query}", {}),
        "JSON body": ("/api/validate-yaml", {"content-type": "application/json"}),
    }
    results: dict[str, tuple[int | None, float]] = {}
    threads = [threading.Thread(target=lambda k=k, v=v: results.__setitem__(k, _trickle(url, v[0], v[1], 100_000)))
               for k, v in routes.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, (status, seconds) in results.items():
        assert status == 408, (name, status, seconds)  # answered, not left hanging for minutes


@pytest.mark.parametrize("method, path, length", [
    ("POST", "/api/validate-yaml", 10 << 30),
    ("POST", "/api/models/carol/target/commit/main", 9 << 30),
    ("GET", "/api/models/carol/target", 1 << 20),
])
def test_a_declared_body_over_the_cap_is_refused_before_it_is_read(attacked, method, path, length):
    host, port = _hostport(attacked.server.url)
    sock = _connect(attacked.server.url)
    try:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {attacked.token}\r\n"
                     f"Content-Length: {length}\r\n\r\n".encode())
        sock.settimeout(10)
        answer = sock.recv(65536)
        assert answer.split(b" ", 2)[1] == b"413", answer[:200]
        assert b"Request body too large" in answer
    finally:
        sock.close()


@pytest.mark.parametrize("path, rule", [
    ("\ud800", "not valid UTF-8"),
    ("a/\udfff.txt", "not valid UTF-8"),
    ("bell\x07.txt", "control characters"),
    ("a/./b.txt", "'.' or '..'"),
    ("a/../../b.txt", "'.' or '..'"),
    ("a//b.txt", "empty"),
])
def test_paths_that_would_break_listings_are_refused_naming_the_rule(attacked, path, rule):
    url = attacked.server.url
    r = httpx.post(f"{url}/api/models/carol/target/commit/main", headers=_auth(attacked.token),
                   content=_ndjson({"key": "header", "value": {"summary": "x"}}, _file_line(path, b"x")))
    assert r.status_code == 400 and rule in r.json()["error"], r.text
    assert httpx.get(f"{url}/api/models", params={"full": "true"}).status_code == 200
    assert httpx.get(f"{url}/api/models/carol/target/tree/main").status_code == 200


def test_a_lone_surrogate_anywhere_in_a_body_is_refused(attacked):
    url = attacked.server.url
    summary = httpx.post(f"{url}/api/models/carol/target/commit/main", headers=_auth(attacked.token),
                         content=b'{"key": "header", "value": {"summary": "\\ud800"}}\n' + _ndjson(_file_line("a.txt", b"a")))
    assert summary.status_code == 400 and "lone surrogate" in summary.json()["error"]
    coll = httpx.post(f"{url}/api/collections", headers={**_auth(attacked.token), "content-type": "application/json"},
                      content=b'{"title": "t\\udc00"}')
    assert coll.status_code == 400 and "lone surrogate" in coll.json()["error"]
    assert [c.title for c in attacked.api().list_collections(owner="carol")] == []


@pytest.mark.parametrize("first, then", [("q", "q/inside.txt"), ("q/inside.txt", "q"), ("a/b", "a/b/c/d.txt")])
def test_a_file_and_a_folder_cannot_share_a_name(attacked, tmp_path, first, then):
    api = attacked.api()
    api.upload_file(path_or_fileobj=b"1", path_in_repo=first, repo_id="carol/target")
    r = httpx.post(f"{attacked.server.url}/api/models/carol/target/commit/main", headers=_auth(attacked.token),
                   content=_ndjson({"key": "header", "value": {"summary": "x"}}, _file_line(then, b"2")))
    assert r.status_code == 400 and "a file and a folder cannot have the same name" in r.json()["error"]
    both = _ndjson({"key": "header", "value": {"summary": "x"}}, _file_line("z", b"1"), _file_line("z/y", b"2"))
    r = httpx.post(f"{attacked.server.url}/api/models/carol/target/commit/main", headers=_auth(attacked.token),
                   content=both)
    assert r.status_code == 400
    folder = api.snapshot_download("carol/target", cache_dir=tmp_path / "c")
    assert (Path(folder) / first).read_bytes() == b"1"  # everything the repo holds comes down


def test_a_bad_name_stored_by_an_older_hubkit_is_skipped_and_logged(attacked, caplog):
    store = storage.Store(attacked.root)
    repo = store.get_repo("model", "carol/target")
    head = store.get_commit(repo.branches["main"])
    tree = {**head.tree, "\ud800": head.tree["model.bin"], "ok.txt": head.tree["model.bin"]}
    commit = store._write_commit(repo, [head.id], tree, "legacy", "", "carol")  # as an older hubkit wrote it
    repo.branches["main"] = commit.id
    store.save_repo(repo)
    url = attacked.server.url
    for path in ("/api/models/carol/target", "/api/models?full=true", "/api/models/carol/target/tree/main",
                 "/carol/target", f"/api/models/carol/target/revision/{commit.id}"):
        r = httpx.get(url + path)
        assert r.status_code == 200, (path, r.status_code)
    files = attacked.api().list_repo_files("carol/target")
    assert "ok.txt" in files and all(f.encode("utf-8", "strict") for f in files)
    log = (attacked.root / "server.log").read_text(errors="replace")
    assert "skipping stored path" in log and "not valid UTF-8" in log


def _long_history(root: Path, repo_id: str, commits: int, files: int) -> list[str]:
    store = storage.Store(root)
    store.create_repo("model", repo_id)
    ops = [Operation("add", f"shard-{i:05d}.txt", FileEntry("a" * 64, 1, "b" * 40, False)) for i in range(files)]
    return [store.commit("model", repo_id, "main", ops[: files - commits + c + 1], title=f"c{c}", author="carol")[0].id
            for c in range(commits)]


def test_a_commit_hash_resolves_through_the_index_and_only_in_its_own_repo(attacked, monkeypatch):
    shas = _long_history(attacked.root, "carol/history", 120, 400)
    api, url = attacked.api(), attacked.server.url
    old = shas[3]
    assert api.model_info("carol/history", revision=old).sha == old
    assert api.model_info("carol/history", revision=old[:7]).sha == old
    assert len(api.list_repo_files("carol/history", revision=old[:10])) == 400 - 120 + 4 + 1
    assert httpx.get(f"{url}/api/models/carol/history/revision/0000000").status_code == 404
    # another repo's commit is not a revision of this one, nor is one of a deleted repo of the same name
    target_head = api.model_info("carol/target").sha
    assert httpx.get(f"{url}/api/models/carol/history/revision/{target_head}").status_code == 404
    api.delete_repo("carol/history")
    api.create_repo("carol/history")
    assert httpx.get(f"{url}/api/models/carol/history/revision/{old}").status_code == 404
    assert httpx.get(f"{url}/api/models/carol/history/revision/{old[:8]}").status_code == 404

    # resolving a sha reads no tree, and the commit list reads none either
    store = storage.Store(attacked.root)
    shas = _long_history(attacked.root, "carol/history2", 60, 100)
    repo = store.get_repo("model", "carol/history2")
    store._commits.clear()
    reads: list[str] = []
    original = storage.Store.get_commit
    monkeypatch.setattr(storage.Store, "get_commit", lambda self, sha: reads.append(sha) or original(self, sha))
    assert store.resolve_sha(repo, shas[0][:6]) == shas[0]
    assert [m.id for m in store.log(repo, "main")][-2] == shas[0]
    assert reads == []


def test_commit_pages_are_pages(attacked):
    _long_history(attacked.root, "carol/paged", 30, 40)
    url = attacked.server.url
    everything = httpx.get(f"{url}/api/models/carol/paged/commits/main").json()
    assert len(everything) == 31  # 30 commits and the initial one, within the 1,000 of a page
    assert httpx.get(f"{url}/api/models/carol/paged/commits/main", params={"p": 1}).json() == []
    assert [c["id"] for c in httpx.get(f"{url}/api/models/carol/paged/commits/main",
                                       params={"cursor": 25}).json()] == [c["id"] for c in everything[25:]]
    assert len(attacked.api().list_repo_commits("carol/paged")) == 31


@pytest.mark.parametrize("path, name", [
    ("/api/models/carol/target/commits/main", "p"),
    ("/api/models/carol/target/commits/main", "cursor"),
    ("/api/models/carol/target/tree/main", "cursor"),
    ("/api/models", "cursor"),
    ("/api/models", "limit"),
])
@pytest.mark.parametrize("value", [str(2**63), str(2**64), "9" * 30])
def test_huge_page_numbers_are_400_not_500(attacked, path, name, value):
    r = httpx.get(f"{attacked.server.url}{path}", params={name: value})
    assert r.status_code == 400, (r.status_code, r.text)
    assert f"Invalid {name}" in r.json()["error"]


def test_costly_yaml_is_refused_fast_naming_the_limit(attacked):
    flat = "---\n" + "".join(f"key{i}: value number {i}\n" for i in range(40_000)) + "---\n"
    assert len(flat) > 1 << 20
    v = httpx.post(f"{attacked.server.url}/api/validate-yaml", json={"content": flat})
    assert v.status_code == 400 and "larger than 256 KB (the limit)" in v.text and "alias" not in v.text
    r = httpx.post(f"{attacked.server.url}/api/models/carol/target/commit/main", headers=_auth(attacked.token),
                   content=_ndjson({"key": "header", "value": {"summary": "x"}}, _file_line("README.md", flat.encode())))
    assert r.status_code == 400 and "larger than 256 KB" in r.json()["error"]
    fits = "---\n" + "".join(f"key{i}: value {i}\n" for i in range(9_000)) + "---\n"
    assert httpx.post(f"{attacked.server.url}/api/validate-yaml", json={"content": fits}).status_code == 200


def test_yaml_parsing_is_bounded_by_time_as_well(monkeypatch):
    monkeypatch.setattr(yamlsafe, "MAX_SECONDS", 0.0)
    with pytest.raises(yamlsafe.YamlLimit, match=r"took more than 0 s to parse \(the limit\)"):
        yamlsafe.load("a: 1\nb: 2\n")


@pytest.mark.parametrize("item", [["model", "carol/target"], "carol/target", 7, {"type": "model", "id": ["x"]}])
def test_a_collection_item_that_is_not_an_object_is_400(attacked, item):
    coll = attacked.api().create_collection(title="items")
    r = httpx.post(f"{attacked.server.url}/api/collections/{coll.slug}/items", headers=_auth(attacked.token),
                   json={"item": item})
    assert r.status_code == 400, r.text


def test_collections_betray_no_hidden_item_to_a_member_who_cannot_see_it(attacked):
    users = Users(attacked.root)
    alice, mallory = users.add_user("alice", orgs=["acme"]), users.add_user("mallory", orgs=["acme"])
    url = attacked.server.url
    from huggingface_hub import HfApi

    a, m = HfApi(endpoint=url, token=alice), HfApi(endpoint=url, token=mallory)
    for rid, private in (("alice/pub1", False), ("alice/secret", True), ("alice/pub2", False)):
        a.create_repo(rid, private=private)
    coll = a.create_collection(title="acme picks", namespace="acme")
    for rid in ("alice/pub1", "alice/secret", "alice/pub2"):
        a.add_collection_item(coll.slug, rid, "model")
    seen = httpx.get(f"{url}/api/collections/{coll.slug}", headers=_auth(mallory)).json()["items"]
    assert [(i["id"], i["position"]) for i in seen] == [("alice/pub1", 0), ("alice/pub2", 1)]  # no gap at 1
    assert [(i.item_id, i.position) for i in m.get_collection(coll.slug).items] == [("alice/pub1", 0), ("alice/pub2", 1)]
    # adding the hidden repo answers as for a repo that does not exist (not "already in the collection")
    add = lambda rid: httpx.post(f"{url}/api/collections/{coll.slug}/items", headers=_auth(mallory),  # noqa: E731
                                 json={"item": {"type": "model", "id": rid}})
    hidden, missing = add("alice/secret"), add("alice/nothing")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"].replace("secret", "X") == missing.json()["error"].replace("nothing", "X")
    # the hidden item cannot be edited or removed by its id either: the same 404 as an id that does not exist
    everything = httpx.get(f"{url}/api/collections/{coll.slug}", headers=_auth(alice)).json()["items"]
    secret_id = next(i["_id"] for i in everything if i["id"] == "alice/secret")
    for item_id in (secret_id, "f" * 24):
        assert httpx.delete(f"{url}/api/collections/{coll.slug}/items/{item_id}",
                            headers=_auth(mallory)).status_code == 404
    # moving what she sees keeps every caller's positions dense
    pub2 = next(i["_id"] for i in seen if i["id"] == "alice/pub2")
    assert httpx.patch(f"{url}/api/collections/{coll.slug}/items/{pub2}", headers=_auth(mallory),
                       json={"position": 0}).status_code == 200
    mine = httpx.get(f"{url}/api/collections/{coll.slug}", headers=_auth(mallory)).json()["items"]
    theirs = httpx.get(f"{url}/api/collections/{coll.slug}", headers=_auth(alice)).json()["items"]
    assert [(i["id"], i["position"]) for i in mine] == [("alice/pub2", 0), ("alice/pub1", 1)]
    assert [i["position"] for i in theirs] == [0, 1, 2] and {i["id"] for i in theirs} >= {"alice/secret"}


def test_a_new_expand_per_listing_cannot_grow_the_index(tmp_path):
    """The listing index keeps a few rendered field selections per repo; a client that asks for a new `expand`
    set on every request gets correct answers, and the index keeps no more than its cap."""
    from hubkit.hub.server.listing import RENDERED_PER_ENTRY, ListingIndex
    from hubkit.hub.server.storage import Store

    store = Store(tmp_path / "hub")
    store.create_repo("model", "carol/one")
    index = ListingIndex(store)
    fields = ["author", "sha", "lastModified", "createdAt", "private", "downloads", "likes", "tags", "siblings"]
    (entry,) = index.entries("model")
    for i in range(1, len(fields) + 1):
        shown = json.loads(entry.render(frozenset(fields[:i]), store))
        assert set(shown) == {"id", "_id", *fields[:i]}
    assert len(entry.rendered) == RENDERED_PER_ENTRY
