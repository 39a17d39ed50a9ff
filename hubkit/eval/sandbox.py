"""Run untrusted generated code (HumanEval, MBPP) so that nothing it does can hang, damage or leak anything.

Each program runs in a fresh interpreter (`python -I`) in a throw-away directory that is also its `HOME`
and `TMPDIR`, with limits on CPU time, address space, file size, open files and processes, and a wall-clock
timeout after which its whole session is killed. What it prints to stderr becomes the sample's `detail`
(its last line, at most 200 printable characters).

**Isolation** (the containment that matters) needs root, as in containers and CI. The program then gets:

- a mount namespace whose root is an empty, read-only view holding only the Python standard library
  (without `site-packages`), the system's shared libraries, `/dev/null`, `/dev/urandom` and its own working
  directory: hub storage, `HUBKIT_HOME`, caches, tokens, `/etc`, `/proc` and every other file do not exist
  for it, so nothing it could read there can end up in a published `samples_*.jsonl`;
- a network namespace of its own (no interface but a down loopback);
- an unprivileged user id of its own; after it ends every process left with that id is killed, so not even
  a double-forked, session-leaving child survives.

Without root none of that is available: the program would run as the evaluating user, able to read what
that user can read (tokens, caches, other repos) and to reach the network; only the rlimits, the timeout and
an audit-hook guard stand in its way, and the guard (below) is a tripwire, not a wall. Code benchmarks
therefore refuse to run without isolation unless the user opts in (`hubkit eval --allow-unisolated-code`
or `HUBKIT_ALLOW_UNISOLATED_CODE=1`).

**The guard**, in both modes, is an audit hook installed before the program starts that refuses process
creation, sockets, `ctypes`, writes outside the working directory and the introspection that could reach the
hook itself (`gc.get_objects`/`get_referrers`, `sys._current_frames`). Its settings are immutable values
closed over by the hook; nothing of the trusted prelude is left in `__main__` or `sys.modules` (the
`ctypes` handle used to build the namespaces is dropped before the program runs).

Example:
    >>> run_untrusted("assert 1 + 1 == 2").status
    'passed'
    >>> run_untrusted("while True: pass", timeout=1).status
    'timeout'
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import HubkitError

UNISOLATED_ENV = "HUBKIT_ALLOW_UNISOLATED_CODE"
SETUP_FAILED = 97  # the prelude's exit code when the namespaces cannot be built
DETAIL_CHARS = 200

# The trusted prelude that runs inside the child before the untrusted program. Everything lives inside
# `_sandbox()`: when it returns, the module namespace the program shares (`__main__`) holds nothing of it.
_PRELUDE = r'''
def _sandbox(argv):
    import os, resource, sys
    workdir, uid, cpu, memory, program = argv[1], int(argv[2]), int(argv[3]), int(argv[4]), argv[5]
    isolate, stdlib, sitedir, ready = argv[6] == "1", argv[7], argv[8], int(argv[9])
    with open(program, encoding="utf-8") as f:
        source = f.read()
    # Modules solutions commonly use, imported while the interpreter can still read its whole library.
    for name in ("math", "cmath", "re", "collections", "collections.abc", "itertools", "functools", "heapq",
                 "bisect", "string", "typing", "random", "statistics", "fractions", "decimal", "operator", "copy",
                 "json", "datetime", "time", "calendar", "hashlib", "array", "unicodedata", "textwrap", "numbers",
                 "enum", "dataclasses", "struct", "binascii", "base64", "io", "traceback", "linecache", "tokenize",
                 "locale"):
        try:
            __import__(name)
        except ImportError:
            pass
    if isolate:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        def mount(src, dst, fstype, flags, data=None):
            enc = lambda x: None if x is None else x.encode()
            if libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)) != 0:
                raise OSError(ctypes.get_errno(), f"mount {dst}")
        RDONLY, NOSUID, NODEV, BIND, REC, PRIVATE, REMOUNT = 1, 2, 4, 4096, 16384, 1 << 18, 32
        try:
            if libc.unshare(0x00020000 | 0x40000000) != 0:  # CLONE_NEWNS | CLONE_NEWNET
                raise OSError(ctypes.get_errno(), "unshare")
            mount(None, "/", None, REC | PRIVATE)
            new = os.path.dirname(program) + "/root"
            os.mkdir(new, 0o755)
            mount("tmpfs", new, "tmpfs", NOSUID | NODEV, "size=64k,mode=755")
            def bind(path, writable=False):
                target = new + path
                if os.path.islink(path):
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    os.symlink(os.readlink(path), target)
                    return
                if os.path.isdir(path):
                    os.makedirs(target, exist_ok=True)
                else:
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    open(target, "a").close()
                mount(path, target, None, BIND | REC)
                if not writable:
                    mount(None, target, None, BIND | REMOUNT | RDONLY | NOSUID | NODEV)
            for path in ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/lib32", stdlib, "/dev/null", "/dev/urandom"):
                if os.path.lexists(path):
                    bind(path)
            if sitedir.startswith(stdlib + "/") and os.path.isdir(sitedir):  # installed packages stay out of view
                mount("tmpfs", new + sitedir, "tmpfs", NOSUID | NODEV | RDONLY, "size=4k,mode=755")
            bind(workdir, writable=True)
            os.chown(workdir, uid, uid)
            os.chroot(new)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        except OSError as e:
            print(f"sandbox setup: {e}", file=sys.stderr)
            os._exit(97)
        del libc, mount, bind, ctypes
        for name in [m for m in sys.modules if m in ("ctypes", "_ctypes") or m.startswith("ctypes.")]:
            del sys.modules[name]
    for what, value in ((resource.RLIMIT_CPU, cpu), (resource.RLIMIT_AS, memory), (resource.RLIMIT_FSIZE, 16 << 20),
                        (resource.RLIMIT_NOFILE, 64), (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NPROC, 32)):
        try:
            resource.setrlimit(what, (value, value))
        except (ValueError, OSError):
            pass
    os.chdir(workdir)
    root = os.path.realpath(workdir)
    realpath, fsdecode, sep = os.path.realpath, os.fsdecode, os.sep
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    paths = {"os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.chmod": (0,), "os.chown": (0,),
             "os.rename": (0, 1), "os.link": (0, 1), "os.symlink": (1,), "os.truncate": (0,), "os.utime": (0,),
             "shutil.rmtree": (0,)}
    denied = frozenset(("subprocess.Popen", "os.system", "os.posix_spawn", "os.fork", "os.forkpty", "pty.spawn",
                        "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
                        "ctypes.dlopen", "os.kill", "os.killpg", "signal.pthread_kill", "sys.addaudithook",
                        "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames",
                        "sys.setprofile", "sys.settrace", "os.chroot", "os.setuid", "os.setgid"))
    banned_imports = frozenset(("_posixsubprocess", "_ctypes", "ctypes", "multiprocessing", "_xxsubinterpreters"))
    paths = tuple(paths.items())
    def inside(path):
        if isinstance(path, int):
            return True
        try:
            path = realpath(fsdecode(path))
        except (TypeError, ValueError):
            return False
        return path == root or path.startswith(root + sep)
    def guard(event, args):
        if event == "import" and args and args[0] in banned_imports:
            raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
        if event in denied or event.startswith("os.exec") or event.startswith("os.spawn"):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "open" and args and args[0] is not None and not isinstance(args[0], int):
            mode, flags = args[1] or "r", args[2] or 0
            if (any(c in str(mode) for c in "wax+") or flags & writes) and not inside(args[0]):
                raise PermissionError(f"sandbox: writing {args[0]!r} outside the working directory")
        else:
            for name, where in paths:
                if event == name:
                    for i in where:
                        if i < len(args) and not inside(args[i]):
                            raise PermissionError(f"sandbox: {event} outside the working directory")
    code = compile(source, "program.py", "exec")
    os.write(ready, b"1")  # tells the evaluator the sandbox is up; what fails after this is the program's doing
    os.close(ready)
    sys.addaudithook(guard)
    return code


_code = _sandbox(__import__("sys").argv)
del _sandbox
__import__("sys").argv = __import__("sys").orig_argv = ["program.py"]
exec(_code, globals())
'''

Status = Literal["passed", "failed", "timeout", "unavailable"]


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


def _view_paths() -> tuple[str, str]:
    """(the standard library's folder, the site-packages folder to hide inside it)."""
    paths = sysconfig.get_paths()
    return os.path.realpath(paths["stdlib"]), os.path.realpath(paths["purelib"])


@functools.lru_cache(maxsize=1)
def isolation_available() -> bool:
    """Whether programs can run isolated here (root, and the kernel lets us build the namespaces)."""
    if os.geteuid() != 0:
        return False
    return _run("pass", 10.0, 256, isolate=True).status != "unavailable"


def require_isolation(allow_unisolated: bool = False) -> bool:
    """Check that generated code can be contained before a code benchmark starts; returns whether it is isolated.

    Raises:
        HubkitError: no isolation here and the user did not opt in (`allow_unisolated`, or the
            `HUBKIT_ALLOW_UNISOLATED_CODE=1` environment variable).
    """
    if isolation_available():
        return True
    if allow_unisolated or os.environ.get(UNISOLATED_ENV) == "1":
        return False
    why = "not running as root" if os.geteuid() != 0 else "the kernel refused the mount and network namespaces"
    raise HubkitError(f"code benchmarks run generated programs, and they cannot be isolated here ({why}): run as "
                      f"root (a container), or accept that programs can read your files and reach the network "
                      f"with --allow-unisolated-code or {UNISOLATED_ENV}=1")


def run_untrusted(program: str, timeout: float = 10.0, memory_mb: int = 1024) -> Outcome:
    """Run a Python program in the sandbox and report how it ended.

    Isolated (see the module docstring) when the process runs as root, else contained only by rlimits,
    the timeout and the guard.

    Args:
        program: the complete source (solution and tests); a non-zero exit or an exception is a failure.
        timeout: wall-clock seconds before the program's whole session is killed (CPU time is capped too).
        memory_mb: address-space limit.

    Returns:
        An `Outcome`; the detail is the last line the program wrote to stderr (at most 200 printable
        characters).

    Raises:
        HubkitError: running as root, but the isolation could not be set up (never a silent failed sample).
    """
    outcome = _run(program, timeout, memory_mb, isolate=os.geteuid() == 0)
    if outcome.status == "unavailable":
        raise HubkitError("the code sandbox could not build its mount and network namespaces: "
                          f"{outcome.detail or 'no detail'}")
    return outcome


def _run(program: str, timeout: float, memory_mb: int, isolate: bool) -> Outcome:
    root = os.geteuid() == 0
    with _SLOTS:
        uid = _sandbox_uid() if root else os.getuid()
        work = Path(tempfile.mkdtemp(prefix="hubkit-sandbox-"))
        logs = Path(tempfile.mkdtemp(prefix="hubkit-sandbox-log-"))
        try:
            (logs / "program.py").write_text(program, encoding="utf-8")
            os.chmod(logs, 0o700)
            stdlib, sitedir = _view_paths()
            env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work), "LANG": "C.UTF-8",
                   "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
            ready_r, ready_w = os.pipe()
            args = [sys.executable, "-I", "-B", "-c", _PRELUDE, str(work), str(uid), str(int(timeout) + 1),
                    str(memory_mb << 20), str(logs / "program.py"), "1" if isolate else "0", stdlib, sitedir,
                    str(ready_w)]
            with open(logs / "stderr", "wb") as err:
                try:
                    proc = subprocess.Popen(args, cwd=work, env=env, stdin=subprocess.DEVNULL, pass_fds=(ready_w,),
                                            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
                finally:
                    os.close(ready_w)
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
            with os.fdopen(ready_r, "rb") as ready:
                started = ready.read(1) == b"1"
            detail = _last_line(logs / "stderr")
            if not started and code == SETUP_FAILED:
                return Outcome("unavailable", detail)  # type: ignore[arg-type]
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
    if not tail:
        return ""
    return "".join(c if c.isprintable() else "?" for c in tail[-1])[:DETAIL_CHARS]
