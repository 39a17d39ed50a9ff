"""Writing to a repo: `preupload`, the NDJSON commit, and LFS (the batch API and signed one-object uploads).

An LFS object may be referenced in a commit only by a repo it was uploaded to, or that already holds it, and the
answers of the batch API depend only on that repo: the store never reveals what other repos hold.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...utils import TRANSFER_HEADER
from .blobs import pump
from .errors import BadRequest, Forbidden, HubError
from .http import MAX_COMMIT_BODY, MAX_JSON_BODY, Ctx, JSONResponse, body_chunks
from .ndjson import CommitReader
from .records import Commit, FileEntry, Operation, Repo, is_lfs_path, validate_path
from .routing import Route

if TYPE_CHECKING:
    from .app import HubApp

LFS_URL_TTL = 3600


def preupload(app: HubApp, ctx: Ctx, repo_type: str, repo_id: str, revision: str) -> Response:
    repo = app.repo(ctx, repo_type, repo_id, write=True)
    try:
        head: Commit | None = app.store.resolve(repo, revision)
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
            oid = existing.sha256 if mode == "lfs" else existing.gitoid or app.store.git_oid(existing.sha256)
        out.append({"path": f["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
    return JSONResponse({"files": out, "commitOid": head.id if head else None})


async def commit(app: HubApp, ctx: Ctx, repo_type: str, repo_id: str, revision: str) -> Response:
    """The NDJSON commit, parsed as it arrives: each inline file is decoded into its blob on the way in (see
    `ndjson.CommitReader`), then the operations are applied at once."""
    repo = await run_in_threadpool(app.repo, ctx, repo_type, repo_id, write=True)
    reader = CommitReader(app.store)

    def consume(pieces: list[bytes]) -> None:
        with app.store.writing():  # blobs are added: `gc` waits
            reader.feed_all(pieces)

    try:
        await pump(body_chunks(ctx.request, MAX_COMMIT_BODY), consume)
        items = reader.close()
    finally:
        reader.abort()
    return await run_in_threadpool(_apply_commit, app, ctx, repo, revision, items)


def _apply_commit(app: HubApp, ctx: Ctx, repo: Repo, revision: str, items: list) -> Response:
    with app.store.writing():
        return _apply_commit_locked(app, ctx, repo, revision, items)


def _lfs_entry(app: HubApp, repo: Repo, path: str, value: dict, known: dict) -> FileEntry:
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
    if "refs" not in known and not app.store.granted(repo, oid):
        known["refs"] = app.store.referenced(repo)
    if not re.fullmatch(r"[0-9a-f]{64}", oid) or not app.store.may_reference(repo, oid, known.get("refs")):
        raise BadRequest(f"Unknown LFS object {oid[:64]!r} for {path!r}: upload it to {repo.id} first")
    entry = app.store.entry_for_blob(path, oid, lfs=True)
    if size is not None and size != entry.size:
        raise BadRequest(f"LFS object {oid} has {entry.size} bytes, commit says {size}")
    return entry


def _apply_commit_locked(app: HubApp, ctx: Ctx, repo: Repo, revision: str, items: list) -> Response:
    header: dict | None = None
    known: dict = {}
    ops: list[Operation] = []
    for lineno, item, blob in items:
        key, value = item["key"], item["value"]
        if not isinstance(value, dict):
            raise BadRequest(f"Malformed commit payload at line {lineno}")
        if key == "header":
            header = value
        elif key == "file":
            path = value["path"]  # validated, and its content stored, by CommitReader
            sha, size, gitoid = blob
            lfs = is_lfs_path(path, size)
            gitoid = gitoid or ("" if lfs else app.store.git_oid(sha))  # a streamed file's oid: listed unless LFS
            ops.append(Operation("add", path, FileEntry(sha, size, gitoid, lfs)))
        elif key == "lfsFile":
            path = validate_path(value.get("path"))
            ops.append(Operation("add", path, _lfs_entry(app, repo, path, value, known)))
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
    commit, pr = app.store.commit(
        repo.type, repo.id, revision, ops,
        title=str(header.get("summary") or "Upload"), message=str(header.get("description") or ""),
        author=ctx.user.name if ctx.user else "anonymous", parent_commit=header.get("parentCommit"),
        create_pr=create_pr,
    )
    url = app.repo_url(ctx, repo)
    body = {"success": True, "commitOid": commit.id, "commitUrl": f"{url}/commit/{commit.id}", "hookOutput": ""}
    if pr is not None:
        body["pullRequestUrl"] = f"{url}/discussions/{pr}"
    return JSONResponse(body)


def _sign(app: HubApp, oid: str, size: int, exp: int, repo: str) -> str:
    return hmac.new(app.secret, f"{oid}:{size}:{exp}:{repo}".encode(), hashlib.sha256).hexdigest()


def lfs_batch(app: HubApp, ctx: Ctx, repo_type: str, repo_id: str) -> Response:
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
    repo = app.repo(ctx, repo_type, repo_id, write=operation == "upload")
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
            if not (app.store.granted(repo, oid) and app.store.has_blob(oid, size)):
                exp = int(time.time()) + LFS_URL_TTL
                sig = _sign(app, oid, size, exp, key)
                entry["actions"] = {"upload": {"href": f"{ctx.base}/api/lfs-upload/{oid}?"
                                               + urlencode({"size": size, "exp": exp, "repo": key, "sig": sig})}}
        else:
            if in_repo is None:
                head = app.store.resolve(repo, "main")
                in_repo = {e.sha256: p for p, e in head.tree.items() if e.lfs}
            path = in_repo.get(oid)
            meta = app.store.blob_meta(oid)
            if path is None or meta is None or meta["size"] != size:
                entry["error"] = {"code": 404, "message": "Object does not exist"}
            else:
                entry["actions"] = {"download": {"href": f"{app.repo_url(ctx, repo)}/resolve/main/{quote(path)}"}}
        objects.append(entry)
    return JSONResponse({"transfer": "basic", "objects": objects}, media_type="application/vnd.git-lfs+json")


async def lfs_upload(app: HubApp, ctx: Ctx, oid: str) -> Response:
    """Receive one LFS object for one repo, streamed to disk while hashing: memory stays flat whatever the
    size. Once its bytes match `oid`, the repo may reference it in a commit."""
    try:
        size, exp, sig = int(ctx.q("size") or -1), int(ctx.q("exp") or 0), ctx.q("sig") or ""
    except ValueError:
        raise Forbidden("Invalid upload signature") from None
    key = ctx.q("repo") or ""
    if exp < time.time() or not hmac.compare_digest(sig, _sign(app, oid, size, exp, key)):
        raise Forbidden("Invalid or expired upload signature")
    repo_type, _, repo_id = key.partition(":")
    try:
        repo = app.store.get_repo(repo_type, repo_id)
    except HubError:
        raise Forbidden("The repository of this upload no longer exists") from None
    writer = app.store.blob_writer(size, oid)
    try:
        await pump(body_chunks(ctx.request, size + 1), writer.write_all)

        def finish() -> None:
            with app.store.writing():
                writer.finish()
                app.store.grant(repo, oid)

        await run_in_threadpool(finish)
    finally:
        writer.abort()
    return Response(status_code=200)


ROUTES = [
    Route(("POST",), "api/{types}/{repo}/preupload/{rev}", preupload, body=MAX_JSON_BODY),
    Route(("POST",), "api/{types}/{repo}/commit/{rev}", commit, streams=True),
    Route(("PUT",), "api/lfs-upload/{oid}", lfs_upload, streams=True),
]
WEB_ROUTES = [Route(("POST",), "{type?}/{repo.git}/info/lfs/objects/batch", lfs_batch, body=MAX_JSON_BODY)]
