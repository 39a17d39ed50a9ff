"""`hubkit sweep`: the manifest, resume after SIGKILL, retries, the lock, and the Ray executor."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from hubkit.config import SweepSpec, parse_config
from hubkit.sweep import Manifest, run_sweep

from ..test_cli import _assert_one_line_error, hubkit

REPO = Path(__file__).resolve().parents[2]


def _sweep_file(tmp_path: Path, tiny_model: Path, datasets: list[str], name: str = "s", **extra) -> Path:
    lines = [f"name: {name}", f"output_dir: {tmp_path / 'sweeps'}",
             f"run: {{model: {tiny_model}, data_size: 16, epochs: 1, batch_size: 8, max_length: 128}}",
             f"grid: {{dataset: {json.dumps(datasets)}}}"]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    path = tmp_path / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _manifest_rows(path: Path) -> dict[str, tuple[str, int]]:
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return {r[0]: (r[1], r[2]) for r in db.execute("SELECT run_id, state, attempts FROM runs")}
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()


@pytest.mark.slow
def test_sigkill_mid_sweep_then_rerun_finishes_every_run_exactly_once(tiny_model, seeded, tmp_path):
    config = _sweep_file(tmp_path, tiny_model, ["lima", "math", "openmath"])
    sweep_dir = tmp_path / "sweeps" / "s"
    driver = subprocess.Popen([sys.executable, "-m", "hubkit", "sweep", str(config), "--no-progress"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:
        rows = _manifest_rows(sweep_dir / "manifest.sqlite")
        states = [s for s, _ in rows.values()]
        if states.count("trained") >= 1 and "training" in states:
            break
        assert driver.poll() is None, "the sweep ended before it could be killed"
        time.sleep(0.2)
    else:
        pytest.fail("the sweep never reached its second run")
    time.sleep(4)  # let the second run get into its training
    workers = psutil.Process(driver.pid).children(recursive=True)
    assert workers, "runs execute in worker processes"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    gone, alive = psutil.wait_procs(workers, timeout=20)
    assert not alive, "a worker outlived its killed sweep"

    before = _manifest_rows(sweep_dir / "manifest.sqlite")
    finished_before = {rid for rid, (state, _) in before.items() if state == "trained"}
    stamps = {rid: json.loads((sweep_dir / "runs" / rid / "run.json").read_text())["finished_at"]
              for rid in finished_before}

    proc = hubkit("sweep", str(config), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    after = _manifest_rows(sweep_dir / "manifest.sqlite")
    assert len(after) == 3 and all(state == "trained" for state, _ in after.values())
    for rid in finished_before:  # finished runs were not trained again
        assert after[rid][1] == 1
        assert json.loads((sweep_dir / "runs" / rid / "run.json").read_text())["finished_at"] == stamps[rid]
    assert sorted(p.name for p in (sweep_dir / "runs").iterdir()) == sorted([*after, ".locks"])  # no partial left
    assert all((sweep_dir / "logs" / f"{rid}.log").read_text().count("=== done") == 1 for rid in after)

    status = hubkit("sweep", str(config), "--status")
    assert status.returncode == 0 and status.stdout.count("trained") == 3


@pytest.mark.slow
def test_finished_work_recorded_late_is_not_redone(tiny_model, seeded, tmp_path):
    sweep = parse_config(SweepSpec, _sweep_file(tmp_path, tiny_model, ["lima", "math"]), ["workers=2"])
    report = run_sweep(sweep)
    assert report.counts == {"trained": 2} and report.jobs_run == 2
    # a driver killed after a run finished but before it was recorded leaves these states behind
    manifest = Manifest(sweep.directory / "manifest.sqlite")
    first, second = (r.run_id for r in manifest.rows())
    manifest.set_state(first, "training")
    manifest.set_state(second, "planned")
    manifest.close()
    again = run_sweep(sweep)
    assert again.counts == {"trained": 2} and again.jobs_run == 0


@pytest.mark.slow
def test_failures_are_recorded_and_retried_only_when_asked(tiny_model, seeded, tmp_path):
    config = _sweep_file(tmp_path, tiny_model, [str(tmp_path / "missing.jsonl")], name="f")
    proc = hubkit("sweep", str(config), "--no-progress")
    _assert_one_line_error(proc, "1 run(s) failed")
    ((state, attempts),) = _manifest_rows(tmp_path / "sweeps" / "f" / "manifest.sqlite").values()
    assert (state, attempts) == ("failed", 1)
    (row,) = [json.loads(line) for line in hubkit("sweep", str(config), "--status", "--json").stdout.splitlines()]
    assert row["failed_stage"] == "train" and row["error"].startswith("dataset file not found")

    _assert_one_line_error(hubkit("sweep", str(config), "--no-progress"), "--retry-failed")
    assert list(_manifest_rows(tmp_path / "sweeps" / "f" / "manifest.sqlite").values()) == [("failed", 1)]
    _assert_one_line_error(hubkit("sweep", str(config), "--no-progress", "--retry-failed"), "1 run(s) failed")
    assert list(_manifest_rows(tmp_path / "sweeps" / "f" / "manifest.sqlite").values()) == [("failed", 2)]


def test_one_driver_per_sweep(tiny_model, tmp_path):
    config = _sweep_file(tmp_path, tiny_model, ["lima"], name="locked")
    lock_dir = tmp_path / "sweeps" / "locked"
    lock_dir.mkdir(parents=True)
    with open(lock_dir / ".lock", "w") as f:
        f.write("4242")
        f.flush()
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _assert_one_line_error(hubkit("sweep", str(config)), "sweep locked is already running (pid 4242)")


def test_dry_run_lists_the_grid(tiny_model, tmp_path):
    config = _sweep_file(tmp_path, tiny_model, ["lima", "math", "w/o-lima"], name="plan")
    proc = hubkit("sweep", str(config), "--dry-run")
    assert proc.returncode == 0 and "3 runs" in proc.stdout
    assert not (tmp_path / "sweeps" / "plan").exists()  # planning writes nothing
    _assert_one_line_error(hubkit("sweep", str(config), "executor=lsf"), "`executor` must be one of local, ray, slurm")
    # publishing a run trained from a local folder needs the base's Hub id: refused before anything trains
    _assert_one_line_error(hubkit("sweep", str(config), "stages=[train,publish]", "--dry-run"),
                           "is a local directory, and the publish stage needs the base model's Hub id")
    named = hubkit("sweep", str(config), "stages=[train,publish]", "base_model_id=alice/tiny-base", "--dry-run")
    assert named.returncode == 0, named.stderr


def _netns_ok() -> bool:
    try:
        return subprocess.run(["unshare", "--net", "sh", "-c", "ip link set lo up"], capture_output=True,
                              timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _netns_ok(), reason="needs `unshare --net` (root or user namespaces) to keep Ray on loopback")
@pytest.mark.slow
def test_ray_executor_on_a_local_cluster_in_its_own_network_namespace(tiny_model, tmp_path):
    """A Ray cluster started by the test (`ray start --head`), joined by the sweep through its address.

    Ray binds to the machine's external interface; in a fresh network namespace only loopback exists.
    """
    config = _sweep_file(tmp_path, tiny_model, ["lima", "math"], name="ray", executor="ray", cpus_per_run=1)
    script = textwrap.dedent(f"""
        set -e
        ip link set lo up
        trap 'ray stop --force > /dev/null 2>&1; hubkit hub stop > /dev/null' EXIT
        hubkit hub start > {tmp_path}/hub-url
        hubkit hub seed lima flan_cot > /dev/null
        ray start --head --port=6390 --num-cpus=2 --include-dashboard=false --disable-usage-stats > /dev/null
        hubkit sweep {config} --no-progress ray_address=127.0.0.1:6390
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_ENDPOINT", "HF_TOKEN")}
    env.update(HUBKIT_HOME=str(tmp_path / "home"), HF_HOME=str(tmp_path / "hf"), RAY_AUTH_MODE="disabled",
               RAY_USAGE_STATS_ENABLED="0")
    proc = subprocess.run(["unshare", "--net", "bash", "-c", script], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "hub-url").read_text().startswith("http://127.0.0.1:")
    rows = _manifest_rows(tmp_path / "sweeps" / "ray" / "manifest.sqlite")
    assert len(rows) == 2 and all(v == ("trained", 1) for v in rows.values())
    for rid in rows:
        log = (tmp_path / "sweeps" / "ray" / "logs" / f"{rid}.log").read_text()
        pid = int(log.split("(pid ", 1)[1].split(")", 1)[0])
        assert pid != os.getpid() and "=== done" in log  # ran in a Ray worker, logged to its own file
        assert (tmp_path / "sweeps" / "ray" / "runs" / rid / "model" / "model.safetensors").is_file()


def test_progress_names_each_stage_and_warns_when_no_loss_is_logged(tiny_model, seeded, tmp_path):
    """The sweep's bar counts stages; each finished run prints its stages' times and the total; a run that
    logged no loss (fewer steps than `logging_steps`) is flagged as soon as it is trained."""
    config = _sweep_file(tmp_path, tiny_model, ["lima"], name="prog")
    proc = hubkit("sweep", str(config), "run.logging_steps=50", env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    err = " ".join(proc.stderr.split())
    assert "no training loss was logged (2 step(s), logging_steps=50)" in err
    assert "trained (train " in err and " s in all)" in err
    assert "2/2" not in err and "1/1" in err  # one stage (train) for the one run


@pytest.mark.slow
def test_runs_of_one_base_are_evaluated_together_once_trained(tiny_model, seeded, seeded_benchmarks, tmp_path,
                                                              monkeypatch):
    monkeypatch.setenv("HUBKIT_EVAL_CACHE", str(tmp_path / "cache"))
    path = _sweep_file(tmp_path, tiny_model, ["lima", "math", "openmath"], stages="[train, eval]",
                       eval_suite="boolq", eval_limit=2)
    report = run_sweep(parse_config(SweepSpec, path))
    assert report.counts == {"evaluated": 3}
    assert report.jobs_run == 4  # three trainings, then one evaluation job for the three runs of the base
    logs = {r.run_id: (report.directory / "logs" / f"{r.run_id}.log").read_text() for r in report.rows}
    first = [rid for rid, text in logs.items() if "see logs/" not in text]
    assert len(first) == 1 and all(rid in logs[first[0]] for rid in logs)  # one log holds the group's output
    for rid, text in logs.items():
        assert (report.directory / "runs" / rid / "eval").is_dir()
        if rid != first[0]:
            assert f"3 runs of one base in one process: see logs/{first[0]}.log" in text
        assert text.index("=== done") < text.index("=== eval")  # trained before any evaluation

    # eval_group_size=1: each run evaluated on its own, as soon as it is trained
    alone = run_sweep(parse_config(SweepSpec, path, ["name=alone", "eval_group_size=1"]))
    assert alone.counts == {"evaluated": 3} and alone.jobs_run == 6
