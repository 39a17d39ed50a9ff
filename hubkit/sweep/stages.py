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
from dataclasses import dataclass
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
    """

    name: str
    active: str
    done: str
    run: Callable[[RunSpec, StageOptions], Any]
    is_done: Callable[[RunSpec], bool]


def _train(spec: RunSpec, options: StageOptions) -> None:
    from ..train import train

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


STAGES: dict[str, Stage] = {}


def register_stage(stage: Stage) -> None:
    """Make a stage available to sweeps (`stages: [train, <name>]`)."""
    STAGES[stage.name] = stage


register_stage(Stage("train", "training", "trained", _train, _trained))
register_stage(Stage("eval", "evaluating", "evaluated", _eval, _evaluated))
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
            options: StageOptions | dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one stage of one run with its output going to `log_path`; what every executor calls.

    `options` come as a `StageOptions`, or as its `to_json()` from another process.

    Returns `Outcome(...).to_json()` (JSON, so that it crosses process and Ray boundaries as is); the full
    traceback of an unexpected error goes to the log.
    """
    stage = get_stage(stage_name)
    spec = build(RunSpec, spec_values, where="run")
    log = Path(log_path)
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with _output_to(log) as out:
        print(f"=== {stage.name} {run_id(spec)} (pid {os.getpid()}) at {time.strftime('%Y-%m-%d %H:%M:%S')}",
              file=out, flush=True)
        try:
            stage.run(spec, options if isinstance(options, StageOptions) else StageOptions.from_json(options))
            ok, error = True, None
        except HubkitError as e:
            ok, error = False, str(e)
            print(f"Error: {error}", file=out)
        except Exception as e:  # a bug or a library failure: keep the traceback in the log
            ok, error = False, type(e).__name__ + (f": {first_line(e)}" if str(e).strip() else "")
            traceback.print_exc(file=out)
        seconds = time.time() - started
        print(f"=== {'done' if ok else 'failed'} in {seconds:.1f} s", file=out, flush=True)
    return Outcome(ok, seconds, error).to_json()
