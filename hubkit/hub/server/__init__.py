"""hubkit's local Hub: a Hugging Face Hub-compatible HTTP server over a local folder.

Example:
    >>> from hubkit.hub.server import serve
    >>> serve(Path("~/.cache/hubkit/hub").expanduser(), port=8080)  # blocks
"""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path

from .app import TRANSFER_HEADER, HubApp, create_app
from .auth import Users
from .limits import GuardedH11Protocol

__all__ = ["HubApp", "TRANSFER_HEADER", "Users", "create_app", "serve"]


def listening_socket(host: str, port: int) -> socket.socket:
    """The server's TCP socket, bound and listening.

    It is created with `IPPROTO_TCP` named: asyncio sets `TCP_NODELAY` only on sockets whose `proto` says TCP,
    and without it every small response on a kept-alive connection waits for the peer's delayed ACK (~40 ms).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _raise_open_files_limit() -> None:
    """Let the server hold its connection cap (4,096) plus files: the soft limit up to the hard one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(8192, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _calm_the_garbage_collector() -> None:
    """Fewer, cheaper collections: what is loaded at start-up is frozen out of every collection, and the
    youngest generation collects every 20,000 allocations instead of 700. A commit of 4,150 files allocates
    that many objects; with the defaults, full collections over the commit cache paused one request in twenty
    by ~40 ms (`scripts/bench/hub.py`, revisions row)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def serve(
    root: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    page_size: int = 1000,
    ready_file: Path | None = None,
    while_used: bool = False,
) -> None:
    """Serve the Hub stored under `root` until interrupted.

    Args:
        root: storage folder (created if missing; reused across restarts).
        host: interface to bind; keep the default loopback unless you mean to share the Hub.
        port: TCP port; 0 picks a free one.
        page_size: entries per page of list endpoints.
        ready_file: where to write `{"url", "pid"}` once the socket listens (default `root/server.json`).
        while_used: stop once no process registered under `root/clients` runs (`lifetime`): how the embedded
            Hub that a command starts goes away with the command.
    """
    import uvicorn

    root = Path(root)
    os.umask(0o077)  # everything the Hub writes is private to its user: folders 0700, files 0600
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    app = create_app(root, page_size=page_size)
    _calm_the_garbage_collector()
    sock = listening_socket(host, port)
    family = sock.family
    bound = sock.getsockname()[1]
    url_host = f"[{host}]" if family == socket.AF_INET6 else host
    url = f"http://{url_host}:{bound}"
    ready = Path(ready_file) if ready_file else root / "server.json"
    tmp = ready.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid(), "while_used": while_used}))
    os.replace(tmp, ready)
    logging.getLogger("hubkit.hub.server").info("local Hub serving %s on %s", root, url)
    _raise_open_files_limit()
    # asyncio's own loop, whatever else is installed: uvicorn picks uvloop when it is there (trackio and gradio pull
    # it in), and the server's limits and I/O are the ones measured on asyncio
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, http=GuardedH11Protocol, loop="asyncio", lifespan="off",
        timeout_keep_alive=30, h11_max_incomplete_event_size=64 * 1024, limit_concurrency=4096,
    )
    server = uvicorn.Server(config)
    if while_used:
        from .lifetime import stop_when_unused

        def stop() -> None:
            server.should_exit = True

        stop_when_unused(root, ready, stop)
    server.run(sockets=[sock])
    if while_used:
        logging.getLogger("hubkit.hub.server").info("local Hub on %s stopped: no command uses it", url)
