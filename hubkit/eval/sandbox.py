"""Run untrusted generated code (HumanEval, MBPP) so that nothing it does can hang, damage, leak or fake anything.

Each program runs in a fresh interpreter (`python -I -S`: no site-packages, no environment) in a throw-away
working directory that is also its `HOME` and `TMPDIR`, with limits on CPU time, address space, file size, open
files and processes, and a wall-clock timeout after which its whole session is killed. What it prints to stderr
becomes the sample's `detail` (its last line, at most 200 printable characters).

**Scoring that exiting cannot fake.** A sample passes only when the program's body, the tests included (they
come last), ran to its end without an exception. The evaluator hands the runner a per-sample secret through a
pipe; the runner holds it in a frame the program cannot reach and writes it to a report pipe only after the
body returned. `os._exit(0)`, `sys.exit(0)`, an `atexit` hook, a replaced `sys.excepthook`, output on any file
descriptor: none of them produce the secret, so none of them pass. (A value whose `==` is always true still
passes, as in the reference harnesses: the tests, not the sandbox, decide what counts as correct.)

**Isolation** (the containment that matters) needs root, as in containers and CI. A trusted setup stage builds
the jail and then `exec`s a fresh interpreter inside it, so nothing of the setup (its `ctypes` handle, its
classes) exists in the process the program runs in. The program gets:

- a mount namespace whose root is an empty, read-only tmpfs holding only: the standard library (without
  `site-packages`, `ctypes`, `test`, `idlelib`, `tkinter`, `turtledemo` and `ensurepip`), its extension
  modules (without `_ctypes`, `_posixsubprocess`, `_multiprocessing`, `_posixshmem`, the `_test*` and `xx*`
  modules), the interpreter and exactly the shared libraries those need (found by a probe interpreter once per
  process), `/dev/null` and `/dev/urandom` (both usable), and its working directory;
- a working directory that is a tmpfs of its own, `disk_mb` in size (64 MB by default), so a program cannot
  fill the host's disk; the host folder of the same name stays empty;
- a network namespace of its own (no interface but a down loopback);
- an unprivileged user id of its own; after it ends every process left with that id is killed, so not even
  a double-forked, session-leaving child survives.

Hub storage, `HUBKIT_HOME`, caches, tokens, `/etc`, `/proc`, `/usr/lib` and every other file do not exist for
it, so nothing it could read there can end up in a published `samples_*.jsonl`.

Without root none of that is available: the program runs as the evaluating user in a host temporary folder
(no quota beyond the 16 MB per-file limit), able to read what that user can read (tokens, caches, other repos)
and to reach the network; only the rlimits, the timeout and the guard stand in its way, and the guard (below)
is a tripwire, not a wall. Code benchmarks therefore refuse to run without isolation unless the user opts in
(`hubkit eval --allow-unisolated-code` or `HUBKIT_ALLOW_UNISOLATED_CODE=1`).

**The guard**, in both modes, is an audit hook installed before the program starts. It refuses process
creation, sockets, signals, `ctypes` and `_ctypes` (by module name, however they are loaded), writes outside the
working directory (but `/dev/null`), anything under `/proc`, and every way to a frame object
(`sys._getframe`, `tb_frame`, `gi_frame`, `cr_frame`, `ag_frame`, `sys._current_frames`, tracing and profiling),
which is what keeps the secret out of reach. Its settings are immutable values closed over by the hook; nothing
of the trusted runner is left in `__main__` or `sys.modules`. A refusal is a `PermissionError` that is also a
`ValueError`, so the standard library's own fallbacks (`namedtuple`, `TypeVar` and `Enum` naming their module)
still work.

Example:
    >>> run_untrusted("assert 1 + 1 == 2").status
    'passed'
    >>> run_untrusted("import os\\nos._exit(0)\\nassert False").status
    'failed'
    >>> run_untrusted("while True: pass", timeout=1).status
    'timeout'
"""

# size: one security boundary (namespaces, seccomp, limits, the jail's file view) reviewed as one file; its child's
# setup code is a string run inside the jail and must stay beside the code that builds the jail.

from __future__ import annotations

import functools
import json
import os
import secrets
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
SETUP_FAILED = 97  # the setup stage's exit code when the namespaces cannot be built
DETAIL_CHARS = 200
#: Standard-library folders the jail leaves out.
HIDDEN_STDLIB = ("site-packages", "dist-packages", "ctypes", "test", "idlelib", "tkinter", "turtledemo", "ensurepip",
                 "lib-dynload")
#: Extension modules (by name prefix) the jail leaves out: foreign calls, process spawning, test helpers.
HIDDEN_EXTENSIONS = ("_ctypes", "_posixsubprocess", "_multiprocessing", "_posixshmem", "_test", "_xx", "xx",
                     "_tkinter", "readline", "_curses")

# The trusted setup stage (isolated mode only): it runs as root, builds the namespaces and the jail, drops to
# the sandbox user and `exec`s the runner inside the jail. `exec` replaces the whole process image, so the runner
# starts without any of this stage's objects (its ctypes classes included).
_SETUP = r'''
import ctypes, json, os, sys
spec = json.loads(sys.argv[1])
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
    new, uid = spec["root"], spec["uid"]
    mount("tmpfs", new, "tmpfs", NOSUID | NODEV, "size=1m,mode=755")
    def bind(path, device=False):
        target = new + path
        if os.path.isdir(path):
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "a").close()
        mount(path, target, None, BIND | REC)
        mount(None, target, None, BIND | REMOUNT | RDONLY | NOSUID | (0 if device else NODEV))
    for path in spec["paths"]:
        bind(path)
    for path in ("/dev/null", "/dev/urandom"):
        bind(path, device=True)
    for link, target in spec["links"]:
        os.makedirs(os.path.dirname(new + link), exist_ok=True)
        os.symlink(target, new + link)
    work = new + spec["work"]
    os.makedirs(work)
    mount("tmpfs", work, "tmpfs", NOSUID | NODEV, f"size={spec['disk']},mode=700,uid={uid},gid={uid}")
    mount(None, new, None, REMOUNT | RDONLY | NOSUID | NODEV)
    os.chroot(new)
    os.chdir(spec["work"])
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
except OSError as e:
    print(f"sandbox setup: {e}", file=sys.stderr)
    os._exit(97)
os.execve(spec["python"], spec["argv"], spec["env"])
'''

# The runner, in the process the program runs in. Everything lives inside `_sandbox()`, which also runs the
# program: the secret is one of its locals, in a frame no code of the program can reach (the guard refuses every
# way to a frame object), and the module namespace the program shares (`__main__`) holds nothing of it.
_RUNNER = r'''
def _sandbox(argv, ns):
    import os, resource, sys
    cpu, memory, fsize = int(argv[1]), int(argv[2]), int(argv[3])
    program_fd, secret_fd, ready, report = int(argv[4]), int(argv[5]), int(argv[6]), int(argv[7])
    with os.fdopen(program_fd, "rb") as f:
        source = f.read().decode("utf-8", "replace")
    secret = os.read(secret_fd, 64)
    os.close(secret_fd)
    # Modules solutions commonly use, imported while nothing is refused yet.
    for name in ("math", "cmath", "re", "collections", "collections.abc", "itertools", "functools", "heapq",
                 "bisect", "string", "typing", "random", "statistics", "fractions", "decimal", "operator", "copy",
                 "json", "datetime", "time", "calendar", "hashlib", "array", "unicodedata", "textwrap", "numbers",
                 "enum", "dataclasses", "struct", "binascii", "base64", "io", "linecache", "tokenize", "locale"):
        try:
            __import__(name)
        except ImportError:
            pass
    for name in ("signal", "_signal", "ctypes", "_ctypes"):  # a signal handler is handed the current frame
        sys.modules.pop(name, None)
    for what, value in ((resource.RLIMIT_CPU, cpu), (resource.RLIMIT_AS, memory), (resource.RLIMIT_FSIZE, fsize),
                        (resource.RLIMIT_NOFILE, 64), (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NPROC, 32)):
        try:
            resource.setrlimit(what, (value, value))
        except (ValueError, OSError):
            pass
    root = os.path.realpath(os.getcwd())
    realpath, fsdecode, sep = os.path.realpath, os.fsdecode, os.sep
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    paths = {"os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.chmod": (0,), "os.chown": (0,),
             "os.rename": (0, 1), "os.link": (0, 1), "os.symlink": (1,), "os.truncate": (0,), "os.utime": (0,),
             "shutil.rmtree": (0,), "os.listdir": (0,), "os.scandir": (0,)}
    denied = frozenset(("subprocess.Popen", "os.system", "os.posix_spawn", "os.fork", "os.forkpty", "pty.spawn",
                        "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
                        "ctypes.dlopen", "os.kill", "os.killpg", "signal.pthread_kill", "sys.addaudithook",
                        "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames",
                        "sys._current_exceptions", "sys._getframe", "sys.setprofile", "sys.settrace", "os.chroot",
                        "os.setuid", "os.setgid"))
    frames = frozenset(("tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"))
    banned = frozenset(("_posixsubprocess", "_ctypes", "ctypes", "multiprocessing", "_multiprocessing",
                        "_xxsubinterpreters", "signal", "_signal", "_testcapi", "_testinternalcapi"))
    paths = tuple(paths.items())
    class Refused(PermissionError, ValueError):
        """What the guard raises: a PermissionError that the standard library's ValueError fallbacks also catch."""
    def inside(path, write):
        if isinstance(path, int):
            return True
        try:
            path = realpath(fsdecode(path))
        except (TypeError, ValueError):
            return False
        if path == "/proc" or path.startswith("/proc/"):
            return False
        if not write:
            return True
        return path == root or path.startswith(root + sep) or path == "/dev/null"
    def guard(event, args):
        if event == "import" and args and str(args[0]).rpartition(".")[2] in banned:
            raise Refused(f"sandbox: importing {args[0]} is not allowed")
        if event == "object.__getattr__" and len(args) > 1 and args[1] in frames:
            raise Refused(f"sandbox: {args[1]} is not allowed")
        if event in denied or event.startswith("os.exec") or event.startswith("os.spawn"):
            raise Refused(f"sandbox: {event} is not allowed")
        if event == "open" and args and args[0] is not None and not isinstance(args[0], int):
            mode, flags = args[1] or "r", args[2] or 0
            write = any(c in str(mode) for c in "wax+") or bool(flags & writes)
            if not inside(args[0], write):
                raise Refused(f"sandbox: {'writing' if write else 'reading'} {args[0]!r} is not allowed")
        else:
            for name, where in paths:
                if event == name:
                    for i in where:
                        if i < len(args) and not inside(args[i], not name.startswith(("os.listdir", "os.scandir"))):
                            raise Refused(f"sandbox: {event} outside the working directory")
    write, exit_, flush = os.write, os._exit, sys.stderr.flush
    try:
        code = compile(source, "program.py", "exec")
    except BaseException as e:
        code, failure = None, e
    os.write(ready, b"1")  # the sandbox is up: what fails after this is the program's doing
    os.close(ready)
    del ns["_sandbox"], source
    sys.argv = sys.orig_argv = ["program.py"]
    sys.addaudithook(guard)
    if code is not None:
        try:
            exec(code, ns)
            failure = None
        except BaseException as e:
            failure = e
    if failure is None:
        try:
            write(report, secret)
        finally:
            exit_(0)
    try:
        flush()
    except BaseException:
        pass
    try:
        name, text = type(failure).__name__, str(failure)
        line = f"{name}: {text}" if text else name
    except BaseException:
        line = "the program raised an exception"
    write(2, ("\n" + line.replace("\n", " ") + "\n").encode("utf-8", "replace"))
    exit_(1)


_sandbox(__import__("sys").argv, globals())
'''

# Run once per process (isolated mode): imports every extension module the jail offers and reports which
# imported and every file the process mapped, so the jail can hold exactly the shared libraries they need.
_PROBE = r'''
import importlib, json, sys
ok = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
        ok.append(name)
    except Exception:
        pass
maps = sorted({line.split(None, 5)[5].strip() for line in open("/proc/self/maps") if len(line.split(None, 5)) == 6})
print(json.dumps({"modules": ok, "maps": [m for m in maps if m.startswith("/")]}))
'''

Status = Literal["passed", "failed", "timeout", "unavailable"]


@dataclass(frozen=True)
class Outcome:
    """How an untrusted program ended: `passed` (its body ran to the end), `failed` (an exception, an early exit,
    a crash or a limit) or `timeout`."""

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


def _python() -> str:
    """The base interpreter (not a virtual environment's link to it): its own prefix holds the standard library."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _stdlib() -> str:
    return os.path.realpath(sysconfig.get_paths()["stdlib"])


def _symlink_chain(path: str, links: dict[str, str], real: set[str], depth: int = 0) -> None:
    """Record every symlink met on the way to `path` (and the real file it ends at), so the jail can resolve the
    same name: the loader asks for `/lib64/ld-linux-x86-64.so.2`, not for the file that name leads to."""
    parts = [p for p in path.split("/") if p]
    cur = "/"
    for i, part in enumerate(parts):
        nxt = os.path.join(cur, part)
        if os.path.islink(nxt) and depth < 16:
            target = os.readlink(nxt)
            links[nxt] = target
            _symlink_chain(os.path.normpath(os.path.join(cur, target, *parts[i + 1:])), links, real, depth + 1)
            return
        cur = nxt
    if os.path.exists(cur):
        real.add(cur)


@functools.lru_cache(maxsize=1)
def _jail() -> tuple[tuple[str, ...], tuple[tuple[str, str], ...], str]:
    """What the jail holds: the paths to bind read-only, the symlinks to recreate, and `LD_LIBRARY_PATH`.

    Raises:
        HubkitError: the probe interpreter could not run.
    """
    python, stdlib = _python(), _stdlib()
    dynload = os.path.join(stdlib, "lib-dynload")
    names = sorted({f.split(".", 1)[0] for f in (os.listdir(dynload) if os.path.isdir(dynload) else [])
                    if f.endswith(".so") and not f.startswith(HIDDEN_EXTENSIONS)})
    done = subprocess.run([python, "-I", "-S", "-c", _PROBE, *names], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    if done.returncode != 0:
        raise HubkitError(f"the code sandbox could not probe its interpreter: {done.stderr.strip()[-200:]}")
    facts = json.loads(done.stdout)
    paths: set[str] = set()
    links: dict[str, str] = {}
    for entry in sorted(os.listdir(stdlib)):
        if entry not in HIDDEN_STDLIB and not entry.startswith("config-"):
            paths.add(os.path.join(stdlib, entry))
    modules = set(facts["modules"])
    for f in os.listdir(dynload) if os.path.isdir(dynload) else []:
        if f.endswith(".so") and f.split(".", 1)[0] in modules:
            paths.add(os.path.join(dynload, f))
    libs: set[str] = set()
    for mapped in facts["maps"] + [python]:
        if mapped.startswith(stdlib + "/") or not os.path.isfile(mapped):
            continue  # the standard library's own files are bound above; "(deleted)" and memfd maps are not files
        _symlink_chain(mapped, links, libs)
    lib_dirs: set[str] = set()
    for lib in sorted(libs):  # every name that leads to a mapped library (the loader looks names up, not files)
        folder = os.path.dirname(lib)
        candidates = [folder, "/lib", "/lib64", "/usr/lib", "/usr/lib64", f"/lib/{sys.implementation._multiarch}",
                      f"/usr/lib/{sys.implementation._multiarch}"]
        for d in dict.fromkeys(candidates):
            try:
                entries = os.listdir(d)
            except OSError:
                continue
            for e in entries:
                p = os.path.join(d, e)
                if p != lib and os.path.islink(p) and os.path.realpath(p) == lib:
                    _symlink_chain(p, links, set())
                    if ".so" in e:
                        lib_dirs.add(d)
        if ".so" in os.path.basename(lib) and lib != python:
            lib_dirs.add(folder)
    paths |= libs
    return tuple(sorted(paths)), tuple(sorted(links.items())), ":".join(sorted(lib_dirs))


@functools.lru_cache(maxsize=1)
def isolation_available() -> bool:
    """Whether programs can run isolated here (root, and the kernel lets us build the namespaces)."""
    if os.geteuid() != 0:
        return False
    try:
        return _run("pass", 10.0, 256, 16, isolate=True).status != "unavailable"
    except HubkitError:  # the probe interpreter could not run: no jail can be built
        return False


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


def run_untrusted(program: str, timeout: float = 10.0, memory_mb: int = 1024, disk_mb: int = 64) -> Outcome:
    """Run a Python program in the sandbox and report how it ended.

    Isolated (see the module docstring) when the process runs as root, else contained only by rlimits,
    the timeout and the guard.

    Args:
        program: the complete source (solution, then tests); it passes only when its body runs to the end.
        timeout: wall-clock seconds before the program's whole session is killed (CPU time is capped too).
        memory_mb: address-space limit.
        disk_mb: size of the working directory's tmpfs (isolated mode; each file is also capped at 16 MB).

    Returns:
        An `Outcome`; the detail is the last line the program wrote to stderr (at most 200 printable
        characters).

    Raises:
        HubkitError: running as root, but the isolation could not be set up (never a silent failed sample).
    """
    outcome = _run(program, timeout, memory_mb, disk_mb, isolate=os.geteuid() == 0)
    if outcome.status == "unavailable":
        raise HubkitError("the code sandbox could not build its mount and network namespaces: "
                          f"{outcome.detail or 'no detail'}")
    return outcome


def _run(program: str, timeout: float, memory_mb: int, disk_mb: int, isolate: bool) -> Outcome:
    root = os.geteuid() == 0
    with _SLOTS:
        uid = _sandbox_uid() if root else os.getuid()
        work = Path(tempfile.mkdtemp(prefix="hubkit-sandbox-"))
        logs = Path(tempfile.mkdtemp(prefix="hubkit-sandbox-log-"))
        own: list[int] = []
        try:
            os.chmod(logs, 0o700)
            program_fd = os.memfd_create("program.py")
            os.write(program_fd, program.encode("utf-8", "replace"))
            os.lseek(program_fd, 0, os.SEEK_SET)
            secret = secrets.token_hex(16).encode()
            secret_r, secret_w = os.pipe()
            os.write(secret_w, secret)
            os.close(secret_w)
            ready_r, ready_w = os.pipe()
            report_r, report_w = os.pipe()
            own += [program_fd, secret_r, ready_r, ready_w, report_r, report_w]
            child_fds = (program_fd, secret_r, ready_w, report_w)
            runner = ["-I", "-S", "-B", "-c", _RUNNER, str(int(timeout) + 1), str(memory_mb << 20), str(16 << 20),
                      *map(str, child_fds)]
            env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work), "LANG": "C.UTF-8",
                   "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
            if isolate:
                paths, links, lib_path = _jail()
                jail_root = logs / "root"
                jail_root.mkdir(mode=0o755)
                spec = {"root": str(jail_root), "uid": uid, "paths": list(paths), "links": [list(x) for x in links],
                        "work": str(work), "disk": f"{disk_mb}m", "python": _python(),
                        "argv": [_python(), *runner], "env": {**env, "LD_LIBRARY_PATH": lib_path}}
                args = [sys.executable, "-I", "-S", "-B", "-c", _SETUP, json.dumps(spec)]
            else:
                args = [_python(), *runner]
            with open(logs / "stderr", "wb") as err:
                try:
                    proc = subprocess.Popen(args, cwd=work, env=env, stdin=subprocess.DEVNULL, pass_fds=child_fds,
                                            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
                finally:
                    for fd in child_fds:
                        os.close(fd)
                        own.remove(fd)
                try:
                    code = proc.wait(timeout=timeout)
                    status: Status = "failed"
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
            os.set_blocking(ready_r, False)
            os.set_blocking(report_r, False)
            started = _read(ready_r, 1) == b"1"
            if status != "timeout" and _read(report_r, 4096) == secret:
                status = "passed"
            detail = _last_line(logs / "stderr") if status != "passed" else ""
            if not started and code == SETUP_FAILED:
                return Outcome("unavailable", detail)
            if status == "failed" and code is not None and code < 0:
                detail = detail or f"killed by signal {-code}"
            if status == "failed" and not detail:
                detail = f"the program ended before its tests did (exit code {code})"
            if status == "timeout":
                detail = f"no result after {timeout:g} s"
            return Outcome(status, detail)
        finally:
            for fd in own:
                os.close(fd)
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(logs, ignore_errors=True)
            if root:
                with _uid_lock:
                    _free_uids.append(uid)


def _read(fd: int, n: int) -> bytes:
    try:
        return os.read(fd, n)
    except BlockingIOError:
        return b""


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
