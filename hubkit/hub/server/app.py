"""The local Hub's HTTP API: the subset of the Hugging Face Hub that `huggingface_hub`, `datasets` and
`transformers` use (see the protocol notes in the project's reference folder).

`HubApp` is the ASGI application: it authenticates the caller, finds the route (`routing.Route`, one table per
resource module: `repos`, `files`, `commits`, `refs`, `collections`), reads a JSON body within its limit, runs
the handler off the event loop, and turns every `HubError` into the status and `X-Error-*` headers the client
expects. Routing works on the raw request path, segment by segment, so that a `%2F` inside a revision
(`refs%2Fpr%2F1`) or a tree path stays one segment, exactly as the client meant it.

Example:
    >>> import uvicorn
    >>> uvicorn.run(create_app(Path("hub")), port=8080)
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...utils import TRANSFER_HEADER
from . import collections, commits, files, refs, repos
from .auth import User, Users
from .errors import Forbidden, HubError, NotFound, RepoNotFound, Unauthorized
from .http import Ctx, declared_length, error_response, read_body
from .limits import InflightLimit
from .listing import ListingIndex
from .records import URL_PREFIXES, Repo, validate_repo_id
from .routing import Route, match
from .storage import Store

logger = logging.getLogger("hubkit.hub.server")

#: `/api/...` routes, by resource.
API_ROUTES: list[Route] = [*repos.ROUTES, *files.ROUTES, *commits.ROUTES, *refs.ROUTES, *collections.ROUTES]
#: Everything else: file downloads, the LFS batch API, then the web view of a repo.
WEB_ROUTES: list[Route] = [*files.WEB_ROUTES, *commits.WEB_ROUTES, *repos.WEB_ROUTES]

__all__ = ["API_ROUTES", "TRANSFER_HEADER", "WEB_ROUTES", "HubApp", "create_app"]


class HubApp:
    """ASGI application serving one `Store`.

    Args:
        root: the storage folder.
        page_size: entries per page of list endpoints (the Hub uses 1000; tests use less to exercise paging).
    """

    def __init__(self, root: Path, page_size: int = 1000) -> None:
        self.root = Path(root)
        self.store = Store(self.root, owner=True)
        self.listing = ListingIndex(self.store)
        self.users = Users(self.root)
        self.page_size = page_size
        self.inflight = InflightLimit()
        secret_file = self.root / "secret"
        if not secret_file.exists():
            secret_file.write_bytes(secrets.token_bytes(32))
            os.chmod(secret_file, 0o600)
        self.secret = secret_file.read_bytes()

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
        async with self.inflight.slot(scope):
            await self.answer(scope, receive, send)

    async def answer(self, scope: dict, receive: Callable, send: Callable) -> None:
        """Dispatch one request and send its response, whatever happened (every failure is an HTTP answer)."""
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
        """Find the request's route and run its handler.

        Raises:
            NotFound: no route answers this method and path.
            HubError: what the handler raised.
        """
        raw = request.scope.get("raw_path") or request.scope["path"].encode()
        raw_path = raw.split(b"?", 1)[0].decode("latin-1")
        parts = [unquote(p) for p in raw_path.split("/")[1:]]
        if parts and parts[-1] == "" and len(parts) > 1:
            parts = parts[:-1]
        method = request.method
        found = match(API_ROUTES if parts[:1] == ["api"] else WEB_ROUTES, method, parts)
        if found is None:
            raise NotFound(f"No route for {method} {raw_path}")
        route, args = found
        user = self.users.authenticate(request.headers.get("authorization"))
        ctx = Ctx(request=request, user=user, base=self._base(request),
                  query=parse_qs(request.url.query, keep_blank_values=True))
        if route.streams:
            return await route.handler(self, ctx, **args)
        if route.body:
            ctx.body = await read_body(request, route.body)
        elif method in ("GET", "HEAD"):
            declared_length(request, 0)  # a read carries no body: a declared one is refused before it is read
        return await run_in_threadpool(route.handler, self, ctx, **args)

    # ---- access control, for every resource ---------------------------------------------------------------
    def repo(self, ctx: Ctx, repo_type: str, repo_id: str, *, write: bool = False) -> Repo:
        """The repo, when the caller may see it (and, with `write`, write to it).

        Raises:
            RepoNotFound: no such repo, or a private one the caller may not see (the same answer for both).
            Unauthorized, Forbidden: a write without a token, or without rights to the namespace.
        """
        validate_repo_id(repo_id)
        try:
            repo = self.store.get_repo(repo_type, repo_id)
        except RepoNotFound:
            raise RepoNotFound(f"Repository Not Found for url: {ctx.request.url}.") from None
        if not ctx.may_see(repo.namespace, repo.private):
            raise RepoNotFound(f"Repository Not Found for url: {ctx.request.url}.")
        if write:
            self.require_write(ctx, repo.namespace)
        return repo

    def require_write(self, ctx: Ctx, namespace: str) -> User:
        if ctx.user is None:
            raise Unauthorized("You must be authenticated (send a token) to write to the Hub")
        if not ctx.user.can_write(namespace):
            raise Forbidden(f"You don't have the rights to write under the namespace {namespace!r}")
        return ctx.user

    def repo_url(self, ctx: Ctx, repo: Repo) -> str:
        return f"{ctx.base}/{URL_PREFIXES[repo.type]}{repo.id}"


def create_app(root: Path, page_size: int = 1000) -> HubApp:
    return HubApp(root, page_size=page_size)
