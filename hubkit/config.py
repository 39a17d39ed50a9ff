"""The configs users write: `RunSpec` (one SFT run) and `SweepSpec` (a grid of runs), and the one parser.

Both are dataclasses whose fields carry `metadata={"help": ...}`, as in TRL. `parse_config` reads a YAML file,
applies `key=value` (or `--key value`) overrides on top, checks every value against its field's type, and
returns the dataclass; any problem is a one-line `HubkitError` that names the key.

Run ids (`run_id`) are derived from the sweep axes plus a short hash of everything that changes the
trained weights:

    <model>-<dataset>-<size>-<full|lora>-e<epochs>-<schedule>-<hash8>
    e.g. smollm2-135m-instruct-lima-1k-lora-e10-cosine-6f1c2a9e

`model` is the last path component of the base model, `dataset` the registry name (`w/o-lima` → `wo-lima`),
`size` the data size (`1k`, `20k`, `1500`, or `full`). The checkpoint after epoch k of an E-epoch run
(`save_epochs`) is published as a model of its own, with `e<k>of<E>` in place of `e<E>`. Characters other than letters, digits, `.`, `_`
and `-` become `-`; the model part is shortened so that the id never exceeds 96 characters. `hash8` is
the first 8 hex digits of the SHA-256 of the resolved config (fields that only place or log the run,
such as `output_dir`, are left out), so two runs that differ in anything but the axes get different ids.
The id is a valid Hub repo name; repo ids, manifest keys and card tags all derive from it.

Example:
    >>> from hubkit.config import RunSpec, parse_config, run_id
    >>> spec = parse_config(RunSpec, None, ["model=HuggingFaceTB/SmolLM2-135M", "dataset=lima", "data_size=1000"])
    >>> run_id(spec)[:29]
    'smollm2-135m-lima-1k-full-e3-'
"""

# size: the two configs users write, every field with the help text `--settings` prints, and the one parser that
# checks them against their types: a field and its check stay side by side.

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

from .errors import HubkitError
from .utils import DATA_NAMESPACE, JsonRecord, did_you_mean, first_line, size_token, slug

T = TypeVar("T", bound="DataclassInstance")

# The study's hyperparameters (study.md): full-parameter lr 1e-5 at batch 32, LoRA lr 2e-6 at batch 128.
STUDY_DEFAULTS: dict[str, dict[str, Any]] = {"full": {"learning_rate": 1e-5, "batch_size": 32}, "lora": {"learning_rate": 2e-6, "batch_size": 128}}
# The study's template `###Question: {instruction}\n###Answer: {response}`, split so that the space before the
# response starts the completion: BPE tokenizers fold a leading space into the next word's token.
STUDY_PROMPT = "###Question: {instruction}\n###Answer:"
MAX_RUN_ID = 96


@dataclass
class RunSpec:
    """One SFT run: a base model fine-tuned on one dataset sample with one recipe.

    Example YAML:

        model: HuggingFaceTB/SmolLM2-135M-Instruct
        dataset: lima
        data_size: 1000
        tuning: lora
        epochs: 3
    """

    model: str = field(default="", metadata={"help": "Base model: a Hub id (`org/name`) or a local directory."})
    model_revision: str | None = field(default=None, metadata={"help": "Branch, tag or commit of the base model."})
    dataset: str = field(default="", metadata={
        "help": "Training data: a registry name (`hubkit data list`), `all`, `w/o-<name>`, a Hub dataset id, or a "
                "local .json/.jsonl/.parquet file."})
    data_size: int | None = field(default=None, metadata={
        "help": "Examples to sample (for `all` and `w/o-X`, the total, split evenly over the members). "
                "Empty: use every example."})
    data_seed: int = field(default=42, metadata={"help": "Seed of the example sampling."})
    tuning: Literal["full", "lora"] = field(default="full", metadata={"help": "Full-parameter tuning or LoRA."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (the update is scaled by alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] = field(default_factory=lambda: ["all-linear"], metadata={
        "help": "Modules LoRA adapts: names such as q_proj, v_proj, or `all-linear`."})
    epochs: int = field(default=3, metadata={"help": "Training epochs."})
    learning_rate: float | None = field(default=None, metadata={
        "help": "Peak learning rate. Empty: the study's (full 1e-5, LoRA 2e-6)."})
    lr_schedule: Literal["cosine", "constant"] = field(default="cosine", metadata={
        "help": "Learning-rate schedule after warm-up."})
    warmup_ratio: float = field(default=0.0, metadata={"help": "Fraction of the steps spent warming up."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    batch_size: int | None = field(default=None, metadata={
        "help": "Effective (global) batch size. Empty: the study's (full 32, LoRA 128)."})
    micro_batch_size: int = field(default=8, metadata={
        "help": "Examples per device per forward pass; gradients accumulate up to batch_size."})
    max_length: int = field(default=1024, metadata={
        "help": "Longest training sequence in tokens (longer ones are cut)."})
    prompt_format: Literal["study", "chat_template"] = field(default="study", metadata={
        "help": "`study`: `###Question: …\\n###Answer: …` with the loss on the answer; `chat_template`: the "
                "tokenizer's chat template over the conversation."})
    packing: bool = field(default=False, metadata={
        "help": "Pack examples into padding-free batches (no pad tokens; needs an attention that respects "
                "position_ids to keep examples apart, e.g. flash attention)."})
    save_epochs: bool = field(default=False, metadata={
        "help": "Also save the model after every epoch, as epochs/epoch-<n> (the study evaluates each epoch)."})
    seed: int = field(default=42, metadata={"help": "Seed of initialisation, dropout and data order."})
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = field(default="auto", metadata={
        "help": "Training precision. `auto`: bf16 on GPUs that support it, float32 otherwise (CPUs here are "
                "several times slower in bf16)."})
    gpus: int = field(default=1, metadata={
        "help": "Processes the run trains in, one per GPU (launched with torchrun; TRL's trainer shards through "
                "accelerate). On a machine without GPUs, that many CPU processes over gloo: the same code path."})
    distributed: Literal["none", "fsdp", "deepspeed-zero2", "deepspeed-zero3"] = field(default="none", metadata={
        "help": "How the processes share the model: `none` (a full replica each, DDP), `fsdp` (PyTorch FSDP2, "
                "parameters, gradients and optimiser state sharded), `deepspeed-zero2` (optimiser state and "
                "gradients sharded), `deepspeed-zero3` (everything sharded; the study used DeepSpeed)."})
    attn_implementation: Literal["auto", "eager", "sdpa", "flash_attention_2"] = field(default="auto", metadata={
        "help": "Attention kernel. `auto`: FlashAttention-2 on a GPU where `flash-attn` is installed (the "
                "study's), else the transformers default (SDPA)."})
    output_dir: str = field(default="runs", metadata={"help": "Directory that receives the run directory `<run id>`."})
    logging_steps: int = field(default=10, metadata={"help": "Log the loss every N optimiser steps."})
    report_to: Literal["none", "trackio"] = field(default="none", metadata={
        "help": "Also log the trainer's metrics to `trackio` (local-first: `trackio show --project PROJECT`); "
                "publishing then syncs them to the Hub dataset `<owner>/<project>-trackio` beside the model, "
                "which the card links. `none`: the run's own metrics.json only."})
    trackio_project: str = field(default="", metadata={
        "help": "The trackio project the run logs to. Empty: the sweep's name, or `hubkit` for a lone run."})

    # Fields that only place, log or parallelise a run: they do not enter the config hash. A run trained over 8 GPUs
    # with FSDP is the same run as on one device (same id, same card), up to floating-point noise.
    NON_HASHED: typing.ClassVar[frozenset[str]] = frozenset(
        {"output_dir", "logging_steps", "gpus", "distributed", "attn_implementation", "report_to", "trackio_project"})

    def resolved(self) -> RunSpec:
        """A copy with the study's defaults filled in (learning rate and batch size by tuning mode)."""
        study = STUDY_DEFAULTS[self.tuning]
        return dataclasses.replace(
            self,
            learning_rate=self.learning_rate if self.learning_rate is not None else study["learning_rate"],
            batch_size=self.batch_size if self.batch_size is not None else study["batch_size"],
        )

    def validate(self) -> None:
        """Raise `HubkitError` for a value no run could use."""
        if not self.model:
            raise HubkitError("config: `model` is required (a Hub id or a local directory)")
        if not self.dataset:
            raise HubkitError("config: `dataset` is required (see `hubkit data list`)")
        positive = {"epochs": self.epochs, "micro_batch_size": self.micro_batch_size, "max_length": self.max_length,
                    "lora_r": self.lora_r, "lora_alpha": self.lora_alpha, "logging_steps": self.logging_steps}
        if self.batch_size is not None:
            positive["batch_size"] = self.batch_size
        if self.data_size is not None:
            positive["data_size"] = self.data_size
        for key, value in positive.items():
            if value <= 0:
                raise HubkitError(f"config: `{key}` must be positive, got {value}")
        if self.learning_rate is not None and not 0 < self.learning_rate < 1:
            raise HubkitError(f"config: `learning_rate` must be in (0, 1), got {self.learning_rate}")
        if not 0 <= self.warmup_ratio < 1:
            raise HubkitError(f"config: `warmup_ratio` must be in [0, 1), got {self.warmup_ratio}")
        if not 0 <= self.lora_dropout < 1:
            raise HubkitError(f"config: `lora_dropout` must be in [0, 1), got {self.lora_dropout}")
        if not self.lora_target_modules:
            raise HubkitError("config: `lora_target_modules` is empty")
        batch = self.resolved().batch_size
        assert batch is not None  # resolved() fills it
        if batch % self.micro_batch_size and self.micro_batch_size < batch:
            raise HubkitError(
                f"config: batch_size {batch} is not a multiple of micro_batch_size {self.micro_batch_size}")
        if self.gpus < 1:
            raise HubkitError(f"config: `gpus` must be at least 1, got {self.gpus}")
        if batch % self.gpus:
            raise HubkitError(f"config: batch_size {batch} does not split over gpus={self.gpus} processes")
        if self.trackio_project and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", self.trackio_project):
            raise HubkitError(f"config: `trackio_project` {self.trackio_project!r} must be letters, digits, '.', '_' "
                              "or '-' (≤ 64)")
        if self.packing and self.attn_implementation in ("eager", "sdpa"):
            raise HubkitError(f"config: packing needs an attention that keeps packed examples apart "
                              f"(flash_attention_2), not {self.attn_implementation}")

    def axes(self) -> dict[str, Any]:
        """The sweep axes of this run, as the results schema and the cards name them."""
        return {"base_model": self.model, "dataset": self.dataset, "data_size": self.data_size,
                "tuning": self.tuning, "epochs": self.epochs, "lr_schedule": self.lr_schedule}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class SweepSpec:
    """A grid of runs: `run` holds the settings every run shares, `grid` the axes to expand.

    A grid axis named after a `RunSpec` field lists its values. An axis may instead list mappings, each
    setting several fields together (a tuning mode with its own learning rate and batch size):

        name: demo
        run: {model: ./tiny, data_size: 200, epochs: 2}
        grid:
          dataset: [lima, code_alpaca]
          tuning:
            - {tuning: full, learning_rate: 1.0e-4}
            - {tuning: lora, learning_rate: 1.0e-3}
        exclude: [{dataset: lima, tuning: lora}]
    """

    name: str = field(default="", metadata={"help": "Sweep name: the manifest, run directories and collection use it."})
    run: dict[str, Any] = field(default_factory=dict, metadata={"help": "RunSpec settings shared by every run."})
    grid: dict[str, list[Any]] = field(default_factory=dict, metadata={
        "help": "Axes to expand: a RunSpec field with its values, or any name with a list of field mappings."})
    exclude: list[dict[str, Any]] = field(default_factory=list, metadata={
        "help": "Combinations to skip: a run matching every key of any entry is dropped."})
    include: list[dict[str, Any]] = field(default_factory=list, metadata={
        "help": "Extra runs outside the grid, as field mappings over `run`."})
    stages: list[str] = field(default_factory=lambda: ["train"], metadata={
        "help": "Stages each run goes through, in order (see `hubkit sweep --help` for those available)."})
    executor: Literal["local", "ray", "slurm"] = field(default="local", metadata={
        "help": "`local`: worker processes on this machine; `ray`: one Ray task per run; `slurm`: one SLURM array "
                "task per stage of a run, submitted through submitit (`pip install 'hubkit[slurm]'`)."})
    workers: int = field(default=1, metadata={"help": "Runs at once (local executor)."})
    ray_address: str | None = field(default=None, metadata={
        "help": "Ray cluster to join (`auto`, `ray://host:port`); empty starts a local Ray instance."})
    cpus_per_run: float = field(default=1.0, metadata={"help": "CPUs each run asks the scheduler for."})
    gpus_per_run: float = field(default=0.0, metadata={"help": "GPUs each run asks the scheduler for."})
    slurm_partition: str | None = field(default=None, metadata={"help": "slurm: partition (`sbatch --partition`)."})
    slurm_account: str | None = field(default=None, metadata={"help": "slurm: account to charge (`--account`)."})
    slurm_qos: str | None = field(default=None, metadata={"help": "slurm: quality of service (`--qos`)."})
    slurm_time: int = field(default=240, metadata={
        "help": "slurm: minutes one stage of one run may take (`--time`); a task preempted or out of time is "
                "requeued and starts its stage again."})
    slurm_mem_gb: int | None = field(default=None, metadata={"help": "slurm: memory per task in GB (`--mem`)."})
    slurm_array_parallelism: int = field(default=64, metadata={
        "help": "slurm: tasks running at once (`--array=…%N`), and stages the driver keeps submitted."})
    slurm_setup: list[str] = field(default_factory=list, metadata={
        "help": "slurm: shell lines each task runs first (`module load cuda`, `source .venv/bin/activate`)."})
    slurm_cluster: Literal["slurm", "local"] = field(default="slurm", metadata={
        "help": "slurm: `slurm` submits with sbatch; `local` runs the same tasks with submitit's local executor "
                "(no scheduler: to try a sweep file on one machine)."})
    output_dir: str = field(default="sweeps", metadata={
        "help": "Directory that receives the sweep directory `<name>` (manifest, runs, logs)."})
    namespace: str | None = field(default=None, metadata={
        "help": "publish stage: user or org that receives the model repos (default: the token's user)."})
    private: bool = field(default=False, metadata={"help": "publish stage: create the repos private."})
    base_model_id: str | None = field(default=None, metadata={
        "help": "publish stage: the base model's Hub id, when `run.model` is a local copy of it."})
    subset_eval_results: bool = field(default=False, metadata={
        "help": "publish stage: also write subset scores (`quick`, `tiny`, `eval_limit`) to `.eval_results/`, "
                "marked SUBSET; off by default because those files feed the Hub's public leaderboards."})
    eval_suite: str = field(default="quick", metadata={
        "help": "eval stage: `study`, `quick`, `tiny`, a benchmark or a comma list (see `hubkit eval --help`)."})
    eval_limit: int | None = field(default=None, metadata={"help": "eval stage: at most N records per benchmark."})
    eval_batch_size: int = field(default=8, metadata={"help": "eval stage: prompts or questions per batch."})
    eval_group_size: int = field(default=8, metadata={
        "help": "eval stage: runs of one base evaluated together in one job (data, prompts and the base loaded "
                "once), once every run of that base is trained; 1 evaluates each run as soon as it is trained."})
    data_namespace: str = field(default=DATA_NAMESPACE, metadata={
        "help": "eval stage: user or org holding the seeded benchmark repos (`hubkit hub seed --namespace`)."})

    def stage_options(self) -> StageOptions:
        """What the stages of a run need to know about its sweep."""
        return StageOptions(sweep=self.name, namespace=self.namespace, private=self.private,
                            base_model_id=self.base_model_id, subset_eval_results=self.subset_eval_results,
                            eval_suite=self.eval_suite, eval_limit=self.eval_limit,
                            eval_batch_size=self.eval_batch_size, data_namespace=self.data_namespace)

    def validate(self) -> None:
        if not self.name:
            raise HubkitError("sweep: `name` is required")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", self.name):
            raise HubkitError(f"sweep: `name` {self.name!r} must be letters, digits, '.', '_' or '-' (≤ 64)")
        if self.workers < 1:
            raise HubkitError(f"sweep: `workers` must be at least 1, got {self.workers}")
        if self.cpus_per_run < 0 or self.gpus_per_run < 0:
            raise HubkitError("sweep: `cpus_per_run` and `gpus_per_run` cannot be negative")
        if self.eval_group_size < 1:
            raise HubkitError(f"sweep: `eval_group_size` must be at least 1, got {self.eval_group_size}")
        if self.slurm_time < 1 or self.slurm_array_parallelism < 1:
            raise HubkitError("sweep: `slurm_time` and `slurm_array_parallelism` must be at least 1")
        for axis, values in self.grid.items():
            if not isinstance(values, list) or not values:
                raise HubkitError(f"sweep: grid axis `{axis}` must be a non-empty list")

    @property
    def directory(self) -> Path:
        return Path(self.output_dir) / self.name


@dataclass
class StageOptions(JsonRecord):
    """What the stages of a sweep's run need to know about the sweep (`SweepSpec.stage_options()`); sent to
    worker processes as JSON.

    Attributes:
        sweep: the sweep's name (card tag, collection, results dataset).
        namespace: user or org receiving the model repos; None for the token's user.
        private: create the repos private.
        base_model_id: the base model's Hub id, when runs train from a local copy.
        subset_eval_results: also write subset scores to `.eval_results/`.
        eval_suite, eval_limit, eval_batch_size: what the eval stage runs.
        data_namespace: where the seeded benchmark repos live.
    """

    sweep: str | None = None
    namespace: str | None = None
    private: bool = False
    base_model_id: str | None = None
    subset_eval_results: bool = False
    eval_suite: str = "quick"
    eval_limit: int | None = None
    eval_batch_size: int = 8
    data_namespace: str = DATA_NAMESPACE


# ----------------------------------------------------------------------------------------------- parsing


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`, converting what YAML and the command line give loosely."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arg, key)
            except HubkitError as e:
                errors.append(str(e))
        raise HubkitError(errors[0] if errors else f"config: `{key}` cannot be empty")
    if origin is Literal:
        if value in args:
            return value
        raise HubkitError(f"config: `{key}` must be one of {', '.join(map(str, args))}; got {value!r}")
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise HubkitError(f"config: `{key}` must be a list, got {value!r}")
        return [coerce(v, args[0], key) for v in value] if args else value
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise HubkitError(f"config: `{key}` must be a mapping, got {value!r}")
        return value
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise HubkitError(f"config: `{key}` must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise HubkitError(f"config: `{key}` must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise HubkitError(f"config: `{key}` must be a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = str(value)
            if any(ord(c) < 32 for c in text):
                raise HubkitError(f"config: `{key}` holds control characters")
            return text
        raise HubkitError(f"config: `{key}` must be a string, got {value!r}")
    raise HubkitError(f"config: `{key}` has an unsupported type {_type_name(tp)}")



def build(cls: type[T], values: dict[str, Any], where: str = "config") -> T:
    """Build the dataclass `cls` from a mapping, rejecting unknown keys with a suggestion."""
    if not isinstance(values, dict):
        raise HubkitError(f"{where}: expected a mapping of settings, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            raise HubkitError(f"{where}: unknown setting `{key}` for {cls.__name__}{did_you_mean(key, names)}")
        kwargs[key] = coerce(value, hints[key], key)
    obj = cls(**kwargs)
    if hasattr(obj, "validate"):
        obj.validate()
    return obj


def _parse_scalar(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text) if text != "" else None
    except yaml.YAMLError:
        return text


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """`["epochs=2", "--tuning", "lora", "--run.seed=3"]` → `{"epochs": 2, "tuning": "lora", "run": {"seed": 3}}`."""
    out: dict[str, Any] = {}
    items = list(overrides)
    i = 0
    while i < len(items):
        item = items[i]
        if item.startswith("--"):
            item = item[2:]
            if "=" not in item:
                if i + 1 >= len(items):
                    raise HubkitError(f"override --{item} has no value")
                item = f"{item}={items[i + 1]}"
                i += 1
        if "=" not in item:
            raise HubkitError(f"override {item!r} is not key=value")
        key, text = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if not key:
            raise HubkitError(f"override {item!r} has no key")
        target = out
        parts = key.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = _parse_scalar(text)
        i += 1
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file, bad YAML or a non-mapping is a one-line error."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise HubkitError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = getattr(e, "problem", None) or first_line(e)
        raise HubkitError(f"{path.name}: invalid YAML{where}: {problem}") from None
    except UnicodeDecodeError:
        raise HubkitError(f"{path.name}: not a UTF-8 text file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise HubkitError(f"{path.name}: expected a mapping of settings at the top level")
    return data


def parse_config(cls: type[T], path: str | Path | None, overrides: list[str] | None = None) -> T:
    """The one config parser: YAML file (optional), then command-line overrides, then type checks.

    Args:
        cls: `RunSpec` or `SweepSpec`.
        path: a YAML file, or None for overrides only.
        overrides: `key=value` or `--key value` items; dotted keys reach into mappings (`run.epochs=2`).

    Example:
        >>> spec = parse_config(RunSpec, "run.yaml", ["epochs=1", "--tuning", "lora"])
    """
    values = load_yaml(path) if path else {}
    values = _merge(values, parse_overrides(overrides or []))
    where = Path(path).name if path else "config"
    return build(cls, values, where)


# ----------------------------------------------------------------------------------------------- run ids




def config_hash(spec: RunSpec) -> str:
    """First 8 hex digits of the SHA-256 of the resolved config, without the fields in `NON_HASHED`."""
    values = {k: v for k, v in spec.resolved().to_dict().items() if k not in RunSpec.NON_HASHED}
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:8]


def run_id(spec: RunSpec, epoch: int | None = None) -> str:
    """The run's id: `<model>-<dataset>-<size>-<tuning>-e<epochs>-<schedule>-<hash8>`, ≤ 96 characters.

    With `epoch` (a checkpoint saved after epoch k < epochs), the epochs part reads `e<k>of<epochs>`: the
    id of that checkpoint as a model of its own.
    """
    model = slug(spec.model.rstrip("/").rsplit("/", 1)[-1]) or "model"
    dataset = slug(spec.dataset.replace("w/o-", "wo-").rsplit("/", 1)[-1]) or "data"
    if spec.dataset.endswith((".json", ".jsonl", ".parquet")):
        dataset = slug(Path(spec.dataset).stem) or "data"
    epochs = f"e{epoch}of{spec.epochs}" if epoch is not None and epoch != spec.epochs else f"e{spec.epochs}"
    axes = f"{size_token(spec.data_size)}-{spec.tuning}-{epochs}-{spec.lr_schedule}-{config_hash(spec)}"
    room = MAX_RUN_ID - len(dataset) - len(axes) - 2
    if room < 8:  # a very long dataset name: shorten it instead
        dataset = dataset[: max(8, len(dataset) - (8 - room))].strip("-.")
        room = MAX_RUN_ID - len(dataset) - len(axes) - 2
    tail = f"{dataset}-{axes}"
    model = model[:room].strip("-.") or "model"
    return f"{model}-{tail}"
