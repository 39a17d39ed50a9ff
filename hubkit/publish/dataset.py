"""The results dataset: every published score, as rows of the one results schema (`hubkit.results`).

Results dataset `NS/<name>` layout:

| path | what |
| --- | --- |
| `rows/<key>.parquet` | the rows one publisher added (a run, an import); one file per key |
| `data/results.parquet` | every row of `rows/`, deduplicated (latest wins per run × benchmark × shots), gains recomputed |
| `models/<key>/` | a run's lm-eval-style results JSON and per-sample details, beside its rows |
| `analysis/` | what `hubkit analyze --push` put there (tables, figures, report) |
| `README.md` | the dataset card (`model_cards/results_dataset.md`), with `configs:` pointing at the consolidated file |

A publisher commits its own rows file, then rebuilds the consolidated file with `parent_commit` set to
the head it read; if another publisher committed in between (HTTP 412), it reads again and retries. So
parallel publishers never lose a row, and the consolidated file always holds every rows file.

Example:
    >>> from hubkit.publish import load_results, push_results
    >>> from hubkit.results import import_massive_sft_csv
    >>> push_results(import_massive_sft_csv("evaluation_result.csv"), "alice/study-results", key="study")
    ResultsPush(repo_id='alice/study-results', commit='…', rows_file='rows/study.parquet', models=1027, rows=29612)
    >>> load_results("alice/study-results").shape[0]
    29612
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..cards import TEMPLATES
from ..errors import HubkitError
from ..results import COLUMNS, ResultsTable, add_gains, normalize
from ..utils import slug

if TYPE_CHECKING:
    import pandas as pd
    from huggingface_hub import HfApi

CONSOLIDATED = "data/results.parquet"
#: Rebuilds of the consolidated file tried while other publishers keep moving the head.
MAX_ATTEMPTS = 8
#: Where a run published outside a sweep sends its rows: `<owner>/hubkit-results`.
DEFAULT_RESULTS = "hubkit-results"


@dataclass
class ResultsPush:
    """What `push_results` did."""

    repo_id: str
    commit: str
    rows_file: str
    models: int
    rows: int


def sweep_results_repo(owner: str, sweep: str) -> str:
    """The results dataset a sweep's runs publish to by default: `<owner>/<sweep>-results`."""
    return f"{owner}/{slug(sweep)[:80]}-results"


def default_results_repo(owner: str, sweep: str | None = None) -> str:
    """Where a published run's results rows go by default: its sweep's dataset, else `<owner>/hubkit-results`."""
    return sweep_results_repo(owner, sweep) if sweep else f"{owner}/{DEFAULT_RESULTS}"


def rows_key(text: str) -> str:
    """A file-name-safe key for a rows file."""
    key = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    if not key:
        raise HubkitError(f"cannot make a file name from {text!r}")
    return key[:120]


def _download(api: HfApi, repo_id: str, filename: str, revision: str | None = None) -> str:
    from huggingface_hub import hf_hub_download

    from ..hub import retrying

    return retrying(hf_hub_download, repo_id, filename, repo_type="dataset", revision=revision, token=api.token,
                    endpoint=api.endpoint)


def _read_rows(api: HfApi, repo_id: str, revision: str) -> pd.DataFrame:
    import pandas as pd

    from ..hub import retrying

    files = [f for f in retrying(api.list_repo_files, repo_id, repo_type="dataset", revision=revision)
             if f.startswith("rows/") and f.endswith(".parquet")]
    frames = [normalize(pd.read_parquet(_download(api, repo_id, f, revision)))  # old rows files get new columns
              for f in sorted(files)]
    if not frames:
        return normalize(pd.DataFrame(columns=COLUMNS))
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.drop_duplicates(["run_id", "benchmark", "n_shot"], keep="last")
    return add_gains(frame)


def _card(repo_id: str, frame: pd.DataFrame, notes: list[str]) -> str:
    from huggingface_hub import DatasetCard, DatasetCardData

    data = DatasetCardData(
        license="other", pretty_name=repo_id.split("/")[-1], tags=["hubkit", "hubkit-results", "evaluation"],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": CONSOLIDATED}]}],
    )
    sources = sorted(str(s) for s in frame["source"].dropna().unique())
    card = DatasetCard.from_template(
        data, template_path=str(TEMPLATES / "results_dataset.md"), repo_id=repo_id,
        models=int(frame["run_id"].nunique()), rows=len(frame), sources=sources or ["no source yet"],
        notes=notes)
    return str(card)


def push_results(table: ResultsTable, repo_id: str, key: str, private: bool = False,
                 api: HfApi | None = None, files: dict[str, Path] | None = None) -> ResultsPush:
    """Add `table`'s rows to the results dataset `repo_id` as `rows/<key>.parquet`, and rebuild the rest.

    Args:
        table: rows in the results schema.
        repo_id: the results dataset (created if missing).
        key: names the rows file; pushing the same key again replaces that publisher's rows.
        private: create the dataset private.
        api: a client; defaults to `get_api()`.
        files: more files for the same commit as the rows (repo path → local file): a model's results
            JSON and per-sample details under `models/<key>/`.

    Each Hub call retries transient failures (429, 5xx, dropped connections) with backoff (`hub.retrying`).

    Raises:
        HubkitError: the Hub refused the writes, or kept failing.
    """
    from ..hub import get_api, hub_errors

    api = api or get_api()
    rows_file = f"rows/{rows_key(key)}.parquet"
    with hub_errors(f"cannot publish results to {repo_id}", endpoint=api.endpoint):
        return _push_results(table, repo_id, rows_file, private, api, files)


def _push_results(table: ResultsTable, repo_id: str, rows_file: str, private: bool, api: HfApi,
                  files: dict[str, Path] | None) -> ResultsPush:
    from huggingface_hub.errors import HfHubHTTPError

    from ..hub import push_folder, retrying
    from ..hub.errors import http_status

    retrying(api.create_repo, repo_id, repo_type="dataset", private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / rows_file
        staged.parent.mkdir(parents=True)
        normalize(table.frame).to_parquet(staged, index=False)
        for path_in_repo, local in (files or {}).items():
            link_or_copy(Path(local), Path(tmp) / path_in_repo)
        retrying(push_folder, repo_id, tmp, repo_type="dataset", commit_message=f"Add results rows {rows_file}",
                 api=api)
    for attempt in range(MAX_ATTEMPTS):
        head = retrying(api.dataset_info, repo_id).sha
        frame = _read_rows(api, repo_id, head)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / CONSOLIDATED).parent.mkdir(parents=True)
            frame.to_parquet(Path(tmp) / CONSOLIDATED, index=False)
            (Path(tmp) / "README.md").write_text(_card(repo_id, frame, table.notes), encoding="utf-8")
            try:
                pushed = retrying(push_folder, repo_id, tmp, repo_type="dataset", parent_commit=head, api=api,
                                  commit_message=f"Rebuild {CONSOLIDATED} ({len(frame)} rows)")
            except HfHubHTTPError as e:
                if http_status(e) != 412:
                    raise
                time.sleep(min(2.0, 0.05 * 2 ** attempt))  # another publisher moved the head: read again
                continue
        return ResultsPush(repo_id, pushed.commit, rows_file, int(frame["run_id"].nunique()), len(frame))
    raise HubkitError(f"{repo_id}: the head kept moving; {rows_file} is committed, rerun to rebuild {CONSOLIDATED}")


def load_results(repo_id: str, api: HfApi | None = None) -> pd.DataFrame:
    """The consolidated results of a results dataset, as a DataFrame in the results schema.

    Raises:
        HubkitError: no such dataset, not a hubkit results dataset, or the Hub cannot be read.
    """
    import pandas as pd

    from ..hub import get_api, hub_errors

    api = api or get_api()
    with hub_errors(f"results dataset {repo_id}", not_found=f"results dataset {repo_id} not found",
                    missing_file=f"{repo_id} has no {CONSOLIDATED}: not a hubkit results dataset",
                    endpoint=api.endpoint):
        return pd.read_parquet(_download(api, repo_id, CONSOLIDATED))


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link `src` at `dst` (staging a commit without copying weights), or copy it across file systems."""
    import os
    import shutil

    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
