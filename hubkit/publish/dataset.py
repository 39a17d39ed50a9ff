"""The results dataset: every published score, as rows of the one results schema (`hubkit.results`).

Results dataset `NS/<name>` layout:

| path | what |
| --- | --- |
| `rows/<key>.parquet` | the rows one publisher added (a run, an import); one file per key, each row with its write's `sequence` |
| `data/results.parquet` | every row of `rows/`, one per score: the latest write wins (`results.consolidate`), gains recomputed |
| `models/<key>/` | a run's lm-eval-style results JSON and per-sample details, beside its rows |
| `analysis/` | what `hubkit analyze --push` put there (tables, figures, report) |
| `README.md` | the dataset card (`model_cards/results_dataset.md`), with `configs:` pointing at the consolidated file |
| `LICENSE.md` | the terms of the sources the rows came from |

`push_results` is the table's one write path, for evaluations, publishing and imports alike. It reads every rows
file at the head, gives the new rows the next write number (`sequence`), checks the invariants over the whole
dataset (`results.validate`: one scale and direction per benchmark and metric, values in range, one score per
identity and write) and only then commits the rows file, the rebuilt consolidated file and the card together,
with `parent_commit` set to the head it read. A conflicting write is refused before anything is committed; if
another publisher committed in between (HTTP 412), it reads again and retries, so parallel publishers never lose
a row. Which of two rows of one score wins is the later write's, recorded, never a file name's order.

Example:
    >>> from hubkit.importers import import_massive_sft_csv
    >>> from hubkit.publish import load_results, push_results
    >>> push_results(import_massive_sft_csv("evaluation_result.csv"), "alice/study-results", key="study")
    ResultsPush(repo_id='alice/study-results', commit='…', rows_file='rows/study.parquet', models=1027, rows=29612, ...)
    >>> load_results("alice/study-results").shape[0]
    29612
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..cards import TEMPLATES
from ..errors import HubkitError
from ..results import COLUMNS, Replaced, ResultsTable, consolidate, normalize, supersede, validate
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
    """What `push_results` did: the commit, the rows file, the dataset's size after it, the write's sequence
    number, and the scores this write replaced (`replaced`: earlier values of the same scores that differ)."""

    repo_id: str
    commit: str
    rows_file: str
    models: int
    rows: int
    sequence: int = 0
    replaced: list[Replaced] = field(default_factory=list)


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


def _read_rows(api: HfApi, repo_id: str, revision: str, own: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The dataset's rows at `revision`, normalised (old files get the new columns): every rows file but `own`, and
    `own` (the rows this write replaces), each read once."""
    import pandas as pd

    from ..hub import retrying

    files = [f for f in retrying(api.list_repo_files, repo_id, repo_type="dataset", revision=revision)
             if f.startswith("rows/") and f.endswith(".parquet")]
    frames = {f: normalize(pd.read_parquet(_download(api, repo_id, f, revision))) for f in sorted(files)}
    empty = normalize(pd.DataFrame(columns=COLUMNS))
    others = [frame for f, frame in frames.items() if f != own]
    return pd.concat(others, ignore_index=True) if others else empty, frames.get(own, empty)


def _card(repo_id: str, frame: pd.DataFrame, notes: list[str]) -> str:
    from huggingface_hub import DatasetCard, DatasetCardData

    data = DatasetCardData(
        license="other", license_name="per-source-terms", license_link="LICENSE.md", pretty_name=repo_id.split("/")[-1], tags=["hubkit", "hubkit-results", "evaluation"],
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
    import pandas as pd
    from huggingface_hub.errors import HfHubHTTPError

    from ..hub import push_folder, retrying
    from ..hub.errors import http_status

    rows = validate(table.frame, where=rows_file)  # the new rows alone first: the error names them, not the dataset
    retrying(api.create_repo, repo_id, repo_type="dataset", private=private, exist_ok=True)
    for attempt in range(MAX_ATTEMPTS):
        head = retrying(api.dataset_info, repo_id).sha
        assert head is not None  # a Hub answers a dataset's info with its commit
        others, before = _read_rows(api, repo_id, head, own=rows_file)
        known = pd.concat([others["sequence"], before["sequence"]])
        sequence = int(known.max()) + 1 if known.notna().any() else 1
        if _same_rows(before, rows):  # the same rows again: the same write, nothing to commit
            sequence = int(before["sequence"].iloc[0])
        mine = rows.assign(sequence=sequence)
        merged, replaced = consolidate(pd.concat([others, mine], ignore_index=True), where=repo_id)
        replaced += supersede(pd.concat([before, mine], ignore_index=True), repo_id)[1]  # this key's earlier rows
        with tempfile.TemporaryDirectory() as tmp:
            staged = Path(tmp) / rows_file
            staged.parent.mkdir(parents=True)
            mine.to_parquet(staged, index=False)
            for path_in_repo, local in (files or {}).items():
                link_or_copy(Path(local), Path(tmp) / path_in_repo)
            (Path(tmp) / CONSOLIDATED).parent.mkdir(parents=True, exist_ok=True)
            merged.to_parquet(Path(tmp) / CONSOLIDATED, index=False)
            (Path(tmp) / "README.md").write_text(_card(repo_id, merged, table.notes), encoding="utf-8")
            (Path(tmp) / "LICENSE.md").write_text(_license(repo_id, merged), encoding="utf-8")
            try:
                pushed = retrying(push_folder, repo_id, tmp, repo_type="dataset", parent_commit=head, api=api,
                                  commit_message=f"Add results rows {rows_file} (write {sequence}); rebuild "
                                                 f"{CONSOLIDATED} ({len(merged)} rows)")
            except HfHubHTTPError as e:
                if http_status(e) != 412:
                    raise
                time.sleep(min(2.0, 0.05 * 2 ** attempt))  # another publisher moved the head: read again
                continue
        return ResultsPush(repo_id, pushed.commit, rows_file, int(merged["run_id"].nunique()), len(merged), sequence,
                           replaced)
    raise HubkitError(f"{repo_id}: the head kept moving; nothing of {rows_file} was committed: rerun to publish it")


def _same_rows(before: pd.DataFrame, rows: pd.DataFrame) -> bool:
    """Whether a key's earlier write (one sequence number) holds exactly `rows`."""
    if before.empty or len(before) != len(rows) or before["sequence"].isna().any() or before["sequence"].nunique() != 1:
        return False
    drop = ["sequence"]
    return before.drop(columns=drop).reset_index(drop=True).equals(rows.drop(columns=drop).reset_index(drop=True))


def _license(repo_id: str, frame: pd.DataFrame) -> str:
    """`LICENSE.md`: the results carry their sources' terms (the card's `license: other` links here)."""
    sources = sorted(str(s) for s in frame["source"].dropna().unique())
    lines = [f"# Terms of {repo_id}", "", "The rows of this dataset are scores computed or published by others; each "
             "row names its source (`source`, `source_file`) and harness. Their terms apply:", ""]
    terms = {"massive-sft-csv": "the study's released results (Harada et al., arXiv 2506.14681): no licence stated "
                                "by the authors; cite the paper",
             "hubkit": "scores computed by hubkit on the benchmarks named in each row; the benchmarks' own licences "
                       "apply to their data, not to these numbers",
             "lm-eval": "scores imported from lm-evaluation-harness results files: their publisher's terms"}
    lines += [f"- `{s}`: {terms.get(s, 'the terms of whoever published the imported file')}" for s in sources]
    return "\n".join(lines) + "\n"


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
        frame = pd.read_parquet(_download(api, repo_id, CONSOLIDATED))
    return validate(frame, where=f"{repo_id}/{CONSOLIDATED}")  # checked on read too: a file edited by hand


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link `src` at `dst` (staging a commit without copying weights), or copy it across file systems."""
    import os
    import shutil

    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
