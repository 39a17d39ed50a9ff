"""The `slurm` executor through submitit: array scripts, a killed driver, preemption (submitit's local executor)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from hubkit.config import StageOptions, SweepSpec, parse_config

from ..test_cli import _assert_one_line_error, hubkit
from .test_sweep import _manifest_rows, _sweep_file

pytest.importorskip("submitit", reason="the slurm extra")


def _fake_slurm(bin_dir: Path, record: Path) -> dict[str, str]:
    """`sbatch`, `scancel` and `sacct` that record what submitit asks of them (no scheduler here)."""
    bin_dir.mkdir()
    scripts = {
        "sbatch": f'cp "${{@: -1}}" {record}/script.sh; echo "$@" > {record}/sbatch-args; echo "Submitted batch job 4242"',
        "scancel": f'echo "$@" >> {record}/scancel-args',
        "sacct": "true",
        "srun": "true",
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/bash\n{body}\n")
        path.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_ready_stages_go_out_as_one_array_with_the_sweep_files_resources(tmp_path, monkeypatch):
    from hubkit.sweep import Job
    from hubkit.sweep.slurm import SlurmExecutor

    record = tmp_path / "record"
    record.mkdir()
    for k, v in _fake_slurm(tmp_path / "bin", record).items():
        monkeypatch.setenv(k, v)
    sweep = parse_config(SweepSpec, None, [
        "name=grid", f"output_dir={tmp_path}", "executor=slurm", "slurm_partition=gpu", "slurm_account=proj-7",
        "slurm_qos=high", "slurm_time=90", "slurm_mem_gb=200", "slurm_array_parallelism=16", "cpus_per_run=12",
        "slurm_setup=source /opt/venv/bin/activate"])
    executor = SlurmExecutor.for_sweep(sweep, gpus=8)
    for i in range(3):
        executor.submit(Job(f"run-{i}", "train", {"model": "m", "dataset": "lima"}, tmp_path / f"{i}.log",
                            StageOptions(sweep="grid")))
    ids = executor.flush()
    assert ids == ["4242_0", "4242_1", "4242_2"]
    script = (record / "script.sh").read_text()
    for line in ("#SBATCH --array=0-2%3", "#SBATCH --partition=gpu", "#SBATCH --account=proj-7", "#SBATCH --qos=high",
                 "#SBATCH --time=90", "#SBATCH --mem=200GB", "#SBATCH --gpus-per-node=8", "#SBATCH --cpus-per-task=12",
                 "#SBATCH --job-name=hubkit-grid", "source /opt/venv/bin/activate"):
        assert line in script, (line, script)
    ledger = json.loads((tmp_path / "grid" / "slurm" / "jobs.json").read_text())
    assert ledger == {"run-0 train": "4242_0", "run-1 train": "4242_1", "run-2 train": "4242_2"}
    executor.shutdown()  # Ctrl-C: what this driver submitted is cancelled
    assert "4242_0" in (record / "scancel-args").read_text()


def test_a_hub_on_this_machine_is_refused_for_cluster_nodes(tiny_base, tmp_path):
    config = tmp_path / "s.yaml"
    config.write_text(f"name: s\noutput_dir: {tmp_path}\nexecutor: slurm\nrun: {{model: {tiny_base}}}\n"
                      "grid: {dataset: [lima]}\n")
    _assert_one_line_error(hubkit("sweep", str(config), "--no-progress"), "cannot reach the Hub at http://127.0.0.1")
    _assert_one_line_error(hubkit("sweep", str(config), "slurm_time=0"), "`slurm_time`")
    assert not (tmp_path / "s" / "slurm").exists()


def _ledger(sweep_dir: Path) -> dict[str, str]:
    try:
        return json.loads((sweep_dir / "slurm" / "jobs.json").read_text())
    except (OSError, ValueError):
        return {}


def _trainings(log: Path) -> int:
    return log.read_text().count("=== train ") if log.exists() else 0


@pytest.mark.slow
def test_killed_driver_reattaches_and_a_preempted_task_is_requeued(tiny_model, seeded, tmp_path):
    config = _sweep_file(tmp_path, tiny_model, ["lima", "math"], executor="slurm", slurm_cluster="local",
                         slurm_time=10)
    sweep_dir = tmp_path / "sweeps" / "s"
    driver = subprocess.Popen([sys.executable, "-m", "hubkit", "sweep", str(config), "--no-progress"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and len(_ledger(sweep_dir)) < 2:
        time.sleep(0.2)
    submitted = _ledger(sweep_dir)
    assert len(submitted) == 2, driver.stderr.read().decode() if driver.poll() is not None else submitted

    # preemption: SLURM's signal reaches the task of the first run; submitit checkpoints and requeues it
    first = sorted(submitted)[0]
    controller = psutil.Process(int(submitted[first]))
    while time.time() < deadline and not controller.children():
        time.sleep(0.1)
    time.sleep(2)  # inside the stage
    for task in controller.children():
        os.kill(task.pid, signal.SIGUSR2)

    # the driver dies (a closed login session): its tasks keep running on the "cluster"
    driver.kill()
    driver.wait()
    assert all(psutil.pid_exists(int(pid)) for pid in submitted.values())

    done = hubkit("sweep", str(config), "--no-progress", timeout=300)
    assert done.returncode == 0, done.stderr
    rows = _manifest_rows(sweep_dir / "manifest.sqlite")
    assert sorted(state for state, _ in rows.values()) == ["trained", "trained"]
    assert _ledger(sweep_dir) == submitted  # re-attached: nothing submitted twice
    logs = {rid.split()[0]: sweep_dir / "logs" / f"{rid.split()[0]}.log" for rid in submitted}
    preempted = first.split()[0]
    assert _trainings(logs[preempted]) == 2  # started again after the requeue
    assert all(_trainings(log) == 1 for rid, log in logs.items() if rid != preempted)
    assert f"Requeued job {submitted[first]}" in logs[preempted].read_text()  # submitit's words, in the run's log
    for rid in logs:
        assert (sweep_dir / "runs" / rid / "run.json").is_file()
    assert not list((sweep_dir / "runs").glob(".*partial"))
