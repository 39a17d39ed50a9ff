"""Training metrics with trackio: `run.report_to: trackio` logs what the trainer logs (loss, learning rate, gradient
norm, epoch) to trackio's local store, where `trackio show --project PROJECT` draws every run of a project; the
run's own rows are then kept in its run directory (`trackio/`), from which publishing syncs them to the Hub
(`hubkit.publish.tracking`).

The project is the run's `trackio_project`: the sweep's name in a sweep (so that its runs compare in one
dashboard), `hubkit` for a lone run. The run is named by its run id; training a run again replaces its rows.

Example:
    >>> spec = RunSpec(model="hubkit/tiny-llama", dataset="lima", report_to="trackio")
    >>> project_of(spec)
    'hubkit'
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import HubkitError

if TYPE_CHECKING:
    from .config import RunSpec

DEFAULT_PROJECT = "hubkit"
METRICS = "metrics.parquet"  # one row per logged step: trackio's columns (`step`, `timestamp`, `train/loss`, …)
RUN = "run.json"  # the project, the run's name, the trackio version, the rows


def project_of(spec: RunSpec) -> str:
    """The trackio project a run logs to."""
    return spec.trackio_project or DEFAULT_PROJECT


def check_tracker(spec: RunSpec) -> None:
    """Say, before anything is trained, that the tracker the run reports to is not installed.

    Raises:
        HubkitError: `report_to: trackio` without the `trackio` package.
    """
    if spec.report_to == "trackio" and importlib.util.find_spec("trackio") is None:
        raise HubkitError("run.report_to=trackio needs the trackio package: pip install 'hubkit[trackio]'")


def forget_run(project: str, name: str) -> None:
    """Delete the rows an earlier training of this run left in the project (a run trained again replaces them)."""
    import trackio
    from trackio.sqlite_storage import SQLiteStorage

    if not SQLiteStorage.get_project_db_path(project).exists():  # a new project: nothing to forget
        return
    for run in trackio.Api().runs(project):
        if run.name == name:
            run.delete()


def export_run(project: str, name: str, folder: str | Path) -> int:
    """Write the run's logged rows to `folder/metrics.parquet` and describe them in `folder/run.json`; return the
    number of rows (0: nothing was logged, and nothing is written)."""
    import pandas as pd
    import trackio
    from trackio.sqlite_storage import SQLiteStorage

    logs = SQLiteStorage.get_logs(project, name)
    if not logs:
        return 0
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(logs)
    frame.to_parquet(folder / METRICS, index=False)
    about = {"project": project, "run": name, "trackio": trackio.__version__, "rows": len(frame),
             "columns": [str(c) for c in frame.columns]}
    (folder / RUN).write_text(json.dumps(about, indent=2) + "\n", encoding="utf-8")
    return len(frame)
