"""Publishing to the Hub: the results dataset that every publisher and import adds rows to.

Results dataset `NS/<name>` layout:

| path | what |
| --- | --- |
| `rows/<key>.parquet` | the rows one publisher added (a run, an import); one file per key |
| `data/results.parquet` | every row of `rows/`, deduplicated (latest wins per run × benchmark × shots), gains recomputed |
| `README.md` | the dataset card (`model_cards/results_dataset.md`), with `configs:` pointing at the consolidated file |

A publisher commits its own rows file, then rebuilds the consolidated file with `parent_commit` set to
the head it read; if another publisher committed in between (HTTP 412), it reads again and retries. So
parallel publishers never lose a row, and the consolidated file always holds every rows file.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import HubkitError
from .results import COLUMNS, ResultsTable, add_gains

if TYPE_CHECKING:
    import pandas as pd
    from huggingface_hub import HfApi

TEMPLATES = Path(__file__).resolve().parent.parent / "model_cards"
CONSOLIDATED = "data/results.parquet"
MAX_ATTEMPTS = 8


@dataclass
class ResultsPush:
    """What `push_results` did."""

    repo_id: str
    commit: str
    rows_file: str
    models: int
    rows: int


def _read_rows(api: HfApi, repo_id: str, revision: str) -> pd.DataFrame:
    import pandas as pd
    from huggingface_hub import hf_hub_download

    files = [f for f in api.list_repo_files(repo_id, repo_type="dataset", revision=revision)
             if f.startswith("rows/") and f.endswith(".parquet")]
    frames = []
    for f in sorted(files):
        local = hf_hub_download(repo_id, f, repo_type="dataset", revision=revision, token=api.token,
                                endpoint=api.endpoint)
        frames.append(pd.read_parquet(local))
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
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


def rows_key(text: str) -> str:
    """A file-name-safe key for a rows file."""
    key = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    if not key:
        raise HubkitError(f"cannot make a file name from {text!r}")
    return key[:120]


def push_results(table: ResultsTable, repo_id: str, key: str, private: bool = False,
                 api: HfApi | None = None) -> ResultsPush:
    """Add `table`'s rows to the results dataset `repo_id` as `rows/<key>.parquet`, and rebuild the rest.

    Args:
        table: rows in the results schema.
        repo_id: the results dataset (created if missing).
        key: names the rows file; pushing the same key again replaces that publisher's rows.
        private: create the dataset private.
        api: a client; defaults to `get_api()`.

    Raises:
        HubkitError: the Hub refused the writes.
    """
    from huggingface_hub.errors import HfHubHTTPError

    from .hub import get_api, push_folder

    api = api or get_api()
    rows_file = f"rows/{rows_key(key)}.parquet"
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            staged = Path(tmp) / rows_file
            staged.parent.mkdir(parents=True)
            table.frame[COLUMNS].to_parquet(staged, index=False)
            push_folder(repo_id, tmp, repo_type="dataset", commit_message=f"Add results rows {rows_file}", api=api)
        for attempt in range(MAX_ATTEMPTS):
            head = api.dataset_info(repo_id).sha
            frame = _read_rows(api, repo_id, head)
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / CONSOLIDATED).parent.mkdir(parents=True)
                frame.to_parquet(Path(tmp) / CONSOLIDATED, index=False)
                (Path(tmp) / "README.md").write_text(_card(repo_id, frame, table.notes), encoding="utf-8")
                try:
                    pushed = push_folder(repo_id, tmp, repo_type="dataset", parent_commit=head, api=api,
                                         commit_message=f"Rebuild {CONSOLIDATED} ({len(frame)} rows)")
                except HfHubHTTPError as e:
                    if e.response is None or e.response.status_code != 412:
                        raise
                    time.sleep(min(2.0, 0.05 * 2 ** attempt))  # another publisher moved the head: read again
                    continue
            return ResultsPush(repo_id, pushed.commit, rows_file, int(frame["run_id"].nunique()), len(frame))
    except HfHubHTTPError as e:
        raise HubkitError(f"cannot publish results to {repo_id}: {str(e).splitlines()[0]}") from None
    raise HubkitError(f"{repo_id}: the head kept moving; {rows_file} is committed, rerun to rebuild {CONSOLIDATED}")


def load_results(repo_id: str, api: HfApi | None = None) -> pd.DataFrame:
    """The consolidated results of a results dataset, as a DataFrame in the results schema."""
    import pandas as pd
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

    from .hub import get_api

    api = api or get_api()
    try:
        path = hf_hub_download(repo_id, CONSOLIDATED, repo_type="dataset", token=api.token, endpoint=api.endpoint)
    except RepositoryNotFoundError:
        raise HubkitError(f"results dataset {repo_id} not found") from None
    except EntryNotFoundError:
        raise HubkitError(f"{repo_id} has no {CONSOLIDATED}: not a hubkit results dataset") from None
    return pd.read_parquet(path)

