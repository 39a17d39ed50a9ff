"""The local Hub's web view: repo pages a browser opens (the URLs hubkit prints), hostile cards rendered inert."""

from __future__ import annotations

import re

import httpx
import pytest
from huggingface_hub import CommitOperationAdd

from ..conftest import chromium_page

HOSTILE_CARD = """---
license: mit
tags: ["<script>alert('tag')</script>"]
---
# A card <script>window.__pwned = 1</script>

<img src=x onerror="window.__pwned = 2">

[click me](javascript:window.__pwned=3) and [a file](config.json) and ![curve](loss_curve.png)

| benchmark | score |
| --- | --- |
| mmlu | 31.0 |
"""


@pytest.fixture(scope="module")
def pages(hub, alice):
    ops = [CommitOperationAdd("README.md", HOSTILE_CARD.encode()), CommitOperationAdd("config.json", b'{"a": 1}'),
           CommitOperationAdd("loss_curve.png", b"\x89PNG\r\n\x1a\n")]
    alice.create_repo("alice/web-model", exist_ok=True)
    alice.create_commit("alice/web-model", ops, commit_message="hostile card")
    alice.create_repo("alice/web-data", repo_type="dataset", exist_ok=True)
    alice.create_commit("alice/web-data", [CommitOperationAdd("README.md", b"# Results\nrows")],
                        repo_type="dataset", commit_message="card")
    alice.create_repo("alice/web-private", private=True, exist_ok=True)
    alice.create_commit("alice/web-private", [CommitOperationAdd("README.md", b"# secret plans")],
                        commit_message="card")
    return hub.url


def test_repo_pages_render_cards_and_files(pages, hub):
    page = httpx.get(f"{pages}/alice/web-model")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none': no script runs
    body = page.text
    assert "<table>" in body and "<td>mmlu</td>" in body  # the card's Markdown, rendered
    assert "<script" not in body and re.search(r"<img[^>]*onerror", body) is None
    assert "&lt;script&gt;window.__pwned" in body  # raw HTML shows as text
    assert 'href="javascript:' not in body  # the link is not made
    links = re.findall(r'href="(/alice/web-model/resolve/[0-9a-f]+/[^"]+)"', body)
    assert {link.rsplit("/", 1)[1] for link in links} >= {"README.md", "config.json", "loss_curve.png"}
    config = next(link for link in links if link.endswith("config.json"))
    assert httpx.get(pages + config).json() == {"a": 1}
    data = httpx.get(f"{pages}/datasets/alice/web-data")
    assert data.status_code == 200 and "<h1>Results</h1>" in data.text
    assert httpx.get(f"{pages}/alice/web-data").status_code == 404  # a dataset is not a model
    hidden = httpx.get(f"{pages}/alice/web-private")
    assert hidden.status_code == 404 and "secret plans" not in hidden.text
    shown = httpx.get(f"{pages}/alice/web-private", headers={"authorization": f"Bearer {hub.tokens['alice']}"})
    assert shown.status_code == 200 and "secret plans" in shown.text
    assert httpx.get(f"{pages}/api/models/alice/web-model").json()["id"] == "alice/web-model"  # the API is unchanged


def test_user_and_org_pages_list_what_the_caller_may_see(pages, hub, alice):
    """`/<user>` and `/<org>` (the quickstart prints the first) list the namespace's repos by type, each linking
    to its page; a private repo only for its owner; a namespace that does not exist answers 404."""
    page = httpx.get(f"{pages}/alice")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'href="/alice/web-model"' in page.text and 'href="/datasets/alice/web-data"' in page.text
    assert "web-private" not in page.text
    assert httpx.get(f"{pages}/alice/web-model").status_code == 200  # the link opens
    mine = httpx.get(f"{pages}/alice", headers={"authorization": f"Bearer {hub.tokens['alice']}"})
    assert 'href="/alice/web-private"' in mine.text and "private" in mine.text
    alice.create_repo("acme/web-org-model", exist_ok=True)
    assert 'href="/acme/web-org-model"' in httpx.get(f"{pages}/acme").text
    assert httpx.get(f"{pages}/bob").status_code == 200  # a user with no repos has a page too
    missing = httpx.get(f"{pages}/nobody-here")
    assert missing.status_code == 404 and "nobody-here" in missing.text
    assert httpx.get(f"{pages}/api/whoami-v2").status_code == 401  # API routes answer first


def test_a_browser_runs_nothing_a_card_carries(pages):
    with chromium_page() as page:
        if page is None:
            pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{pages}/alice/web-model")
        page.get_by_text("mmlu").first.wait_for(timeout=30_000)
        page.get_by_text("click me").first.click()
        page.wait_for_timeout(300)
        assert page.evaluate("window.__pwned") is None and not dialogs
        assert page.locator("table td a", has_text="config.json").count() == 1
