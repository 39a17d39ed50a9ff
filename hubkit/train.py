"""One SFT run: a `RunSpec` in, a run directory out (TRL `SFTTrainer`, full-parameter or LoRA through peft).

Run directory `<output_dir>/<run id>/`:

| path | what |
| --- | --- |
| `model/` | the final weights (`model.safetensors`) or LoRA adapter (`adapter_model.safetensors`) and tokenizer |
| `epochs/epoch-<n>/` | the model after epoch n < last, when `save_epochs` is on (the last epoch is `model/`) |
| `config.yaml` | the resolved `RunSpec` (feed it back to `hubkit train` to reproduce the run) |
| `run.json` | the run record: id, axes, base-model revision, data sources, epochs, timings |
| `metrics.json` | loss curve, train loss, tokens, tokens/s, wall time, peak memory, library versions |
| `train.log` | the log of the run (under a sweep) |

The directory is built as `.<run id>.partial` beside its final place and renamed when complete, so a
run directory that exists is a finished run; a killed run leaves only a `.partial` that the next
attempt replaces. On CPU the same seed gives bit-identical weights.

Example:
    >>> from hubkit.config import RunSpec
    >>> from hubkit.train import train
    >>> result = train(RunSpec(model="./tiny", dataset="lima", data_size=64, epochs=1, batch_size=8))
    >>> result.run_dir.name == result.run_id
    True
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .config import RunSpec, run_id
from .errors import HubkitError

RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.yaml"
MODEL_DIR = "model"
VERSIONED = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "huggingface_hub")


@dataclass
class RunResult:
    """A finished run: where it lives and what it produced."""

    run_id: str
    run_dir: Path
    spec: RunSpec
    metrics: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False  # the run directory already existed; nothing was trained

    @property
    def model_dir(self) -> Path:
        return self.run_dir / MODEL_DIR

    @property
    def epoch_dirs(self) -> dict[int, Path]:
        """Epoch number → model directory (the last epoch is `model/`)."""
        return {int(k): self.run_dir / v for k, v in self.record.get("epochs", {}).items()}


def now(timestamp: float | None = None) -> str:
    """An ISO-8601 UTC time ending in `Z` (now, or of a `time.time()` value)."""
    when = datetime.now(timezone.utc) if timestamp is None else datetime.fromtimestamp(timestamp, timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    out = {"python": platform.python_version(), "hubkit": __version__}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def load_run(run_dir: str | Path) -> RunResult:
    """Read a finished run directory back (what `publish` and `eval` consume).

    Raises:
        HubkitError: the directory is not a finished hubkit run.
    """
    from .config import parse_config

    run_dir = Path(run_dir)
    record_path = run_dir / RUN_FILE
    if not record_path.is_file():
        raise HubkitError(f"{run_dir}: not a hubkit run directory (no {RUN_FILE})")
    try:
        record = json.loads(record_path.read_text())
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
    except (OSError, ValueError) as e:
        raise HubkitError(f"{run_dir}: unreadable run record: {e}") from None
    spec = parse_config(RunSpec, run_dir / CONFIG_FILE)
    return RunResult(record["run_id"], run_dir, spec, metrics, record)


def _device_and_dtype(spec: RunSpec):
    import torch

    cuda = torch.cuda.is_available()
    name = spec.dtype
    if name == "auto":
        name = "bfloat16" if cuda and torch.cuda.is_bf16_supported() else "float32"
    return ("cuda" if cuda else "cpu"), name


def _load_base(spec: RunSpec, dtype: str):
    """Base model and tokenizer, with the base revision when it comes from the Hub."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .hub import hub_kwargs

    revision = None
    local = Path(spec.model).is_dir()
    if not local:
        from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

        from .hub import get_api

        try:
            revision = get_api().model_info(spec.model, revision=spec.model_revision).sha
        except RepositoryNotFoundError:
            raise HubkitError(f"base model {spec.model}: not a local directory and not found on the Hub") from None
        except HfHubHTTPError as e:
            raise HubkitError(f"base model {spec.model}: {str(e).splitlines()[0]}") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.model, **hub_kwargs(revision, spec.model))
        model = AutoModelForCausalLM.from_pretrained(spec.model, **hub_kwargs(revision, spec.model),
                                                     dtype=getattr(torch, dtype))
    except Exception as e:  # missing files, corrupted safetensors, unknown architectures: many types
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise HubkitError(f"cannot load base model {spec.model}: {text}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if spec.prompt_format == "chat_template" and not tokenizer.chat_template:
        raise HubkitError(f"base model {spec.model} has no chat template; use prompt_format=study")
    return model, tokenizer, revision


def _peft_config(spec: RunSpec):
    from peft import LoraConfig

    targets = spec.lora_target_modules
    return LoraConfig(
        r=spec.lora_r, lora_alpha=spec.lora_alpha, lora_dropout=spec.lora_dropout, task_type="CAUSAL_LM",
        target_modules=targets[0] if targets == ["all-linear"] else list(targets),
    )


def sft_config(spec: RunSpec, output_dir: Path, device: str, dtype: str, progress: bool):
    """The TRL `SFTConfig` a `RunSpec` stands for (also used by the training benchmark)."""
    from trl import SFTConfig

    spec = spec.resolved()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    micro = min(spec.micro_batch_size, spec.batch_size)
    accumulation = max(1, spec.batch_size // (micro * world))
    schedule = spec.lr_schedule if spec.lr_schedule == "cosine" else (
        "constant_with_warmup" if spec.warmup_ratio else "constant")
    return SFTConfig(
        output_dir=str(output_dir), num_train_epochs=spec.epochs, learning_rate=spec.learning_rate,
        lr_scheduler_type=schedule, warmup_steps=spec.warmup_ratio, weight_decay=spec.weight_decay,
        per_device_train_batch_size=micro, gradient_accumulation_steps=accumulation,
        max_length=spec.max_length, packing=spec.packing, seed=spec.seed, data_seed=spec.seed,
        logging_steps=spec.logging_steps, save_strategy="no", report_to="none",
        bf16=dtype == "bfloat16", fp16=dtype == "float16", activation_checkpointing=False, use_cpu=device == "cpu",
        disable_tqdm=not progress, dataloader_num_workers=0,
    )


def _callbacks(partial: Path, tokenizer, epochs: int, save_epochs: bool, curve: list[dict]):
    from transformers import TrainerCallback

    class Record(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                curve.append({"step": state.global_step, "epoch": round(state.epoch or 0, 4),
                              **{k: logs[k] for k in ("loss", "learning_rate", "grad_norm") if k in logs}})

        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            epoch = round(state.epoch or 0)
            if save_epochs and 0 < epoch < epochs and model is not None:
                target = partial / "epochs" / f"epoch-{epoch}"
                model.save_pretrained(target)
                tokenizer.save_pretrained(target)

    return [Record()]


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


def train(spec: RunSpec, force: bool = False, progress: bool = True, command: str | None = None) -> RunResult:
    """Train one run and write its run directory; a run that already finished is returned as is.

    Args:
        spec: the run; `spec.output_dir` receives the run directory.
        force: train again even if the run directory exists (it is replaced only once the new run is done).
        progress: show the trainer's progress bar.
        command: the command line that reproduces the run, stored in run.json for the card.

    Raises:
        HubkitError: an unusable config, base model or dataset.
    """
    spec.validate()
    rid = run_id(spec)
    out_root = Path(spec.output_dir)
    run_dir = out_root / rid
    if run_dir.exists() and not force:
        result = load_run(run_dir)
        result.skipped = True
        return result

    from .data.registry import check_name

    check_name(spec.dataset)  # an unknown name is said now, not after torch and TRL have imported
    if not Path(spec.model).is_dir() or not Path(spec.dataset).is_file():
        from .hub import ensure_endpoint, is_local_endpoint

        endpoint = ensure_endpoint()  # before torch and transformers import huggingface_hub
        if is_local_endpoint(endpoint):
            from .hub.seed import ensure_seeded

            ensure_seeded(spec.dataset)  # a registry set not yet on the local Hub is seeded, as the quickstart does
    import torch
    from transformers import set_seed
    from trl import SFTTrainer

    from .data import load_training_data

    resolved = spec.resolved()
    device, dtype = _device_and_dtype(spec)
    started = time.time()
    data = load_training_data(spec.dataset, spec.data_size, spec.data_seed, spec.prompt_format)
    set_seed(spec.seed)
    model, tokenizer, base_revision = _load_base(spec, dtype)
    partial = out_root / f".{rid}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    curve: list[dict] = []
    args = sft_config(spec, partial / "trainer", device, dtype, progress)
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=data.dataset, processing_class=tokenizer,
        peft_config=_peft_config(spec) if spec.tuning == "lora" else None,
        callbacks=_callbacks(partial, tokenizer, spec.epochs, spec.save_epochs, curve),
    )
    tokens_per_epoch = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
    train_started = time.time()
    output = trainer.train()
    train_seconds = time.time() - train_started

    trainer.model.save_pretrained(partial / MODEL_DIR)
    tokenizer.save_pretrained(partial / MODEL_DIR)
    shutil.rmtree(partial / "trainer", ignore_errors=True)

    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.model.parameters())
    metrics = {
        "train_loss": output.training_loss,
        "final_loss": curve[-1]["loss"] if curve else None,
        "loss_curve": curve,
        "steps": output.global_step,
        "examples": len(data.dataset),
        "examples_trained": len(trainer.train_dataset),  # TRL drops examples whose response max_length cuts off
        "train_tokens": tokens_per_epoch * spec.epochs,
        "tokens_per_second": tokens_per_epoch * spec.epochs / train_seconds if train_seconds else None,
        "train_seconds": round(train_seconds, 3),
        "wall_seconds": round(time.time() - started, 3),
        "peak_cpu_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_gpu_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if device == "cuda" else None,
        "trainable_parameters": trainable,
        "parameters": total,
        "device": device,
        "dtype": dtype,
        "versions": versions(),
    }
    epochs = {str(e): f"epochs/epoch-{e}" for e in range(1, spec.epochs)
              if (partial / "epochs" / f"epoch-{e}").is_dir()}
    epochs[str(spec.epochs)] = MODEL_DIR
    record = {
        "run_id": rid,
        "status": "trained",
        "axes": spec.axes(),
        "base_model": spec.model,
        "base_model_revision": base_revision,
        "adapter": spec.tuning == "lora",
        "data_sources": [s.to_dict() for s in data.sources],
        "epochs": epochs,
        "command": command or f"hubkit train {CONFIG_FILE}",
        "started_at": now(started),
        "finished_at": now(),
    }
    import yaml

    (partial / CONFIG_FILE).write_text(
        f"# Resolved config of run {rid}; reproduce with: hubkit train {CONFIG_FILE}\n"
        + yaml.safe_dump({k: v for k, v in resolved.to_dict().items() if k != "output_dir"}, sort_keys=False),
        encoding="utf-8")
    _write_json(partial / METRICS_FILE, metrics)
    _write_json(partial / RUN_FILE, record)
    for f in partial.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    _replace_dir(partial, run_dir)
    return RunResult(rid, run_dir, spec, metrics, record)


def _replace_dir(new: Path, target: Path) -> None:
    """Move `new` into place as `target`; an existing `target` is swapped out first, then removed."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(target, old)
    os.rename(new, target)
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

