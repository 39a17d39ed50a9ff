"""The embedded Hub only when needed: commands on local paths start none, a command that starts one leaves
nothing running when it exits (even killed), `hubkit hub start` keeps one up until `hubkit hub stop`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hubkit.hub.client import embedded_url, running_hub

USES_THE_HUB = """
import sys, time
from hubkit.hub import get_api
print(get_api().whoami()["name"], flush=True)
time.sleep(float(sys.argv[1]))
"""


@pytest.fixture
def fresh(tmp_path):
    """No endpoint, no token: a fresh hubkit home where the embedded Hub would live."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_ENDPOINT", "HF_TOKEN")}
    env.update(HUBKIT_HOME=str(tmp_path / "home"), HF_HOME=str(tmp_path / "hf"))
    yield env, tmp_path / "home" / "hub"
    subprocess.run([sys.executable, "-m", "hubkit", "hub", "stop"], env=env, capture_output=True, timeout=60)


def _hubkit(env: dict, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hubkit", *args], env=env, capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def _gone(root: Path, within: float = 5.0) -> bool:
    deadline = time.time() + within
    while time.time() < deadline:
        if running_hub(root) is None:
            return True
        time.sleep(0.1)
    return False


def _user(env: dict, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", USES_THE_HUB, str(seconds)], env=env, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "hubkit"
    return proc


@pytest.mark.slow
def test_train_and_layerdiff_on_local_paths_start_no_hub(fresh, tiny_model, tmp_path):
    """`hubkit train` with a local model folder and a local data file, with no environment set, trains and
    writes its run (it used to fail after training on the endpoint), and `layerdiff` on two local folders
    works too: neither starts a Hub."""
    env, root = fresh
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"question {i}"},
                                                     {"role": "assistant", "content": f"answer {i}"}]}) + "\n"
                            for i in range(16)))
    trained = _hubkit(env, "train", f"model={tiny_model}", f"dataset={data}", "data_size=16", "epochs=1",
                      "batch_size=8", "max_length=64", "output_dir=runs", "--no-progress", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    run = next(p for p in (tmp_path / "runs").iterdir() if not p.name.startswith("."))  # .locks/ sits beside runs
    assert json.loads((run / "metrics.json").read_text())["train_loss"] > 0
    diffed = _hubkit(env, "layerdiff", str(run / "model"), "--base", str(tiny_model), "-o", str(tmp_path / "d.parquet"))
    assert diffed.returncode == 0, diffed.stderr[-2000:]
    assert not root.exists()  # nothing was started, nothing written under the hubkit home


@pytest.mark.slow
def test_a_started_hub_stops_with_its_last_user_even_killed(fresh):
    env, root = fresh
    first = _user(env, 60)
    hub = running_hub(root)
    assert hub is not None and hub.url == embedded_url(root)  # the fixed URL, named before it started
    second = _user(env, 60)
    assert running_hub(root).pid == hub.pid  # reused, not a second server
    first.send_signal(signal.SIGKILL)
    first.wait()
    time.sleep(1.5)
    assert running_hub(root) is not None  # the other user still runs
    second.send_signal(signal.SIGKILL)
    second.wait()
    assert _gone(root), "the embedded Hub outlived every process that used it"
    # and a command that needs it starts it again on the same URL, then leaves nothing running
    added = _hubkit(env, "hub", "add-model", "tiny")
    assert added.returncode == 0 and "hubkit/tiny-llama @" in added.stdout, added.stderr
    assert _gone(root)


@pytest.mark.slow
def test_hub_start_keeps_it_up_until_hub_stop(fresh):
    env, root = fresh
    started = _hubkit(env, "hub", "start")
    assert started.returncode == 0 and started.stdout.startswith(embedded_url(root))
    _user(env, 0).wait()  # a command used it and exited
    time.sleep(1.5)
    assert running_hub(root) is not None
    assert "runs until `hubkit hub stop`" in _hubkit(env, "hub", "status").stdout
    assert "Stopped the embedded Hub" in _hubkit(env, "hub", "stop").stdout
    assert running_hub(root) is None
    assert "not running" in _hubkit(env, "hub", "status").stdout


def test_a_taken_port_moves_the_embedded_hub(fresh):
    """Another program on the embedded Hub's port: the Hub picks a free one and keeps it."""
    import socket

    env, root = fresh
    port = int(embedded_url(root).rsplit(":", 1)[1])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        user = _user(env, 0)
        user.wait()
    moved = embedded_url(root)
    assert moved != f"http://127.0.0.1:{port}" and (root / "port").read_text() == moved.rsplit(":", 1)[1]
    assert _gone(root)
