"""Sweeps: expand a grid of runs, run each through its stages on an executor, record it all in a manifest."""

from .executors import Executor, Job, LocalExecutor, Outcome, RayExecutor
from .grid import expand
from .manifest import Manifest, ManifestRow
from .runner import SweepReport, plan_sweep, run_sweep, sweep_status
from .stages import STAGES, Stage, register_stage

__all__ = ["STAGES", "Executor", "Job", "LocalExecutor", "Manifest", "ManifestRow", "Outcome", "RayExecutor", "Stage",
           "SweepReport", "expand", "plan_sweep", "register_stage", "run_sweep", "sweep_status"]
