"""The Hub access layer (`hubkit.hub.errors`) and the local Hub's route table, against a real server over HTTP."""

from __future__ import annotations

import socket

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from hubkit.errors import HubkitError
from hubkit.hub import hub_errors, retrying
from hubkit.hub.server.app import API_ROUTES, WEB_ROUTES
from hubkit.hub.server.errors import BadRequest


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_hub_errors_translates_each_kind_once_into_one_line(hub, alice, tmp_path):
    rid = "alice/access-layer"
    alice.create_repo(rid, exist_ok=True)
    with (pytest.raises(HubkitError, match=r"^pull alice/none-such: no such model$"),
          hub_errors("pull alice/none-such", not_found="pull alice/none-such: no such model")):
        alice.model_info("alice/none-such")
    with (pytest.raises(HubkitError, match=rf"^{rid} has no results.parquet$"),
          hub_errors(f"read {rid}", missing_file=f"{rid} has no results.parquet")):
        hf_hub_download(rid, "results.parquet", endpoint=hub.url, token=hub.tokens["alice"], cache_dir=tmp_path)
    bob = hub.api("bob")
    with pytest.raises(HubkitError, match=r"^cannot publish bob's run: .*403") as e, hub_errors("cannot publish bob's run"):
        bob.create_repo("alice/not-yours")
    assert "\n" not in str(e.value) and e.value.__cause__ is None  # one line, no chained traceback
    # without a not_found message, the client's reason is quoted
    with pytest.raises(HubkitError, match=r"^model alice/none-such: 404"), hub_errors("model alice/none-such"):
        alice.model_info("alice/none-such")
    dead = f"http://127.0.0.1:{_closed_port()}"
    with (pytest.raises(HubkitError, match=rf"^pull x/y: cannot reach the Hub at {dead}: "),
          hub_errors("pull x/y", endpoint=dead)):
        HfApi(endpoint=dead, token=False).model_info("x/y", timeout=2)
    with pytest.raises(HubkitError, match="^already one line$"), hub_errors("outer"):  # passes unchanged
        raise HubkitError("already one line")
    with pytest.raises(KeyError), hub_errors("outer"):  # a bug is not dressed up as a Hub problem
        raise KeyError("bug")

def test_retrying_repeats_only_transient_failures(hub, alice, monkeypatch):
    import hubkit.hub.errors as errors

    monkeypatch.setattr(errors, "RETRY_FIRST_WAIT", 0.01)
    calls: list[str] = []

    def info(repo_id: str):
        calls.append(repo_id)
        return alice.model_info(repo_id)

    with pytest.raises(RepositoryNotFoundError):
        retrying(info, "alice/none-such")
    assert calls == ["alice/none-such"]  # a 404 is an answer, not a failure: asked once

    dead = HfApi(endpoint=f"http://127.0.0.1:{_closed_port()}", token=False)
    calls.clear()

    def refused():
        calls.append("x")
        return dead.model_info("x/y", timeout=2)

    with pytest.raises(Exception) as e:
        retrying(refused, attempts=3)
    assert len(calls) == 3 and errors.is_transient(e.value)  # a refused connection: tried again, then raised

    flaky = iter([503, 503, 200])

    def sometimes():
        status = next(flaky)
        if status != 200:
            response = httpx.Response(status, request=httpx.Request("GET", hub.url))
            raise HfHubHTTPError(f"{status} Service Unavailable", response=response)
        return alice.whoami()["name"]

    assert retrying(sometimes) == "alice"


def test_route_table_answers_unknown_and_malformed_paths_as_the_hub_does(hub):
    with httpx.Client(base_url=hub.url) as client:
        r = client.get("/api/models/alice/access-layer/tree")  # the revision is missing
        assert r.status_code == 400 and r.headers["x-error-message"] == "Missing revision"
        r = client.get("/api/no-such-endpoint")
        assert r.status_code == 404 and r.json()["error"].startswith("No route for GET /api/no-such-endpoint")
        r = client.delete("/api/whoami-v2")  # a known path, not that method
        assert r.status_code == 404
        r = client.get("/api/models/alice/access-layer/xet-read-token/main")
        assert r.status_code == 404 and "Xet is not served" in r.json()["error"]
        page = client.get("/alice/access-layer")  # the web view is the last route of its shape
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    with pytest.raises(BadRequest):
        next(r for r in API_ROUTES if r.pattern.endswith("tree/{rev}/{path*}")).match(
            ["api", "models", "a", "b", "tree"])


def test_route_patterns_bind_the_handler_arguments():
    tree = next(r for r in API_ROUTES if r.pattern.endswith("tree/{rev}/{path*}"))
    assert tree.match(["api", "datasets", "a", "b", "tree", "refs", "pr", "3", "sub", "dir"]) == {
        "repo_type": "dataset", "repo_id": "a/b", "revision": "refs/pr/3", "path": "sub/dir"}
    resolve = WEB_ROUTES[0]
    assert resolve.match(["spaces", "a", "b", "resolve", "main", "app.py"]) == {
        "repo_type": "space", "repo_id": "a/b", "revision": "main", "path": "app.py"}
    assert resolve.match(["a", "b", "resolve", "v1.0", "x/y.bin"])["repo_type"] == "model"
    batch = next(r for r in WEB_ROUTES if "lfs" in r.pattern)
    assert batch.match(["a", "b.git", "info", "lfs", "objects", "batch"]) == {"repo_type": "model", "repo_id": "a/b"}
    assert batch.match(["a", "b", "info", "lfs", "objects", "batch"]) is None
    tag = next(r for r in API_ROUTES if r.pattern.endswith("/tag/{name*}") and "POST" in r.methods)
    assert tag.match(["api", "models", "a", "b", "tag", "v1"]) == {
        "kind": "tag", "repo_type": "model", "repo_id": "a/b", "name": "v1"}
