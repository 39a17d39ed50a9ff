"""Refs and history of a repo: branches, tags, pull requests (as discussions) and the commit log."""

from __future__ import annotations

import html
import itertools
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from .errors import BadRequest, NotFound
from .http import MAX_JSON_BODY, Ctx, JSONResponse, int_param, next_link
from .routing import Route

if TYPE_CHECKING:
    from .app import HubApp


def refs(app: HubApp, ctx: Ctx, repo_type: str, repo_id: str) -> Response:
    repo = app.repo(ctx, repo_type, repo_id)
    body: dict[str, Any] = {
        "branches": [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": s} for n, s in sorted(repo.branches.items())],
        "converts": [],
        "tags": [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": t["sha"]} for n, t in sorted(repo.tags.items())],
    }
    if ctx.flag("include_prs"):
        body["pullRequests"] = [
            {"name": f"refs/pr/{n}", "ref": f"refs/pr/{n}", "targetCommit": pr["head"]} for n, pr in sorted(repo.prs.items())
        ]
    return JSONResponse(body)


def create_ref(app: HubApp, ctx: Ctx, kind: str, repo_type: str, repo_id: str, name: str) -> Response:
    """A branch (from `startingPoint`, default `main`) or a tag (`name` is the revision it points at)."""
    repo = app.repo(ctx, repo_type, repo_id, write=True)
    if not name:
        raise NotFound(f"No {kind} named")
    body = ctx.json()
    if kind == "branch":
        app.store.set_ref(repo.type, repo.id, "branch", name, str(body.get("startingPoint") or "main"))
    else:
        tag = body.get("tag")
        if not isinstance(tag, str):
            raise BadRequest("Missing tag name")
        app.store.set_ref(repo.type, repo.id, "tag", tag, name, str(body.get("message") or ""))
    return JSONResponse({})


def delete_ref(app: HubApp, ctx: Ctx, kind: str, repo_type: str, repo_id: str, name: str) -> Response:
    repo = app.repo(ctx, repo_type, repo_id, write=True)
    if not name:
        raise NotFound(f"No {kind} named")
    app.store.set_ref(repo.type, repo.id, kind, name, None)
    return JSONResponse({})


def commits(app: HubApp, ctx: Ctx, repo_type: str, repo_id: str, revision: str) -> Response:
    repo = app.repo(ctx, repo_type, repo_id)
    formatted = "formatted" in ctx.query.get("expand[]", []) + ctx.query.get("expand", [])
    page = app.page_size
    # `p` is a page number (the Hub's own links); `cursor` an offset (the links this server writes)
    offset = int_param(ctx, "p") * page if ctx.q("p") else int_param(ctx, "cursor")
    out = []
    more = False
    for i, c in enumerate(itertools.islice(app.store.log(repo, revision), offset, offset + page + 1)):
        if i == page:  # one past the page: there is a next one (only metadata is kept, never trees)
            more = True
            break
        item: dict[str, Any] = {"id": c.id, "title": c.title, "message": c.message, "date": c.date, "authors": [{"user": c.author}]}
        if formatted:
            item["formatted"] = {"title": html.escape(c.title), "message": html.escape(c.message)}
        out.append(item)
    return JSONResponse(out, headers=next_link(ctx, offset + page) if more else {})


def open_pr(app: HubApp, ctx: Ctx, repo_type: str, repo_id: str) -> Response:
    """A pull request (the only kind of discussion the local Hub keeps): commits to `refs/pr/<num>`."""
    repo = app.repo(ctx, repo_type, repo_id, write=True)
    body = ctx.json()
    if not body.get("pullRequest"):
        raise BadRequest("The local Hub only supports pull-request discussions")
    assert ctx.user is not None  # app.repo(write=True) refuses an anonymous writer
    num = app.store.open_pr(repo.type, repo.id, str(body.get("title") or "PR"), ctx.user.name)
    return JSONResponse({"num": num, "url": f"{app.repo_url(ctx, repo)}/discussions/{num}"})


def get_discussion(app: HubApp, ctx: Ctx, repo_type: str, repo_id: str, num: str) -> Response:
    repo = app.repo(ctx, repo_type, repo_id)
    pr = repo.prs.get(num)
    if pr is None:
        raise NotFound(f"Discussion {num} not found")
    return JSONResponse({
        "num": int(num), "title": pr["title"], "status": pr["status"], "isPullRequest": True,
        "createdAt": pr["createdAt"], "author": {"name": pr["author"]},
        "repo": {"name": repo.id, "type": repo.type}, "events": [], "filesWithConflicts": [],
        "changes": {"base": f"refs/heads/{pr['base']}"}, "diff": "",
    })


def no_xet(app: HubApp, ctx: Ctx, **_: str) -> Response:
    raise NotFound("Xet is not served by the local Hub; uploads use inline or LFS transfers")


ROUTES = [
    Route(("GET",), "api/{types}/{repo}/refs", refs),
    Route(("GET",), "api/{types}/{repo}/commits/{rev}", commits),
    *(Route(("POST",), f"api/{{types}}/{{repo}}/{kind}/{{name*}}", create_ref, body=MAX_JSON_BODY, fixed={"kind": kind})
      for kind in ("branch", "tag")),
    *(Route(("DELETE",), f"api/{{types}}/{{repo}}/{kind}/{{name*}}", delete_ref, body=MAX_JSON_BODY,
            fixed={"kind": kind}) for kind in ("branch", "tag")),
    Route(("POST",), "api/{types}/{repo}/discussions", open_pr, body=MAX_JSON_BODY),
    Route(("GET",), "api/{types}/{repo}/discussions/{num}", get_discussion),
    *(Route(("GET", "POST"), f"api/{{types}}/{{repo}}/{token}/{{rest*}}", no_xet)
      for token in ("xet-read-token", "xet-write-token")),
]
