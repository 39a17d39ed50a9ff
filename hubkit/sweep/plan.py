"""`hubkit sweep plan`: what a sweep will cost before anything runs — runs, GPU-hours, disk and Hub bytes.

The estimate is arithmetic over three things, each printed with where it comes from:

- **the grid**: runs, the models each saves (`save_epochs`: one per epoch), examples and epochs;
- **the models**: parameters and, for LoRA, the adapter size, read from a local folder's safetensors headers and
  `config.json`, from the Hub's safetensors metadata (when `HF_ENDPOINT` is set), or else from the size in the
  name (`7B`, `135M`);
- **throughput tables** (`throughput.yaml` beside this module): tokens per example of each training set, records
  each eval suite scores, and per hardware profile the effective training FLOP/s and seconds per evaluated
  record. The `cpu` profile is measured here by `scripts/bench/throughput.py`; `study-gpu` is derived from the
  study's own figures (0.5 GPU-hours per 1k-example 7–9B run, 16,700 GPU-hours to evaluate 1,027 models), which
  every plan prints beside its total as a reference point.

Training costs 6·P FLOPs per token for full-parameter tuning and 4·P for LoRA (no weight gradients for the frozen
base); evaluation scales with the records scored and linearly with P. Checkpoints count P × 2 bytes in bf16
(× 4 in float32); a LoRA checkpoint counts its adapter.

Example:
    >>> from hubkit.config import SweepSpec, parse_config
    >>> plan = plan_cost(parse_config(SweepSpec, "scripts/recipes/study-main-grid.yaml"))
    >>> round(plan.total.train_gpu_hours), plan.total.models
    (92, 2200)
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..config import RunSpec, SweepSpec
from ..errors import HubkitError

FLOPS_PER_TOKEN = {"full": 6, "lora": 4}  # × parameters
LORA_SHARE_AT_R16 = 0.006  # adapter / base parameters, all-linear r=16, when the architecture is unknown (Llama-7B)
_TARGETS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


@cache
def tables() -> dict[str, Any]:
    """The throughput tables (`throughput.yaml`)."""
    import yaml

    return yaml.safe_load((Path(__file__).with_name("throughput.yaml")).read_text(encoding="utf-8"))


@dataclass
class ModelSize:
    """A base model's size as the plan uses it.

    Attributes:
        params: parameters.
        lora_params_r1: adapter parameters per unit of rank, for all-linear LoRA (None: unknown architecture).
        source: where the numbers come from (`safetensors headers`, `Hub metadata`, `the name`).
    """

    params: float
    lora_params_r1: float | None
    source: str

    def adapter(self, spec: RunSpec) -> float:
        """Parameters of a LoRA adapter of rank `spec.lora_r` over this model."""
        if self.lora_params_r1 is not None and spec.lora_target_modules == ["all-linear"]:
            return self.lora_params_r1 * spec.lora_r
        return self.params * LORA_SHARE_AT_R16 * spec.lora_r / 16


def _lora_r1(config: dict[str, Any]) -> float | None:
    """Adapter parameters per rank for a decoder with Llama-style projections, from its config."""
    try:
        hidden, inter, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    except KeyError:
        return None
    heads = config.get("num_attention_heads") or 1
    kv = (config.get("num_key_value_heads") or heads) * (config.get("head_dim") or hidden // heads)
    attn = (hidden + heads * (hidden // heads)) * 2 + (hidden + kv) * 2  # q, o; k, v: r × (in + out) each
    mlp = (hidden + inter) * 3
    return float(layers * (attn + mlp))


def _safetensors_params(folder: Path) -> float:
    total = 0
    for f in folder.glob("*.safetensors"):
        with open(f, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
        total += sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
    return float(total)


def _from_name(model: str) -> float | None:
    match = re.search(r"(\d+(?:\.\d+)?)\s*([bBmM])(?![a-zA-Z])", model.rsplit("/", 1)[-1])
    if not match:
        return None
    return float(match.group(1)) * (1e9 if match.group(2).lower() == "b" else 1e6)


def model_size(model: str, ask_hub: bool) -> ModelSize:
    """The size of a base model (see the module docstring for where it is read).

    Raises:
        HubkitError: a model whose size cannot be found anywhere.
    """
    folder = Path(model)
    if folder.is_dir():
        config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
        params = _safetensors_params(folder)
        if params:
            return ModelSize(params, _lora_r1(config), "safetensors headers")
    if ask_hub and not folder.exists():
        found = _hub_size(model)
        if found is not None:
            return found
    params_from_name = _from_name(model)
    if params_from_name:
        return ModelSize(params_from_name, None, "the size in its name")
    raise HubkitError(f"sweep plan: cannot tell the size of {model} (no local folder, no Hub metadata, no size "
                      "such as 7B in its name)")


def _hub_size(model: str) -> ModelSize | None:
    from ..hub import get_api

    try:
        meta = get_api().get_safetensors_metadata(model)
        params = float(sum(meta.parameter_count.values()))
    except Exception:  # gated, missing, unreachable, no safetensors: fall back to the name
        return None
    try:
        from huggingface_hub import hf_hub_download

        config = json.loads(Path(hf_hub_download(model, "config.json")).read_text())
    except Exception:  # a config the Hub cannot serve: the adapter size is estimated instead
        config = {}
    return ModelSize(params, _lora_r1(config), "Hub safetensors metadata")


@dataclass
class Cost:
    """Counts and costs of a set of runs (one row of the plan, or the total)."""

    runs: int = 0
    models: int = 0  # checkpoints saved and, with eval, evaluated
    train_tokens: float = 0.0
    train_gpu_hours: float = 0.0
    eval_gpu_hours: float = 0.0
    disk_bytes: float = 0.0
    hub_bytes: float = 0.0

    def add(self, other: Cost) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class SweepPlan:
    """What `plan_cost` returns: a row per base model, the total, and what the numbers rest on."""

    sweep: str
    hardware: str
    hardware_note: str
    stages: list[str]
    eval_suite: str
    rows: dict[str, Cost] = field(default_factory=dict)
    sizes: dict[str, ModelSize] = field(default_factory=dict)
    total: Cost = field(default_factory=Cost)
    base_eval_gpu_hours: float = 0.0
    notes: list[str] = field(default_factory=list)


def _tokens_per_example(dataset: str) -> tuple[float, bool]:
    """Mean tokens per training example of a set (`all`/`w/o-X`: over their members); whether it was measured."""
    measured = tables()["datasets"]
    from ..data.registry import REGISTRY, members

    names = members(dataset) if dataset in REGISTRY or dataset == "all" or dataset.startswith("w/o-") else []
    known = [measured[n]["tokens"] for n in names if n in measured]
    if known:
        return sum(known) / len(known), True
    mean = sum(v["tokens"] for v in measured.values()) / len(measured)
    return mean, False


def _run_cost(spec: RunSpec, size: ModelSize, profile: dict[str, Any], records: int, sweep: SweepSpec) -> Cost:
    spec = spec.resolved()
    tokens_each, _ = _tokens_per_example(spec.dataset)
    examples = spec.data_size or tables()["default_examples"]
    tokens = examples * min(tokens_each, spec.max_length) * spec.epochs
    flops = FLOPS_PER_TOKEN[spec.tuning] * size.params * tokens
    saved = spec.epochs if spec.save_epochs else 1
    width = 4 if spec.dtype == "float32" or (spec.dtype == "auto" and not profile["gpu"]) else 2
    checkpoint = (size.adapter(spec) if spec.tuning == "lora" else size.params) * width
    evaluated = saved if "eval" in sweep.stages else 0
    per_record = profile["eval_seconds_per_record"] * size.params / profile["params"]
    return Cost(runs=1, models=saved, train_tokens=tokens,
                train_gpu_hours=flops / profile["train_flops_per_s"][spec.tuning] / 3600,
                eval_gpu_hours=evaluated * records * per_record / 3600,
                disk_bytes=saved * checkpoint, hub_bytes=saved * checkpoint if "publish" in sweep.stages else 0.0)


def plan_cost(sweep: SweepSpec, hardware: str | None = None) -> SweepPlan:
    """Estimate a sweep's runs, GPU-hours (training, evaluation), checkpoint disk and Hub upload; runs nothing.

    Args:
        sweep: the sweep file, parsed.
        hardware: a profile of `throughput.yaml`: `study-gpu` (the default) or `cpu`.

    Raises:
        HubkitError: an unknown hardware profile or eval suite, or a model whose size cannot be found.
    """
    import os

    from ..eval.tasks import get_suite
    from .runner import plan_sweep

    profiles = tables()["hardware"]
    hardware = hardware or "study-gpu"
    if hardware not in profiles:
        raise HubkitError(f"sweep plan: unknown hardware `{hardware}` (known: {', '.join(profiles)})")
    profile = profiles[hardware]
    runs = plan_sweep(sweep)
    get_suite(sweep.eval_suite)
    records = _suite_records(sweep.eval_suite, sweep.eval_limit)
    plan = SweepPlan(sweep.name, hardware, profile["source"], list(sweep.stages), sweep.eval_suite)
    ask_hub = bool(os.environ.get("HF_ENDPOINT"))
    for _, spec in runs:
        if spec.model not in plan.sizes:
            plan.sizes[spec.model] = model_size(spec.model, ask_hub)
        cost = _run_cost(spec, plan.sizes[spec.model], profile, records, sweep)
        plan.rows.setdefault(spec.model, Cost()).add(cost)
        plan.total.add(cost)
    if "eval" in sweep.stages:  # each base model is evaluated once, for the gains
        plan.base_eval_gpu_hours = sum(records * profile["eval_seconds_per_record"] * s.params / profile["params"]
                                       for s in plan.sizes.values()) / 3600
    unmeasured = sorted({s.dataset for _, s in runs if not _tokens_per_example(s.dataset)[1]})
    if unmeasured:
        plan.notes.append(f"tokens per example of {', '.join(unmeasured)} not in the tables: the mean of the "
                          "measured sets is used")
    return plan


def _suite_records(suite: str, limit: int | None) -> int:
    """Records a suite scores per model, from the tables (a benchmark list sums its members)."""
    counts = tables()["suites"]
    per_benchmark = tables()["benchmarks"]
    total = 0
    for part in [p.strip() for p in suite.split(",") if p.strip()]:
        if part in counts:
            n = counts[part]
            total += n if limit is None else min(n, limit * len(tables()["suite_members"][part]))
        elif part in per_benchmark:
            total += per_benchmark[part] if limit is None else min(per_benchmark[part], limit)
        else:
            raise HubkitError(f"sweep plan: no record count for `{part}` in the throughput tables")
    return total
