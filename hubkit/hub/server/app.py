"""The local Hub's HTTP API: the subset of the Hugging Face Hub that `huggingface_hub`, `datasets` and
`transformers` use (see the protocol notes in the project's reference folder).

Routing works on the raw request path, segment by segment, so that a `%2F` inside a revision
(`refs%2Fpr%2F1`) or a tree path stays one segment, exactly as the client meant it.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from ..client import TRANSFER_HEADER
from .auth import User, Users
from .errors import (
    BadRequest,
    Conflict,
    EntryNotFound,
    Forbidden,
    HubError,
    NotFound,
    RangeNotSatisfiable,
    RepoNotFound,
    Unauthorized,
)
from .ndjson import read_commit_lines
from .storage import (
    PLURALS,
    SINGULARS,
    URL_PREFIXES,
    Commit,
    FileEntry,
    Operation,
    Repo,
    Store,
    derive_tags,
    front_matter_yaml,
    is_lfs_path,
    lfs_pointer,
    now_iso,
    validate_name,
    validate_path,
    validate_repo_id,
    validate_repo_type,
)

logger = logging.getLogger("hubkit.hub.server")

MAX_JSON_BODY = 16 * 1024 * 1024
MAX_CARD_BODY = 2 * 1024 * 1024  # validate-yaml: a card's text (its metadata is limited to 1 MB by `yamlsafe`)
MAX_COMMIT_BODY = 8 * 1024 * 1024 * 1024  # one NDJSON commit (inline files are base64; large files go through LFS)
BODY_IDLE_SECONDS = 60.0  # a client that sends nothing for this long in the middle of a body is dropped (408)
BODY_TOTAL_SECONDS = 300.0  # a JSON body must arrive whole within this time
LFS_URL_TTL = 3600


def _int_param(ctx: Ctx, name: str, default: int = 0, minimum: int = 0) -> int:
    """A non-negative integer query parameter (`cursor`, `p`, `limit`).

    Raises:
        BadRequest: present and not an integer of at least `minimum`.
    """
    raw = ctx.q(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Invalid {name} {raw[:40]!r}: expected an integer") from None
    if value < minimum:
        raise BadRequest(f"Invalid {name} {value}: must be at least {minimum}")
    return value


async def _chunks(request: Request, limit: int, total: float | None = None):
    """The request body in chunks, refusing bodies over `limit` bytes (413) and stalled or endless uploads (408)."""
    import asyncio

    stream = request.stream().__aiter__()
    loop = asyncio.get_running_loop()
    deadline = None if total is None else loop.time() + total
    n = 0
    while True:
        wait = BODY_IDLE_SECONDS if deadline is None else min(BODY_IDLE_SECONDS, deadline - loop.time())
        if wait <= 0:
            raise HubError("Request body took too long to arrive", status=408)
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), timeout=wait)
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            raise HubError("Request body took too long to arrive", status=408) from None
        n += len(chunk)
        if n > limit:
            raise HubError("Request body too large", status=413)
        yield chunk


def _safe_header(text: str) -> str:
    return re.sub(r"[^\x20-\x7e]", "?", text.replace("\n", " "))[:500]


def error_response(err: HubError, head: bool = False) -> Response:
    headers = {"X-Error-Message": _safe_header(err.message), **err.headers}
    if err.code:
        headers["X-Error-Code"] = err.code
    commit = getattr(err, "commit", None)
    if commit:
        headers["X-Repo-Commit"] = commit
    if head:
        return Response(status_code=err.status, headers=headers)
    return JSONResponse({"error": err.message}, status_code=err.status, headers=headers)


@dataclass
class Ctx:
    request: Request
    user: User | None
    base: str  # the endpoint as the client addressed it, e.g. http://127.0.0.1:8080
    query: dict[str, list[str]]
    body: bytes = b""

    def q(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str) -> bool:
        return (self.q(name) or "").lower() in ("1", "true", "yes")

    def json(self) -> dict:
        if not self.body:
            return {}
        try:
            data = json.loads(self.body)
        except ValueError as e:
            raise BadRequest(f"Malformed JSON body: {e}") from None
        if not isinstance(data, dict):
            raise BadRequest("JSON body must be an object")
        return data


def _split_rev(parts: list[str]) -> tuple[str, list[str]]:
    """`rev` (one segment, or `refs/pr/N` spelled unencoded) and the segments after it."""
    if not parts:
        raise BadRequest("Missing revision")
    if parts[0] == "refs" and len(parts) >= 3 and parts[1] in ("pr", "convert"):
        return "/".join(parts[:3]), parts[3:]
    return parts[0], parts[1:]


class HubApp:
    """ASGI application serving one `Store`.

    Args:
        root: the storage folder.
        page_size: entries per page of list endpoints (the Hub uses 1000; tests use less to exercise paging).
    """

    def __init__(self, root: Path, page_size: int = 1000) -> None:
        self.root = Path(root)
        self.store = Store(self.root, owner=True)
        self.users = Users(self.root)
        self.page_size = page_size
        secret_file = self.root / "secret"
        if not secret_file.exists():
            secret_file.write_bytes(secrets.token_bytes(32))
            os.chmod(secret_file, 0o600)
        self.secret = secret_file.read_bytes()

    # ------------------------------------------------------------------------------------------------------
    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        head = request.method == "HEAD"
        try:
            response = await self.dispatch(request)
        except HubError as e:
            response = error_response(e, head=head)
        except Exception as e:  # the server must answer, whatever broke
            logger.exception("internal error on %s %s", request.method, request.url.path)
            response = error_response(HubError(f"Internal error: {type(e).__name__}", status=500), head=head)
        await response(scope, receive, send)

    def _base(self, request: Request) -> str:
        host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
        return f"{request.url.scheme}://{host}"

    async def dispatch(self, request: Request) -> Response:
        raw = request.scope.get("raw_path") or request.scope["path"].encode()
        raw_path = raw.split(b"?", 1)[0].decode("latin-1")
        parts = [unquote(p) for p in raw_path.split("/")[1:]]
        if parts and parts[-1] == "" and len(parts) > 1:
            parts = parts[:-1]
        query = parse_qs(request.url.query, keep_blank_values=True)
        user = self.users.authenticate(request.headers.get("authorization"))
        ctx = Ctx(request=request, user=user, base=self._base(request), query=query)
        method = request.method

        if parts and parts[0] == "api":
            return await self._api(ctx, method, parts[1:])
        # Non-API routes: /{P}{ns}/{name}/resolve/..., /{P}{ns}/{name}.git/info/lfs/objects/batch
        repo_type = "model"
        if parts and parts[0] in ("datasets", "spaces"):
            repo_type = SINGULARS[parts[0]]
            parts = parts[1:]
        if len(parts) >= 4 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            rev, rest = _split_rev(parts[3:])
            return await run_in_threadpool(self.resolve_file, ctx, repo_type, f"{parts[0]}/{parts[1]}", rev, "/".join(rest))
        if len(parts) == 6 and parts[1].endswith(".git") and parts[2:] == ["info", "lfs", "objects", "batch"]:
            ctx.body = await self._read_body(request)
            return await run_in_threadpool(self.lfs_batch, ctx, repo_type, f"{parts[0]}/{parts[1][:-4]}")
        if len(parts) == 2 and method in ("GET", "HEAD") and not parts[1].endswith(".git"):
            return await run_in_threadpool(self.repo_page, ctx, repo_type, f"{parts[0]}/{parts[1]}")
        raise NotFound(f"No route for {method} {raw_path}")

    def repo_page(self, ctx: Ctx, repo_type: str, repo_id: str) -> Response:
        """The web view of a repo (`web.repo_page`): its card rendered safely and its files, as a browser sees it."""
        from . import web

        try:
            repo = self._repo(ctx, repo_type, repo_id)
        except HubError as e:
            return HTMLResponse(web.not_found_page(f"No {repo_type} {repo_id} here (or it is private)."),
                                status_code=e.status, headers=web.page_headers())
        commit = self.store.resolve(repo, "main")
        readme = commit.tree.get("README.md")
        text = None
        if readme is not None:
            text = b"".join(self.store.read_blob(readme.sha256, 0, min(readme.size, web.MAX_CARD_BYTES))).decode(
                "utf-8", errors="replace")
        page = web.repo_page(repo, commit, text)
        return HTMLResponse("" if ctx.request.method == "HEAD" else page, headers=web.page_headers())

    async def _read_body(self, request: Request, limit: int = MAX_JSON_BODY) -> bytes:
        return b"".join([chunk async for chunk in _chunks(request, limit, BODY_TOTAL_SECONDS)])

    async def _api(self, ctx: Ctx, method: str, p: list[str]) -> Response:
        req = ctx.request
        run = run_in_threadpool
        if p == ["whoami-v2"] and method == "GET":
            return self.whoami(ctx)
        if p == ["agent-harnesses"]:
            return JSONResponse({"standardEnvVars": [], "harnesses": {}})
        if p == ["validate-yaml"] and method == "POST":  # parsed off the event loop, within limits
            ctx.body = await self._read_body(req, MAX_CARD_BODY)
            return await run(self.validate_yaml, ctx)
        if p[:1] == ["repos"] and len(p) == 2:
            ctx.body = await self._read_body(req)
            if p[1] == "create" and method == "POST":
                return await run(self.create_repo, ctx)
            if p[1] == "delete" and method == "DELETE":
                return await run(self.delete_repo, ctx)
            if p[1] == "move" and method == "POST":
                raise BadRequest("Moving repos is not supported by the local Hub")
        if p[:1] == ["lfs-upload"] and len(p) == 2 and method == "PUT":
            return await self.lfs_upload(ctx, p[1])
        if p[:1] == ["collections"]:
            ctx.body = await self._read_body(req)
            return await run(self.collections, ctx, method, p[1:])
        if p and p[0] in PLURALS.values():
            repo_type = SINGULARS[p[0]]
            if len(p) == 1 and method == "GET":
                return await run(self.list_repos, ctx, repo_type)
            if len(p) < 3:
                raise NotFound("No such route")
            repo_id = f"{p[1]}/{p[2]}"
            rest = p[3:]
            if not rest and method == "GET":
                return await run(self.repo_info, ctx, repo_type, repo_id, None)
            action = rest[0] if rest else ""
            args = rest[1:]
            if action == "revision" and method == "GET":
                rev, _ = _split_rev(args)
                return await run(self.repo_info, ctx, repo_type, repo_id, rev)
            if action == "tree" and method == "GET":
                rev, path = _split_rev(args)
                return await run(self.tree, ctx, repo_type, repo_id, rev, "/".join(path))
            if action == "paths-info" and method == "POST":
                ctx.body = await self._read_body(req)
                rev, _ = _split_rev(args)
                return await run(self.paths_info, ctx, repo_type, repo_id, rev)
            if action == "preupload" and method == "POST":
                ctx.body = await self._read_body(req)
                rev, _ = _split_rev(args)
                return await run(self.preupload, ctx, repo_type, repo_id, rev)
            if action == "commit" and method == "POST":
                rev, _ = _split_rev(args)
                return await self.commit(ctx, repo_type, repo_id, rev)
            if action == "refs" and method == "GET":
                return await run(self.refs, ctx, repo_type, repo_id)
            if action == "commits" and method == "GET":
                rev, _ = _split_rev(args)
                return await run(self.commits, ctx, repo_type, repo_id, rev)
            if action in ("branch", "tag") and args:
                ctx.body = await self._read_body(req)
                name = "/".join(args)
                return await run(self.refs_write, ctx, method, action, repo_type, repo_id, name)
            if action == "settings" and method == "PUT":
                ctx.body = await self._read_body(req)
                return await run(self.settings, ctx, repo_type, repo_id)
            if action == "discussions":
                ctx.body = await self._read_body(req)
                return await run(self.discussions, ctx, method, repo_type, repo_id, args)
            if action in ("xet-read-token", "xet-write-token"):
                raise NotFound("Xet is not served by the local Hub; uploads use inline or LFS transfers")
        raise NotFound(f"No route for {method} /api/{'/'.join(p)}")

    # ---- access control -----------------------------------------------------------------------------------
    def _repo(self, ctx: Ctx, repo_type: str, repo_id: str, *, write: bool = False) -> Repo:
        validate_repo_id(repo_id)
        try:
            repo = self.store.get_repo(repo_type, repo_id)
        except RepoNotFound:
            raise RepoNotFound(f"Repository Not Found for url: {ctx.request.url}.") from None
        visible = not repo.private or (ctx.user is not None and ctx.user.can_write(repo.namespace))
        if not visible:
            raise RepoNotFound(f"Repository Not Found for url: {ctx.request.url}.")
        if write:
            self._require_write(ctx, repo.namespace)
        return repo

    def _require_write(self, ctx: Ctx, namespace: str) -> User:
        if ctx.user is None:
            raise Unauthorized("You must be authenticated (send a token) to write to the Hub")
        if not ctx.user.can_write(namespace):
            raise Forbidden(f"You don't have the rights to write under the namespace {namespace!r}")
        return ctx.user

    def _repo_url(self, ctx: Ctx, repo: Repo) -> str:
        return f"{ctx.base}/{URL_PREFIXES[repo.type]}{repo.id}"

    # ---- identity -----------------------------------------------------------------------------------------
    def whoami(self, ctx: Ctx) -> Response:
        if ctx.user is None:
            raise Unauthorized("Invalid credentials in Authorization header")
        return JSONResponse({
            "type": "user", "id": ctx.user.name, "name": ctx.user.name, "fullname": ctx.user.name,
            "isPro": False, "canPay": False, "emailVerified": True,
            "orgs": [{"type": "org", "name": o, "fullname": o, "roleInOrg": "admin"} for o in ctx.user.orgs],
            "auth": {"type": "access_token", "accessToken": {"displayName": "hubkit", "role": "write"}},
        })

    # ---- repos --------------------------------------------------------------------------------------------
    def create_repo(self, ctx: Ctx, body: dict | None = None) -> Response:
        body = ctx.json() if body is None else body
        name = body.get("name")
        ns = body.get("organization") or (ctx.user.name if ctx.user else None)
        if not isinstance(name, str) or not name:
            raise BadRequest("Missing repo name")
        if ns is None:
            raise Unauthorized("You must be authenticated to create a repo")
        repo_id = f"{ns}/{name}"
        repo_type = validate_repo_type(body.get("type"))
        validate_repo_id(repo_id)
        self._require_write(ctx, ns)
        private = body.get("visibility") in ("private", "protected") if "visibility" in body else bool(body.get("private"))
        url = f"{ctx.base}/{URL_PREFIXES[repo_type]}{repo_id}"
        try:
            self.store.create_repo(repo_type, repo_id, private=private, sdk=body.get("sdk"), author=ctx.user.name)
        except Conflict as e:
            return JSONResponse({"error": e.message, "url": url}, status_code=409, headers={"X-Error-Message": e.message})
        return JSONResponse({"url": url, "name": repo_id, "id": repo_id})

    def delete_repo(self, ctx: Ctx) -> Response:
        body = ctx.json()
        ns = body.get("organization") or (ctx.user.name if ctx.user else None)
        if ns is None:
            raise Unauthorized("You must be authenticated to delete a repo")
        repo = self._repo(ctx, validate_repo_type(body.get("type")), f"{ns}/{body.get('name')}", write=True)
        self.store.delete_repo(repo.type, repo.id)
        return Response(status_code=200)

    def settings(self, ctx: Ctx, repo_type: str, repo_id: str) -> Response:
        repo = self._repo(ctx, repo_type, repo_id, write=True)
        body = ctx.json()
        private = body.get("private")
        if "visibility" in body:
            private = body["visibility"] in ("private", "protected")
        repo = self.store.update_settings(repo.type, repo.id, private=private, gated=body.get("gated"))
        return JSONResponse({"private": repo.private, "gated": repo.gated})

    def repo_json(self, repo: Repo, commit: Commit, fields: set[str] | None = None, blobs: bool = False) -> dict:
        """A repo-info object as the Hub returns it; `fields` limits it (the `expand` parameter)."""
        card = commit.card or {}
        files = list(commit.tree)
        out: dict[str, Any] = {
            "_id": hashlib.sha1(f"{repo.type}:{repo.id}".encode()).hexdigest()[:24],
            "id": repo.id, "author": repo.namespace, "sha": commit.id, "lastModified": repo.last_modified,
            "createdAt": repo.created_at, "private": repo.private, "gated": repo.gated, "disabled": False,
            "downloads": repo.downloads, "downloadsAllTime": repo.downloads, "likes": repo.likes, "trendingScore": 0,
            "tags": derive_tags(repo.type, card, files), "cardData": card,
            "usedStorage": sum(e.size for e in commit.tree.values()),
        }
        siblings = []
        for path, e in sorted(commit.tree.items()):
            s: dict[str, Any] = {"rfilename": path}
            if blobs:
                s["size"] = e.size
                s["blobId"] = e.tree_oid
                if e.lfs:
                    s["lfs"] = {"size": e.size, "sha256": e.sha256, "pointerSize": len(lfs_pointer(e.sha256, e.size))}
            siblings.append(s)
        out["siblings"] = siblings
        if repo.type == "model":
            out["modelId"] = repo.id
            out["library_name"] = card.get("library_name") if isinstance(card.get("library_name"), str) else None
            out["pipeline_tag"] = card.get("pipeline_tag") if isinstance(card.get("pipeline_tag"), str) else None
            if commit.safetensors:
                out["safetensors"] = commit.safetensors
            if commit.config:
                out["config"] = commit.config
            if isinstance(card.get("model-index"), list):
                out["model-index"] = card["model-index"]
            out["spaces"] = []
        elif repo.type == "dataset":
            out["description"] = card.get("pretty_name") if isinstance(card.get("pretty_name"), str) else None
        else:
            out["sdk"] = repo.sdk
            out["runtime"] = {"stage": "STOPPED", "hardware": {"current": None, "requested": "cpu-basic"}}
            out["models"] = list(_as_str_list(card.get("models")))
            out["datasets"] = list(_as_str_list(card.get("datasets")))
        if fields is not None:
            keep = fields | {"id", "_id"}
            out = {k: v for k, v in out.items() if k in keep}
        return out

    def repo_info(self, ctx: Ctx, repo_type: str, repo_id: str, revision: str | None) -> Response:
        repo = self._repo(ctx, repo_type, repo_id)
        commit = self.store.resolve(repo, revision or "main")
        expand = ctx.query.get("expand")
        return JSONResponse(self.repo_json(repo, commit, set(expand) if expand else None, blobs=ctx.flag("blobs")))

    def list_repos(self, ctx: Ctx, repo_type: str) -> Response:
        author = ctx.q("author")
        searches = [s.lower() for s in ctx.query.get("search", []) if s]
        filters = [f for f in ctx.query.get("filter", []) if f]
        sort = ctx.q("sort")
        limit = ctx.q("limit")
        expand = ctx.query.get("expand")
        full = ctx.flag("full")
        want_card = ctx.flag("cardData") or full
        offset = _int_param(ctx, "cursor")
        limit_n = _int_param(ctx, "limit", default=-1, minimum=1) if limit not in (None, "") else None

        rows: list[tuple[Repo, Commit]] = []
        for repo in self.store.iter_repos(repo_type):
            if author and repo.namespace != author:
                continue
            if repo.private and not (ctx.user and ctx.user.can_write(repo.namespace)):
                continue
            if any(s not in repo.id.lower() for s in searches):
                continue
            commit = self.store.get_commit(repo.branches["main"])
            if filters:
                tags = set(derive_tags(repo.type, commit.card, commit.tree))
                tags.update(_as_str_list((commit.card or {}).get("tags")))
                if not all(f in tags or f == repo.id for f in filters):
                    continue
            rows.append((repo, commit))
        if sort in ("lastModified", "createdAt", "downloads", "likes", "trendingScore"):
            key = {"lastModified": lambda r: r[0].last_modified, "createdAt": lambda r: r[0].created_at,
                   "downloads": lambda r: r[0].downloads, "likes": lambda r: r[0].likes,
                   "trendingScore": lambda r: r[0].likes}[sort]
            rows.sort(key=key, reverse=str(ctx.q("direction", "-1")) != "1")
        else:
            rows.sort(key=lambda r: r[0].id)
        page = self.page_size if limit_n is None else min(self.page_size, limit_n)
        chunk = rows[offset: offset + page]
        if expand:
            fields: set[str] | None = set(expand)
        else:
            fields = {"id", "author", "sha", "lastModified", "createdAt", "private", "gated", "disabled", "downloads",
                      "likes", "tags", "library_name", "pipeline_tag", "modelId", "trendingScore", "sdk"}
            if full:
                fields |= {"siblings", "safetensors", "config", "cardData", "usedStorage", "description"}
            if want_card:
                fields.add("cardData")
            if ctx.flag("config"):
                fields.add("config")
        body = [self.repo_json(r, c, fields) for r, c in chunk]
        more = offset + page < len(rows) and (limit_n is None or offset + page < limit_n)
        return JSONResponse(body, headers=_next_link(ctx, offset + page) if more else {})

    # ---- files --------------------------------------------------------------------------------------------
    def resolve_file(self, ctx: Ctx, repo_type: str, repo_id: str, revision: str, path: str) -> Response:
        repo = self._repo(ctx, repo_type, repo_id)
        commit = self.store.resolve(repo, revision)
        validate_path(path)
        entry = commit.tree.get(path)
        if entry is None:
            raise EntryNotFound(f"Entry not found: {path} at {commit.id}", commit=commit.id)
        headers = {
            "X-Repo-Commit": commit.id, "ETag": f'"{entry.etag}"', "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(path.rsplit('/', 1)[-1])}",
        }
        if entry.lfs:
            headers["X-Linked-Size"] = str(entry.size)
            headers["X-Linked-ETag"] = f'"{entry.sha256}"'
        start, end, status = 0, entry.size, 200
        rng = ctx.request.headers.get("range")
        if rng:
            start, end = _parse_range(rng, entry.size)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{entry.size}"
        headers["Content-Length"] = str(end - start)
        if ctx.request.method == "HEAD":
            return Response(status_code=status, headers=headers)
        return StreamingResponse(
            self.store.read_blob(entry.sha256, start, end), status_code=status, headers=headers
        )

    def _entries(self, commit: Commit, prefix: str, recursive: bool) -> list[dict]:
        """Tree entries under `prefix` (files and directories), full paths from the repo root."""
        base = prefix.rstrip("/") + "/" if prefix else ""
        files: list[tuple[str, FileEntry]] = [(p, e) for p, e in commit.tree.items() if p.startswith(base)]
        if prefix and not files:
            raise EntryNotFound(f"Entry not found: {prefix}", commit=commit.id)
        dirs: dict[str, list[str]] = {}
        out = []
        for path, e in files:
            rel = path[len(base):]
            segs = rel.split("/")
            for i in range(1, len(segs)):
                d = base + "/".join(segs[:i])
                dirs.setdefault(d, []).append(f"{path}:{e.tree_oid}")
            if recursive or len(segs) == 1:
                out.append(_file_json(path, e))
        for d, members in dirs.items():
            if recursive or "/" not in d[len(base):]:
                oid = hashlib.sha1("\n".join(sorted(members)).encode()).hexdigest()
                out.append({"type": "directory", "oid": oid, "size": 0, "path": d})
        out.sort(key=lambda x: (x["path"].count("/") if not recursive else 0, x["path"]))
        return out

    def _last_commits(self, repo: Repo, commit: Commit, paths: list[str]) -> dict[str, dict]:
        """For each path, the newest commit (from `commit` back) that changed it."""
        def sig(c: Commit, p: str) -> Any:
            if p in c.tree:
                return c.tree[p].sha256
            pre = p + "/"
            return tuple(sorted((k, v.sha256) for k, v in c.tree.items() if k.startswith(pre))) or None

        found: dict[str, dict] = {}
        pending = set(paths)
        c: Commit | None = commit
        while c is not None and pending:
            parent = self.store.get_commit(c.parents[0]) if c.parents else None
            for p in list(pending):
                if parent is None or sig(c, p) != sig(parent, p):
                    found[p] = {"id": c.id, "title": c.title, "date": c.date}
                    pending.discard(p)
            c = parent
        return found

    def tree(self, ctx: Ctx, repo_type: str, repo_id: str, revision: str, path: str) -> Response:
        repo = self._repo(ctx, repo_type, repo_id)
        commit = self.store.resolve(repo, revision)
        if path:
            validate_path(path)
        entries = self._entries(commit, path, ctx.flag("recursive"))
        expand = ctx.flag("expand")
        page = 50 if expand else self.page_size
        offset = _int_param(ctx, "cursor")
        chunk = entries[offset: offset + page]
        if expand:
            last = self._last_commits(repo, commit, [e["path"] for e in chunk])
            for e in chunk:
                if e["path"] in last:
                    e["lastCommit"] = last[e["path"]]
        return JSONResponse(chunk, headers=_next_link(ctx, offset + page) if offset + page < len(entries) else {})

    def paths_info(self, ctx: Ctx, repo_type: str, repo_id: str, revision: str) -> Response:
        repo = self._repo(ctx, repo_type, repo_id)
        commit = self.store.resolve(repo, revision)
        ctype = ctx.request.headers.get("content-type", "")
        if "json" in ctype:
            form = {k: v if isinstance(v, list) else [v] for k, v in ctx.json().items()}
        else:
            form = parse_qs(ctx.body.decode("utf-8", errors="replace"))
        paths = [str(p) for p in form.get("paths", [])]
        out = []
        dirs_needed = []
        for p in paths:
            p = p.strip("/")
            if not p:
                continue
            validate_path(p)
            if p in commit.tree:
                out.append(_file_json(p, commit.tree[p]))
            elif any(k.startswith(p + "/") for k in commit.tree):
                dirs_needed.append(p)
        for d in dirs_needed:
            members = [f"{k}:{e.tree_oid}" for k, e in commit.tree.items() if k.startswith(d + "/")]
            out.append({"type": "directory", "oid": hashlib.sha1("\n".join(sorted(members)).encode()).hexdigest(),
                        "size": 0, "path": d})
        if str((form.get("expand") or ["false"])[-1]).lower() == "true":
            last = self._last_commits(repo, commit, [e["path"] for e in out])
            for e in out:
                if e["path"] in last:
                    e["lastCommit"] = last[e["path"]]
        return JSONResponse(out)

    # ---- uploads ------------------------------------------------------------------------------------------
    def preupload(self, ctx: Ctx, repo_type: str, repo_id: str, revision: str) -> Response:
        repo = self._repo(ctx, repo_type, repo_id, write=True)
        try:
            head: Commit | None = self.store.resolve(repo, revision)
        except HubError:
            head = None  # a new branch or PR: nothing to compare with
        want_lfs = ctx.request.headers.get(TRANSFER_HEADER, "").lower() == "lfs"
        files = ctx.json().get("files")
        if not isinstance(files, list):
            raise BadRequest("preupload expects {'files': [...]}")
        out = []
        for f in files:
            if not isinstance(f, dict) or not isinstance(f.get("path"), str):
                raise BadRequest("Each preupload entry needs a 'path'")
            path = validate_path(f["path"])
            size = f.get("size") or 0
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise BadRequest(f"Invalid size {size!r} for {path!r}: expected a non-negative integer")
            mode = "lfs" if want_lfs and size > 0 and is_lfs_path(path, size) else "regular"
            existing = head.tree.get(path) if head else None
            oid = None
            if existing is not None:
                oid = existing.sha256 if mode == "lfs" else existing.gitoid
            out.append({"path": f["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return JSONResponse({"files": out, "commitOid": head.id if head else None})

    async def commit(self, ctx: Ctx, repo_type: str, repo_id: str, revision: str) -> Response:
        repo = await run_in_threadpool(self._repo, ctx, repo_type, repo_id, write=True)
        spool = self.store.tmp_path(".ndjson")
        try:
            with open(spool, "wb") as f:
                async for chunk in _chunks(ctx.request, MAX_COMMIT_BODY):
                    f.write(chunk)
            return await run_in_threadpool(self._apply_commit, ctx, repo, revision, spool)
        finally:
            spool.unlink(missing_ok=True)

    def _apply_commit(self, ctx: Ctx, repo: Repo, revision: str, spool: Path) -> Response:
        with self.store.writing():
            return self._apply_commit_locked(ctx, repo, revision, spool)

    def _lfs_entry(self, repo: Repo, path: str, value: dict, known: dict) -> FileEntry:
        """The entry of an `lfsFile` line: only an object uploaded to this repo, or already in it, may be named.

        Whether a blob exists elsewhere in the store is never revealed: an object of another repo gets the
        same answer as one that does not exist.
        """
        if value.get("algo", "sha256") != "sha256":
            raise BadRequest(f"Unsupported LFS algorithm for {path!r}")
        oid = str(value.get("oid", ""))
        size = value.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise BadRequest(f"Invalid LFS size {size!r} for {path!r}: expected a non-negative integer")
        if "refs" not in known and not self.store.granted(repo, oid):
            known["refs"] = self.store.referenced(repo)
        if not re.fullmatch(r"[0-9a-f]{64}", oid) or not self.store.may_reference(repo, oid, known.get("refs")):
            raise BadRequest(f"Unknown LFS object {oid[:64]!r} for {path!r}: upload it to {repo.id} first")
        entry = self.store.entry_for_blob(path, oid, lfs=True)
        if size is not None and size != entry.size:
            raise BadRequest(f"LFS object {oid} has {entry.size} bytes, commit says {size}")
        return entry

    def _apply_commit_locked(self, ctx: Ctx, repo: Repo, revision: str, spool: Path) -> Response:
        header: dict | None = None
        known: dict = {}
        ops: list[Operation] = []
        for lineno, item, blob in read_commit_lines(spool, self.store):
            key, value = item["key"], item["value"]
            if not isinstance(value, dict):
                raise BadRequest(f"Malformed commit payload at line {lineno}")
            if key == "header":
                header = value
            elif key == "file":
                path = value["path"]  # validated, and its content stored, by read_commit_lines
                sha, size, gitoid = blob
                ops.append(Operation("add", path, FileEntry(sha, size, gitoid, is_lfs_path(path, size))))
            elif key == "lfsFile":
                path = validate_path(value.get("path"))
                ops.append(Operation("add", path, self._lfs_entry(repo, path, value, known)))
            elif key == "deletedFile":
                ops.append(Operation("delete_file", validate_path(value.get("path"))))
            elif key == "deletedFolder":
                ops.append(Operation("delete_folder", str(value.get("path") or "")))
            elif key == "copyFile":
                ops.append(Operation("copy", validate_path(value.get("path")), src_path=value.get("srcPath"),
                                     src_revision=value.get("srcRevision")))
            else:
                raise BadRequest(f"Unknown commit operation {key!r}")
        if header is None:
            raise BadRequest("Commit payload has no header line")
        parent = header.get("parentCommit")
        if parent is not None and (not isinstance(parent, str) or not re.fullmatch(r"[0-9a-f]{5,40}", parent)):
            raise BadRequest(f"Invalid parentCommit {str(parent)[:60]!r}: expected a commit sha")
        create_pr = ctx.flag("create_pr")
        commit, pr = self.store.commit(
            repo.type, repo.id, revision, ops,
            title=str(header.get("summary") or "Upload"), message=str(header.get("description") or ""),
            author=ctx.user.name if ctx.user else "anonymous", parent_commit=header.get("parentCommit"),
            create_pr=create_pr,
        )
        url = self._repo_url(ctx, repo)
        body = {"success": True, "commitOid": commit.id, "commitUrl": f"{url}/commit/{commit.id}", "hookOutput": ""}
        if pr is not None:
            body["pullRequestUrl"] = f"{url}/discussions/{pr}"
        return JSONResponse(body)

    def _sign(self, oid: str, size: int, exp: int, repo: str) -> str:
        return hmac.new(self.secret, f"{oid}:{size}:{exp}:{repo}".encode(), hashlib.sha256).hexdigest()

    def lfs_batch(self, ctx: Ctx, repo_type: str, repo_id: str) -> Response:
        """Upload and download actions for LFS objects of one repo.

        The answer depends only on that repo: an object uploaded to another repo (even a private one with the
        same content) is asked for again, and never offered for download, so the endpoint is no oracle for
        what the store holds.
        """
        body = ctx.json()
        operation = body.get("operation")
        if operation not in ("upload", "download"):
            raise BadRequest(f"Invalid LFS operation {str(operation)[:40]!r}: expected upload or download")
        objects_in = body.get("objects") or []
        if not isinstance(objects_in, list) or not all(isinstance(o, dict) for o in objects_in):
            raise BadRequest("LFS batch expects 'objects': a list of {oid, size}")
        repo = self._repo(ctx, repo_type, repo_id, write=operation == "upload")
        key = f"{repo.type}:{repo.id}"
        in_repo: dict[str, str] | None = None
        objects = []
        for obj in objects_in:
            oid, size = str(obj.get("oid", "")), obj.get("size")
            if not re.fullmatch(r"[0-9a-f]{64}", oid) or not isinstance(size, int) or isinstance(size, bool) or size < 0:
                objects.append({"oid": oid[:64], "size": size if isinstance(size, int) else 0,
                                "error": {"code": 422, "message": "Invalid oid or size"}})
                continue
            entry: dict[str, Any] = {"oid": oid, "size": size}
            if operation == "upload":
                if not (self.store.granted(repo, oid) and self.store.has_blob(oid, size)):
                    exp = int(time.time()) + LFS_URL_TTL
                    sig = self._sign(oid, size, exp, key)
                    entry["actions"] = {"upload": {"href": f"{ctx.base}/api/lfs-upload/{oid}?"
                                                   + urlencode({"size": size, "exp": exp, "repo": key, "sig": sig})}}
            else:
                if in_repo is None:
                    head = self.store.resolve(repo, "main")
                    in_repo = {e.sha256: p for p, e in head.tree.items() if e.lfs}
                path = in_repo.get(oid)
                if path is None or self.store.blob_meta(oid) is None or self.store.blob_meta(oid)["size"] != size:
                    entry["error"] = {"code": 404, "message": "Object does not exist"}
                else:
                    entry["actions"] = {"download": {"href": f"{self._repo_url(ctx, repo)}/resolve/main/{quote(path)}"}}
            objects.append(entry)
        return JSONResponse({"transfer": "basic", "objects": objects}, media_type="application/vnd.git-lfs+json")

    async def lfs_upload(self, ctx: Ctx, oid: str) -> Response:
        """Receive one LFS object for one repo, streamed to disk while hashing: memory stays flat whatever the
        size. Once its bytes match `oid`, the repo may reference it in a commit."""
        try:
            size, exp, sig = int(ctx.q("size") or -1), int(ctx.q("exp") or 0), ctx.q("sig") or ""
        except ValueError:
            raise Forbidden("Invalid upload signature") from None
        key = ctx.q("repo") or ""
        if exp < time.time() or not hmac.compare_digest(sig, self._sign(oid, size, exp, key)):
            raise Forbidden("Invalid or expired upload signature")
        repo_type, _, repo_id = key.partition(":")
        try:
            repo = self.store.get_repo(repo_type, repo_id)
        except HubError:
            raise Forbidden("The repository of this upload no longer exists") from None
        writer = self.store.blob_writer(size, oid)
        try:
            async for chunk in _chunks(ctx.request, size + 1):
                writer.write(chunk)

            def finish() -> None:
                with self.store.writing():
                    writer.finish()
                    self.store.grant(repo, oid)

            await run_in_threadpool(finish)
        finally:
            writer.abort()
        return Response(status_code=200)

    # ---- refs and history ---------------------------------------------------------------------------------
    def refs(self, ctx: Ctx, repo_type: str, repo_id: str) -> Response:
        repo = self._repo(ctx, repo_type, repo_id)
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

    def refs_write(self, ctx: Ctx, method: str, kind: str, repo_type: str, repo_id: str, name: str) -> Response:
        repo = self._repo(ctx, repo_type, repo_id, write=True)
        body = ctx.json()
        if method == "DELETE":
            self.store.set_ref(repo.type, repo.id, kind, name, None)
        elif method == "POST" and kind == "branch":
            self.store.set_ref(repo.type, repo.id, "branch", name, str(body.get("startingPoint") or "main"))
        elif method == "POST" and kind == "tag":
            tag = body.get("tag")
            if not isinstance(tag, str):
                raise BadRequest("Missing tag name")
            self.store.set_ref(repo.type, repo.id, "tag", tag, name, str(body.get("message") or ""))
        else:
            raise NotFound(f"No route for {method} {kind}")
        return JSONResponse({})

    def commits(self, ctx: Ctx, repo_type: str, repo_id: str, revision: str) -> Response:
        repo = self._repo(ctx, repo_type, repo_id)
        formatted = "formatted" in ctx.query.get("expand[]", []) + ctx.query.get("expand", [])
        offset = _int_param(ctx, "p") or _int_param(ctx, "cursor")
        page = self.page_size
        out = []
        more = False
        for i, c in enumerate(itertools.islice(self.store.log(repo, revision), offset, offset + page + 1)):
            if i == page:  # one past the page: there is a next one (only metadata is kept, never trees)
                more = True
                break
            item = {"id": c.id, "title": c.title, "message": c.message, "date": c.date, "authors": [{"user": c.author}]}
            if formatted:
                item["formatted"] = {"title": _html_escape(c.title), "message": _html_escape(c.message)}
            out.append(item)
        return JSONResponse(out, headers=_next_link(ctx, offset + page) if more else {})

    def discussions(self, ctx: Ctx, method: str, repo_type: str, repo_id: str, args: list[str]) -> Response:
        if method == "POST" and not args:
            repo = self._repo(ctx, repo_type, repo_id, write=True)
            body = ctx.json()
            if not body.get("pullRequest"):
                raise BadRequest("The local Hub only supports pull-request discussions")
            num = self.store.open_pr(repo.type, repo.id, str(body.get("title") or "PR"), ctx.user.name)
            return JSONResponse({"num": num, "url": f"{self._repo_url(ctx, repo)}/discussions/{num}"})
        if method == "GET" and len(args) == 1:
            repo = self._repo(ctx, repo_type, repo_id)
            pr = repo.prs.get(args[0])
            if pr is None:
                raise NotFound(f"Discussion {args[0]} not found")
            return JSONResponse({
                "num": int(args[0]), "title": pr["title"], "status": pr["status"], "isPullRequest": True,
                "createdAt": pr["createdAt"], "author": {"name": pr["author"]},
                "repo": {"name": repo.id, "type": repo.type}, "events": [], "filesWithConflicts": [],
                "changes": {"base": f"refs/heads/{pr['base']}"}, "diff": "",
            })
        raise NotFound("No such discussion route")

    # ---- cards --------------------------------------------------------------------------------------------
    def validate_yaml(self, ctx: Ctx) -> Response:
        body = ctx.json()
        content = body.get("content")
        if not isinstance(content, str):
            return JSONResponse({"errors": [{"message": "Missing 'content'"}]}, status_code=400)
        errors = validate_card_metadata(content)
        if errors:
            return JSONResponse({"errors": [{"message": m} for m in errors], "warnings": []}, status_code=400)
        return JSONResponse({"errors": [], "warnings": []})

    # ---- collections --------------------------------------------------------------------------------------
    def _collection_file(self, slug: str) -> Path:
        ns, _, rest = slug.partition("/")
        validate_name(ns, "namespace")
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", rest):
            raise BadRequest(f"Invalid collection slug {slug!r}")
        return self.root / "collections" / ns / f"{rest}.json"

    def _item_visible(self, ctx: Ctx, item: dict) -> bool:
        """Whether the caller may see a collection item: a repo they can read, or a collection they can."""
        try:
            if item.get("type") in ("model", "dataset", "space"):
                self._repo(ctx, item["type"], str(item.get("id")))
            elif item.get("type") == "collection":
                self._load_collection(ctx, str(item.get("slug") or item.get("id")), filtered=False)
            return True
        except HubError:
            return False

    def _for_caller(self, ctx: Ctx, coll: dict) -> dict:
        """The collection as the caller may see it: items they cannot read are left out (private repos)."""
        shown = dict(coll)
        shown["items"] = [i for i in coll["items"] if self._item_visible(ctx, i)]
        return shown

    def _load_collection(self, ctx: Ctx, slug: str, filtered: bool = False) -> dict:
        try:
            coll = json.loads(self._collection_file(slug).read_text())
        except OSError:
            raise NotFound(f"Collection {slug} not found") from None
        if coll["private"] and not (ctx.user and ctx.user.can_write(coll["owner"]["name"])):
            raise NotFound(f"Collection {slug} not found")
        return self._for_caller(ctx, coll) if filtered else coll

    def collections(self, ctx: Ctx, method: str, p: list[str]) -> Response:
        store = self.store
        if not p and method == "POST":
            body = ctx.json()
            ns = body.get("namespace") or (ctx.user.name if ctx.user else None)
            if ns is None:
                raise Unauthorized("You must be authenticated to create a collection")
            self._require_write(ctx, ns)
            title = str(body.get("title") or "").strip()
            if not title:
                raise BadRequest("Missing collection title")
            base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:80] or "collection"
            with store.lock("collections"):
                for f in (self.root / "collections" / ns).glob(f"{base}-*.json"):
                    existing = json.loads(f.read_text())
                    if existing["title"] == title:
                        return JSONResponse({"slug": existing["slug"], "error": "Collection already exists"}, status_code=409)
                slug = f"{ns}/{base}-{secrets.token_hex(12)}"
                coll = {
                    "slug": slug, "title": title, "owner": {"name": ns, "type": "user" if ns == ctx.user.name else "org"},
                    "description": body.get("description") or "", "lastUpdated": now_iso(), "position": 0,
                    "private": bool(body.get("private")), "theme": "green", "upvotes": 0, "items": [],
                }
                store.write_json_atomic(self._collection_file(slug), coll)
            return JSONResponse(coll)
        if not p and method == "GET":
            owner = ctx.q("owner")
            item = ctx.q("item")
            out = []
            for f in sorted((self.root / "collections").glob("*/*.json")):
                coll = json.loads(f.read_text())
                if owner and coll["owner"]["name"] != owner:
                    continue
                if coll["private"] and not (ctx.user and ctx.user.can_write(coll["owner"]["name"])):
                    continue
                listed = self._for_caller(ctx, coll)
                if item and not any(f"{i['type']}s/{i['id']}" == item for i in listed["items"]):
                    continue
                listed.pop("position", None)
                out.append(listed)
            limit = _int_param(ctx, "limit", default=len(out) or 1, minimum=1)
            return JSONResponse(out[:limit])
        if len(p) >= 2:
            slug = f"{p[0]}/{p[1]}"
            rest = p[2:]
            with store.lock(f"collection:{slug}"):
                coll = self._load_collection(ctx, slug)
                if not rest and method == "GET":
                    return JSONResponse(self._for_caller(ctx, coll))
                self._require_write(ctx, coll["owner"]["name"])
                if not rest and method == "DELETE":
                    self._collection_file(slug).unlink()
                    return JSONResponse({})
                if not rest and method == "PATCH":
                    body = ctx.json()
                    for k in ("title", "description", "private", "theme", "position"):
                        if k in body:
                            coll[k] = body[k]
                elif rest == ["items"] and method == "POST":
                    body = ctx.json()
                    item = body.get("item") or {}
                    if item.get("type") not in ("model", "dataset", "space", "paper", "collection"):
                        raise BadRequest("Invalid item type")
                    if any(i["id"] == item.get("id") and i["type"] == item["type"] for i in coll["items"]):
                        return JSONResponse({"error": "Item already exists"}, status_code=409)
                    if item["type"] in ("model", "dataset", "space"):
                        self._repo(ctx, item["type"], str(item.get("id")))
                    entry = {"_id": secrets.token_hex(12), "id": item["id"], "type": item["type"],
                             "position": len(coll["items"])}
                    if body.get("note"):
                        entry["note"] = {"text": str(body["note"]), "html": _html_escape(str(body["note"]))}
                    coll["items"].append(entry)
                elif len(rest) == 2 and rest[0] == "items" and method == "DELETE":
                    coll["items"] = [i for i in coll["items"] if i["_id"] != rest[1]]
                elif len(rest) == 2 and rest[0] == "items" and method == "PATCH":
                    body = ctx.json()
                    for i in coll["items"]:
                        if i["_id"] == rest[1]:
                            if "note" in body:
                                i["note"] = {"text": str(body["note"]), "html": _html_escape(str(body["note"]))}
                            if "position" in body:
                                if not isinstance(body["position"], int) or body["position"] < 0:
                                    raise BadRequest("Invalid position: expected a non-negative integer")
                                i["position"] = body["position"]
                else:
                    raise NotFound("No such collection route")
                coll["lastUpdated"] = now_iso()
                store.write_json_atomic(self._collection_file(slug), coll)
                shown = self._for_caller(ctx, coll)
                return JSONResponse({"data": shown} if method == "PATCH" and not rest else shown)
        raise NotFound("No such collection route")


def _next_link(ctx: Ctx, cursor: int) -> dict[str, str]:
    """The GitHub-style `Link` header the client follows as is: absolute, same query, next cursor."""
    params = [(k, v) for k, vs in ctx.query.items() if k not in ("p", "cursor") for v in vs] + [("cursor", str(cursor))]
    url_path = (ctx.request.scope.get("raw_path") or b"").split(b"?")[0].decode("latin-1")
    return {"Link": f'<{ctx.base}{url_path}?{urlencode(params)}>; rel="next"'}


def _file_json(path: str, e: FileEntry) -> dict:
    out: dict[str, Any] = {"type": "file", "oid": e.tree_oid, "size": e.size, "path": path}
    if e.lfs:
        out["lfs"] = {"oid": e.sha256, "size": e.size, "pointerSize": len(lfs_pointer(e.sha256, e.size))}
    return out


def _as_str_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, (str, int, float))]
    if isinstance(value, str):
        return [value]
    return []


def _html_escape(text: str) -> str:
    import html

    return html.escape(text)


def _parse_range(header: str, size: int) -> tuple[int, int]:
    """`bytes=a-b`, `bytes=a-` or `bytes=-n` → [start, end) within the file."""
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if not m or (not m.group(1) and not m.group(2)):
        raise BadRequest(f"Unsupported Range header {header!r}")
    if not m.group(1):
        n = int(m.group(2))
        return max(0, size - n), size
    start = int(m.group(1))
    end = int(m.group(2)) + 1 if m.group(2) else size
    if start >= size:
        raise RangeNotSatisfiable(f"Range start {start} is past the end ({size} bytes)",
                                  headers={"Content-Range": f"bytes */{size}"})
    return start, min(end, size)


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


def create_app(root: Path, page_size: int = 1000) -> HubApp:
    return HubApp(root, page_size=page_size)
