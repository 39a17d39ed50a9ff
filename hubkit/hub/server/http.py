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
from starlette.responses import JSONResponse as _StarletteJSON
from starlette.responses import Response

from .auth import User
from .errors import BadRequest, HubError

MAX_JSON_BODY = 16 * 1024 * 1024
MAX_CARD_BODY = 2 * 1024 * 1024  # validate-yaml: a card's text (its metadata is limited to 256 KB by `yamlsafe`)
MAX_COMMIT_BODY = 8 * 1024 * 1024 * 1024  # one NDJSON commit (inline files are base64; large files go through LFS)
MAX_INT_PARAM = 2**53  # `p`, `cursor`, `limit`: larger values are refused (400), never a 500 from a slice
# Bodies must make progress (every route, streamed commits and LFS uploads included), as Apache's
# mod_reqtimeout does it: a grace period, extended by one second per `BODY_MIN_RATE` bytes received, and never
# more than `BODY_IDLE_SECONDS` without a byte. A trickled body is dropped with a 408.
BODY_GRACE_SECONDS = 10.0
BODY_MIN_RATE = 16 * 1024  # bytes per second, averaged over the whole body
BODY_IDLE_SECONDS = 30.0
BODY_TOTAL_SECONDS = 300.0  # a JSON body must also arrive whole within this time


def render_json(content: Any) -> bytes:
    """Compact JSON bytes; a string that is not valid UTF-8 (a lone surrogate stored by an older hubkit) is
    written as U+FFFD instead of failing the whole response with a 500."""
    text = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
    return text.encode("utf-8", errors="replace")


class JSONResponse(_StarletteJSON):
    """Starlette's JSON response, rendered by `render_json`."""

    def render(self, content: Any) -> bytes:
        return render_json(content)


def check_text(data: Any) -> Any:
    """`data` (parsed JSON), when every string in it is valid UTF-8.

    JSON can spell a lone surrogate (`"\\ud800"`); Python decodes it into a string that cannot be encoded
    again, so it would break every response that shows it.

    Raises:
        BadRequest: a string (key or value) holds a lone surrogate.
    """
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    raise BadRequest(f"Invalid text {item[:60]!r}: not valid UTF-8 (a lone surrogate)") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return data


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

    def may_see(self, namespace: str, private: bool) -> bool:
        """Whether the caller may see a repo or collection: a public one, or a private one it may write to."""
        return not private or (self.user is not None and self.user.can_write(namespace))

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
        return check_text(data)


def int_param(ctx: Ctx, name: str, default: int = 0, minimum: int = 0) -> int:
    """A non-negative integer query parameter (`cursor`, `p`, `limit`).

    Raises:
        BadRequest: present and not an integer from `minimum` to `MAX_INT_PARAM`.
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
    if value > MAX_INT_PARAM:
        raise BadRequest(f"Invalid {name} {value}: must be at most {MAX_INT_PARAM}")
    return value


def declared_length(request: Request, limit: int) -> int | None:
    """The request's `Content-Length`, refused before any byte is read when it is over `limit`.

    Raises:
        HubError: 413 for a declared body over `limit`; 400 for a malformed header.
    """
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 19:
        raise BadRequest(f"Invalid Content-Length {raw[:40]!r}")
    n = int(raw)
    if n > limit:
        raise HubError(f"Request body too large: {n:,} bytes declared, the limit is {limit:,}", status=413,
                       headers={"Connection": "close"})
    return n


async def body_chunks(request: Request, limit: int, total: float | None = None):
    """The request body in chunks, refusing bodies over `limit` bytes (413, up front when declared) and bodies
    that do not make progress (408: see `BODY_MIN_RATE`), or that take longer than `total` seconds."""
    import asyncio

    declared_length(request, limit)
    stream = request.stream().__aiter__()
    loop = asyncio.get_running_loop()
    started = loop.time()
    hard = None if total is None else started + total
    n = 0
    while True:
        now = loop.time()
        deadline = min(now + BODY_IDLE_SECONDS, started + BODY_GRACE_SECONDS + n / BODY_MIN_RATE)
        if hard is not None:
            deadline = min(deadline, hard)
        if deadline <= now:
            raise _too_slow(n, now - started)
        try:
            async with asyncio.timeout(deadline - now):  # a timer per chunk, not a task (as `wait_for` makes)
                chunk = await stream.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise _too_slow(n, loop.time() - started) from None
        n += len(chunk)
        if n > limit:
            raise HubError(f"Request body too large: more than {limit:,} bytes", status=413,
                           headers={"Connection": "close"})
        yield chunk


def _too_slow(received: int, seconds: float) -> HubError:
    return HubError(f"Request body too slow: {received:,} bytes in {seconds:.0f} s (at least "
                    f"{BODY_MIN_RATE // 1024} KB/s after {BODY_GRACE_SECONDS:g} s, and a byte every "
                    f"{BODY_IDLE_SECONDS:g} s)", status=408, headers={"Connection": "close"})


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
