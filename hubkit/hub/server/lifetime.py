"""How long an embedded Hub lives: as long as a process that registered with it runs, or until
`hubkit hub stop` when one asked for it to last (`hubkit hub start`).

Each process that uses the embedded Hub writes `clients/<pid>` (its start time inside, so that a recycled pid
is not mistaken for it) and removes it at exit; a Hub started with `--while-used` checks twice a second and
stops once none of them runs and no `lasting` marker is there. Registering and deciding to stop both hold
`clients.lock`, so a command never registers with a Hub that has just decided to go.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

#: Marker file asking the embedded Hub to outlive its users (`hubkit hub start`; `hubkit hub stop` removes it).
LASTING = "lasting"
CHECK_SECONDS = 0.5


def process_start(pid: int) -> str:
    """The process's start time (Linux: field 22 of /proc/PID/stat), empty where /proc is not there."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def process_alive(pid: int) -> bool:
    """Whether `pid` runs (a child of this process that exited is reaped)."""
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def clients_lock(root: Path) -> Iterator[None]:
    """Held while a process registers with the embedded Hub (and starts it), and while the Hub decides to stop."""
    Path(root).mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(Path(root) / "clients.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def register(root: Path) -> None:
    """Record this process as a user of the Hub under `root` until it exits (call holding `clients_lock`); at
    exit, the last user stops a `--while-used` Hub itself, so the command ends with nothing left running."""
    folder = Path(root) / "clients"
    folder.mkdir(exist_ok=True, mode=0o700)
    mine = folder / str(os.getpid())
    if not mine.exists():
        mine.write_text(process_start(os.getpid()))
        atexit.register(release, Path(root), mine)


def release(root: Path, mine: Path, timeout: float = 10.0) -> None:
    """Unregister `mine`; when no registered process is left and none asked the Hub to last, stop the Hub
    (only one started `--while-used`) and wait for it to exit."""
    import json
    import signal

    mine.unlink(missing_ok=True)
    with clients_lock(root):
        if not unused(root):
            return
        try:
            info = json.loads((root / "server.json").read_text())
            pid = int(info["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return
        if not info.get("while_used"):
            return
        (root / "server.json").unlink(missing_ok=True)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def unused(root: Path) -> bool:
    """Whether no registered process runs and none asked the Hub to last (call holding `clients_lock`)."""
    return not (root / LASTING).exists() and not live_clients(root)


def live_clients(root: Path) -> list[int]:
    """The registered processes that still run; the files of those that exited are removed."""
    alive = []
    folder = Path(root) / "clients"
    for f in folder.glob("*") if folder.is_dir() else []:
        try:
            pid, started = int(f.name), f.read_text().strip()
        except (OSError, ValueError):
            continue
        if process_alive(pid) and (not started or started == process_start(pid)):
            alive.append(pid)
        else:
            f.unlink(missing_ok=True)
    return alive


def stop_when_unused(root: Path, ready: Path, stop: Callable[[], None]) -> threading.Thread:
    """Start the watch of a `--while-used` Hub: once no registered process runs and no `LASTING` marker is
    there, `ready` (its `server.json`) is removed, under the lock, and `stop()` is called."""
    root = Path(root)

    def watch() -> None:
        while True:
            time.sleep(CHECK_SECONDS)
            with clients_lock(root):
                if unused(root):
                    ready.unlink(missing_ok=True)
                    break
        stop()

    thread = threading.Thread(target=watch, name="hubkit-hub-lifetime", daemon=True)
    thread.start()
    return thread
