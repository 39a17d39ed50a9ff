"""A run over several processes: the torchrun launch, and the FSDP or DeepSpeed settings TRL's trainer takes.

`RunSpec.gpus` > 1 (or any `distributed` other than `none`, one process included) makes `hubkit.train.train`
start `torchrun --standalone --nproc_per_node N -m hubkit.train JOB` (what `accelerate launch --multi_gpu` runs);
every process then runs the same `SFTTrainer`, whose `TrainingArguments` carry the sharding (`fsdp=` with an
FSDP2 config, or `deepspeed=` with a ZeRO config) that the trainer hands to accelerate's FSDP and DeepSpeed
plugins. Nothing here is home-made: torchrun starts the processes, accelerate and the trainer shard. On a machine
without GPUs the processes talk over gloo, which is how the suite tests the sharded path on CPU.

The global batch stays `batch_size` whatever the process count: each process takes `batch_size / N` examples per
optimiser step (in micro-batches of at most `micro_batch_size`), so a run's loss curve does not depend on N beyond
floating-point noise, and its id and card do not either (`gpus`, `distributed` and `attn_implementation` are not
hashed).

Example:
    >>> from hubkit.config import RunSpec
    >>> spec = RunSpec(model="./tiny", dataset="lima", gpus=2, distributed="fsdp", batch_size=8)
    >>> batch_split(spec, world=2)
    (4, 1)
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .config import RunSpec
from .errors import HubkitError
from .utils import signal_on_parent_death

#: Environment variables a launched process finds (set by `accelerate launch` / torchrun).
_LAUNCHED = ("LOCAL_RANK", "WORLD_SIZE")


def world_size() -> int:
    """Processes of the current run: 1 unless this process was started by a launcher."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def launched() -> bool:
    """Whether this process is one of a launched group (then it trains; it does not launch again)."""
    return all(k in os.environ for k in _LAUNCHED)


def batch_split(spec: RunSpec, world: int) -> tuple[int, int]:
    """(examples per process per forward pass, gradient-accumulation steps) giving the global `batch_size`."""
    batch = spec.resolved().batch_size
    assert batch is not None  # resolved() fills it
    per_process = max(1, batch // world)
    micro = min(spec.micro_batch_size, per_process)
    if per_process % micro:
        raise HubkitError(f"config: batch_size {batch} over {world} processes is {per_process} per process, "
                          f"not a multiple of micro_batch_size {micro}")
    return micro, per_process // micro


def check_attention(spec: RunSpec) -> None:
    """Refuse an attention kernel this machine cannot run, before anything starts."""
    if spec.attn_implementation == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise HubkitError("attn_implementation=flash_attention_2 needs flash-attn: pip install flash-attn "
                          "(GPU only), or use sdpa")


def attn_implementation(spec: RunSpec, cuda: bool) -> str | None:
    """The `attn_implementation` to load the model with; None leaves transformers' default (SDPA)."""
    if spec.attn_implementation != "auto":
        check_attention(spec)
        return spec.attn_implementation
    if cuda and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return None


def deepspeed_config(stage: int, micro: int, accumulation: int, world: int, dtype: str) -> dict[str, Any]:
    """The DeepSpeed config of a ZeRO stage, its batch arithmetic spelled out (the trainer checks it matches)."""
    zero: dict[str, Any] = {"stage": stage, "overlap_comm": True, "contiguous_gradients": True}
    if stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True  # save_pretrained writes whole weights
    return {
        "train_batch_size": micro * accumulation * world,
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": accumulation,
        "gradient_clipping": 1.0,
        "zero_optimization": zero,
        "bf16": {"enabled": dtype == "bfloat16"},
        "fp16": {"enabled": dtype == "float16"},
    }


def check_deepspeed(config: dict[str, Any], world: int) -> None:
    """Validate a DeepSpeed config with DeepSpeed's own checker, when DeepSpeed imports here.

    DeepSpeed reads the world size from a live process group; outside one it assumes 1, so the batch it checks
    is the per-process one. The total over `world` processes is checked here.

    Raises:
        HubkitError: a key DeepSpeed does not know, a value it refuses, or batch arithmetic that does not add up.
    """
    micro, accumulation = config["train_micro_batch_size_per_gpu"], config["gradient_accumulation_steps"]
    if config["train_batch_size"] != micro * accumulation * world:
        raise HubkitError(f"deepspeed config: train_batch_size {config['train_batch_size']} is not "
                          f"{micro} × {accumulation} × {world} processes")
    try:
        from deepspeed.runtime.config import DeepSpeedConfig
    except ImportError:
        return  # checked again by the trainer when the run starts, where DeepSpeed is installed
    single = dict(config, train_batch_size=micro * accumulation)
    try:
        DeepSpeedConfig(single)
    except Exception as e:  # pydantic ValidationError, AssertionError, ValueError: DeepSpeed's own words
        text = " ".join(str(e).split())
        raise HubkitError(f"deepspeed config refused by DeepSpeed: {text[:300]}") from None


def sharding(spec: RunSpec, model: Any, micro: int, accumulation: int, world: int, dtype: str) -> dict[str, Any]:
    """The `SFTConfig` arguments that shard a run across `world` processes (none for `distributed=none`)."""
    if spec.distributed == "fsdp":
        layers = sorted(set(getattr(model, "_no_split_modules", None) or []))
        config: dict[str, Any] = {"version": 2, "reshard_after_forward": True,
                                  "state_dict_type": "FULL_STATE_DICT", "cpu_ram_efficient_loading": False}
        if layers:
            config["transformer_layer_cls_to_wrap"] = layers
        return {"fsdp": "full_shard auto_wrap", "fsdp_config": config}
    if spec.distributed.startswith("deepspeed"):
        if importlib.util.find_spec("deepspeed") is None:
            raise HubkitError(f"distributed={spec.distributed} needs DeepSpeed: pip install deepspeed")
        ds = deepspeed_config(int(spec.distributed[-1]), micro, accumulation, world, dtype)
        check_deepspeed(ds, world)
        return {"deepspeed": ds}
    return {}


def _terminate_with_parent() -> None:  # in the launcher, between fork and exec
    """The launcher gets SIGTERM if this process dies, even by SIGKILL, and then stops its ranks (torchrun does)."""
    signal_on_parent_death(signal.SIGTERM)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the launcher's whole session (the launcher and every rank), SIGKILL after 15 s."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def needs_launch(spec: RunSpec) -> bool:
    """Whether a run trains in launched processes (several, or one that shards)."""
    return spec.gpus > 1 or spec.distributed != "none"


def launch(spec: RunSpec, force: bool, progress: bool, command: str | None) -> None:
    """Run `spec` in `spec.gpus` processes through torchrun; returns when they all have.

    Raises:
        HubkitError: fewer GPUs than asked for, or a process that failed (its last error line).
    """
    import json

    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        raise HubkitError("training needs torch") from None
    if torch.cuda.is_available() and torch.cuda.device_count() < spec.gpus:
        raise HubkitError(f"the run asks for gpus={spec.gpus}; this machine has {torch.cuda.device_count()}")
    with tempfile.TemporaryDirectory(prefix="hubkit-launch-") as tmp:
        job, errors, log = Path(tmp) / "run.json", Path(tmp) / "errors.txt", Path(tmp) / "stderr.log"
        job.write_text(json.dumps({"spec": spec.to_dict(), "force": force, "progress": progress,
                                   "command": command, "errors": str(errors)}))
        argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
                "--nproc_per_node", str(spec.gpus), "-m", "hubkit.train", str(job)]
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        # with progress the ranks' bars and logs reach the terminal; without, they go to a file read on failure
        with open(log, "w") as stderr:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=None if progress else subprocess.DEVNULL,
                                    stderr=None if progress else stderr, env=env, start_new_session=True,
                                    preexec_fn=_terminate_with_parent)
            try:
                proc.wait()
            except BaseException:  # Ctrl-C, a cluster's preemption signal (submitit requeues): stop every process
                _stop_group(proc)
                raise
        if proc.returncode:
            said = errors.read_text(errors="replace").strip().splitlines() if errors.exists() else []
            lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
            last = said[-1] if said else (lines[-1] if lines else f"exit code {proc.returncode} (see its output above)")
            raise HubkitError(f"{spec.gpus}-process run failed: {last}")
