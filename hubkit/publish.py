"""Publishing to the Hub: trained runs as model repos with cards, and the results dataset.

`publish_run` pushes a run directory as one commit: the weights or adapter and tokenizer at the repo root
(so `from_pretrained(repo)` works), `hubkit_config.yaml` (the resolved run config), `hubkit_run.json` (the
run record), `training_metrics.json`, `loss_curve.png` and the card. Files that did not change are not
uploaded, and a run published twice makes no second commit. Local paths never reach the Hub: the base
model is named by its Hub id everywhere.

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

from .cards import TEMPLATES, eval_results_files, loss_curve_png, render_card
from .errors import HubkitError
from .results import COLUMNS, ResultRow, ResultsTable, add_gains, normalize

if TYPE_CHECKING:
    import pandas as pd
    from huggingface_hub import HfApi

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
        frames.append(normalize(pd.read_parquet(local)))  # rows files written before a column existed get it
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


def rows_key(text: str) -> str:
    """A file-name-safe key for a rows file."""
    key = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    if not key:
        raise HubkitError(f"cannot make a file name from {text!r}")
    return key[:120]


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

    Transient failures (429, 5xx, dropped connections) are retried with backoff (`with_retries`).

    Raises:
        HubkitError: the Hub refused the writes, or kept failing.
    """
    from huggingface_hub.errors import HfHubHTTPError

    from .hub import get_api

    api = api or get_api()
    rows_file = f"rows/{rows_key(key)}.parquet"
    from .hub.client import transport_errors

    try:
        return with_retries(lambda: _push_results(table, repo_id, rows_file, private, api, files))
    except HfHubHTTPError as e:
        raise HubkitError(f"cannot publish results to {repo_id}: {str(e).splitlines()[0]}") from None
    except transport_errors() as e:
        raise HubkitError(f"cannot reach the Hub at {api.endpoint} to publish results to {repo_id}: {e}") from None


def _push_results(table: ResultsTable, repo_id: str, rows_file: str, private: bool, api: HfApi,
                  files: dict[str, Path] | None) -> ResultsPush:
    """`push_results` without the error translation, so that `with_retries` sees the Hub's errors."""
    from huggingface_hub.errors import HfHubHTTPError

    from .hub import push_folder

    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / rows_file
        staged.parent.mkdir(parents=True)
        normalize(table.frame).to_parquet(staged, index=False)
        for path_in_repo, local in (files or {}).items():
            _link_or_copy(Path(local), Path(tmp) / path_in_repo)
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



# ------------------------------------------------------------------------------------------ model repos

PUBLISHED_FILE = "published.json"
RETRY_STATUS = {429, 500, 502, 503, 504}


@dataclass
class PublishResult:
    """What `publish_run` did: `changed` is False when the repo already held exactly this run."""

    repo_id: str
    commit: str
    changed: bool
    files: int
    results: ResultsPush | None = None  # the rows added to the results dataset, when they were pushed
    results_repo: str | None = None  # where the run's results rows go (or already are)
    evaluated: bool = False  # whether the run has an evaluation to publish as rows


RETRY_ATTEMPTS = 5
RETRY_FIRST_WAIT = 0.5


def with_retries(fn, attempts: int | None = None, first_wait: float | None = None):
    """Call `fn()`, retrying transient Hub failures (429, 5xx, dropped connections) with exponential backoff."""
    from huggingface_hub.errors import HfHubHTTPError

    from .hub.client import transport_errors

    attempts = attempts or RETRY_ATTEMPTS
    first_wait = RETRY_FIRST_WAIT if first_wait is None else first_wait
    for attempt in range(attempts):
        try:
            return fn()
        except HfHubHTTPError as e:
            status = e.response.status_code if e.response is not None else None
            if status not in RETRY_STATUS or attempt == attempts - 1:
                raise
        except transport_errors():
            if attempt == attempts - 1:
                raise
        time.sleep(first_wait * 2 ** attempt)
    raise AssertionError("unreachable")


def _link_or_copy(src: Path, dst: Path) -> None:
    import os
    import shutil

    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _public_base(run, base_model: str | None) -> str:
    if base_model:
        return base_model
    if Path(run.spec.model).exists():
        raise HubkitError(f"run {run.run_id}: its base model is a local directory ({Path(run.spec.model).name}); "
                          "give its Hub id with --base-model")
    return run.spec.model


DEFAULT_RESULTS = "hubkit-results"


def sweep_results_repo(owner: str, sweep: str) -> str:
    """The results dataset a sweep's runs publish to by default: `<owner>/<sweep>-results`."""
    from .config import slug

    return f"{owner}/{slug(sweep)[:80]}-results"


def default_results_repo(owner: str, sweep: str | None = None) -> str:
    """Where a published run's results rows go by default: its sweep's dataset, else `<owner>/hubkit-results`."""
    return sweep_results_repo(owner, sweep) if sweep else f"{owner}/{DEFAULT_RESULTS}"


def published_file(epoch: int | None) -> str:
    """Where a run directory records a publish: `published.json` (final model), `published-epoch-<k>.json`."""
    return PUBLISHED_FILE if epoch is None else f"published-epoch-{epoch}.json"


def run_evaluation(run, repo_id: str, base_model: str, epoch: int | None = None) -> tuple[Path | None, list[ResultRow]]:
    """The run's latest `hubkit eval` results file and its results-schema rows (none for an epoch checkpoint)."""
    import json

    from .eval.harness import latest_results
    from .results import lm_eval_rows

    path = latest_results(run.run_dir / "eval") if epoch is None else None
    if path is None:
        return None, []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise HubkitError(f"run {run.run_id}: unreadable evaluation results {path.name}: {e}") from None
    axes = {**run.spec.axes(), "base_model": base_model}
    rows = lm_eval_rows(data, model_id=repo_id, run_id=run.run_id, axes=axes, source="hubkit", file=path.name)
    return path, rows


def stage_run(run, folder: Path, repo_id: str, base_model: str, sweep: str | None, epoch: int | None = None,
              subset_eval_results: bool = False) -> None:
    """Lay out the repo content of a run (or of its checkpoint after `epoch`) in `folder`.

    Subset scores go into `.eval_results/` only with `subset_eval_results` (see `cards.eval_results_files`).
    """
    import json

    import yaml

    from .train import CONFIG_FILE

    model_dir = run.epoch_dirs.get(epoch or run.spec.epochs)
    if model_dir is None or not model_dir.is_dir():
        saved = ", ".join(str(e) for e in sorted(run.epoch_dirs))
        raise HubkitError(f"run {run.run_id} has no model saved after epoch {epoch} (saved: {saved})")
    for f in sorted(model_dir.rglob("*")):
        if f.is_file():
            _link_or_copy(f, folder / f.relative_to(model_dir))
    config = yaml.safe_load((run.run_dir / CONFIG_FILE).read_text())
    config["model"] = base_model
    (folder / "hubkit_config.yaml").write_text(
        f"# Resolved config of {run.run_id}; reproduce with: hubkit train hubkit_config.yaml\n"
        + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    axes = {**run.record.get("axes", {}), "base_model": base_model, "epochs": epoch or run.spec.epochs}
    record = {**run.record, "base_model": base_model, "axes": axes, "checkpoint_epoch": epoch,
              "command": "hubkit train hubkit_config.yaml", "sweep": sweep}
    for key in ("started_at", "finished_at"):  # timings live in the metrics; keep the repo content reproducible
        record.pop(key, None)
    (folder / "hubkit_run.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    metrics = dict(run.metrics)
    (folder / "training_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    curve = loss_curve_png(run, folder / "loss_curve.png")
    results_file, results = run_evaluation(run, repo_id, base_model, epoch)
    if results_file is not None:
        _link_or_copy(results_file, folder / "eval" / results_file.name)
        for name, text in eval_results_files(results, repo_id, include_subsets=subset_eval_results).items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
    (folder / "README.md").write_text(render_card(run, repo_id, base_model, sweep=sweep, loss_curve=curve,
                                                  epoch=epoch, results=results,
                                                  subset_eval_results=subset_eval_results), encoding="utf-8")


def _file_ids(path: Path) -> tuple[str, str]:
    """(git blob sha1, sha256) of a file, read once in chunks."""
    import hashlib

    size = path.stat().st_size
    git, sha = hashlib.sha1(f"blob {size}\0".encode()), hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            git.update(chunk)
            sha.update(chunk)
    return git.hexdigest(), sha.hexdigest()


def repo_matches(api: HfApi, repo_id: str, folder: Path) -> str | None:
    """The repo's head if it already holds every file of `folder` byte for byte (one request), else None."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        info = api.model_info(repo_id, files_metadata=True)
    except HfHubHTTPError:
        return None
    remote = {s.rfilename: s for s in info.siblings or []}
    for path in (p for p in folder.rglob("*") if p.is_file()):
        sibling = remote.get(path.relative_to(folder).as_posix())
        if sibling is None:
            return None
        git, sha = _file_ids(path)
        if (sibling.lfs.sha256 if sibling.lfs else sibling.blob_id) != (sha if sibling.lfs else git):
            return None
    return info.sha


def publish_run(run_dir: str | Path, repo_id: str | None = None, namespace: str | None = None,
                private: bool = False, base_model: str | None = None, sweep: str | None = None,
                epoch: int | None = None, results_repo: str | None = None, api: HfApi | None = None,
                subset_eval_results: bool = False) -> PublishResult:
    """Publish a finished run as a model repo with its card, in one commit, and its results to a results dataset.

    Args:
        run_dir: the run directory (`hubkit train` output).
        repo_id: target repo; default `<namespace>/<run id>`.
        namespace: user or org for the default repo id; default the token's user.
        private: create the repo private.
        base_model: the base model's Hub id, when the run was trained from a local directory.
        sweep: the sweep the run belongs to: tagged on the card, and the repo joins the sweep's collection.
        epoch: publish the checkpoint saved after this epoch (`save_epochs`) as a model of its own; its
            default repo id reads `e<k>of<epochs>` (see `hubkit.config.run_id`).
        results_repo: the results dataset that receives the run's evaluation (rows, results JSON and
            per-sample details under `models/<run id>/`); default `<owner>/<sweep>-results` for a sweep's
            run, `<owner>/hubkit-results` otherwise. Nothing is pushed when the run has no evaluation or it
            was pushed before.
        api: a client; defaults to `get_api()`.
        subset_eval_results: also write scores measured on a subset of a benchmark (`--limit`, the `quick` and
            `tiny` suites) to `.eval_results/`, marked SUBSET. Off by default: those files feed the Hub's
            public benchmark leaderboards. The card and the model-index always carry every score, each
            with its sample count.

    Raises:
        HubkitError: not a run directory, a base model with no Hub id, or the Hub refused the upload.

    Example:
        >>> publish_run("runs/smollm2-135m-instruct-lima-1k-lora-e3-cosine-6f1c2a9e")
        PublishResult(repo_id='hubkit/smollm2-135m-instruct-lima-1k-lora-e3-cosine-6f1c2a9e', ...)
    """
    import json

    from huggingface_hub.errors import HfHubHTTPError

    from .config import run_id as make_run_id
    from .hub import get_api, push_folder
    from .hub.client import transport_errors
    from .train import load_run

    run = load_run(run_dir)
    api = api or get_api()
    base = _public_base(run, base_model)
    epoch = None if epoch == run.spec.epochs else epoch
    record_path = Path(run_dir) / published_file(epoch)
    previous = json.loads(record_path.read_text()) if record_path.is_file() else {}
    try:
        if repo_id is None:
            namespace = namespace or with_retries(lambda: api.whoami()["name"])
            repo_id = f"{namespace}/{make_run_id(run.spec, epoch) if epoch else run.run_id}"
        with tempfile.TemporaryDirectory() as tmp:
            stage_run(run, Path(tmp), repo_id, base, sweep, epoch, subset_eval_results=subset_eval_results)
            head = None
            if previous.get("repo_id") == repo_id:
                head = with_retries(lambda: repo_matches(api, repo_id, Path(tmp)))
            if head:  # published before and unchanged since: one request, nothing uploaded
                pushed = None
                result = PublishResult(repo_id, head, False, 0)
            else:
                with_retries(lambda: api.create_repo(repo_id, private=private, exist_ok=True))
                title = f"Publish {run.run_id}" + (f" after epoch {epoch}" if epoch else "")
                pushed = with_retries(lambda: push_folder(repo_id, tmp, commit_message=title, api=api))
                result = PublishResult(repo_id, pushed.commit, pushed.changed, pushed.files)
        if sweep and pushed is not None:
            owner = repo_id.split("/")[0]
            collection = with_retries(lambda: api.create_collection(
                title=f"hubkit sweep {sweep}", namespace=owner, exists_ok=True, private=private,
                description=f"Every model of the hubkit sweep {sweep}"))
            with_retries(lambda: api.add_collection_item(collection.slug, repo_id, "model", exists_ok=True))
        if results_repo is None:
            results_repo = default_results_repo(repo_id.split("/")[0], sweep)
        results_file, rows = run_evaluation(run, repo_id, base, epoch)
        result.results_repo, result.evaluated = results_repo, results_file is not None
        done = {"repo": results_repo, "file": results_file.name} if results_file is not None and results_repo else None
        if done and previous.get("results") != done:
            from .results import rows_frame

            key = repo_id.split("/")[-1]
            files = {f"models/{key}/{results_file.name}": results_file}
            stamp = results_file.stem[len("results_"):]
            for sample in sorted(results_file.parent.glob(f"samples_*_{stamp}.jsonl")):
                files[f"models/{key}/{sample.name}"] = sample
            result.results = push_results(ResultsTable(rows_frame(rows), "hubkit"), results_repo, key,
                                          private=private, api=api, files=files)  # retries transient failures
    except HfHubHTTPError as e:
        raise HubkitError(f"cannot publish {run.run_id} to {repo_id}: {str(e).splitlines()[0]}") from None
    except transport_errors() as e:
        raise HubkitError(f"cannot reach the Hub at {api.endpoint} to publish {run.run_id}: {e}") from None
    record = {"repo_id": repo_id, "commit": result.commit, **({"results": done} if done else {})}
    record_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return result
