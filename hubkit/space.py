"""The leaderboard Space: run it locally, or deploy `spaces/leaderboard/` as a Gradio Space.

The app itself lives in `spaces/leaderboard/` and needs no hubkit (a Space installs only its
`requirements.txt`); hubkit supplies what it shares with the app — the benchmark groups and titles, as
`benchmarks.json` — and the Space's settings (`settings.json`: which results dataset to show).

Example:
    >>> deploy_space("my-org/leaderboard", results_repo="my-org/sweep-results")
    'my-org/leaderboard'
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import json
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .errors import HubkitError
from .resources import resource_dir

if TYPE_CHECKING:
    from huggingface_hub import HfApi

SPACE_DIR = resource_dir("leaderboard")
SPACE_FILES = ("app.py", "board/__init__.py", "board/schema.py", "board/loading.py", "board/model.py", "board/plots.py",
               "benchmarks.json", "requirements.txt", "README.md")
#: The private package name the Space's folder is imported under in hubkit: never `app` or `board`, so that another
#: module of those common names, imported before or after, neither takes its place nor is shadowed.
SPACE_PACKAGE = "_hubkit_space_leaderboard"


def benchmarks_json() -> str:
    """`benchmarks.json`: the benchmark registry as the app reads it, a generated copy (name → group, title, headline
    metric, its scale and direction, the study's shot count, dataset, and every metric's scale and direction)."""
    from .benchmarks import BENCHMARKS

    table = {name: b.to_space() for name, b in BENCHMARKS.items()}
    return json.dumps(table, indent=1, ensure_ascii=False) + "\n"


def space_module(name: str = "board") -> ModuleType:
    """The Space's module `name` (`board`, its data side, or `app`, its page), imported by file path under the
    private package `SPACE_PACKAGE` (nothing is put on `sys.path`).

    Raises:
        HubkitError: the Space's files are not beside this hubkit.

    Example:
        >>> Board = space_module().Board
    """
    if not (SPACE_DIR / "app.py").is_file():
        raise HubkitError(f"the leaderboard app is not beside this hubkit ({SPACE_DIR.name}/app.py missing)")
    if SPACE_PACKAGE not in sys.modules:
        spec = importlib.machinery.ModuleSpec(SPACE_PACKAGE, None, is_package=True)
        spec.submodule_search_locations = [str(SPACE_DIR)]
        sys.modules[SPACE_PACKAGE] = importlib.util.module_from_spec(spec)
    return importlib.import_module(f"{SPACE_PACKAGE}.{name}")  # `app` imports gradio: seconds


def load_board(results_repo: str):
    """The leaderboard's `Board` over a results dataset on the current Hub.

    Raises:
        HubkitError: the dataset cannot be read or holds no results.
    """
    from .hub import ensure_endpoint, hub_errors
    from .hub.client import require_reachable

    endpoint = ensure_endpoint()
    require_reachable(endpoint)
    board = space_module()
    Board, load_analysis, load_data_checks = board.Board, board.load_analysis, board.load_data_checks
    load_results, load_study_analyses = board.load_results, board.load_study_analyses

    with hub_errors(f"results dataset {results_repo}", endpoint=endpoint):
        frame = load_results(results_repo, endpoint=endpoint)
        analysis = load_analysis(results_repo, endpoint=endpoint)
        analyses = load_study_analyses(results_repo, endpoint=endpoint)
        checks = load_data_checks(results_repo, endpoint=endpoint)
    if frame.empty:
        raise HubkitError(f"results dataset {results_repo}: no results (and no hubkit model cards under its owner)")
    return Board(frame, endpoint=endpoint, analysis=analysis, analyses=analyses, checks=checks)


def build_app(results_repo: str):
    """The Gradio Blocks of the leaderboard over `results_repo`."""
    board = load_board(results_repo)  # a missing dataset or Hub is said before gradio is imported
    return space_module("app").build(board, results_repo)


def check_port(host: str, port: int | None) -> None:
    """Fail fast, before anything loads, where `port` is taken on `host` (None: any free port will do).

    Raises:
        HubkitError: the port is in use; the message names `--port`.
    """
    if port is None:
        return
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: a closed socket's
        try:  # TIME_WAIT does not count as taken, a listener does
            probe.bind((host, port))
        except OSError as e:
            raise HubkitError(f"port {port} on {host} is not free ({e.strerror or e}): choose another with "
                              "--port, or stop what listens there") from None


@contextmanager
def serving(demo: Any, host: str = "127.0.0.1", port: int | None = None, quiet: bool = True,
            timeout: float = 30.0) -> Iterator[str]:
    """Serve a Gradio app for the duration of a `with` block; yield its URL.

    On leaving the block (normally, or by Ctrl-C) the server is closed and every thread it started — the
    server's and AnyIO's worker threads, all daemons — is waited for, up to `timeout` seconds. A process
    that ends with those threads still alive can abort in interpreter finalization ("terminate called
    without an active exception" on Python 3.11, which ends live daemon threads with `pthread_exit`).

    Args:
        demo: a `gradio.Blocks`, e.g. from `build_app`.
        host: interface to listen on.
        port: port to listen on (default: Gradio's first free one from 7860).
        quiet: leave out Gradio's own launch banner.
        timeout: the longest wait for the server's threads after closing it.

    Example:
        >>> with serving(build_app("my-org/sweep-results")) as url:
        ...     wait_until_interrupted()
    """
    check_port(host, port)
    before = set(threading.enumerate())
    app = space_module("app")
    demo.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=quiet, css=app.CSS, head=app.HEAD)
    try:
        yield f"http://{host}:{demo.server_port}/"
    finally:
        demo.close(verbose=False)
        deadline = time.monotonic() + timeout
        for thread in set(threading.enumerate()) - before:
            if thread.daemon:  # Python itself waits for the others at exit
                thread.join(max(0.0, deadline - time.monotonic()))


def wait_until_interrupted() -> None:
    """Block until Ctrl-C (SIGINT) or SIGTERM (`kill`, `docker stop`, a job scheduler), then return normally."""
    stop = threading.Event()
    main = threading.current_thread() is threading.main_thread()  # signal handlers can only be set there
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if main else None
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if main:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def deploy_space(repo_id: str, results_repo: str, private: bool = False, api: HfApi | None = None) -> str:
    """Create (or update) a Gradio Space running the leaderboard over `results_repo`, in one commit.

    Raises:
        HubkitError: the Hub refused to create or write the Space.
    """
    from .hub import get_api, hub_errors, push_folder, retrying

    api = api or get_api()
    with tempfile.TemporaryDirectory() as tmp:
        for name in SPACE_FILES:
            text = benchmarks_json() if name == "benchmarks.json" else (SPACE_DIR / name).read_text(encoding="utf-8")
            if name == "README.md":
                text = text.replace("tags:\n", f"datasets:\n  - {results_repo}\ntags:\n", 1)
            (Path(tmp) / name).parent.mkdir(exist_ok=True)
            (Path(tmp) / name).write_text(text, encoding="utf-8")
        (Path(tmp) / "settings.json").write_text(json.dumps({"results_repo": results_repo}, indent=2) + "\n")
        with hub_errors(f"cannot deploy the Space {repo_id}", endpoint=api.endpoint):
            retrying(api.create_repo, repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
            retrying(push_folder, repo_id, tmp, repo_type="space",
                     commit_message=f"Deploy the leaderboard of {results_repo}", api=api)
    return repo_id
