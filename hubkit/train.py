"""One SFT run: a `RunSpec` in, a run directory out (TRL `SFTTrainer`, full-parameter or LoRA through peft).

It writes the run directory `<output_dir>/<run id>/` that `hubkit.runs.RunDir` lays out: `model/`,
`epochs/epoch-<n>/` (with `save_epochs`), `config.yaml` (the resolved `RunSpec`), `run.json` (`RunRecord`) and
`metrics.json` (`RunMetrics`).

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

import contextlib
import os
import resource
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .config import RunSpec, run_id
from .errors import HubkitError
from .runs import LossPoint, RunDir, RunMetrics, RunRecord, RunResult, load_run
from .tracking import check_tracker, export_run, forget_run, project_of
from .utils import first_line, now, versions


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

    from .distributed import attn_implementation
    from .hub import hub_kwargs

    revision = None
    local = Path(spec.model).is_dir()
    if not local:
        from .hub import get_api, hub_errors, retrying

        with hub_errors(f"base model {spec.model}",
                        not_found=f"base model {spec.model}: not a local directory and not found on the Hub"):
            revision = retrying(get_api().model_info, spec.model, revision=spec.model_revision).sha
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.model, **hub_kwargs(revision, spec.model))
        attention = attn_implementation(spec, torch.cuda.is_available())
        model = AutoModelForCausalLM.from_pretrained(spec.model, **hub_kwargs(revision, spec.model),
                                                     dtype=getattr(torch, dtype),
                                                     **({"attn_implementation": attention} if attention else {}))
    except HubkitError:
        raise
    except Exception as e:  # missing files, corrupted safetensors, unknown architectures: many types
        text = first_line(e)
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


def sft_config(spec: RunSpec, output_dir: Path, device: str, dtype: str, progress: bool, model: Any = None):
    """The TRL `SFTConfig` a `RunSpec` stands for, sharded over the launched processes (`hubkit.distributed`)."""
    from trl import SFTConfig

    from .distributed import batch_split, sharding, world_size

    spec = spec.resolved()
    assert spec.batch_size is not None and spec.learning_rate is not None  # resolved() fills both
    world = world_size()
    micro, accumulation = batch_split(spec, world)
    schedule = spec.lr_schedule if spec.lr_schedule == "cosine" else (
        "constant_with_warmup" if spec.warmup_ratio else "constant")
    return SFTConfig(
        output_dir=str(output_dir), num_train_epochs=spec.epochs, learning_rate=spec.learning_rate,
        lr_scheduler_type=schedule, warmup_steps=spec.warmup_ratio, weight_decay=spec.weight_decay,
        per_device_train_batch_size=micro, gradient_accumulation_steps=accumulation,
        max_length=spec.max_length, packing=spec.packing, seed=spec.seed, data_seed=spec.seed,
        logging_steps=spec.logging_steps, save_strategy="no", report_to=spec.report_to,
        run_name=run_id(spec), project=project_of(spec),
        bf16=dtype == "bfloat16", fp16=dtype == "float16", activation_checkpointing=False, use_cpu=device == "cpu",
        disable_tqdm=not progress, dataloader_num_workers=0,
        **sharding(spec, model, micro, accumulation, world, dtype),
    )


def _callbacks(partial: RunDir, tokenizer, epochs: int, save_epochs: bool, curve: list[LossPoint]):
    from transformers import TrainerCallback

    from .distributed import launched

    class Record(TrainerCallback):
        trainer: Any = None  # set once the trainer exists: sharded weights are gathered through it

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                curve.append(LossPoint(state.global_step, round(state.epoch or 0, 4), logs["loss"],
                                       logs.get("learning_rate"), logs.get("grad_norm")))

        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            epoch = round(state.epoch or 0)
            if save_epochs and 0 < epoch < epochs and model is not None:
                target = partial.epoch_model(epoch)
                if launched():  # every process takes part in gathering the shards; the first writes
                    _save_gathered(self.trainer, target)
                else:
                    model.save_pretrained(target)
                    tokenizer.save_pretrained(target)

    return [Record()]


def _save_gathered(trainer: Any, target: Path) -> None:
    """Save a sharded model's whole weights and tokenizer (a collective: every process calls it)."""
    trainer.save_model(str(target))
    if trainer.is_world_process_zero():
        (target / "training_args.bin").unlink(missing_ok=True)


def train(spec: RunSpec, force: bool = False, progress: bool = True, command: str | None = None) -> RunResult:
    """Train one run and write its run directory; a run that already finished is returned as is.

    With `spec.gpus` > 1 the run is launched in that many processes through `accelerate` (`hubkit.distributed`)
    and this call returns once they have written the run directory.

    Args:
        spec: the run; `spec.output_dir` receives the run directory.
        force: train again even if the run directory exists (it is replaced only once the new run is done).
        progress: show the trainer's progress bar.
        command: the command line that reproduces the run, stored in run.json for the card.

    Raises:
        HubkitError: an unusable config, base model or dataset, or a failed process of a multi-process run.
    """
    from .distributed import launch, launched, needs_launch

    spec.validate()
    paths = RunDir.of(spec)
    if launched():  # one process of a launched group: its launcher holds the run's lock
        _prepare(spec)
        return _train_here(spec, paths, progress, command)
    from .data.registry import check_name
    from .distributed import check_attention

    check_name(spec.dataset)  # an unknown name is said before anything is written (the lock included)
    check_attention(spec)
    check_tracker(spec)
    with _one_trainer(paths):
        if paths.root.exists() and not force:
            result = load_run(paths.root)
            result.skipped = True
            return result
        _prepare(spec)
        if spec.report_to == "trackio":  # a run trained again replaces its rows in the project (once, here)
            forget_run(project_of(spec), run_id(spec))
        if needs_launch(spec):
            launch(spec, force, progress, command)
            return load_run(paths.root)
        return _train_here(spec, paths, progress, command)


@contextlib.contextmanager
def _one_trainer(paths: RunDir) -> Iterator[None]:
    """One trainer per run directory at a time: a second (a resubmitted cluster task, a second sweep driver)
    waits, then finds the run done. The lock is `.locks/<run id>` beside the runs, released when its holder dies
    (never deleted: removing a lock file others may hold would let two holders in)."""
    import fcntl

    locks = paths.root.parent / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    fd = os.open(locks / paths.run_id, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _train_here(spec: RunSpec, paths: RunDir, progress: bool, command: str | None) -> RunResult:
    """Train in this process (one of `WORLD_SIZE`); the first process writes the run directory, and every process
    returns it once written."""
    import torch
    from transformers import set_seed
    from trl import SFTTrainer

    from .data import load_training_data
    from .distributed import launched, rank, world_size

    main = rank() == 0
    resolved = spec.resolved()
    device, dtype = _device_and_dtype(spec)
    started = time.time()
    data = load_training_data(spec.dataset, spec.data_size, spec.data_seed, spec.prompt_format)
    set_seed(spec.seed)
    model, tokenizer, base_revision = _load_base(spec, dtype)
    partial = paths.partial()
    if main:
        shutil.rmtree(partial.root, ignore_errors=True)
        partial.root.mkdir(parents=True)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    curve: list[LossPoint] = []
    args = sft_config(spec, partial.root / "trainer", device, dtype, progress and main, model)
    callbacks = _callbacks(partial, tokenizer, spec.epochs, spec.save_epochs, curve)
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=data.dataset, processing_class=tokenizer,
        peft_config=_peft_config(spec) if spec.tuning == "lora" else None, callbacks=callbacks,
    )
    callbacks[0].trainer = trainer
    trained_on: Any = trainer.train_dataset  # the tokenized examples TRL kept
    tokens_per_epoch = sum(len(ids) for ids in trained_on["input_ids"])
    counted: Any = trainer.model  # counted before sharding splits the parameters over processes
    trainable = sum(p.numel() for p in counted.parameters() if p.requires_grad)
    total = sum(p.numel() for p in counted.parameters())
    attention = getattr(counted.config, "_attn_implementation", None)
    train_started = time.time()
    output = trainer.train()
    train_seconds = time.time() - train_started

    if launched():  # sharded weights are gathered by every process
        _save_gathered(trainer, partial.model)
        if not main:
            _wait_for_first(trainer)
            return load_run(paths.root)
    else:
        tuned: Any = trainer.model  # the trained model (a PEFT model for LoRA)
        tuned.save_pretrained(partial.model)
        tokenizer.save_pretrained(partial.model)
    shutil.rmtree(partial.root / "trainer", ignore_errors=True)
    if spec.report_to == "trackio":
        export_run(project_of(spec), run_id(spec), partial.tracking)

    metrics = RunMetrics(
        train_loss=output.training_loss,
        final_loss=curve[-1].loss if curve else None,
        loss_curve=curve,
        steps=output.global_step,
        examples=len(data.dataset),
        examples_trained=len(trained_on),  # TRL drops examples whose response max_length cuts off
        train_tokens=tokens_per_epoch * spec.epochs,
        tokens_per_second=tokens_per_epoch * spec.epochs / train_seconds if train_seconds else None,
        train_seconds=round(train_seconds, 3),
        wall_seconds=round(time.time() - started, 3),
        peak_cpu_memory_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        peak_gpu_memory_mb=round(torch.cuda.max_memory_allocated() / 2**20, 1) if device == "cuda" else None,
        trainable_parameters=trainable,
        parameters=total,
        device=device,
        dtype=dtype,
        world_size=world_size(),
        distributed=spec.distributed if launched() else "none",
        attn_implementation=attention,
        versions=versions(),
    )
    record = _record(spec, run_id(spec), base_revision, [s.to_dict() for s in data.sources], partial, command,
                     started)
    _finish(partial, paths, resolved, metrics, record)
    if launched():
        _wait_for_first(trainer)
    return RunResult(record.run_id, paths.root, spec, metrics, record)


def _wait_for_first(trainer: Any) -> None:
    """Every process of a launched run meets here once the first one has written the run directory."""
    trainer.accelerator.wait_for_everyone()


def _record(spec: RunSpec, rid: str, base_revision: str | None, sources: list[dict], partial: RunDir,
            command: str | None, started: float) -> RunRecord:
    """The run's record: its axes, base revision, data sources and the checkpoint of each saved epoch."""
    epochs = {str(e): RunDir.epoch_relative(e) for e in range(1, spec.epochs) if partial.epoch_model(e).is_dir()}
    epochs[str(spec.epochs)] = RunDir.MODEL
    return RunRecord(
        run_id=rid,
        status="trained",
        axes=spec.axes(),
        base_model=spec.model,
        base_model_revision=base_revision,
        adapter=spec.tuning == "lora",
        data_sources=sources,
        epochs=epochs,
        command=command or f"hubkit train {RunDir.CONFIG}",
        started_at=now(started),
        finished_at=now(),
    )


def _prepare(spec: RunSpec) -> None:
    """What a run needs before torch imports: a known dataset name, and a Hub when the model or data is not local."""
    from .data.registry import check_name

    check_name(spec.dataset)  # an unknown name is said now, not after torch and TRL have imported
    from .hub.client import choose_endpoint

    choose_endpoint()  # before torch and transformers import huggingface_hub; starts nothing
    if not Path(spec.model).is_dir() or not Path(spec.dataset).is_file():
        from .hub import ensure_endpoint, is_local_endpoint

        endpoint = ensure_endpoint()
        if is_local_endpoint(endpoint):
            from .hub.seed import ensure_seeded

            ensure_seeded(spec.dataset)  # a registry set not yet on the local Hub is seeded, as the quickstart does


def _finish(partial: RunDir, paths: RunDir, resolved: RunSpec, metrics: RunMetrics, record: RunRecord) -> None:
    """Write the run's config, metrics and record into the partial folder, make it durable, move it into place."""
    import yaml

    partial.config.write_text(
        f"# Resolved config of run {record.run_id}; reproduce with: hubkit train {RunDir.CONFIG}\n"
        + yaml.safe_dump({k: v for k, v in resolved.to_dict().items() if k != "output_dir"}, sort_keys=False),
        encoding="utf-8")
    metrics.write(partial.metrics_file)
    record.write(partial.record_file)
    for f in partial.root.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    _replace_dir(partial.root, paths.root)


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



def _launched_main(job_file: str) -> int:
    """One process of a multi-process run: `accelerate launch -m hubkit.train JOB.json` (see `distributed.launch`)."""
    import json
    import sys

    from .config import build

    job = json.loads(Path(job_file).read_text(encoding="utf-8"))
    try:
        train(build(RunSpec, job["spec"], "run"), force=job["force"], progress=job["progress"], command=job["command"])
    except HubkitError as e:
        print(f"Error: {e}", file=sys.stderr, flush=True)
        with open(job["errors"], "a", encoding="utf-8") as f:  # what the launching process reports, one line
            f.write(f"{e}\n")
        return 1
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_launched_main(sys.argv[1]))
