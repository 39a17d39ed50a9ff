"""Expand a `SweepSpec` into the runs it stands for."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

from ..config import RunSpec, SweepSpec, build, run_id
from ..errors import HubkitError

RUN_FIELDS = {f.name for f in dataclasses.fields(RunSpec)}


def _axis_values(axis: str, values: list[Any]) -> list[dict[str, Any]]:
    out = []
    for value in values:
        if isinstance(value, dict):
            unknown = set(value) - RUN_FIELDS
            if unknown:
                raise HubkitError(f"sweep: grid axis `{axis}` sets unknown setting `{sorted(unknown)[0]}`")
            out.append(dict(value))
        elif axis in RUN_FIELDS:
            out.append({axis: value})
        else:
            raise HubkitError(f"sweep: grid axis `{axis}` is not a run setting; list mappings of settings instead")
    return out


def _matches(spec: RunSpec, pattern: dict[str, Any]) -> bool:
    for key, value in pattern.items():
        if key not in RUN_FIELDS:
            raise HubkitError(f"sweep: `exclude` names unknown setting `{key}`")
        if getattr(spec, key) != value and str(getattr(spec, key)) != str(value):
            return False
    return True


def expand(sweep: SweepSpec, runs_dir: str | Path | None = None) -> list[tuple[str, RunSpec]]:
    """The sweep's runs as (run id, spec), in grid order, without duplicates.

    Args:
        sweep: the sweep.
        runs_dir: where run directories go (default `<sweep dir>/runs`, made absolute so any worker finds it).

    Raises:
        HubkitError: a grid value that no run can use, named by its setting.
    """
    runs_dir = Path(runs_dir) if runs_dir else sweep.directory / "runs"
    base = {**sweep.run, "output_dir": str(runs_dir.resolve())}
    axes = [_axis_values(axis, values) for axis, values in sweep.grid.items()]
    combos = [dict(itertools.chain.from_iterable(d.items() for d in combo)) for combo in itertools.product(*axes)]
    specs: list[RunSpec] = []
    for combo in combos:
        spec = build(RunSpec, {**base, **combo}, where=f"sweep {sweep.name}")
        if not any(_matches(spec, pattern) for pattern in sweep.exclude):
            specs.append(spec)
    for extra in sweep.include:
        if not isinstance(extra, dict):
            raise HubkitError("sweep: each `include` entry must be a mapping of settings")
        specs.append(build(RunSpec, {**base, **extra}, where=f"sweep {sweep.name}"))
    from ..data.registry import check_name

    seen: dict[str, RunSpec] = {}
    for spec in specs:
        check_name(spec.dataset)  # a typo fails now, not in every run's training
        seen.setdefault(run_id(spec), spec)
    if not seen:
        raise HubkitError(f"sweep {sweep.name}: the grid is empty after exclusions")
    return list(seen.items())
