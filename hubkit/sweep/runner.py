"""Carry every run of a sweep through its stages, resumably.

Sweep directory `<output_dir>/<name>/`:

| path | what |
| --- | --- |
| `manifest.sqlite` | one row per run: state, failed stage and error, attempts, seconds per stage |
| `sweep.yaml` | the sweep as it was last run |
| `runs/<run id>/` | run directories (see `hubkit.train`) |
| `logs/<run id>.log` | everything each run printed, attempt after attempt |

Rerunning a sweep skips what is done, resumes what was interrupted and leaves failures alone unless
asked (`retry_failed`). One driver at a time per sweep (a lock file says which); a second is refused.

Example:
    >>> from hubkit.config import parse_config, SweepSpec
    >>> from hubkit.sweep import run_sweep
    >>> report = run_sweep(parse_config(SweepSpec, "scripts/recipes/cpu-demo.yaml"))
    >>> report.counts
    {'trained': 4}
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..config import RunSpec, StageOptions, SweepSpec
from ..errors import HubkitError
from ..utils import Progress, silent
from .executors import Executor, Job, LocalExecutor, RayExecutor
from .grid import expand
from .manifest import Manifest, ManifestRow
from .stages import Outcome, Stage, get_stage

MANIFEST = "manifest.sqlite"
PIPELINE_ORDER = ("train", "eval", "publish")


@dataclass
class SweepReport:
    """What a sweep looks like after a `run_sweep` call."""

    name: str
    directory: Path
    rows: list[ManifestRow]
    jobs_run: int

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.state] = out.get(r.state, 0) + 1
        return out


@contextmanager
def _sweep_lock(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            raise HubkitError(f"sweep {directory.name} is already running (pid {holder})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock; a killed process releases it too


def _stages(sweep: SweepSpec) -> list[Stage]:
    stages = [get_stage(name) for name in sweep.stages]
    if not stages:
        raise HubkitError("sweep: `stages` is empty")
    order = [PIPELINE_ORDER.index(s.name) if s.name in PIPELINE_ORDER else len(PIPELINE_ORDER) for s in stages]
    if order != sorted(order) or len(set(sweep.stages)) != len(sweep.stages):
        raise HubkitError(f"sweep: `stages` must follow the pipeline order {', '.join(PIPELINE_ORDER)} once each")
    return stages


def _next_stage(state: str, stages: list[Stage]) -> Stage | None:
    """The stage a run in `state` goes through next (None: finished or failed)."""
    if state == "planned":
        return stages[0]
    for i, stage in enumerate(stages):
        if state == stage.done:
            return stages[i + 1] if i + 1 < len(stages) else None
    return None


def _state_before(stage: Stage, stages: list[Stage]) -> str:
    i = stages.index(stage)
    return stages[i - 1].done if i else "planned"


def _settle(manifest: Manifest, row: ManifestRow, stages: list[Stage], spec: RunSpec) -> None:
    """A row left in flight by a killed driver: done if its output exists, else back where it was."""
    for stage in stages:
        if row.state == stage.active:
            manifest.set_state(row.run_id, stage.done if stage.is_done(spec) else _state_before(stage, stages))


def _warn_without_loss(spec: RunSpec, say: Progress) -> None:
    """A run that logged no training loss (fewer optimiser steps than `logging_steps`) gets a card with no
    loss curve: say so as soon as it is trained."""
    from ..runs import RunDir, RunMetrics

    paths = RunDir.of(spec)
    try:
        metrics = RunMetrics.read(paths.metrics_file)
    except HubkitError:
        return
    if not metrics.loss_curve:
        say(f"! {paths.run_id}: no training loss was logged ({metrics.steps} step(s), "
            f"logging_steps={spec.logging_steps}): its card will have no loss curve; lower `logging_steps`")


def _validate(sweep: SweepSpec) -> None:
    """The sweep file's own checks (`SweepSpec.validate`), then its eval suite against the benchmark registry."""
    sweep.validate()
    if "eval" in sweep.stages:
        from ..eval.tasks import get_suite

        get_suite(sweep.eval_suite)


def make_executor(sweep: SweepSpec, specs: list[RunSpec] | None = None) -> Executor:
    """The executor `sweep.executor` names; `specs` (the sweep's runs) size the GPUs a SLURM task asks for."""
    if sweep.executor == "ray":
        return RayExecutor(sweep.ray_address, sweep.cpus_per_run, sweep.gpus_per_run)
    if sweep.executor == "slurm":
        import math

        from .slurm import SlurmExecutor

        gpus = max([math.ceil(sweep.gpus_per_run)] + [s.gpus for s in specs or []])
        return SlurmExecutor.for_sweep(sweep, gpus=gpus)
    return LocalExecutor(sweep.workers)


def _needs_hub(specs: list[RunSpec]) -> bool:
    return any(not Path(s.model).is_dir() or not Path(s.dataset).is_file() for s in specs)


def plan_sweep(sweep: SweepSpec) -> list[tuple[str, RunSpec]]:
    """The runs a sweep expands to, without running anything."""
    _validate(sweep)
    _stages(sweep)
    runs = expand(sweep)
    if "publish" in sweep.stages and not sweep.base_model_id:
        local = sorted({Path(s.model).name for _, s in runs if Path(s.model).exists()})
        if local:  # said now, not after hours of training when the card needs a public base_model
            raise HubkitError(f"sweep {sweep.name}: run.model {local[0]!r} is a local directory, and the publish "
                              "stage needs the base model's Hub id: set `base_model_id` in the recipe")
    return runs


def sweep_status(sweep: SweepSpec) -> list[ManifestRow]:
    """The manifest rows of a sweep (empty if it never ran)."""
    path = sweep.directory / MANIFEST
    if not path.exists():
        return []
    manifest = Manifest(path)
    try:
        return manifest.rows()
    finally:
        manifest.close()


def run_sweep(sweep: SweepSpec, retry_failed: bool = False, progress: Progress | None = None,
              executor: Executor | None = None) -> SweepReport:
    """Run every stage of every run in the sweep that is not done yet.

    Args:
        sweep: the sweep.
        retry_failed: try failed runs again from the stage that failed.
        progress: told the sweep's state as it goes (`utils.Progress`): with `done`/`total` (stages done of all
            stages) and which run is in which stage, and without them a line per finished or failed run.
        executor: where jobs run (default: from `sweep.executor`).

    Raises:
        HubkitError: a bad sweep file, or the sweep is already running elsewhere.
    """
    import yaml

    _validate(sweep)
    stages = _stages(sweep)
    directory = sweep.directory
    with _sweep_lock(directory):
        runs = expand(sweep)
        specs = dict(runs)
        if _needs_hub(list(specs.values())):
            from ..hub import ensure_endpoint, is_local_endpoint
            from ..hub.client import choose_endpoint

            endpoint = choose_endpoint()  # starts nothing
            if sweep.executor == "slurm" and sweep.slurm_cluster == "slurm" and is_local_endpoint(endpoint):
                raise HubkitError(f"sweep {sweep.name}: SLURM tasks run on other nodes and cannot reach the Hub at "
                                  f"{endpoint}; set HF_ENDPOINT to a Hub they can reach (or use local model and "
                                  "data paths)")
            ensure_endpoint()  # workers inherit HF_ENDPOINT
        (directory / "sweep.yaml").write_text(
            "# The sweep as last run; rerun with: hubkit sweep sweep.yaml\n"
            + yaml.safe_dump(dict(vars(sweep)), sort_keys=False), encoding="utf-8")
        manifest = Manifest(directory / MANIFEST)
        try:
            manifest.plan((rid, spec.to_dict()) for rid, spec in runs)
            for row in manifest.rows():
                if row.run_id in specs:
                    _settle(manifest, row, stages, specs[row.run_id])
                    if retry_failed and row.state == "failed":
                        failed = next((s for s in stages if s.name == row.failed_stage), stages[0])
                        manifest.set_state(row.run_id, _state_before(failed, stages))
            todo = [r for r in manifest.rows() if r.run_id in specs and _next_stage(r.state, stages)]
            ran = _drive(manifest, todo, specs, stages, executor or make_executor(sweep, list(specs.values())), directory,
                         sweep.stage_options(), progress or silent, sweep.eval_group_size)
            rows = [r for r in manifest.rows() if r.run_id in specs]
        finally:
            manifest.close()
    return SweepReport(sweep.name, directory, rows, ran)


def _drive(manifest: Manifest, todo: list[ManifestRow], specs: dict[str, RunSpec], stages: list[Stage],
           executor: Executor, directory: Path, options: StageOptions, say: Progress, group_size: int = 1) -> int:
    """Run the stages of `todo`, saying which run is in which stage; the count is of stages, so it moves
    after every train, eval and publish (not only when a whole run is done). Returns the jobs run.

    A stage that can run several runs in one job (`Stage.run_many`: evaluation) waits until no other run of the
    same base still has an earlier stage to go, then takes up to `group_size` of them in one job."""
    driver = _Driver(manifest, specs, stages, executor, directory, options, say, group_size)
    driver.queue = [r.run_id for r in todo]
    driver.total = sum(driver.left(rid) for rid in driver.queue)
    try:
        while driver.queue or driver.in_flight or driver.held:
            driver.release_held()
            driver.submit_ready()
            say(driver.describe(), driver.done, driver.total)
            for job, outcome in executor.wait(timeout=1.0):
                driver.collect(job, outcome)
            say(driver.describe(), driver.done, driver.total)
    except BaseException:
        executor.shutdown()
        for rid in driver.in_flight:
            _settle(manifest, manifest.row(rid), stages, specs[rid])
        raise
    executor.shutdown()
    return driver.ran


class _Driver:
    """The state of one `_drive` call: runs queued, held for a group, and in flight, and what they spent."""

    def __init__(self, manifest: Manifest, specs: dict[str, RunSpec], stages: list[Stage], executor: Executor,
                 directory: Path, options: StageOptions, say: Progress, group_size: int):
        self.manifest, self.specs, self.stages, self.executor = manifest, specs, stages, executor
        self.directory, self.options, self.say, self.group_size = directory, options, say, group_size
        self.names = [s.name for s in stages]
        self.queue: list[str] = []
        self.held: list[str] = []  # runs whose next stage waits for the other runs of their base
        self.in_flight: dict[str, Stage] = {}
        self.started: dict[str, float] = {}
        self.spent: dict[str, list[tuple[str, float]]] = {}
        self.ran = self.done = self.total = 0

    def next_stage(self, rid: str) -> Stage | None:
        return _next_stage(self.manifest.row(rid).state, self.stages)

    def left(self, rid: str) -> int:
        stage = self.next_stage(rid)
        return 0 if stage is None else len(self.names) - self.names.index(stage.name)

    def describe(self) -> str:
        import time

        now = time.time()
        busy = ", ".join(f"{rid[:40]}: {stage.name} {now - self.started[rid]:.0f} s"
                         for rid, stage in self.in_flight.items())
        waiting = f" · {len(self.held)} waiting to be evaluated together" if self.held else ""
        return f"sweep {self.directory.name}" + (f" · {busy}" if busy else "") + waiting

    def _base(self, rid: str) -> tuple[str, str | None]:
        return self.specs[rid].model, self.specs[rid].model_revision

    def earliest(self) -> dict[tuple[str, str | None], int]:
        """Per base, the earliest stage (its index) any queued or running run of it still has to go through:
        read once per pass of the driver, so holding runs costs one look at each run, not one per held run."""
        out: dict[tuple[str, str | None], int] = {}
        for rid in [*self.queue, *self.in_flight]:
            stage = self.in_flight.get(rid) or self.next_stage(rid)
            if stage is not None:
                base = self._base(rid)
                out[base] = min(out.get(base, len(self.names)), self.names.index(stage.name))
        return out

    def upstream(self, rid: str, stage: Stage, earliest: dict[tuple[str, str | None], int]) -> bool:
        """Whether another run of `rid`'s base has yet to go through a stage before `stage`."""
        return earliest.get(self._base(rid), len(self.names)) < self.names.index(stage.name)

    def release_held(self) -> None:
        if not self.held:
            return
        earliest = self.earliest()
        for rid in list(self.held):
            stage = self.next_stage(rid)
            if stage is None or not self.upstream(rid, stage, earliest):
                self.held.remove(rid)
                self.queue.insert(0, rid)

    def submit_ready(self) -> None:
        import time

        earliest: dict[tuple[str, str | None], int] | None = None  # read when a run could be held
        while self.queue and len(self.in_flight) < self.executor.capacity:
            rid = self.queue.pop(0)
            stage = self.next_stage(rid)
            if stage is None:
                continue
            if stage.is_done(self.specs[rid]):  # finished before its state was recorded
                self.manifest.set_state(rid, stage.done)
                self.done += 1
                self.queue.insert(0, rid)
                continue
            grouped = stage.run_many is not None and self.group_size > 1
            if grouped:
                earliest = earliest if earliest is not None else self.earliest()
                if self.upstream(rid, stage, earliest):
                    self.held.append(rid)
                    continue
            members = [rid]
            if grouped:  # the other runs of this base ready for the same stage
                for other in [*self.held, *self.queue]:
                    if (len(members) < self.group_size and self._base(other) == self._base(rid)
                            and self.next_stage(other) == stage and not stage.is_done(self.specs[other])):
                        members.append(other)
                self.held = [r for r in self.held if r not in members]
                self.queue = [r for r in self.queue if r not in members]
            for m in members:
                self.manifest.set_state(m, stage.active, attempt=True)
                self.in_flight[m] = stage
                self.started[m] = time.time()
            logs = self.directory / "logs"
            group = [{"run_id": m, "spec": self.specs[m].to_dict(), "log": str(logs / f"{m}.log")} for m in members[1:]]
            self.executor.submit(Job(rid, stage.name, self.specs[rid].to_dict(), logs / f"{rid}.log", self.options,
                                     group))

    def collect(self, job: Job, outcome: Outcome) -> None:
        """Record a finished job: each of its runs done, failed, or queued for its next stage."""
        self.ran += 1
        together = f" (with {len(job.run_ids)} runs in one job)" if job.group else ""
        for rid in job.run_ids:
            stage = self.in_flight.pop(rid)
            ok, error = (rid in outcome.runs and outcome.runs[rid] is None, outcome.runs.get(rid)) if outcome.runs \
                else (outcome.ok, outcome.error)
            timings = self.spent.setdefault(rid, [])
            timings.append((stage.name, outcome.seconds))
            if ok and stage.is_done(self.specs[rid]):
                self.manifest.set_state(rid, stage.done, timing=(stage.name, outcome.seconds))
                self.done += 1
                if stage.name == "train":
                    _warn_without_loss(self.specs[rid], self.say)
                if stage.done == self.stages[-1].done:
                    parts = " · ".join(f"{n} {t:.1f} s" for n, t in timings)
                    self.say(f"✓ {rid} {stage.done} ({parts}; {sum(t for _, t in timings):.1f} s in all){together}")
                else:
                    self.queue.insert(0, rid)
            else:
                error = error or f"{stage.name} finished without its output"
                self.manifest.set_state(rid, "failed", error=error, failed_stage=stage.name,
                                        timing=(stage.name, outcome.seconds))
                self.done += len(self.names) - self.names.index(stage.name)  # its stages left undone
                self.say(f"✗ {rid} failed in {stage.name}: {error} (log: logs/{job.run_id}.log)")
