"""Where a sweep's jobs run. A job is one stage of one run; the driver submits jobs and collects outcomes.

- `LocalExecutor`: each job in a fresh Python process on this machine, up to `workers` at once. The child
  dies with the driver (Linux parent-death signal), so killing a sweep never leaves a trainer behind.
- `RayExecutor`: each job a Ray task that asks for `cpus_per_run` / `gpus_per_run`.

An executor implements `submit`, `wait` and `shutdown` (see `Executor`); a SLURM executor (submitit's
`AutoExecutor` returns futures with `done()`/`result()`) fits the same shape.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..config import StageOptions
from ..errors import HubkitError
from ..utils import first_line, signal_on_parent_death
from .stages import Outcome


@dataclass
class Job:
    """One stage of one run; sent to a worker process (or a Ray task) as `to_json()`."""

    run_id: str
    stage: str
    spec: dict[str, Any]
    log_path: Path
    options: StageOptions = field(default_factory=StageOptions)  # what the stages need to know of the sweep
    group: list[dict[str, Any]] = field(default_factory=list)  # more runs in this job: {"run_id", "spec", "log"}

    @property
    def run_ids(self) -> list[str]:
        """Every run this job carries: its own, then its group's."""
        return [self.run_id] + [g["run_id"] for g in self.group]

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "stage": self.stage, "spec": self.spec, "log": str(self.log_path),
                "options": self.options.to_json(), "group": self.group}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        return cls(data["run_id"], data["stage"], data["spec"], Path(data["log"]),
                   StageOptions.from_json(data.get("options")), list(data.get("group") or []))


class Executor(Protocol):
    capacity: int  # jobs that may run at once

    def submit(self, job: Job) -> None: ...

    def wait(self, timeout: float) -> list[tuple[Job, Outcome]]:
        """Jobs finished since the last call (empty after `timeout` seconds if none did)."""
        ...

    def shutdown(self) -> None: ...


def _die_with_parent() -> None:  # runs in the child between fork and exec
    signal_on_parent_death(signal.SIGKILL)
    os.setpgrp()


class LocalExecutor:
    """Jobs as child processes (`python -m hubkit.sweep.worker`), `workers` at a time."""

    def __init__(self, workers: int = 1):
        self.capacity = workers
        self._running: dict[subprocess.Popen, tuple[Job, Path]] = {}
        self._tmp = Path(tempfile.mkdtemp(prefix="hubkit-jobs-"))

    def submit(self, job: Job) -> None:
        job_file = self._tmp / f"{job.run_id}.{job.stage}.json"
        job_file.write_text(json.dumps(job.to_json()))
        result_file = job_file.with_suffix(".result.json")
        result_file.unlink(missing_ok=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "hubkit.sweep.worker", str(job_file), str(result_file)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        self._running[proc] = (job, result_file)

    def wait(self, timeout: float) -> list[tuple[Job, Outcome]]:
        deadline = time.time() + timeout
        while True:
            done = []
            for proc, (job, result_file) in list(self._running.items()):
                if proc.poll() is None:
                    continue
                del self._running[proc]
                stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                if proc.stderr:
                    proc.stderr.close()
                try:
                    done.append((job, Outcome.from_json(json.loads(result_file.read_text()))))
                except (OSError, ValueError, KeyError, TypeError):
                    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
                    error = f"worker exited with code {proc.returncode}" + (f": {last}" if last else "")
                    done.append((job, Outcome(False, 0.0, error)))
            if done or time.time() >= deadline or not self._running:
                return done
            time.sleep(0.1)

    def shutdown(self) -> None:
        for proc in self._running:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in self._running:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self._running.clear()


class RayExecutor:
    """Jobs as Ray tasks with their resource needs; joins `address` or starts a local Ray instance."""

    def __init__(self, address: str | None = None, cpus_per_run: float = 1.0, gpus_per_run: float = 0.0,
                 temp_dir: str | None = None):
        try:
            import ray
        except ImportError:
            raise HubkitError("the ray executor needs Ray: pip install 'hubkit[ray]'") from None
        from .stages import execute

        self._ray = ray
        env = {k: os.environ[k] for k in ("HF_ENDPOINT", "HUBKIT_HOME", "HF_HOME") if k in os.environ}
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "ignore_reinit_error": True,
                                  "runtime_env": {"env_vars": env}}
        if address:
            kwargs["address"] = address
        elif temp_dir:
            kwargs["_temp_dir"] = temp_dir
        try:
            ray.init(**kwargs)
        except ConnectionError as e:
            raise HubkitError(f"cannot reach the Ray cluster at {address}: {first_line(e)}") from None
        self._task = ray.remote(execute).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)
        total_cpus = ray.cluster_resources().get("CPU", 1)
        self.capacity = max(1, int(total_cpus // cpus_per_run)) if cpus_per_run else 64
        self._running: dict[Any, Job] = {}

    def submit(self, job: Job) -> None:
        ref = self._task.remote(job.stage, job.spec, str(job.log_path), job.options.to_json(), job.group)
        self._running[ref] = job

    def wait(self, timeout: float) -> list[tuple[Job, Outcome]]:
        if not self._running:
            return []
        ready, _ = self._ray.wait(list(self._running), num_returns=1, timeout=timeout)
        done = []
        for ref in ready:
            job = self._running.pop(ref)
            try:
                done.append((job, Outcome.from_json(self._ray.get(ref))))
            except Exception as e:  # the task's worker died, or Ray failed to run it
                done.append((job, Outcome(False, 0.0, f"ray task failed: {first_line(e)}")))
        return done

    def shutdown(self) -> None:
        for ref in self._running:
            self._ray.cancel(ref, force=True)
        self._running.clear()
        self._ray.shutdown()
