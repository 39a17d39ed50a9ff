"""The stages a sweep carries each run through, and the function a worker calls to run one of them.

A `Stage` names its manifest states and knows how to run itself on a `RunSpec` and how to tell, from
what is on disk, whether it already finished (so that a sweep killed between "done" and "recorded" never
runs it twice). Later pipeline stages (evaluation, publishing) register here with `register_stage`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import RunSpec, StageOptions, build, run_id
from ..errors import HubkitError
from ..runs import RunDir
from ..utils import JsonRecord, first_line


@dataclass(frozen=True)
class Stage:
    """One step of a run's life in a sweep.

    Attributes:
        name: the stage as `SweepSpec.stages` lists it (`train`).
        active: the manifest state while it runs (`training`).
        done: the manifest state once it finished (`trained`).
        run: does the work for a run, given the sweep's `StageOptions`; executed in a worker process.
        is_done: whether the work is already on disk for this run.
        run_many: does the work for several runs of one base in one process (what they share is done once);
            returns each run's error, or None where it succeeded. Stages without it run one job per run.
    """

    name: str
    active: str
    done: str
    run: Callable[[RunSpec, StageOptions], Any]
    is_done: Callable[[RunSpec], bool]
    run_many: Callable[[list[RunSpec], StageOptions], dict[str, str | None]] | None = None


def _train(spec: RunSpec, options: StageOptions) -> None:
    import dataclasses

    from ..train import train

    if spec.report_to == "trackio" and not spec.trackio_project and options.sweep:
        spec = dataclasses.replace(spec, trackio_project=options.sweep)  # the sweep's runs in one trackio project
    train(spec, progress=False, command="hubkit train config.yaml")


def _trained(spec: RunSpec) -> bool:
    return RunDir.of(spec).is_trained()


def _eval(spec: RunSpec, options: StageOptions) -> None:
    """The sweep's suite on the final model; the base model's results come from (or fill) the shared cache."""
    from ..eval.harness import evaluate_model

    report = evaluate_model(str(RunDir.of(spec).root), suite=options.eval_suite, limit=options.eval_limit,
                            batch_size=options.eval_batch_size, data_namespace=options.data_namespace, progress=False)
    for name, score in report.scores.items():
        gain = f" ({report.gains[name]:+.1f})" if name in report.gains else ""
        print(f"{name}: {score:.1f}{gain}")


def _eval_many(specs: list[RunSpec], options: StageOptions) -> dict[str, str | None]:
    """The sweep's suite on several runs of one base in one process: data, prompts and the base loaded once."""
    from ..eval.harness import evaluate_models

    errors: dict[str, str] = {}
    folders = [str(RunDir.of(spec).root) for spec in specs]
    reports = evaluate_models(folders, suite=options.eval_suite, limit=options.eval_limit,
                              batch_size=options.eval_batch_size, data_namespace=options.data_namespace,
                              progress=False, errors=errors)
    for report in reports:
        if report is not None:
            print(f"{report.model.name}: " + ", ".join(f"{k} {v:.1f}" for k, v in report.scores.items()))
    return {run_id(spec): errors.get(folder) for spec, folder in zip(specs, folders)}


def _evaluated(spec: RunSpec) -> bool:
    return RunDir.of(spec).is_evaluated()


def _publish(spec: RunSpec, options: StageOptions) -> None:
    """Every saved epoch checkpoint as its own repo, then the final model (whose record marks the stage done)."""
    from ..publish import publish_run
    from ..runs import load_run

    paths = RunDir.of(spec)
    for epoch in sorted(load_run(paths.root).epoch_dirs, key=lambda e: (e == spec.epochs, e)):
        result = publish_run(paths.root, namespace=options.namespace, private=options.private,
                             base_model=options.base_model_id, sweep=options.sweep, epoch=epoch,
                             subset_eval_results=options.subset_eval_results)
        print(f"published {result.repo_id} @ {result.commit} ({'new commit' if result.changed else 'unchanged'})")


def _published(spec: RunSpec) -> bool:
    return RunDir.of(spec).is_published()


@dataclass
class Outcome(JsonRecord):
    """How one stage of one run went: what `execute` returns (as `to_json()` across processes)."""

    ok: bool
    seconds: float
    error: str | None = None  # one line, when it failed
    runs: dict[str, str | None] = field(default_factory=dict)  # a grouped job: each run's error (None: done)


STAGES: dict[str, Stage] = {}


def register_stage(stage: Stage) -> None:
    """Make a stage available to sweeps (`stages: [train, <name>]`)."""
    STAGES[stage.name] = stage


register_stage(Stage("train", "training", "trained", _train, _trained))
register_stage(Stage("eval", "evaluating", "evaluated", _eval, _evaluated, _eval_many))
register_stage(Stage("publish", "publishing", "published", _publish, _published))


def get_stage(name: str) -> Stage:
    if name not in STAGES:
        raise HubkitError(f"sweep: unknown stage `{name}` (available: {', '.join(STAGES)})")
    return STAGES[name]


@contextlib.contextmanager
def _output_to(log_path: Path):
    """Send this process's stdout and stderr (file descriptors too, so C code and subprocesses follow) to a log."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "a", buffering=1, encoding="utf-8") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield log
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def execute(stage_name: str, spec_values: dict[str, Any], log_path: str,
            options: StageOptions | dict[str, Any] | None = None,
            group: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run one stage of one run with its output going to `log_path`; what every executor calls.

    `options` come as a `StageOptions`, or as its `to_json()` from another process. `group` adds more runs of the
    same base to a stage with `run_many` (`{"run_id", "spec", "log"}` each): they run in this one process, the
    output goes to the first run's log, and each other run's log says where it went.

    Returns `Outcome(...).to_json()` (JSON, so that it crosses process and Ray boundaries as is); the full
    traceback of an unexpected error goes to the log.
    """
    stage = get_stage(stage_name)
    spec = build(RunSpec, spec_values, where="run")
    options = options if isinstance(options, StageOptions) else StageOptions.from_json(options)
    log = Path(log_path)
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    members = [spec] + [build(RunSpec, g["spec"], where="run") for g in group or []]
    for g in group or []:
        with open(g["log"], "a", encoding="utf-8") as other:
            print(f"=== {stage.name} {g['run_id']} with {len(members)} runs of one base in one process: see "
                  f"logs/{log.name}", file=other)
    runs: dict[str, str | None] = {}
    with _output_to(log) as out:
        names = ", ".join(run_id(m) for m in members)
        print(f"=== {stage.name} {names} (pid {os.getpid()}) at {time.strftime('%Y-%m-%d %H:%M:%S')}",
              file=out, flush=True)
        try:
            if len(members) > 1 and stage.run_many is not None:
                runs = stage.run_many(members, options)
                failed = {k: v for k, v in runs.items() if v}
                ok, error = not failed, "; ".join(f"{k}: {v}" for k, v in failed.items()) or None
                for k, v in failed.items():
                    print(f"Error: {k}: {v}", file=out)
            else:
                stage.run(spec, options)
                ok, error = True, None
        except HubkitError as e:
            ok, error = False, str(e)
            print(f"Error: {error}", file=out)
        except Exception as e:  # a bug or a library failure: keep the traceback in the log
            ok, error = False, type(e).__name__ + (f": {first_line(e)}" if str(e).strip() else "")
            traceback.print_exc(file=out)
        seconds = time.time() - started
        print(f"=== {'done' if ok else 'failed'} in {seconds:.1f} s", file=out, flush=True)
    if len(members) > 1 and not runs:  # the whole group failed at once
        runs = {run_id(m): error for m in members}
    return Outcome(ok, seconds, error, runs).to_json()
