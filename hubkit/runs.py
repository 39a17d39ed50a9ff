"""The run directory and the typed records the stages pass along: train writes them, eval, publish, the sweep and
the quickstart read them. No stage reads another stage's JSON by string keys; each file has one record type
here with `to_json` / `from_json`.

Run directory `<output_dir>/<run id>/` (`RunDir` names every path):

| path | record | written by |
| --- | --- | --- |
| `config.yaml` | the resolved `RunSpec` | train |
| `run.json` | `RunRecord`: id, axes, base-model revision, data sources, epochs, command, times | train |
| `metrics.json` | `RunMetrics`: loss curve, tokens, speed, memory, library versions | train |
| `model/`, `epochs/epoch-<n>/` | the final model and the checkpoints after earlier epochs | train |
| `eval/results_<time>.json` | the lm-eval-style results of `hubkit eval` (see `hubkit.eval.harness`) | eval |
| `published.json`, `published-epoch-<k>.json` | `PublishRecord`: where the model and its rows went | publish |
| `train.log` | the run's log under a sweep | sweep |

Example:
    >>> from hubkit.runs import RunDir, load_run
    >>> run = load_run("runs/tiny-llama-lima-64-full-e1-cosine-1a2b3c4d")
    >>> run.metrics.final_loss, run.record.base_model_revision
    (4.91, '9f2c...')
    >>> RunDir(run.run_dir).eval
    PosixPath('runs/tiny-llama-lima-64-full-e1-cosine-1a2b3c4d/eval')
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import RunSpec, parse_config, run_id
from .errors import HubkitError
from .utils import JsonRecord


@dataclass
class RunRecord(JsonRecord):
    """`run.json`: what a run is and where its parts came from.

    Attributes:
        run_id: the run's id (`hubkit.config.run_id`).
        status: `trained`.
        axes: the study's axes (base model, dataset, data size, tuning, epochs, schedule).
        base_model: the base model as given (a Hub id, or a local folder for a run trained from one).
        base_model_revision: the base model's commit on the Hub, when it came from there.
        adapter: whether `model/` holds a LoRA adapter rather than full weights.
        data_sources: each training source: repo, revision, split, rows used.
        epochs: epoch number → model folder, relative to the run directory (the last epoch is `model`).
        command: the command line that reproduces the run.
        started_at, finished_at: ISO-8601 UTC times (kept out of published repos, which stay reproducible).
        checkpoint_epoch: in a published repo, the epoch of a checkpoint published as its own model.
        sweep: in a published repo, the sweep it belongs to.
    """

    run_id: str
    status: str = "trained"
    axes: dict[str, Any] = field(default_factory=dict)
    base_model: str = ""
    base_model_revision: str | None = None
    adapter: bool = False
    data_sources: list[dict[str, Any]] = field(default_factory=list)
    epochs: dict[str, str] = field(default_factory=dict)
    command: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    checkpoint_epoch: int | None = None
    sweep: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    OPTIONAL = ("started_at", "finished_at", "checkpoint_epoch", "sweep")  # written only when set

    def for_repo(self, base_model: str, epochs: int, epoch: int | None, sweep: str | None) -> RunRecord:
        """The copy published with the model (`hubkit_run.json`): the base named by its Hub id, the axes of the
        published checkpoint, the command that reproduces it from the repo, and no wall-clock times (so that
        the repo content of an unchanged run is byte for byte the same)."""
        return dataclasses.replace(
            self, base_model=base_model, axes={**self.axes, "base_model": base_model, "epochs": epoch or epochs},
            checkpoint_epoch=epoch, sweep=sweep, command="hubkit train hubkit_config.yaml", started_at=None,
            finished_at=None)


@dataclass
class LossPoint:
    """One logged training step."""

    step: int
    epoch: float
    loss: float
    learning_rate: float | None = None
    grad_norm: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass
class RunMetrics(JsonRecord):
    """`metrics.json`: how training went.

    Attributes:
        train_loss: the trainer's mean training loss.
        final_loss: the last logged loss (None when no step was logged).
        loss_curve: every logged step.
        steps: optimiser steps.
        examples: examples sampled; examples_trained: those left after `max_length` (TRL drops cut responses).
        train_tokens, tokens_per_second: tokens seen over all epochs, and their rate.
        train_seconds, wall_seconds: time in `trainer.train()`, and for the whole run.
        peak_cpu_memory_mb, peak_gpu_memory_mb: peak resident memory, and CUDA memory when on a GPU.
        trainable_parameters, parameters: counts (LoRA trains a small share).
        device, dtype: where and in what precision it trained.
        world_size, distributed: the processes it trained in (one per GPU) and how they shared the model
            (`none`, `fsdp`, `deepspeed-zero2`, `deepspeed-zero3`).
        attn_implementation: the attention kernel the model ran (`sdpa`, `flash_attention_2`, …).
        versions: Python, hubkit and the training stack.
    """

    train_loss: float | None = None
    final_loss: float | None = None
    loss_curve: list[LossPoint] = field(default_factory=list)
    steps: int = 0
    examples: int | None = None
    examples_trained: int | None = None
    train_tokens: int = 0
    tokens_per_second: float | None = None
    train_seconds: float = 0.0
    wall_seconds: float = 0.0
    peak_cpu_memory_mb: float | None = None
    peak_gpu_memory_mb: float | None = None
    trainable_parameters: int = 0
    parameters: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    world_size: int = 1
    distributed: str = "none"
    attn_implementation: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "loss_curve": [p.to_json() for p in self.loss_curve]}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RunMetrics:
        metrics = super().from_json(data)
        metrics.loss_curve = [p if isinstance(p, LossPoint) else LossPoint(**p) for p in metrics.loss_curve]
        return metrics


@dataclass
class PublishRecord(JsonRecord):
    """`published.json` (or `published-epoch-<k>.json`): where a publish put the model and its results rows.

    Attributes:
        repo_id: the model repo.
        commit: its commit holding this run (weights and card).
        results: `{"repo": results dataset, "file": results JSON}` once the evaluation's rows were pushed.
        weights_commit: the commit that holds the weights the card and the results name (`model_revision`).
    """

    repo_id: str
    commit: str
    results: dict[str, str] | None = None
    weights_commit: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    OPTIONAL = ("results", "weights_commit")


def _under(name: str) -> property:
    """A `RunDir` property: the path `name` inside the run directory."""
    return property(lambda self: self.root / name, doc=f"`<run dir>/{name}`")


@dataclass(frozen=True)
class RunDir:
    """Every path of a run directory (see the module docstring).

    Example:
        >>> RunDir.of(spec).record_file
        PosixPath('runs/tiny-llama-lima-64-full-e1-cosine-1a2b3c4d/run.json')
    """

    root: Path

    CONFIG = "config.yaml"
    RECORD = "run.json"
    METRICS = "metrics.json"
    MODEL = "model"
    EVAL = "eval"
    LOG = "train.log"
    TRACKING = "trackio"

    @classmethod
    def of(cls, spec: RunSpec) -> RunDir:
        """The run directory a spec trains into: `<output_dir>/<run id>`."""
        return cls(Path(spec.output_dir) / run_id(spec))

    @property
    def run_id(self) -> str:
        return self.root.name

    config = _under(CONFIG)
    record_file = _under(RECORD)
    metrics_file = _under(METRICS)
    model = _under(MODEL)
    eval = _under(EVAL)
    log = _under(LOG)
    tracking = _under(TRACKING)  # the run's trackio rows (`hubkit.tracking`), with `report_to: trackio`

    def epoch_model(self, epoch: int) -> Path:
        """Where the checkpoint after `epoch` (not the last) is saved."""
        return self.root / self.epoch_relative(epoch)

    @staticmethod
    def epoch_relative(epoch: int) -> str:
        return f"epochs/epoch-{epoch}"

    def published_file(self, epoch: int | None = None) -> Path:
        """The `PublishRecord` of the final model (`published.json`) or of the checkpoint after `epoch`."""
        return self.root / ("published.json" if epoch is None else f"published-epoch-{epoch}.json")

    def partial(self) -> RunDir:
        """The folder a run is built in before it is renamed into place: `.<run id>.partial` beside it."""
        return RunDir(self.root.with_name(f".{self.root.name}.partial"))

    def is_trained(self) -> bool:
        return self.record_file.is_file()

    def is_evaluated(self) -> bool:
        return latest_results(self.eval) is not None

    def is_published(self, epoch: int | None = None) -> bool:
        return self.published_file(epoch).is_file()

    def published(self, epoch: int | None = None) -> PublishRecord | None:
        """The publish record, when this model was published."""
        path = self.published_file(epoch)
        return PublishRecord.read(path) if path.is_file() else None



#: An evaluation's report in a run's `eval/` folder: `results_<UTC timestamp>.json`, the newest the current one.
RESULTS_PREFIX = "results_"


def latest_results(folder: str | Path) -> Path | None:
    """The newest `results_*.json` in a folder (a run's `eval/`), or None."""
    files = sorted(Path(folder).glob(f"{RESULTS_PREFIX}*.json"))
    return files[-1] if files else None


@dataclass
class RunResult:
    """A finished run: where it lives and what it produced."""

    run_id: str
    run_dir: Path
    spec: RunSpec
    metrics: RunMetrics = field(default_factory=RunMetrics)
    record: RunRecord | None = None
    skipped: bool = False  # the run directory already existed; nothing was trained

    @property
    def paths(self) -> RunDir:
        return RunDir(self.run_dir)

    @property
    def model_dir(self) -> Path:
        return self.paths.model

    @property
    def epoch_dirs(self) -> dict[int, Path]:
        """Epoch number → model directory (the last epoch is `model/`)."""
        epochs = self.record.epochs if self.record else {}
        return {int(k): self.run_dir / v for k, v in epochs.items()}


def load_run(run_dir: str | Path) -> RunResult:
    """Read a finished run directory back (what `eval` and `publish` consume).

    Raises:
        HubkitError: the directory is not a finished hubkit run, or a record in it cannot be read.
    """
    paths = RunDir(Path(run_dir))
    if not paths.is_trained():
        raise HubkitError(f"{paths.root}: not a hubkit run directory (no {RunDir.RECORD})")
    record = RunRecord.read(paths.record_file)
    metrics = RunMetrics.read(paths.metrics_file)
    spec = parse_config(RunSpec, paths.config)
    return RunResult(record.run_id, paths.root, spec, metrics, record)
