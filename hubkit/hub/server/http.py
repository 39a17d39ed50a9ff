"""What every route of the local Hub shares: the request context, body limits and reading, query parameters,
revisions in paths, paging links and error responses.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .auth import User
from .errors import BadRequest, HubError

MAX_JSON_BODY = 16 * 1024 * 1024
MAX_CARD_BODY = 2 * 1024 * 1024  # validate-yaml: a card's text (its metadata is limited to 1 MB by `yamlsafe`)
MAX_COMMIT_BODY = 8 * 1024 * 1024 * 1024  # one NDJSON commit (inline files are base64; large files go through LFS)
BODY_IDLE_SECONDS = 60.0  # a client that sends nothing for this long in the middle of a body is dropped (408)
BODY_TOTAL_SECONDS = 300.0  # a JSON body must arrive whole within this time


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


def int_param(ctx: Ctx, name: str, default: int = 0, minimum: int = 0) -> int:
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


async def body_chunks(request: Request, limit: int, total: float | None = None):
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


def split_rev(parts: list[str]) -> tuple[str, list[str]]:
    """`rev` (one segment, or `refs/pr/N` spelled unencoded) and the segments after it."""
    if not parts:
        raise BadRequest("Missing revision")
    if parts[0] == "refs" and len(parts) >= 3 and parts[1] in ("pr", "convert"):
        return "/".join(parts[:3]), parts[3:]
    return parts[0], parts[1:]


def next_link(ctx: Ctx, cursor: int) -> dict[str, str]:
    """The GitHub-style `Link` header the client follows as is: absolute, same query, next cursor."""
    params = [(k, v) for k, vs in ctx.query.items() if k not in ("p", "cursor") for v in vs] + [("cursor", str(cursor))]
    url_path = (ctx.request.scope.get("raw_path") or b"").split(b"?")[0].decode("latin-1")
    return {"Link": f'<{ctx.base}{url_path}?{urlencode(params)}>; rel="next"'}


def as_str_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, (str, int, float))]
    if isinstance(value, str):
        return [value]
    return []


async def read_body(request: Request, limit: int = MAX_JSON_BODY) -> bytes:
    """A whole (JSON) request body, within `limit` bytes and `BODY_TOTAL_SECONDS`."""
    return b"".join([chunk async for chunk in body_chunks(request, limit, BODY_TOTAL_SECONDS)])
