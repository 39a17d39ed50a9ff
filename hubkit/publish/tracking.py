"""A run's trackio metrics on the Hub, beside its model: the dataset `<owner>/<project>-trackio`, one folder per run
(`runs/<run id>/metrics.parquet`, trackio's rows, and `run.json`), which the model card links.

One dataset per trackio project (a sweep's runs share one), so that the curves of a sweep are read from one place:
`pd.read_parquet("hf://datasets/<owner>/<project>-trackio/runs/<run id>/metrics.parquet")`.

Example:
    >>> push_tracking(load_run("runs/RUN_ID"), "alice", api)
    TrackingLink(repo_id='alice/hubkit-trackio', path='runs/RUN_ID', project='hubkit', rows=8)
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..runs import RunResult
from ..tracking import METRICS, RUN

if TYPE_CHECKING:
    from huggingface_hub import HfApi

DATASET_CARD = """---
tags: [hubkit, trackio, training-metrics]
---
# {project}: training metrics

What the trainer logged for each hubkit run of the trackio project `{project}` (loss, learning rate, gradient norm,
epoch, per logged step), synced when the run was published. One folder per run, named by its run id:

- `runs/<run id>/metrics.parquet`: trackio's rows (`step`, `timestamp`, `train/loss`, …);
- `runs/<run id>/run.json`: the project, the run, the trackio version, the columns.

Each model's card links its folder; locally, `trackio show --project {project}` draws the same runs.
"""


@dataclass
class TrackingLink:
    """Where a run's metrics are on the Hub: `path` inside the dataset `repo_id`."""

    repo_id: str
    path: str
    project: str
    rows: int


def push_tracking(run: RunResult, owner: str, api: HfApi, private: bool = False) -> TrackingLink | None:
    """Sync the run's trackio rows (its run directory's `trackio/`) to `<owner>/<project>-trackio`; None when the run
    logged none (`report_to` was not trackio). Unchanged files make no commit."""
    from ..hub import push_folder, retrying

    folder = run.paths.tracking
    if not (folder / METRICS).is_file():
        return None
    about = json.loads((folder / RUN).read_text(encoding="utf-8"))
    project = str(about["project"])
    repo_id = f"{owner}/{project}-trackio"
    path = f"runs/{run.run_id}"
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp)
        (staged / path).mkdir(parents=True)
        for name in (METRICS, RUN):
            shutil.copyfile(folder / name, staged / path / name)
        (staged / "README.md").write_text(DATASET_CARD.format(project=project), encoding="utf-8")
        retrying(api.create_repo, repo_id, repo_type="dataset", private=private, exist_ok=True)
        retrying(push_folder, repo_id, staged, repo_type="dataset", api=api,
                 commit_message=f"Training metrics of {run.run_id}")
    return TrackingLink(repo_id, path, project, int(about["rows"]))
