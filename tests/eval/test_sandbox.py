"""The sandbox that runs generated code: hostile programs end as failed samples and harm nothing."""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path

import pytest

from hubkit.eval.sandbox import run_untrusted
from hubkit.eval.tasks import TASKS

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def test_a_correct_program_passes_and_a_wrong_one_fails():
    assert run_untrusted("def f(x):\n    return x + 1\nassert f(1) == 2\n").status == "passed"
    wrong = run_untrusted("assert 1 == 2, 'off by one'")
    assert wrong.status == "failed" and "off by one" in wrong.detail


def test_an_infinite_loop_times_out_without_hanging_the_evaluator():
    started = time.monotonic()
    assert run_untrusted("while True:\n    pass\n", timeout=1.5).status == "timeout"
    assert run_untrusted("import time\ntime.sleep(60)\n", timeout=1.5).status == "timeout"
    assert time.monotonic() - started < 15


def test_a_fork_bomb_fails_fast_and_leaves_no_process(tmp_path):
    before = _processes()
    outcome = run_untrusted("import os\nwhile True:\n    os.fork()\n", timeout=5)
    assert outcome.status == "failed"
    time.sleep(0.2)
    assert _processes() <= before + 1  # nothing the program started is still alive


def test_files_outside_the_working_directory_are_untouched(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    home_canary = Path.home() / ".hubkit-sandbox-canary"
    home_canary.write_text("keep me too")
    try:
        for program in (f"open({str(victim)!r}, 'w').write('gone')",
                        f"import os\nos.remove({str(victim)!r})",
                        f"import shutil\nshutil.rmtree({str(tmp_path)!r})",
                        "import os\nos.system('rm -rf ~')",
                        f"import os\nos.rename({str(victim)!r}, 'stolen.txt')"):
            assert run_untrusted(program).status == "failed", program
        # its own directory is writable, and it is HOME: `rm -rf ~` there would only empty it
        assert run_untrusted("import os\nopen('scratch.txt', 'w').write('ok')\n"
                             "assert os.path.expanduser('~') == os.getcwd()\n").status == "passed"
        assert victim.read_text() == "keep me" and home_canary.read_text() == "keep me too"
    finally:
        home_canary.unlink()


def test_network_attempts_fail(hub):
    port = int(hub.url.rsplit(":", 1)[1])
    for program in (f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n",
                    f"import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/api/whoami-v2')\n"):
        assert run_untrusted(program, timeout=5).status == "failed"


def test_crashes_and_memory_hogs_are_failed_samples():
    assert run_untrusted("import ctypes\nctypes.string_at(0)\n").status == "failed"
    assert run_untrusted("x = bytearray(8 << 30)\n", memory_mb=512).status == "failed"
    assert run_untrusted("raise SystemExit(3)").status == "failed"
    assert run_untrusted("print('x' * 10)\n" * 3).status == "passed"  # the evaluator still works


def _processes() -> int:
    return sum(1 for p in os.listdir("/proc") if p.isdigit())


def _jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.mark.parametrize("name", ["humaneval", "mbpp"])
@pytest.mark.slow
def test_canonical_solutions_pass_and_swapped_ones_fail(name):
    """Known answers: the benchmark's own solutions score 100 %, another problem's solutions 0 %."""
    task = TASKS[name]
    if name == "humaneval":
        docs = _jsonl(DATA / "humaneval" / "HumanEval.jsonl.gz")[:40]
        right = [task.program(d, d["canonical_solution"]) for d in docs]
        wrong = [task.program(d, o["canonical_solution"]) for d, o in zip(docs, docs[1:] + docs[:1])]
    else:
        docs = task.select(_jsonl(DATA / "mbpp" / "mbpp.jsonl"))[:40]
        right = [task.program(d, d["code"]) for d in docs]
        wrong = [task.program(d, o["code"]) for d, o in zip(docs, docs[1:] + docs[:1])]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        assert all(o.passed for o in pool.map(run_untrusted, right))
        assert not any(o.passed for o in pool.map(run_untrusted, wrong))


root_only = pytest.mark.skipif(os.geteuid() != 0, reason="isolation needs root (CI runs as root)")


@root_only
def test_the_program_sees_no_file_but_the_standard_library_and_its_own_directory(tmp_path, hub):
    secret = tmp_path / "hub-token"
    secret.write_text("hf_secret_value")
    home_secret = Path.home() / ".hubkit-sandbox-secret"
    home_secret.write_text("hf_secret_value")
    storage = Path(hub.root) if hasattr(hub, "root") else tmp_path
    program = f"""
import os, sys, json, decimal, statistics
assert not {{'etc', 'proc', 'home', 'work', 'var', 'sys'}} & set(os.listdir('/')), os.listdir('/')
for path in ({str(secret)!r}, {str(storage)!r}, '/etc/passwd', '/proc/self/environ', {str(home_secret)!r},
             {os.path.expanduser('~/.cache')!r}):
    assert not os.path.exists(path), path
bindir = os.path.dirname(os.path.realpath(sys.executable))
assert {{f for f in os.listdir(bindir) if not f.startswith('python')}} == set(), os.listdir(bindir)  # no scripts
stdlib = os.path.dirname(os.path.dirname(json.__file__))
assert not os.path.exists(stdlib + '/site-packages')  # installed packages are out of view
try:
    import numpy
    raise AssertionError('numpy importable')
except ImportError:
    pass
open('mine.txt', 'w').write('ok')
"""
    try:
        outcome = run_untrusted(program)
        assert outcome.status == "passed", outcome.detail
        leak = run_untrusted(f"import sys\nprint(open({str(secret)!r}).read(), file=sys.stderr)\n")
        assert leak.status == "failed" and "hf_secret_value" not in leak.detail and "No such file" in leak.detail
    finally:
        home_secret.unlink()


@root_only
def test_tampering_with_the_guard_does_not_switch_it_off(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    attempts = [
        # the runner's names are not in __main__, and ctypes is not importable or cached
        "import __main__, sys\n"
        "assert not [n for n in vars(__main__) if n not in ('__name__', '__doc__', '__package__', '__loader__',"
        " '__spec__', '__annotations__', '__builtins__', '__main__', 'sys')], vars(__main__).keys()\n"
        "assert 'ctypes' not in sys.modules and '_ctypes' not in sys.modules\n"
        "try:\n    import ctypes\nexcept PermissionError:\n    pass\nelse:\n    raise AssertionError('ctypes')\n",
        # the garbage collector would hand out the hook and its closure
        "import gc\ntry:\n    gc.get_objects()\nexcept PermissionError:\n    pass\nelse:\n    raise AssertionError('gc')\n",
        # a refused event's traceback would reach the hook's frame: frames are out of reach
        "import sys\ntry:\n    open('/tmp/x', 'w')\nexcept PermissionError as e:\n    tb = e.__traceback__\n"
        "    while tb.tb_next:\n        tb = tb.tb_next\n    try:\n        tb.tb_frame\n    except PermissionError:\n"
        "        pass\n    else:\n        raise AssertionError('frame')\n"
        "try:\n    open('/tmp/x', 'w')\nexcept (PermissionError, OSError):\n    pass\nelse:\n"
        "    raise AssertionError('guard off')\n",
    ]
    for program in attempts:
        outcome = run_untrusted(program)
        assert outcome.status == "passed", (program, outcome.detail)
    # whatever the guard, the view is read-only outside the working directory and holds no victim
    outcome = run_untrusted(f"open({str(victim)!r}, 'w').write('gone')")
    assert outcome.status == "failed" and victim.read_text() == "keep me"


def test_what_a_program_prints_is_capped_and_printable():
    outcome = run_untrusted("import sys\nsys.stderr.write('\\x1b[31m' + 'x' * 10_000)\nsys.exit(1)\n")
    assert outcome.status == "failed" and len(outcome.detail) <= 200 and "\x1b" not in outcome.detail


def test_code_benchmarks_refuse_to_run_unisolated_unless_the_user_opts_in(monkeypatch):
    from hubkit.errors import HubkitError
    from hubkit.eval import sandbox
    from hubkit.eval.harness import evaluate_model

    monkeypatch.setattr(sandbox, "isolation_available", lambda: False)
    monkeypatch.delenv(sandbox.UNISOLATED_ENV, raising=False)
    with pytest.raises(HubkitError, match="cannot be isolated here.*--allow-unisolated-code"):
        evaluate_model("no/such-model", suite="humaneval", progress=False)  # refused before any model loads
    assert sandbox.require_isolation(allow_unisolated=True) is False
    monkeypatch.setenv(sandbox.UNISOLATED_ENV, "1")
    assert sandbox.require_isolation() is False


# What a wrong solution does to pass anyway (each one ends before, or around, the failing assert).
EXIT_TRICKS = {
    "os._exit before the tests": "import os\nos._exit(0)\nassert False, 'never reached'\n",
    "sys.exit before the tests": "import sys\nsys.exit(0)\nassert False\n",
    "SystemExit(None)": "raise SystemExit\nassert False\n",
    "atexit after a failing assert": "import atexit, os\natexit.register(lambda: os._exit(0))\nassert False\n",
    "a replaced excepthook": "import sys\nsys.excepthook = lambda *a: None\nassert False\n",
    "os._exit inside the candidate": "def f(x):\n    import os\n    os._exit(0)\nassert f(1) == 2\n",
    "a thread exits the process": "import os, threading\nthreading.Thread(target=lambda: os._exit(0)).start()\n"
                                  "import time\ntime.sleep(1)\nassert False\n",
    "guessed reports on every descriptor": "import os\nfor fd in range(64):\n    try:\n"
                                           "        os.write(fd, b'0' * 32)\n    except OSError:\n        pass\n"
                                           "os._exit(0)\n",
    # the runner holds the secret in a frame: every way to one is refused
    "sys._getframe": "import sys\nf = sys._getframe()\nwhile f.f_back:\n    f = f.f_back\nprint(f.f_locals)\nassert False\n",
    "a traceback's frame": "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    e.__traceback__.tb_frame.f_back.f_locals\n",
    "a generator's frame": "def g():\n    yield 1\nx = g()\nnext(x)\nx.gi_frame.f_back\n",
    "a signal handler's frame": "import signal\nsignal.signal(signal.SIGALRM, lambda s, f: f.f_back)\n"
                                "signal.alarm(1)\nimport time\ntime.sleep(2)\n",
    "the process's memory": "data = open('/proc/self/mem', 'rb')\n",
    "a settrace hook": "import sys\nsys.settrace(lambda *a: None)\n",
}


@pytest.mark.parametrize("isolate", [True, False], ids=["isolated", "guard-only"])
@pytest.mark.parametrize("trick", sorted(EXIT_TRICKS))
def test_exiting_early_or_stealing_the_report_never_passes(trick, isolate):
    from hubkit.eval import sandbox

    if isolate and os.geteuid() != 0:
        pytest.skip("isolation needs root (CI runs as root)")
    outcome = sandbox._run(EXIT_TRICKS[trick], 10.0, 512, 16, isolate=isolate)
    assert outcome.status == "failed", (trick, outcome)
    honest = sandbox._run("import collections, typing, enum\nP = collections.namedtuple('P', 'x y')\n"
                          "T = typing.TypeVar('T')\nE = enum.Enum('E', 'a b')\nassert P(1, 2).y == 2\n",
                          10.0, 512, 16, isolate=isolate)
    assert honest.status == "passed", honest.detail  # the stdlib's own frame lookups still work


def test_an_early_exit_is_reported_as_such():
    outcome = run_untrusted("import os\nos._exit(0)\n")
    assert outcome.status == "failed" and "ended before its tests did" in outcome.detail


@root_only
def test_the_jail_holds_the_standard_library_and_nothing_to_call_c_with(tmp_path):
    program = """
import glob, json, os, sys
assert set(os.listdir('/')) <= {'dev', 'lib', 'lib64', 'root', 'tmp', 'usr', 'bin', 'sbin'}, os.listdir('/')
found = [p for p in glob.glob('/**/*', recursive=True) if 'ctypes' in p or 'site-packages' in p or '_posixsubprocess' in p]
assert not found, found
assert sorted(os.listdir('/dev')) == ['null', 'urandom'], os.listdir('/dev')
open('/dev/null', 'w').write('gone')
assert open('/dev/null').read() == ''
assert len(open('/dev/urandom', 'rb').read(8)) == 8
libs = os.listdir('/usr/lib/x86_64-linux-gnu') if os.path.isdir('/usr/lib/x86_64-linux-gnu') else []
assert len(libs) < 100 and 'python3' not in os.listdir('/usr/lib'), libs
import sqlite3, decimal, zlib, hashlib, unicodedata, datetime  # extension modules still load
"""
    outcome = run_untrusted(program)
    assert outcome.status == "passed", outcome.detail


@root_only
def test_the_working_directory_is_a_small_tmpfs_not_the_hosts_disk():
    import shutil as _shutil

    free_before = _shutil.disk_usage(tempfile_dir()).free
    outcome = run_untrusted("for i in range(40):\n    open(f'f{i}', 'wb').write(b'x' * (8 << 20))\n", disk_mb=32)
    assert outcome.status == "failed" and "No space left" in outcome.detail
    assert _shutil.disk_usage(tempfile_dir()).free > free_before - (64 << 20)  # nothing landed on the host
    fits = run_untrusted("open('a', 'wb').write(b'x' * (8 << 20))\nimport os\nassert os.path.getsize('a') == 8 << 20\n")
    assert fits.status == "passed", fits.detail


def tempfile_dir() -> str:
    import tempfile

    return tempfile.gettempdir()
