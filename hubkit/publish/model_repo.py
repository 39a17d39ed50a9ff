"""Publishing a trained run as a model repo with its card, in one commit, and its scores to the results dataset.

`publish_run` pushes a run directory (`hubkit.runs.RunDir`) as two commits. The first holds the weights or adapter
and tokenizer at the repo root (so `from_pretrained(repo)` works), `hubkit_config.yaml` (the resolved run config),
`hubkit_run.json` (the run record), `training_metrics.json` and `loss_curve.png`. The second holds the card, its
`LICENSE.md`, the evaluation as published (`eval/`) and `.eval_results/`, each naming the first commit: the Hub
revision of the weights that were evaluated (a commit cannot name itself). Files that did not change are not
uploaded, and a run published twice makes no new commit. Local paths never reach the Hub: the base model is named
by its Hub id everywhere.

Example:
    >>> from hubkit.publish import publish_run
    >>> publish_run("runs/smollm2-135m-instruct-lima-1k-lora-e3-cosine-6f1c2a9e")
    PublishResult(repo_id='hubkit/smollm2-135m-instruct-lima-1k-lora-e3-cosine-6f1c2a9e', ...)
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cards import eval_results_files, license_text, loss_curve_png, render_card
from ..errors import HubkitError
from ..results import ResultRow, ResultsTable
from ..runs import PublishRecord, RunDir, RunResult
from .dataset import ResultsPush, default_results_repo, link_or_copy, push_results
from .tracking import TrackingLink, push_tracking

if TYPE_CHECKING:
    from huggingface_hub import HfApi

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


def _public_base(run: RunResult, base_model: str | None) -> str:
    if base_model:
        return base_model
    if Path(run.spec.model).exists():
        raise HubkitError(f"run {run.run_id}: its base model is a local directory ({Path(run.spec.model).name}); "
                          "give its Hub id with --base-model")
    return run.spec.model


def run_evaluation(run: RunResult, repo_id: str, base_model: str, epoch: int | None = None,
                   model_revision: str | None = None) -> tuple[Path | None, dict[str, Any] | None, list[ResultRow]]:
    """The run's latest `hubkit eval` results file, that file as published, and its results-schema rows (none for an
    epoch checkpoint).

    As published, the file names the model by its repo id and the Hub commit that holds the evaluated weights
    (`model_revision`), and carries the run id and axes, so that `hubkit import-results --format lm-eval` of the
    published file anywhere gives the same rows as the ones publishing pushes.
    """
    import copy
    import json

    from ..importers import lm_eval_rows
    from ..runs import latest_results

    path = latest_results(run.paths.eval) if epoch is None else None
    if path is None:
        return None, None, []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise HubkitError(f"run {run.run_id}: unreadable evaluation results {path.name}: {e}") from None
    axes = {**run.spec.axes(), "base_model": base_model}
    published = copy.deepcopy(data)
    hub = published.setdefault("hubkit", {})
    hub.update({"model_id": repo_id, "run_id": run.run_id, "axes": axes, "model_revision": model_revision,
                "local_revision": (data.get("config") or {}).get("model_revision")})
    config = published.setdefault("config", {})
    args = config.get("model_args") if isinstance(config.get("model_args"), dict) else {}
    config["model_args"] = {**args, "pretrained": repo_id, "revision": model_revision}
    config["model_revision"] = config["model_sha"] = model_revision
    published["model_name"], published["model_name_sanitized"] = repo_id, repo_id.replace("/", "__")
    rows = lm_eval_rows(published, model_id=repo_id, run_id=run.run_id, axes=axes, source="hubkit", file=path.name)
    return path, published, rows


def stage_model(run: RunResult, folder: Path, base_model: str, sweep: str | None, epoch: int | None = None) -> None:
    """Lay out what the weights commit holds: the weights or adapter and tokenizer, the resolved config, the run
    record, the training metrics and the loss curve."""
    import json

    import yaml

    model_dir = run.epoch_dirs.get(epoch or run.spec.epochs)
    if model_dir is None or not model_dir.is_dir():
        saved = ", ".join(str(e) for e in sorted(run.epoch_dirs))
        raise HubkitError(f"run {run.run_id} has no model saved after epoch {epoch} (saved: {saved})")
    for f in sorted(model_dir.rglob("*")):
        if f.is_file():
            link_or_copy(f, folder / f.relative_to(model_dir))
    config = yaml.safe_load(run.paths.config.read_text())
    config["model"] = base_model
    (folder / "hubkit_config.yaml").write_text(
        f"# Resolved config of {run.run_id}; reproduce with: hubkit train hubkit_config.yaml\n"
        + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    assert run.record is not None  # a trained run has its record
    record = run.record.for_repo(base_model, run.spec.epochs, epoch, sweep)
    (folder / "hubkit_run.json").write_text(json.dumps(record.to_json(), indent=2) + "\n", encoding="utf-8")
    (folder / "training_metrics.json").write_text(json.dumps(run.metrics.to_json(), indent=2) + "\n",
                                                  encoding="utf-8")
    loss_curve_png(run, folder / "loss_curve.png")


def stage_card(run: RunResult, folder: Path, repo_id: str, base_model: str, sweep: str | None,
               epoch: int | None = None, subset_eval_results: bool = False, weights_commit: str | None = None,
               endpoint: str | None = None, tracking: TrackingLink | None = None,
               ) -> tuple[Path | None, dict[str, Any] | None, list[ResultRow]]:
    """Lay out what the card commit holds: the card, its licence terms, the evaluation as published (`eval/`) and
    `.eval_results/`, all naming `weights_commit`, the commit that holds the evaluated weights. Returns that
    evaluation (`run_evaluation`), which the results dataset receives too.

    Subset scores go into `.eval_results/` only with `subset_eval_results` (see `cards.eval_results_files`).
    """
    import json

    folder.mkdir(parents=True, exist_ok=True)
    results_file, published, results = run_evaluation(run, repo_id, base_model, epoch, weights_commit)
    if results_file is not None:
        (folder / "eval").mkdir(parents=True, exist_ok=True)
        (folder / "eval" / results_file.name).write_text(json.dumps(published, indent=2, ensure_ascii=False) + "\n",
                                                         encoding="utf-8")
        for name, text in eval_results_files(results, repo_id, include_subsets=subset_eval_results,
                                             endpoint=endpoint).items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
    (folder / "LICENSE.md").write_text(license_text(run, base_model), encoding="utf-8")
    (folder / "README.md").write_text(render_card(run, repo_id, base_model, sweep=sweep,
                                                  loss_curve=bool(run.metrics.loss_curve), epoch=epoch,
                                                  results=results, subset_eval_results=subset_eval_results,
                                                  weights_commit=weights_commit, endpoint=endpoint,
                                                  tracking=tracking),
                                      encoding="utf-8")
    return results_file, published, results


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

    from ..hub import retrying
    from ..hub.errors import is_transient

    try:
        info = retrying(api.model_info, repo_id, files_metadata=True)
    except HfHubHTTPError as e:
        if is_transient(e):
            raise
        return None  # no such repo yet, or not readable: publish it
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

    Each Hub call retries transient failures (`hub.retrying`); the publish record (`published.json`) is written
    only once everything is on the Hub, so a failed publish changes nothing in the run directory.

    Raises:
        HubkitError: not a run directory, a base model with no Hub id, or the Hub refused the upload.

    Example:
        >>> publish_run("runs/smollm2-135m-instruct-lima-1k-lora-e3-cosine-6f1c2a9e")
        PublishResult(repo_id='hubkit/smollm2-135m-instruct-lima-1k-lora-e3-cosine-6f1c2a9e', ...)
    """
    from ..config import run_id as make_run_id
    from ..hub import get_api, hub_errors, retrying
    from ..results import rows_frame
    from ..runs import load_run

    run = load_run(run_dir)
    paths = RunDir(Path(run_dir))
    api = api or get_api()
    base = _public_base(run, base_model)
    epoch = None if epoch == run.spec.epochs else epoch
    previous = paths.published(epoch)
    with hub_errors(f"cannot publish {run.run_id} to {repo_id or 'the Hub'}", endpoint=api.endpoint):
        if repo_id is None:
            namespace = namespace or retrying(api.whoami)["name"]
            repo_id = f"{namespace}/{make_run_id(run.spec, epoch) if epoch else run.run_id}"
    with hub_errors(f"cannot publish {run.run_id} to {repo_id}", endpoint=api.endpoint):
        same = previous if previous and previous.repo_id == repo_id else None
        title = f"Publish {run.run_id}" + (f" after epoch {epoch}" if epoch else "")
        with tempfile.TemporaryDirectory() as tmp:
            # 1. the weights: their commit is the revision the card, `.eval_results/` and the results rows name
            stage_model(run, Path(tmp) / "model", base, sweep, epoch)
            weights = _push_unless_there(api, repo_id, Path(tmp) / "model", same.weights_commit if same else None,
                                         private, title)
            # the trainer's trackio metrics, beside the model, for the card to link
            tracking = push_tracking(run, repo_id.split("/")[0], api, private)
            # 2. the card and the evaluation, naming that commit
            results_file, published, rows = stage_card(run, Path(tmp) / "card", repo_id, base, sweep, epoch,
                                                       subset_eval_results, weights.commit, api.endpoint, tracking)
            card = _push_unless_there(api, repo_id, Path(tmp) / "card", same.commit if same else None, private,
                                      f"{title}: card and evaluation of {weights.commit[:10]}")
        result = PublishResult(repo_id, card.commit, weights.changed or card.changed, weights.files + card.files)
        if sweep and result.changed:
            owner = repo_id.split("/")[0]
            collection = retrying(api.create_collection, title=f"hubkit sweep {sweep}", namespace=owner,
                                  exists_ok=True, private=private,
                                  description=f"Every model of the hubkit sweep {sweep}")
            retrying(api.add_collection_item, collection.slug, repo_id, "model", exists_ok=True)
        if results_repo is None:
            results_repo = default_results_repo(repo_id.split("/")[0], sweep)
        result.results_repo, result.evaluated = results_repo, results_file is not None
        done = {"repo": results_repo, "file": results_file.name, "revision": weights.commit} \
            if results_file is not None and results_repo else None
        if done and results_file is not None and (previous is None or previous.results != done):
            key = repo_id.split("/")[-1]
            stamp = results_file.stem[len("results_"):]
            with tempfile.TemporaryDirectory() as tmp:
                copy = Path(tmp) / results_file.name  # the file as published: re-imports with the model's repo id
                copy.write_text(json.dumps(published, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
                files = {f"models/{key}/{results_file.name}": copy}
                for sample in sorted(results_file.parent.glob(f"samples_*_{stamp}.jsonl")):
                    files[f"models/{key}/{sample.name}"] = sample
                result.results = push_results(ResultsTable(rows_frame(rows), "hubkit"), results_repo, key,
                                              private=private, api=api, files=files)
    PublishRecord(repo_id, result.commit, done, weights.commit).write(paths.published_file(epoch))
    return result


@dataclass
class _Pushed:
    commit: str
    changed: bool
    files: int


def _push_unless_there(api: HfApi, repo_id: str, folder: Path, known: str | None, private: bool,
                       title: str) -> _Pushed:
    """Commit `folder` to the repo unless the repo already holds every file of it byte for byte (then `known`, the
    commit recorded for it, or the head); one request when nothing changed."""
    from ..hub import push_folder, retrying

    if known and repo_matches(api, repo_id, folder):
        return _Pushed(known, False, 0)
    retrying(api.create_repo, repo_id, private=private, exist_ok=True)
    pushed = retrying(push_folder, repo_id, folder, commit_message=title, api=api)
    return _Pushed(pushed.commit, pushed.changed, pushed.files)
