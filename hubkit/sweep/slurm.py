"""The `slurm` executor: each stage of each run is one task of a SLURM job array, submitted through submitit.

Jobs that are ready together go out as one array (`sbatch --array=0-N%P`), with the sweep file's partition,
account, QOS, time limit and memory, and as many GPUs as the run asks for (`run.gpus`, or `gpus_per_run`). A
task runs `stages.execute`, the function every executor runs, so a SLURM run writes the same run directory, log
and manifest row as a local one.

Three things make it survive a cluster:

- **Preemption and time limits.** A task is a submitit `Checkpointable`: on SLURM's warning signal it asks to be
  requeued, and starts its stage again (a stage is idempotent: training rebuilds its `.partial` folder; a
  finished stage is skipped).
- **A driver that dies** (a closed login session, `kill -9`). Tasks keep running on the cluster. The job id of
  every submitted stage is kept in `<sweep>/slurm/jobs.json`; the next `hubkit sweep` re-attaches to a task that
  is still queued or running instead of submitting it twice, and reads its result when it ends.
- **A task that ends without a result** (cancelled, node failure, out of requeues) is a failed stage with the
  job id and state in its error; `--retry-failed` submits it again.

`slurm_cluster: local` runs the same tasks with submitit's local executor (no scheduler), which is how the suite
tests this module.

Example:
    >>> from hubkit.config import SweepSpec
    >>> sweep = SweepSpec(name="grid", executor="slurm", slurm_partition="gpu", slurm_time=120)
    >>> executor = SlurmExecutor.for_sweep(sweep, gpus=8)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import SweepSpec
from ..errors import HubkitError
from ..hub.server.lifetime import process_alive
from ..utils import first_line
from .executors import Job
from .stages import Outcome, execute

#: SLURM states of a task that may still produce a result (`sacct`); anything else has ended.
_WAITING = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED", "UNKNOWN"}


def _submitit():
    try:
        import submitit
    except ImportError:
        raise HubkitError("the slurm executor needs submitit: pip install 'hubkit[slurm]'") from None
    return submitit


class StageTask:
    """One stage of one run as a submitit task; requeued (and started again) when preempted or out of time."""

    def __call__(self, stage: str, spec: dict[str, Any], log: str, options: dict[str, Any],
                 group: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return execute(stage, spec, log, options, group)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit calls this on SLURM's preemption or time-limit signal: resubmit the same stage."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(StageTask(), *args, **kwargs)


@dataclass
class _Handle:
    """A submitted task: one submitit job, ours or found in the ledger after a driver restart."""

    job: Any  # submitit.Job
    pid: int | None = None  # local executor only: its controller process, for a re-attached job

    def done(self) -> bool:
        if self.pid is not None:  # re-attached local job: no process handle, so ask the OS
            return not process_alive(self.pid)
        return bool(self.job.done())

    def outcome(self) -> Outcome:
        try:
            return Outcome.from_json(self.job.result())
        except Exception as e:  # UncompletedJobError (cancelled, node failure, out of requeues) and the like
            state = getattr(self.job, "state", "?")
            return Outcome(False, 0.0, f"slurm job {self.job.job_id} ended without a result ({state}): "
                                       f"{first_line(e)[:200]}")


class SlurmExecutor:
    """Stages of runs as SLURM array tasks (see the module docstring).

    Args:
        folder: where submitit keeps scripts, pickles and logs, and hubkit its ledger (`<sweep>/slurm`).
        parameters: submitit `AutoExecutor` parameters (`timeout_min`, `gpus_per_node`, `slurm_partition`, …).
        capacity: stages kept submitted at once.
        cluster: `slurm`, or `local` for submitit's local executor.
    """

    def __init__(self, folder: Path, parameters: dict[str, Any], capacity: int, cluster: str = "slurm"):
        submitit = _submitit()
        self.capacity = capacity
        self.cluster = cluster
        self._folder = Path(folder)
        self._folder.mkdir(parents=True, exist_ok=True)
        self._jobs_folder = self._folder / "%j"
        try:
            self._ex = submitit.AutoExecutor(folder=self._jobs_folder, cluster=cluster)
        except RuntimeError as e:  # "Could not detect srun": not on a cluster's node
            raise HubkitError(f"slurm executor: {first_line(e)} (use slurm_cluster=local to run the tasks on this "
                              "machine)") from None
        try:
            self._ex.update_parameters(**parameters)
        except (ValueError, TypeError) as e:
            raise HubkitError(f"slurm executor: {first_line(e)}") from None
        self._pending: list[Job] = []
        self._running: dict[str, tuple[Job, _Handle]] = {}
        self._ledger = self._folder / "jobs.json"
        self.attached: list[str] = []  # stages found still running from an earlier driver

    @classmethod
    def for_sweep(cls, sweep: SweepSpec, gpus: int) -> SlurmExecutor:
        """The executor a sweep file describes; `gpus` is the most any of its runs asks for."""
        params: dict[str, Any] = {"timeout_min": sweep.slurm_time, "gpus_per_node": gpus, "nodes": 1,
                                  "tasks_per_node": 1, "cpus_per_task": max(1, int(sweep.cpus_per_run)),
                                  "name": f"hubkit-{sweep.name}"}
        if sweep.slurm_mem_gb:
            params["mem_gb"] = sweep.slurm_mem_gb
        if sweep.slurm_cluster == "slurm":
            params["slurm_array_parallelism"] = sweep.slurm_array_parallelism
            for key in ("partition", "account", "qos"):
                value = getattr(sweep, f"slurm_{key}")
                if value:
                    params[f"slurm_{key}"] = value
            if sweep.slurm_setup:
                params["slurm_setup"] = list(sweep.slurm_setup)
        elif sweep.slurm_setup:
            params["local_setup"] = list(sweep.slurm_setup)
        return cls(sweep.directory / "slurm", params, sweep.slurm_array_parallelism, sweep.slurm_cluster)

    # -- the ledger of submitted stages ----------------------------------------------------------------

    def _read_ledger(self) -> dict[str, str]:
        try:
            data = json.loads(self._ledger.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _write_ledger(self, entries: dict[str, str]) -> None:
        tmp = self._ledger.with_suffix(".tmp")
        tmp.write_text(json.dumps(entries, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self._ledger)

    @staticmethod
    def _key(job: Job) -> str:
        return f"{job.run_id} {job.stage}"

    def _earlier(self, job: Job) -> _Handle | None:
        """A task of this stage of this run that an earlier driver submitted and that has not ended."""
        job_id = self._read_ledger().get(self._key(job))
        if not job_id:
            return None
        submitit = _submitit()
        if self.cluster == "local":
            pid = int(job_id) if job_id.isdigit() else 0
            if not pid or not process_alive(pid):
                return None
            return _Handle(submitit.local.local.LocalJob(self._jobs_folder, job_id), pid=pid)
        found = submitit.SlurmJob(self._jobs_folder, job_id)
        try:
            state = str(found.state).split()[0].upper()
        except Exception:  # sacct unreachable: submitting again is the safe side only if it truly ended
            return None
        return _Handle(found) if state in _WAITING else None

    # -- Executor ------------------------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        earlier = self._earlier(job)
        if earlier is not None:
            self._running[self._key(job)] = (job, earlier)
            self.attached.append(self._key(job))
            return
        self._pending.append(job)

    def flush(self) -> list[str]:
        """Submit the stages waiting to go, as one job array; returns their job ids."""
        if not self._pending:
            return []
        pending, self._pending = self._pending, []
        try:
            with self._ex.batch():
                jobs = [self._ex.submit(StageTask(), j.stage, j.spec, str(j.log_path), j.options.to_json(), j.group)
                        for j in pending]
        except Exception as e:  # sbatch missing or refusing (bad partition, account, time): one line
            raise HubkitError(f"slurm: submitting {len(pending)} task(s) failed: {first_line(e)[:300]}") from None
        ledger = self._read_ledger()
        for j, submitted in zip(pending, jobs):
            self._running[self._key(j)] = (j, _Handle(submitted))
            ledger[self._key(j)] = str(submitted.job_id)
        self._write_ledger(ledger)
        return [str(s.job_id) for s in jobs]

    def wait(self, timeout: float) -> list[tuple[Job, Outcome]]:
        import time

        self.flush()
        deadline = time.time() + timeout
        while True:
            done = []
            for key, (job, handle) in list(self._running.items()):
                if handle.done():
                    del self._running[key]
                    done.append((job, handle.outcome()))
            if done or time.time() >= deadline or not self._running:
                return done
            time.sleep(min(1.0, max(0.05, deadline - time.time())))

    def shutdown(self) -> None:
        """Cancel what this driver still has queued or running (Ctrl-C, an error); a killed driver cancels nothing."""
        self._pending.clear()
        for _job, handle in self._running.values():
            try:
                handle.job.cancel(check=False)
            except Exception:  # scancel missing or the job already gone: nothing left to stop
                pass
        self._running.clear()
