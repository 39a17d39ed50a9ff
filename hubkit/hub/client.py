"""The one place hubkit chooses a Hub endpoint and builds `HfApi` clients.

The endpoint is `HF_ENDPOINT` when it is set (the real Hub, a mirror, or a local Hub); otherwise hubkit's
embedded local Hub, stored under the user cache folder on a port fixed per folder, started on first use and
stopped when the last process using it exits (`hubkit hub start` keeps one up). `huggingface_hub` reads
`HF_ENDPOINT` once, at import, so hubkit names the endpoint before anything imports it (`choose_endpoint()`,
which starts nothing), and `ensure_endpoint()` makes sure it runs; import `huggingface_hub` only inside
functions.

Example:
    >>> from hubkit.hub import get_api
    >>> api = get_api()            # starts the embedded Hub when HF_ENDPOINT is unset
    >>> api.list_models(author="hubkit")
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ..errors import HubkitError
from ..utils import DATA_NAMESPACE, TRANSFER_HEADER, hubkit_home

if TYPE_CHECKING:
    from huggingface_hub import HfApi

#: The namespace the embedded Hub's own user writes under.
EMBEDDED_USER = "hubkit"
#: The organisation the embedded user also writes to (seeded datasets live there).
EMBEDDED_ORG = DATA_NAMESPACE
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}



def embedded_root() -> Path:
    return hubkit_home() / "hub"


@dataclass
class LocalHub:
    """A running local Hub process.

    Attributes:
        url: the endpoint, e.g. `http://127.0.0.1:38080`.
        root: its storage folder.
        pid: the server process id.
    """

    url: str
    root: Path
    pid: int

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server (SIGTERM, then SIGKILL)."""
        import signal

        from .server.lifetime import process_alive as _pid_alive

        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.time() + timeout
        while time.time() < deadline and _pid_alive(self.pid):
            time.sleep(0.05)
        if _pid_alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)


def ping(url: str, timeout: float = 2.0, path: str = "/api/agent-harnesses") -> bool:
    """Whether a Hub answers `path` at `url` (by default an endpoint hubkit's Hub serves cheaply; any Hub,
    huggingface.co included, answers `/api/models?limit=1`)."""
    try:
        with urllib.request.urlopen(f"{url}{path}", timeout=timeout) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def running_hub(root: Path) -> LocalHub | None:
    """The Hub serving `root`, when one is up."""
    from .server.lifetime import process_alive as _pid_alive

    try:
        info = json.loads((Path(root) / "server.json").read_text())
    except (OSError, ValueError):
        return None
    if _pid_alive(int(info["pid"])) and ping(info["url"]):
        return LocalHub(url=info["url"], root=Path(root), pid=int(info["pid"]))
    return None


def start_local_hub(
    root: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    page_size: int | None = None,
    timeout: float = 60.0,
    detach: bool = True,
    while_used: bool = False,
) -> LocalHub:
    """Start `hubkit hub serve` on `root` in a background process and wait until it answers.

    Args:
        root: storage folder.
        host: interface (loopback by default).
        port: TCP port; 0 picks a free one.
        page_size: list page size (tests use small pages to exercise pagination).
        timeout: seconds to wait for the server to answer.
        detach: run the server in its own session so that Ctrl-C in this terminal does not cut a request short.
        while_used: the server stops itself once no process registered in `root/clients` is alive and no
            `root/lasting` marker asks it to stay (see `use_embedded_hub`).

    Raises:
        HubkitError: the server did not come up; the message quotes its log.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    ready = root / "server.json"
    ready.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "hubkit", "hub", "serve", "--root", str(root), "--host", host, "--port", str(port)]
    if page_size:
        cmd += ["--page-size", str(page_size)]
    if while_used:
        cmd += ["--while-used"]
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    with open(root / "server.log", "ab") as log:  # the server keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=detach, env=env)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            info = json.loads(ready.read_text())
            if ping(info["url"], timeout=1.0):
                return LocalHub(url=info["url"], root=root, pid=proc.pid)
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    proc.kill()
    tail = (root / "server.log").read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
    raise HubkitError(f"local Hub under {root} did not start: {tail[0]}")


# ---- the embedded Hub: a fixed port, started on first use, stopped when its last user exits --------------------
def embedded_url(root: Path | None = None) -> str:
    """The embedded Hub's endpoint, whether or not it runs.

    Its port is fixed per Hub folder, so that a command can name the endpoint before it knows whether it needs
    the Hub, and every URL it prints stays valid for the next `hubkit hub start`: a port derived from the
    folder's path (20000–31999, below Linux's ephemeral range), or the one in `root/port` once that was taken
    by another program and a free one was picked instead.
    """
    root = Path(root or embedded_root())
    try:
        port = int((root / "port").read_text().strip())
    except (OSError, ValueError):
        digest = hashlib.sha256(str(root.absolute()).encode()).digest()
        port = 20000 + int.from_bytes(digest[:4], "big") % 12000
    return f"http://127.0.0.1:{port}"


def _new_port(root: Path) -> str:
    """Move the embedded Hub to a free port (its own was taken); returns the new URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    (root / "port").write_text(str(port))
    return embedded_url(root)


def use_embedded_hub(*, lasting: bool = False) -> LocalHub:
    """The embedded Hub (under the hubkit cache folder), started if it is not running, with this process
    registered as one of its users.

    A Hub started here stops by itself within a second of its last registered process exiting (normally or
    killed), so a command leaves nothing running. `lasting=True` (`hubkit hub start`) asks it to stay until
    `hubkit hub stop`.

    Raises:
        HubkitError: the Hub did not start (its port taken by another program, for one).
    """
    from .server.auth import Users
    from .server.lifetime import LASTING, clients_lock, register

    root = embedded_root()
    with clients_lock(root):
        if lasting:
            (root / LASTING).touch(mode=0o600)
        register(root)
        hub = running_hub(root)
        if hub is None:
            url = embedded_url(root)
            deadline = time.time() + 3  # a Hub that just stopped may still hold the port for a moment
            while _port_taken(url) and time.time() < deadline:
                time.sleep(0.1)
            if _port_taken(url):
                moved = _new_port(root)
                if not _may_move_port(url):
                    raise HubkitError(f"another program listens on {url}, the embedded Hub's port: it moves to {moved} "
                                      "from now on, so run the command again (or set HF_ENDPOINT)")
                os.environ["HF_ENDPOINT"] = url = moved
            hub = start_local_hub(root, port=int(url.rsplit(":", 1)[1]), while_used=True)
    token_file = root / "embedded-token"
    if not token_file.exists():
        token = Users(root).add_user(EMBEDDED_USER, orgs=[EMBEDDED_ORG], token_name="embedded")
        token_file.write_text(token)
        os.chmod(token_file, 0o600)
    return hub


def _port_taken(url: str) -> bool:
    """Whether something (not the embedded Hub, which is not running) already listens on `url`'s port."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", int(url.rsplit(":", 1)[1])))
        except OSError:
            return True
    return False


def _may_move_port(url: str) -> bool:
    """Whether the embedded Hub may take another port: nothing in this process has read the old endpoint."""
    return "huggingface_hub.constants" not in sys.modules and os.environ.get("HF_ENDPOINT", url).rstrip("/") == url


def choose_endpoint() -> str:
    """Name the endpoint for this process without starting anything: `HF_ENDPOINT` when set, else the
    embedded Hub's fixed URL, written to `HF_ENDPOINT` so that `huggingface_hub` (which reads it once, at
    import) and every process this one starts agree. The Hub itself starts on first use (`ensure_endpoint`)."""
    endpoint = os.environ.get("HF_ENDPOINT")
    if not endpoint:
        endpoint = embedded_url()
        os.environ["HF_ENDPOINT"] = endpoint
    return endpoint.rstrip("/")


def ensure_endpoint() -> str:
    """Settle the Hub endpoint for this process, make sure it can be used, and return it.

    `HF_ENDPOINT` wins when set. Otherwise (or when it names the embedded Hub) the embedded Hub is started or
    reused, with this process registered as its user, so that `huggingface_hub`, `datasets` and
    `transformers` all talk to it.

    Raises:
        HubkitError: `huggingface_hub` was imported earlier with another endpoint.
    """
    endpoint = choose_endpoint()
    if endpoint == embedded_url().rstrip("/"):
        endpoint = use_embedded_hub().url.rstrip("/")
    if "huggingface_hub.constants" in sys.modules:
        imported = sys.modules["huggingface_hub.constants"].ENDPOINT.rstrip("/")
        if imported != endpoint:
            raise HubkitError(
                f"huggingface_hub was imported with endpoint {imported} before hubkit chose {endpoint}: "
                "set HF_ENDPOINT before importing huggingface_hub"
            )
    return endpoint


def is_local_endpoint(endpoint: str) -> bool:
    """Whether `endpoint` is a Hub on this machine (where hubkit's streaming LFS path is used)."""
    return (urlparse(endpoint).hostname or "") in LOOPBACK_HOSTS


def default_token() -> str | None:
    """`HF_TOKEN` if set; else, on the embedded Hub, its own user's token; else the client's saved token."""
    if os.environ.get("HF_TOKEN"):
        return os.environ["HF_TOKEN"]
    endpoint = ensure_endpoint()
    hub = running_hub(embedded_root())
    if hub is not None and hub.url.rstrip("/") == endpoint:
        token_file = embedded_root() / "embedded-token"
        if token_file.exists():
            return token_file.read_text().strip()
    return None


def hub_kwargs(revision: str | None = None, path: str | Path | None = None) -> dict[str, Any]:
    """The keyword arguments every `transformers` / `datasets` / `hf_hub_download` call gets: the token hubkit
    uses (`default_token()`: the embedded Hub's own user when no `HF_TOKEN` is set, so private repos read as
    they do through `get_api()`) and, when given, the revision. The endpoint is `HF_ENDPOINT`, settled first.

    Args:
        revision: the revision to load.
        path: what is loaded; when it is a local path nothing is added (and no Hub is started).

    Example:
        >>> AutoModelForCausalLM.from_pretrained("alice/private-run", **hub_kwargs("main"))
    """
    if path is not None and Path(path).exists():
        return {}
    require_reachable(ensure_endpoint())
    out: dict[str, Any] = {"token": default_token()}
    if revision is not None:
        out["revision"] = revision
    return out


_REACHED: set[str] = set()


def require_reachable(endpoint: str, timeout: float = 3.0) -> None:
    """Fail fast, in one line, when nothing listens at `endpoint` (checked once per process).

    The client would otherwise retry a refused or unanswered connection for about half a minute, logging each
    retry, before the command could say anything.

    Raises:
        HubkitError: the host does not resolve, refuses the connection, or does not answer within `timeout`.
    """
    if endpoint in _REACHED:
        return
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=timeout).close()
    except OSError as e:
        reason = "no answer" if isinstance(e, TimeoutError) else (e.strerror or str(e) or type(e).__name__)
        raise HubkitError(f"cannot reach the Hub at {endpoint}: {reason}") from None
    _REACHED.add(endpoint)


def get_api(token: str | None = None) -> HfApi:
    """An `HfApi` for the current endpoint: the one factory every hubkit module uses.

    Args:
        token: a token; defaults to `default_token()`.

    Example:
        >>> api = get_api()
        >>> api.whoami()["name"]
        'hubkit'
    """
    endpoint = ensure_endpoint()
    require_reachable(endpoint)
    from huggingface_hub import HfApi

    from .. import __version__

    headers = {TRANSFER_HEADER: "lfs"} if is_local_endpoint(endpoint) else None
    return HfApi(
        endpoint=endpoint, token=token or default_token(), library_name="hubkit", library_version=__version__,
        headers=headers,
    )
