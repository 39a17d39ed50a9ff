"""Repos as a whole: identity, create / delete / settings, repo info and listings, card validation, and the
read-only web view of a repo.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import HTMLResponse, Response

from .cardmeta import front_matter_yaml
from .errors import BadRequest, Conflict, HubError, Unauthorized
from .http import MAX_CARD_BODY, MAX_JSON_BODY, Ctx, JSONResponse, int_param, next_link
from .listing import Entry
from .records import URL_PREFIXES, validate_repo_id, validate_repo_type
from .repo_info import repo_json
from .routing import Route

if TYPE_CHECKING:
    from .app import HubApp


def refuse_move(app: HubApp, ctx: Ctx) -> Response:
    raise BadRequest("Moving repos is not supported by the local Hub")


def agent_harnesses(app: HubApp, ctx: Ctx) -> Response:
    """Answered cheaply: `hubkit.hub.client.ping` uses it to tell a live Hub."""
    return JSONResponse({"standardEnvVars": [], "harnesses": {}})


def whoami(app: HubApp, ctx: Ctx) -> Response:
    if ctx.user is None:
        raise Unauthorized("Invalid credentials in Authorization header")
    return JSONResponse({
        "type": "user", "id": ctx.user.name, "name": ctx.user.name, "fullname": ctx.user.name,
        "isPro": False, "canPay": False, "emailVerified": True,
        "orgs": [{"type": "org", "name": o, "fullname": o, "roleInOrg": "admin"} for o in ctx.user.orgs],
        "auth": {"type": "access_token", "accessToken": {"displayName": "hubkit", "role": "write"}},
    })


def create_repo(app: HubApp, ctx: Ctx) -> Response:
    body = ctx.json()
    name = body.get("name")
    ns = body.get("organization") or (ctx.user.name if ctx.user else None)
    if not isinstance(name, str) or not name:
        raise BadRequest("Missing repo name")
    if ns is None:
        raise Unauthorized("You must be authenticated to create a repo")
    repo_id = f"{ns}/{name}"
    repo_type = validate_repo_type(body.get("type"))
    validate_repo_id(repo_id)
    user = app.require_write(ctx, ns)
    private = body.get("visibility") in ("private", "protected") if "visibility" in body else bool(body.get("private"))
    url = f"{ctx.base}/{URL_PREFIXES[repo_type]}{repo_id}"
    try:
        app.store.create_repo(repo_type, repo_id, private=private, sdk=body.get("sdk"), author=user.name)
    except Conflict as e:
        return JSONResponse({"error": e.message, "url": url}, status_code=409, headers={"X-Error-Message": e.message})
    return JSONResponse({"url": url, "name": repo_id, "id": repo_id})


def delete_repo(app: HubApp, ctx: Ctx) -> Response:
    body = ctx.json()
    ns = body.get("organization") or (ctx.user.name if ctx.user else None)
    if ns is None:
        raise Unauthorized("You must be authenticated to delete a repo")
    repo = app.repo(ctx, validate_repo_type(body.get("type")), f"{ns}/{body.get('name')}", write=True)
    app.store.delete_repo(repo.type, repo.id)
    return Response(status_code=200)


def settings(app: HubApp, ctx: Ctx, repo_type: str, repo_id: str) -> Response:
    repo = app.repo(ctx, repo_type, repo_id, write=True)
    body = ctx.json()
    private = body.get("private")
    if "visibility" in body:
        private = body["visibility"] in ("private", "protected")
    repo = app.store.update_settings(repo.type, repo.id, private=private, gated=body.get("gated"))
    return JSONResponse({"private": repo.private, "gated": repo.gated})




def repo_info(app: HubApp, ctx: Ctx, repo_type: str, repo_id: str, revision: str | None = None) -> Response:
    repo = app.repo(ctx, repo_type, repo_id)
    commit = app.store.resolve(repo, revision or "main")
    expand = ctx.query.get("expand")
    return JSONResponse(repo_json(repo, commit, set(expand) if expand else None, blobs=ctx.flag("blobs")))


def list_repos(app: HubApp, ctx: Ctx, repo_type: str) -> Response:
    author = ctx.q("author")
    searches = [s.lower() for s in ctx.query.get("search", []) if s]
    filters = [f for f in ctx.query.get("filter", []) if f]
    sort = ctx.q("sort")
    limit = ctx.q("limit")
    expand = ctx.query.get("expand")
    full = ctx.flag("full")
    want_card = ctx.flag("cardData") or full
    offset = int_param(ctx, "cursor")
    limit_n = int_param(ctx, "limit", default=-1, minimum=1) if limit not in (None, "") else None

    direction = str(ctx.q("direction", "-1"))

    def select(entries: list[Entry]) -> list[Entry]:
        rows = []
        for entry in entries:
            repo = entry.repo
            if author and repo.namespace != author:
                continue
            if not ctx.may_see(repo.namespace, repo.private):
                continue
            if any(s not in repo.id.lower() for s in searches):
                continue
            if filters and not all(f in entry.tags or f == repo.id for f in filters):
                continue
            rows.append(entry)
        if sort in ("lastModified", "createdAt", "downloads", "likes", "trendingScore"):
            key = {"lastModified": lambda e: e.repo.last_modified, "createdAt": lambda e: e.repo.created_at,
                   "downloads": lambda e: e.repo.downloads, "likes": lambda e: e.repo.likes,
                   "trendingScore": lambda e: e.repo.likes}[sort]
            rows.sort(key=key, reverse=direction != "1")
        else:
            rows.sort(key=lambda e: e.repo.id)
        return rows

    who = (ctx.user.name, tuple(sorted(ctx.user.orgs))) if ctx.user else None  # private repos depend on it
    rows = app.listing.query(repo_type, (who, author, tuple(searches), tuple(filters), sort, direction), select)
    page = app.page_size if limit_n is None else min(app.page_size, limit_n)
    chunk = rows[offset: offset + page]
    if expand:
        fields = set(expand)
    else:
        fields = {"id", "author", "sha", "lastModified", "createdAt", "private", "gated", "disabled", "downloads",
                  "likes", "tags", "library_name", "pipeline_tag", "modelId", "trendingScore", "sdk"}
        if full:
            fields |= {"siblings", "safetensors", "config", "cardData", "usedStorage", "description"}
        if want_card:
            fields.add("cardData")
        if ctx.flag("config"):
            fields.add("config")
    selected = frozenset(fields)
    body = b"[" + b",".join(e.render(selected, app.store) for e in chunk) + b"]"
    more = offset + page < len(rows) and (limit_n is None or offset + page < limit_n)
    return Response(body, media_type="application/json", headers=next_link(ctx, offset + page) if more else {})


def validate_yaml(app: HubApp, ctx: Ctx) -> Response:
    body = ctx.json()
    content = body.get("content")
    if not isinstance(content, str):
        return JSONResponse({"errors": [{"message": "Missing 'content'"}]}, status_code=400)
    errors = validate_card_metadata(content)
    if errors:
        return JSONResponse({"errors": [{"message": m} for m in errors], "warnings": []}, status_code=400)
    return JSONResponse({"errors": [], "warnings": []})


def repo_page(app: HubApp, ctx: Ctx, repo_type: str, repo_id: str) -> Response:
    """The web view of a repo (`web.repo_page`): its card rendered safely and its files, as a browser sees it."""
    from . import web

    try:
        repo = app.repo(ctx, repo_type, repo_id)
    except HubError as e:
        return HTMLResponse(web.not_found_page(f"No {repo_type} {repo_id} here (or it is private)."),
                            status_code=e.status, headers=web.page_headers())
    commit = app.store.resolve(repo, "main")
    readme = commit.tree.get("README.md")
    text = None
    if readme is not None:
        text = b"".join(app.store.read_blob(readme.sha256, 0, min(readme.size, web.MAX_CARD_BYTES))).decode(
            "utf-8", errors="replace")
    page = web.repo_page(repo, commit, text)
    return HTMLResponse("" if ctx.request.method == "HEAD" else page, headers=web.page_headers())


def namespace_page(app: HubApp, ctx: Ctx, namespace: str) -> Response:
    """The web view of a user or organization: the repos of each type it holds that the caller may see."""
    from . import web

    found: dict[str, list] = {}
    for repo_type in ("model", "dataset", "space"):
        for entry in app.listing.entries(repo_type):
            repo = entry.repo
            if repo.namespace == namespace and ctx.may_see(namespace, repo.private):
                found.setdefault(repo_type, []).append(repo)
    if not found and not app.users.exists(namespace):
        return HTMLResponse(web.not_found_page(f"No user or organization {namespace} here."), status_code=404,
                            headers=web.page_headers())
    page = web.namespace_page(namespace, found)
    return HTMLResponse("" if ctx.request.method == "HEAD" else page, headers=web.page_headers())


def validate_card_metadata(content: str) -> list[str]:
    """The problems the Hub would report for a card's YAML metadata (an empty list when it is valid)."""
    import yaml

    from .yamlsafe import YamlLimit, load

    raw = front_matter_yaml(content)
    if raw is None:
        return []
    try:
        data = load(raw)
    except YamlLimit as e:
        return [f"Card metadata refused: {e}"]
    except yaml.YAMLError as e:
        return [f"Invalid YAML in card metadata: {str(e).splitlines()[0]}"]
    if data is None:
        return []
    if not isinstance(data, dict):
        return ["Card metadata must be a YAML mapping"]
    errors = []
    for key in ("tags", "datasets", "language", "metrics"):
        v = data.get(key)
        if v is not None and not (isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))):
            errors.append(f'"{key}" must be a string or a list of strings')
    for key in ("license", "library_name", "pipeline_tag", "base_model_relation"):
        v = data.get(key)
        if v is not None and not isinstance(v, str):
            errors.append(f'"{key}" must be a string')
    mi = data.get("model-index")
    if mi is not None:
        if not isinstance(mi, list) or not all(isinstance(x, dict) and "name" in x for x in mi):
            errors.append('"model-index" must be a list of objects with a "name"')
        else:
            for entry in mi:
                for res in entry.get("results") or []:
                    if not isinstance(res, dict) or "task" not in res or "dataset" not in res:
                        errors.append('"model-index" results need "task" and "dataset"')
                        break
    return errors


ROUTES = [
    Route(("GET",), "api/whoami-v2", whoami),
    Route(("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"), "api/agent-harnesses", agent_harnesses),
    Route(("POST",), "api/validate-yaml", validate_yaml, body=MAX_CARD_BODY),
    Route(("POST",), "api/repos/create", create_repo, body=MAX_JSON_BODY),
    Route(("DELETE",), "api/repos/delete", delete_repo, body=MAX_JSON_BODY),
    Route(("POST",), "api/repos/move", refuse_move, body=MAX_JSON_BODY),
    Route(("GET",), "api/{types}", list_repos),
    Route(("GET",), "api/{types}/{repo}", repo_info),
    Route(("GET",), "api/{types}/{repo}/revision/{rev}", repo_info),
    Route(("PUT",), "api/{types}/{repo}/settings", settings, body=MAX_JSON_BODY),
]

#: The web view; it answers after the other modules' web routes.
WEB_ROUTES = [Route(("GET", "HEAD"), "{type?}/{repo}", repo_page), Route(("GET", "HEAD"), "{namespace}", namespace_page)]
