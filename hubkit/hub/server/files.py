"""Files of a repo: download (`resolve`, with Range), the tree listing, and `paths-info`."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from starlette.responses import Response, StreamingResponse

from .errors import BadRequest, EntryNotFound, RangeNotSatisfiable
from .http import MAX_JSON_BODY, Ctx, JSONResponse, int_param, next_link
from .records import Commit, FileEntry, Repo, lfs_pointer, validate_path
from .routing import Route

if TYPE_CHECKING:
    from .app import HubApp


def resolve_file(app: HubApp, ctx: Ctx, repo_type: str, repo_id: str, revision: str, path: str) -> Response:
    repo = app.repo(ctx, repo_type, repo_id)
    commit = app.store.resolve(repo, revision)
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
        start, end = parse_range(rng, entry.size)
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{entry.size}"
    headers["Content-Length"] = str(end - start)
    if ctx.request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    return StreamingResponse(
        app.store.read_blob(entry.sha256, start, end), status_code=status, headers=headers
    )


def _entries(commit: Commit, prefix: str, recursive: bool) -> list[dict]:
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
            out.append(file_json(path, e))
    for d, members in dirs.items():
        if recursive or "/" not in d[len(base):]:
            oid = hashlib.sha1("\n".join(sorted(members)).encode()).hexdigest()
            out.append({"type": "directory", "oid": oid, "size": 0, "path": d})
    out.sort(key=lambda x: (x["path"].count("/") if not recursive else 0, x["path"]))
    return out


def _last_commits(app: HubApp, repo: Repo, commit: Commit, paths: list[str]) -> dict[str, dict]:
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
        parent = app.store.get_commit(c.parents[0]) if c.parents else None
        for p in list(pending):
            if parent is None or sig(c, p) != sig(parent, p):
                found[p] = {"id": c.id, "title": c.title, "date": c.date}
                pending.discard(p)
        c = parent
    return found


def tree(app: HubApp, ctx: Ctx, repo_type: str, repo_id: str, revision: str, path: str) -> Response:
    repo = app.repo(ctx, repo_type, repo_id)
    commit = app.store.resolve(repo, revision)
    if path:
        validate_path(path)
    entries = _entries(commit, path, ctx.flag("recursive"))
    expand = ctx.flag("expand")
    page = 50 if expand else app.page_size
    offset = int_param(ctx, "cursor")
    chunk = entries[offset: offset + page]
    if expand:
        last = _last_commits(app, repo, commit, [e["path"] for e in chunk])
        for e in chunk:
            if e["path"] in last:
                e["lastCommit"] = last[e["path"]]
    return JSONResponse(chunk, headers=next_link(ctx, offset + page) if offset + page < len(entries) else {})


def paths_info(app: HubApp, ctx: Ctx, repo_type: str, repo_id: str, revision: str) -> Response:
    repo = app.repo(ctx, repo_type, repo_id)
    commit = app.store.resolve(repo, revision)
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
            out.append(file_json(p, commit.tree[p]))
        elif any(k.startswith(p + "/") for k in commit.tree):
            dirs_needed.append(p)
    for d in dirs_needed:
        members = [f"{k}:{e.tree_oid}" for k, e in commit.tree.items() if k.startswith(d + "/")]
        out.append({"type": "directory", "oid": hashlib.sha1("\n".join(sorted(members)).encode()).hexdigest(),
                    "size": 0, "path": d})
    if str((form.get("expand") or ["false"])[-1]).lower() == "true":
        last = _last_commits(app, repo, commit, [e["path"] for e in out])
        for e in out:
            if e["path"] in last:
                e["lastCommit"] = last[e["path"]]
    return JSONResponse(out)


def file_json(path: str, e: FileEntry) -> dict:
    out: dict[str, Any] = {"type": "file", "oid": e.tree_oid, "size": e.size, "path": path}
    if e.lfs:
        out["lfs"] = {"oid": e.sha256, "size": e.size, "pointerSize": len(lfs_pointer(e.sha256, e.size))}
    return out


def parse_range(header: str, size: int) -> tuple[int, int]:
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


WEB_ROUTES = [Route(("GET", "HEAD"), "{type?}/{repo}/resolve/{rev}/{path*}", resolve_file)]
ROUTES = [
    Route(("GET",), "api/{types}/{repo}/tree/{rev}/{path*}", tree),
    Route(("POST",), "api/{types}/{repo}/paths-info/{rev}", paths_info, body=MAX_JSON_BODY),
]
