"""Run untrusted generated code (HumanEval, MBPP) so that nothing it does can hang or damage the evaluator.

Each program runs in a fresh interpreter (`python -I`) in a throw-away directory that is also its `HOME`
and `TMPDIR`, with limits on CPU time, address space, file size, open files and processes, and a wall-clock
timeout after which its whole session is killed. Before the program starts, a guard (an audit hook)
refuses process creation, sockets, and writes, deletions or renames outside the directory.

When the evaluator runs as root (containers, CI), the program additionally gets a network namespace of
its own (no interface but a down loopback) and runs as an unprivileged user id of its own; after it ends,
every process left with that id is killed, so not even a double-forked, session-leaving child survives.

Example:
    >>> run_untrusted("assert 1 + 1 == 2").status
    'passed'
    >>> run_untrusted("while True: pass", timeout=1).status
    'timeout'
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# The trusted prelude that runs inside the child before the untrusted program.
_PRELUDE = r'''
import ctypes, os, resource, sys
workdir, uid, cpu, memory, program = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
limits = {resource.RLIMIT_CPU: cpu, resource.RLIMIT_AS: memory, resource.RLIMIT_FSIZE: 16 << 20,
          resource.RLIMIT_NOFILE: 64, resource.RLIMIT_CORE: 0, resource.RLIMIT_NPROC: 32}
# Modules solutions commonly use, imported while the interpreter can still read its own library (the
# unprivileged user id may not be able to, e.g. a Python installed under /root).
for name in ("math", "cmath", "re", "collections", "collections.abc", "itertools", "functools", "heapq", "bisect",
             "string", "typing", "random", "statistics", "fractions", "decimal", "operator", "copy", "json",
             "datetime", "time", "calendar", "hashlib", "array", "unicodedata", "textwrap", "numbers", "enum",
             "dataclasses", "struct", "binascii", "base64", "io", "traceback", "linecache", "tokenize", "locale"):
    try:
        __import__(name)
    except ImportError:
        pass
if os.geteuid() == 0:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
        sys.exit(97)
    os.chown(workdir, uid, uid)
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
for what, value in limits.items():
    try:
        resource.setrlimit(what, (value, value))
    except (ValueError, OSError):
        pass
os.chdir(workdir)
root = os.path.realpath(workdir)
def _inside(path):
    try:
        path = os.fsdecode(path) if not isinstance(path, int) else None
    except TypeError:
        return False
    return path is None or os.path.realpath(path) == root or os.path.realpath(path).startswith(root + os.sep)
_WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATHS = {"os.remove": 0, "os.rmdir": 0, "os.mkdir": 0, "os.chmod": 0, "os.chown": 0, "os.rename": (0, 1),
          "os.link": (0, 1), "os.symlink": (1,), "os.truncate": 0, "os.utime": 0, "shutil.rmtree": 0}
_DENIED = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
           "pty.spawn", "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
           "ctypes.dlopen", "os.kill", "os.killpg", "signal.pthread_kill", "sys.addaudithook")
def _guard(event, args):
    if event == "import" and args and args[0] in ("_posixsubprocess", "_ctypes", "ctypes", "multiprocessing"):
        raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
    if event in _DENIED or event.startswith("os.exec") or event.startswith("os.spawn"):
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "open" and args and args[0] is not None and not isinstance(args[0], int):
        mode, flags = args[1] or "r", args[2] or 0
        if (any(c in str(mode) for c in "wax+") or flags & _WRITES) and not _inside(args[0]):
            raise PermissionError(f"sandbox: writing {args[0]!r} outside the working directory")
    elif event in _PATHS:
        where = _PATHS[event]
        for i in (where if isinstance(where, tuple) else (where,)):
            if i < len(args) and not _inside(args[i]):
                raise PermissionError(f"sandbox: {event} outside the working directory")
with open(program, encoding="utf-8") as f:
    source = f.read()
code = compile(source, "program.py", "exec")
sys.addaudithook(_guard)
exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
'''

Status = Literal["passed", "failed", "timeout"]


@dataclass(frozen=True)
class Outcome:
    """How an untrusted program ended: `passed` (exit 0), `failed` (error, crash, limit) or `timeout`."""

    status: Status
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


_SLOTS = threading.Semaphore(64)
_uid_lock = threading.Lock()
_free_uids: list[int] = []


def _sandbox_uid() -> int:
    """A user id no one else uses, one per concurrently running program of this process."""
    with _uid_lock:
        if _free_uids:
            return _free_uids.pop()
        base = 200_000 + (os.getpid() % 50_000) * 64
        _sandbox_uid.count = getattr(_sandbox_uid, "count", 0) + 1  # type: ignore[attr-defined]
        return base + _sandbox_uid.count % 64  # type: ignore[attr-defined]


def _kill_uid(uid: int) -> None:
    """Kill every process running as `uid` (a forked helper takes the id and signals all it may: kill(-1))."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the helper
        try:
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def run_untrusted(program: str, timeout: float = 10.0, memory_mb: int = 1024) -> Outcome:
    """Run a Python program in the sandbox and report how it ended.

    Args:
        program: the complete source (solution and tests); a non-zero exit or an exception is a failure.
        timeout: wall-clock seconds before the program's whole session is killed (CPU time is capped too).
        memory_mb: address-space limit.

    Returns:
        An `Outcome`; the detail is the last line the program wrote to stderr (at most 200 characters).
    """
    root = os.geteuid() == 0
    with _SLOTS:
        uid = _sandbox_uid() if root else os.getuid()
        work = Path(tempfile.mkdtemp(prefix="hubkit-sandbox-"))
        logs = Path(tempfile.mkdtemp(prefix="hubkit-sandbox-log-"))
        try:
            (logs / "program.py").write_text(program, encoding="utf-8")
            os.chmod(logs, 0o755)
            env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work), "LANG": "C.UTF-8",
                   "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
            args = [sys.executable, "-I", "-B", "-c", _PRELUDE, str(work), str(uid), str(int(timeout) + 1),
                    str(memory_mb << 20), str(logs / "program.py")]
            with open(logs / "stderr", "wb") as err:
                proc = subprocess.Popen(args, cwd=work, env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
                try:
                    code = proc.wait(timeout=timeout)
                    status: Status = "passed" if code == 0 else "failed"
                except subprocess.TimeoutExpired:
                    status, code = "timeout", None
                finally:
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                    if root:
                        _kill_uid(uid)
                    proc.wait()
            detail = _last_line(logs / "stderr")
            if status == "failed" and code is not None and code < 0:
                detail = detail or f"killed by signal {-code}"
            if status == "timeout":
                detail = f"no result after {timeout:g} s"
            return Outcome(status, detail)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(logs, ignore_errors=True)
            if root:
                with _uid_lock:
                    _free_uids.append(uid)


def _last_line(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - 4096))
            tail = f.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return tail[-1][:200] if tail else ""
