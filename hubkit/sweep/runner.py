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
from .stages import Stage, get_stage

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
                         sweep.stage_options(), progress or silent)
            rows = [r for r in manifest.rows() if r.run_id in specs]
        finally:
            manifest.close()
    return SweepReport(sweep.name, directory, rows, ran)


def _drive(manifest: Manifest, todo: list[ManifestRow], specs: dict[str, RunSpec], stages: list[Stage],
           executor: Executor, directory: Path, options: StageOptions, say: Progress) -> int:
    """Run the stages of `todo`, saying which run is in which stage; the count is of stages, so it moves
    after every train, eval and publish (not only when a whole run is done). Returns the jobs run."""
    import time

    queue = [r.run_id for r in todo]
    in_flight: dict[str, Stage] = {}
    started: dict[str, float] = {}
    spent: dict[str, list[tuple[str, float]]] = {}
    ran = done = 0
    final = stages[-1].done
    names = [s.name for s in stages]

    def left(rid: str) -> int:
        stage = _next_stage(manifest.row(rid).state, stages)
        return 0 if stage is None else len(names) - names.index(stage.name)

    def describe() -> str:
        now = time.time()
        busy = ", ".join(f"{rid[:40]}: {stage.name} {now - started[rid]:.0f} s" for rid, stage in in_flight.items())
        return f"sweep {directory.name}" + (f" · {busy}" if busy else "")

    total = sum(left(rid) for rid in queue)
    try:
        while queue or in_flight:
            while queue and len(in_flight) < executor.capacity:
                rid = queue.pop(0)
                stage = _next_stage(manifest.row(rid).state, stages)
                if stage is None:
                    continue
                if stage.is_done(specs[rid]):  # finished before its state was recorded
                    manifest.set_state(rid, stage.done)
                    done += 1
                    queue.insert(0, rid)
                    continue
                manifest.set_state(rid, stage.active, attempt=True)
                log = directory / "logs" / f"{rid}.log"
                executor.submit(Job(rid, stage.name, specs[rid].to_dict(), log, options))
                in_flight[rid] = stage
                started[rid] = time.time()
            say(describe(), done, total)
            for job, outcome in executor.wait(timeout=1.0):
                stage = in_flight.pop(job.run_id)
                ran += 1
                timings = spent.setdefault(job.run_id, [])
                timings.append((stage.name, outcome.seconds))
                if outcome.ok and stage.is_done(specs[job.run_id]):
                    manifest.set_state(job.run_id, stage.done, timing=(stage.name, outcome.seconds))
                    done += 1
                    if stage.name == "train":
                        _warn_without_loss(specs[job.run_id], say)
                    if stage.done == final:
                        parts = " · ".join(f"{n} {t:.1f} s" for n, t in timings)
                        say(f"✓ {job.run_id} {stage.done} ({parts}; {sum(t for _, t in timings):.1f} s in all)")
                    else:
                        queue.insert(0, job.run_id)
                else:
                    error = outcome.error or f"{stage.name} finished without its output"
                    manifest.set_state(job.run_id, "failed", error=error, failed_stage=stage.name,
                                       timing=(stage.name, outcome.seconds))
                    done += len(names) - names.index(stage.name)  # its stages left undone
                    say(f"✗ {job.run_id} failed in {stage.name}: {error} (log: logs/{job.run_id}.log)")
            say(describe(), done, total)
    except BaseException:
        executor.shutdown()
        for rid in in_flight:
            _settle(manifest, manifest.row(rid), stages, specs[rid])
        raise
    executor.shutdown()
    return ran
