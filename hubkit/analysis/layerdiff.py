"""`hubkit layerdiff`: how far each fine-tune moved from its base, per tensor, module type and layer depth.

Tensors are streamed one at a time from safetensors files (sharded too): a local folder, or a Hub repo
read **remotely through HTTP Range requests** (`HfFileSystem`), so a 7B comparison never downloads whole
files. The base is read once for all fine-tunes. A LoRA adapter is diffed analytically — ΔW = s·B·A with
s = alpha/r — without merging: ‖ΔW‖² = tr((BᵀB)(AAᵀ)) and ⟨W, ΔW⟩ = Σ (BᵀW) ⊙ A are r×r and r×in work.
PEFT's variants are followed exactly (`AdapterPlan`): rsLoRA (s = alpha/√r), `rank_pattern` and
`alpha_pattern`, `modules_to_save` (whole tensors), embedding and `fan_in_fan_out` LoRA, and DoRA (each row
rescaled to its learned magnitude, computed block by block); other adapter types and settings are refused.

Per tensor: the relative Frobenius change ‖ΔW‖/‖W‖ and the cosine similarity of W and W+ΔW (in float64),
its module type (attention q/k/v/o, MLP gate/up/down, norm, embedding, other) and its layer's normalised
depth (0 = first layer, 1 = last).

Example:
    >>> table = layer_diff("HuggingFaceTB/SmolLM2-135M-Instruct", ["my-org/smollm2-lima-1k-full-e3-cosine-1a2b3c4d"])
    >>> table.groupby("depth")["rel_change"].mean()
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import HubkitError

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
          "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
MODULES = [("q_proj", "attention.q"), ("k_proj", "attention.k"), ("v_proj", "attention.v"),
           ("o_proj", "attention.o"), ("gate_proj", "mlp.gate"), ("up_proj", "mlp.up"), ("down_proj", "mlp.down"),
           ("norm", "norm"), ("embed", "embedding"), ("lm_head", "embedding"), ("wte", "embedding")]
CHUNK_BYTES = 16 << 20  # one read (one Range request remotely) per block of rows
_LAYER = re.compile(r"(?:layers|h|blocks|layer)\.(\d+)\.")
COLUMNS = ["model", "tensor", "module", "layer", "depth", "numel", "base_norm", "delta_norm", "dot", "rel_change",
           "cosine"]


def module_type(name: str) -> str:
    """The module family of a tensor name (`model.layers.3.self_attn.q_proj.weight` → `attention.q`)."""
    for key, kind in MODULES:
        if key in name:
            return kind
    return "other"


@dataclass
class _Entry:
    dtype: str
    shape: list[int]
    start: int
    end: int
    file: str


@dataclass
class TensorSource:
    """The tensors of one model, read lazily: a local folder or a Hub repo (Range reads), sharded or not."""

    name: str
    label: str = ""  # how results name it: a Hub id, or a local folder's run id or name (never a path)
    entries: dict[str, _Entry] = field(default_factory=dict)
    adapter: dict[str, Any] | None = None  # adapter_config.json of a LoRA adapter
    bytes_read: int = 0  # bytes fetched from the weight files (headers and tensors)
    _opener: Any = None
    _handles: dict[str, BinaryIO] = field(default_factory=dict)

    @classmethod
    def open(cls, model: str, revision: str | None = None) -> TensorSource:
        """Index a model's safetensors headers (a few small reads per file).

        Raises:
            HubkitError: no safetensors weights, or a corrupted header (naming the file).
        """
        path = Path(model)
        if path.is_dir():
            opener: Callable[[str], Any] = lambda f: open(path / f, "rb")  # noqa: E731, SIM115 (the caller closes it)
            listing = [p.name for p in path.iterdir()]
            reader = lambda f: (path / f).read_text(encoding="utf-8")  # noqa: E731
        else:
            from huggingface_hub import HfFileSystem

            from ..hub import check_repo_id, ensure_endpoint, get_api, hub_errors, retrying

            check_repo_id(model, f"model {model}")
            api = get_api()
            with hub_errors(f"model {model}", endpoint=api.endpoint):
                info = retrying(api.model_info, model, revision=revision)
            fs = HfFileSystem(endpoint=ensure_endpoint(), token=api.token)
            root = f"{model}@{info.sha}"
            opener = lambda f: _RemoteFile(fs, f"{root}/{f}")  # noqa: E731
            listing = [s.rfilename for s in info.siblings or []]
            reader = lambda f: fs.read_text(f"{root}/{f}", encoding="utf-8")  # noqa: E731
        source = cls(model, label=public_name(model), _opener=opener)
        if "adapter_config.json" in listing:
            source.adapter = json.loads(reader("adapter_config.json"))
        if "model.safetensors.index.json" in listing:
            weight_map = json.loads(reader("model.safetensors.index.json"))["weight_map"]
            files = sorted(set(weight_map.values()))
        else:
            files = [f for f in ("model.safetensors", "adapter_model.safetensors") if f in listing]
        if not files:
            raise HubkitError(f"model {model}: no safetensors weights (model.safetensors, an index, or an adapter)")
        for f in files:
            source._index(f)
        return source

    def _handle(self, file: str) -> BinaryIO:
        if file not in self._handles:
            try:
                self._handles[file] = self._opener(file)
            except FileNotFoundError:
                raise HubkitError(f"model {self.name}: weight file {file} is missing") from None
        return self._handles[file]

    def _index(self, file: str) -> None:
        f = self._handle(file)
        f.seek(0)
        head = f.read(8)
        self.bytes_read += len(head)
        if len(head) < 8:
            raise HubkitError(f"model {self.name}: {file} is not a safetensors file (too short)")
        (size,) = struct.unpack("<Q", head)
        if size > 100 << 20:
            raise HubkitError(f"model {self.name}: {file} has a corrupted safetensors header (claims {size:,} bytes)")
        try:
            text = f.read(size)
            self.bytes_read += len(text)
            header = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            raise HubkitError(f"model {self.name}: {file} has a corrupted safetensors header (not JSON)") from None
        base = 8 + size
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            try:
                start, end = meta["data_offsets"]
                self.entries[name] = _Entry(meta["dtype"], list(meta["shape"]), base + start, base + end, file)
            except (KeyError, TypeError, ValueError):
                raise HubkitError(f"model {self.name}: {file}: malformed header entry for tensor {name}") from None

    def read(self, name: str) -> np.ndarray:
        """One tensor as float64 (bf16 widened exactly)."""
        entry = self.entries[name]
        f = self._handle(entry.file)
        f.seek(entry.start)
        raw = f.read(entry.end - entry.start)
        self.bytes_read += len(raw)
        if len(raw) != entry.end - entry.start:
            raise HubkitError(f"model {self.name}: {entry.file} is truncated inside tensor {name}")
        return self._decode(raw, entry.dtype, name).reshape(entry.shape)

    def chunks(self, name: str, chunk_bytes: int = CHUNK_BYTES, exact: bool = True) -> Iterator[np.ndarray]:
        """A tensor as blocks of whole rows (first axis), each read with one request of at most `chunk_bytes`:
        memory stays bounded by the block, and remote reads fetch only the tensor's bytes. Blocks are float64,
        or with `exact=False` float32 for a tensor stored in 32 bits or fewer (every value represented exactly)."""
        entry = self.entries[name]
        rows = entry.shape[0] if entry.shape else 1
        row_shape = entry.shape[1:] if entry.shape else []
        row_bytes = max(1, (entry.end - entry.start) // max(1, rows))
        step = max(1, chunk_bytes // row_bytes)
        f = self._handle(entry.file)
        for first in range(0, rows, step):
            count = min(step, rows - first)
            f.seek(entry.start + first * row_bytes)
            raw = f.read(count * row_bytes)
            self.bytes_read += len(raw)
            if len(raw) != count * row_bytes:
                raise HubkitError(f"model {self.name}: {entry.file} is truncated inside tensor {name}")
            yield self._decode(raw, entry.dtype, name, exact).reshape([count, *row_shape] if entry.shape else [])

    def _decode(self, raw: bytes, dtype: str, name: str, exact: bool = True) -> np.ndarray:
        wide = np.float64 if exact or dtype == "F64" else np.float32
        if dtype == "BF16":
            return (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32).astype(wide)
        if dtype in DTYPES:
            return np.frombuffer(raw, dtype=DTYPES[dtype]).astype(wide, copy=False)
        raise HubkitError(f"model {self.name}: tensor {name} has unsupported dtype {dtype}")

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()


class _RemoteFile:
    """A weight file on the Hub, read in order as one streamed download; after a forward jump (tensors skipped),
    each read is one Range request of exactly the bytes asked for."""

    def __init__(self, fs: Any, path: str) -> None:
        self.fs, self.path, self.loc = fs, path, 0
        self.stream: Any = fs.open(path, "rb", block_size=0)

    def seek(self, loc: int) -> None:
        if self.stream is not None and loc != self.stream.loc:
            self.stream.close()
            self.stream = None
        self.loc = loc

    def read(self, n: int) -> bytes:
        data = self.stream.read(n) if self.stream is not None else self.fs.cat_file(self.path, start=self.loc,
                                                                                    end=self.loc + n)
        self.loc += len(data)
        return data

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()


def public_name(model: str) -> str:
    """A Hub id as is; a local folder as the repo `hubkit pull` fetched it from, its run id (a run's `model/`)
    or its own name."""
    path = Path(model)
    if not path.is_dir():
        return model
    path = path.resolve()
    from ..pull import PulledModel
    from ..runs import RunDir

    pulled = PulledModel.of(path)
    if pulled is not None:
        return pulled.repo_id
    if path.name == RunDir.MODEL and RunDir(path.parent).is_trained():
        return path.parent.name
    return path.name


# adapter_config.json settings that change what merging an adapter does in ways hubkit does not compute:
# refused, never reported as a (wrong) number
_UNSUPPORTED = ("lora_bias", "layer_replication", "target_parameters", "use_qalora", "use_bdlora",
                "alora_invocation_tokens", "arrow_config", "trainable_token_indices", "kasa_config", "velora_config",
                "monteclora_config")
_ADAPTER_TENSOR = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+?)\.(?P<kind>lora_A|lora_B|lora_embedding_A|"
                             r"lora_embedding_B|lora_magnitude_vector|base_layer)(?:\.weight)?$")


@dataclass
class AdapterPlan:
    """How one LoRA adapter changes each base tensor, from its `adapter_config.json` and tensor names.

    `lora[base tensor] = (A name, B name, scale, transposed)`: ΔW = s·B·A, or s·(B·A)ᵀ for embeddings and
    `fan_in_fan_out` layers; s = alpha/r (alpha/√r with `use_rslora`), with r the tensor's own rank
    (`rank_pattern`) and alpha from `alpha_pattern` where a pattern matches (PEFT's rule).
    `dora[base tensor]` = the magnitude vector (DoRA: W' = m/‖W+ΔW‖_row · (W+ΔW)); `replaced[base tensor]`
    = an adapter tensor that replaces it whole (`modules_to_save`).
    """

    lora: dict[str, tuple[str, str, float, bool]] = field(default_factory=dict)
    dora: dict[str, str] = field(default_factory=dict)
    replaced: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, source: TensorSource, base_entries: dict[str, Any]) -> AdapterPlan:
        """Raises:
            HubkitError: a PEFT type or setting hubkit cannot compute exactly, or a tensor it cannot place.
        """
        config = source.adapter or {}
        if str(config.get("peft_type", "LORA")).upper() != "LORA":
            raise HubkitError(f"adapter {source.name}: peft_type {config.get('peft_type')} is not supported "
                              "(LoRA and DoRA are)")
        for key in _UNSUPPORTED:
            if config.get(key):
                raise HubkitError(f"adapter {source.name}: `{key}` is set; hubkit cannot compute that adapter's "
                                  "weight change exactly, so it does not report one")
        rslora, dora, fan = bool(config.get("use_rslora")), bool(config.get("use_dora")), bool(
            config.get("fan_in_fan_out"))
        alpha, alphas = float(config.get("lora_alpha", 8)), dict(config.get("alpha_pattern") or {})
        parts: dict[str, dict[str, str]] = {}
        plan = cls()
        for name in source.entries:
            m = _ADAPTER_TENSOR.match(name)
            if m is None:
                stem = name.removeprefix("base_model.model.")
                if stem in base_entries:
                    plan.replaced[stem] = name  # modules_to_save: the whole tensor, trained
                    continue
                raise HubkitError(f"adapter {source.name}: tensor {name} is neither a LoRA factor nor a base "
                                  "tensor; this adapter type is not supported")
            parts.setdefault(m.group("module"), {})[m.group("kind")] = name
        for module, kinds in parts.items():
            target = f"{module}.weight"
            if set(kinds) == {"base_layer"}:
                continue  # PEFT saves an embedding's unchanged base beside its LoRA factors
            if target not in base_entries:
                raise HubkitError(f"adapter {source.name}: tensor {target} does not exist in the base")
            embedding = "lora_embedding_A" in kinds
            a_name, b_name = (kinds.get("lora_embedding_A"), kinds.get("lora_embedding_B")) if embedding else (
                kinds.get("lora_A"), kinds.get("lora_B"))
            if a_name is None or b_name is None:
                raise HubkitError(f"adapter {source.name}: {module} has only one of its two LoRA factors")
            rank = source.entries[a_name].shape[0]
            pattern = next((k for k in alphas if re.match(rf"(.*\.)?({k})$", module)), None)
            module_alpha = float(alphas[pattern]) if pattern is not None else alpha
            scale = module_alpha / (math.sqrt(rank) if rslora else rank)
            plan.lora[target] = (a_name, b_name, scale, embedding or fan)
            if "lora_magnitude_vector" in kinds:
                if not dora:
                    raise HubkitError(f"adapter {source.name}: {module} has a DoRA magnitude but use_dora is off")
                if embedding:
                    raise HubkitError(f"adapter {source.name}: DoRA on an embedding ({module}) is not supported")
                plan.dora[target] = kinds["lora_magnitude_vector"]
            elif dora:
                raise HubkitError(f"adapter {source.name}: use_dora is set but {module} has no magnitude vector")
        return plan


def _row(model: str, tensor: str, layers: int, numel: int, base_sq: float, delta_sq: float,
         dot: float) -> dict[str, Any]:
    m = _LAYER.search(tensor)
    layer = int(m.group(1)) if m else None
    depth = (layer / (layers - 1) if layers > 1 else 0.0) if layer is not None else None
    new_sq = base_sq + 2 * dot + delta_sq
    cosine = (base_sq + dot) / math.sqrt(base_sq * new_sq) if base_sq > 0 and new_sq > 0 else float("nan")
    return {"model": model, "tensor": tensor, "module": module_type(tensor), "layer": layer, "depth": depth,
            "numel": numel, "base_norm": math.sqrt(base_sq), "delta_norm": math.sqrt(max(delta_sq, 0.0)), "dot": dot,
            "rel_change": math.sqrt(max(delta_sq, 0.0) / base_sq) if base_sq > 0 else float("nan"),
            "cosine": min(1.0, cosine)}


def layer_diff(base: str, models: list[str], revision: str | None = None, progress: bool = True,
               stats: dict[str, int] | None = None, adapted_only: bool = False):
    """Per-tensor weight change of each fine-tune against the base (a tidy pandas DataFrame of `COLUMNS`).

    Args:
        base: the base model (Hub id or local folder).
        models: fine-tunes of it (Hub ids or local folders; full weights or LoRA adapters).
        revision: the base's Hub revision.
        progress: show a progress bar over the base's tensors.
        stats: filled with `bytes_read` (all weight-file bytes fetched, headers included) and
            `tensor_bytes` (the bytes of the tensors compared).
        adapted_only: only the tensors some fine-tune changes (for adapters: those with LoRA factors or saved
            whole); the base's other tensors are not read, and get no row.

    Raises:
        HubkitError: a fine-tune with different tensors or shapes than the base (naming the tensor), a
            corrupted safetensors header or a truncated file (naming the file).
    """
    import pandas as pd
    from tqdm.auto import tqdm

    base_src = TensorSource.open(base, revision)
    if base_src.adapter is not None:
        raise HubkitError(f"base {base} is a LoRA adapter; give the model it adapts")
    tuned = [TensorSource.open(m) for m in models]
    names = list(base_src.entries)
    layers = 1 + max((int(m.group(1)) for n in names if (m := _LAYER.search(n))), default=0)
    plans = _plans(base, base_src, tuned)
    if adapted_only and all(kind == "lora" for kind, _, _ in plans):
        touched = {n for _, _, plan in plans for n in (*plan.lora, *plan.replaced)}
        names = [n for n in names if n in touched]
    rows = []
    try:
        for name in tqdm(names, desc="layer diff", unit="tensor", disable=not progress):
            entry = base_src.entries[name]
            if entry.dtype not in ("F64", "F32", "F16", "BF16"):
                continue
            whole, factors = _changes(name, entry, plans)
            w_sq = 0.0
            sums = {id(p[1]): [0.0, 0.0] for p in plans}  # Σ d², Σ w·d
            readers = {key: src.chunks(tensor) for key, (src, tensor) in whole.items()}
            # only LoRA factors (no whole tensor, no DoRA): W stays in its stored precision (float32 at most), the
            # r×in products are made in it and summed across blocks in float64; ‖W‖² is summed in float64
            analytic = not readers and all(f[3] is None for f in factors.values())
            narrow = {k: f[1].astype(np.float32) for k, f in factors.items()} if analytic else {}
            row = 0
            for w in base_src.chunks(name, exact=not analytic):
                w64 = w if w.dtype == np.float64 else w.astype(np.float64)
                w_sq += float(np.vdot(w64, w64))
                for key, reader in readers.items():
                    d = next(reader) - w
                    sums[key][0] += float(np.vdot(d, d))
                    sums[key][1] += float(np.vdot(w, d))
                for key, (a, sb, btw, magnitude) in factors.items():
                    block = w.reshape(len(w), -1)
                    if magnitude is None:  # analytic: only r×in work per block, summed in float64
                        btw += narrow.get(key, sb)[row:row + len(w)].T @ block
                    else:  # DoRA: the row norms of W + s·B·A rescale each row to its learned magnitude
                        merged = block + sb[row:row + len(w)] @ a
                        norms = np.linalg.norm(merged, axis=1)
                        d = (magnitude[row:row + len(w)] / np.where(norms > 0, norms, 1.0))[:, None] * merged - block
                        sums[key][0] += float(np.vdot(d, d))
                        sums[key][1] += float(np.vdot(block, d))
                row += len(w)
            numel = int(np.prod(entry.shape)) if entry.shape else 1
            for _kind, src, _plan in plans:
                key = id(src)
                if key in factors and factors[key][3] is None:
                    a, sb, btw, _ = factors[key]
                    delta_sq = float(np.sum((sb.T @ sb) * (a @ a.T)))
                    rows.append(_row(src.label, name, layers, numel, w_sq, delta_sq, float(np.sum(btw * a))))
                else:
                    rows.append(_row(src.label, name, layers, numel, w_sq, *sums[key]))
    finally:
        if stats is not None:
            stats["bytes_read"] = base_src.bytes_read + sum(src.bytes_read for src in tuned)
            stats["tensor_bytes"] = sum(e.end - e.start for src in (base_src, *tuned) for e in src.entries.values())
        base_src.close()
        for src in tuned:
            src.close()
    return pd.DataFrame(rows, columns=COLUMNS)


def _plans(base: str, base_src: TensorSource, tuned: list[TensorSource]) -> list[tuple[str, TensorSource, Any]]:
    """Per fine-tune, how to read its change: ("lora", source, its `AdapterPlan`) or ("full", source, None).

    Raises:
        HubkitError: a full model whose tensors are not the base's (another architecture).
    """
    plans: list[tuple[str, TensorSource, Any]] = []
    for src in tuned:
        if src.adapter is not None:
            plans.append(("lora", src, AdapterPlan.of(src, base_src.entries)))
            continue
        missing = [n for n in base_src.entries if n not in src.entries]
        extra = [n for n in src.entries if n not in base_src.entries]
        if missing or extra:
            which = f"lacks tensor {missing[0]}" if missing else f"has tensor {extra[0]} that the base lacks"
            raise HubkitError(f"model {src.name} {which} (different architecture from {base}?)")
        plans.append(("full", src, None))
    return plans


def _changes(name: str, entry, plans: list) -> tuple[dict[int, tuple[TensorSource, str]], dict[int, list]]:
    """Per fine-tune (by `id` of its source), how tensor `name` changes: a whole other tensor to read, or LoRA
    factors `[A, s·B, Bᵀ·W accumulator, DoRA magnitude or None]`; a fine-tune in neither leaves it unchanged.

    Raises:
        HubkitError: a shape that does not match the base's.
    """
    whole: dict[int, tuple[TensorSource, str]] = {}
    factors: dict[int, list] = {}
    for kind, src, plan in plans:
        if kind == "full":
            if src.entries[name].shape != entry.shape:
                raise HubkitError(f"model {src.name}: tensor {name} has shape {src.entries[name].shape}, "
                                  f"the base {entry.shape}")
            whole[id(src)] = (src, name)
        elif name in plan.replaced:
            if src.entries[plan.replaced[name]].shape != entry.shape:
                raise HubkitError(f"adapter {src.name}: its saved {name} has shape "
                                  f"{src.entries[plan.replaced[name]].shape}, the base {entry.shape}")
            whole[id(src)] = (src, plan.replaced[name])
        elif name in plan.lora:
            a_name, b_name, scale, transposed = plan.lora[name]
            a, b = src.read(a_name), src.read(b_name)
            if transposed:  # ΔW = s·(B·A)ᵀ = s·Aᵀ·Bᵀ: the same form with the factors swapped
                a, b = b.T, a.T
            if len(entry.shape) != 2 or (b.shape[0], a.shape[1]) != tuple(entry.shape):
                raise HubkitError(f"adapter {src.name}: LoRA of {name} is {b.shape[0]}×{a.shape[1]}, "
                                  f"the base tensor {tuple(entry.shape)}")
            magnitude = src.read(plan.dora[name]).reshape(-1) if name in plan.dora else None
            factors[id(src)] = [a, scale * b, np.zeros(a.shape), magnitude]
    return whole, factors


def by_layer(table):
    """Per model and layer, over all its tensors: the relative change ‖ΔW‖/‖W‖ and the cosine of W and W+ΔW."""
    layered = table[table["layer"].notna()].assign(d2=lambda t: t["delta_norm"] ** 2, w2=lambda t: t["base_norm"] ** 2)
    out = layered.groupby(["model", "layer", "depth"], as_index=False)[["d2", "w2", "dot"]].sum()
    out["rel_change"] = (out["d2"] / out["w2"]) ** 0.5
    out["cosine"] = ((out["w2"] + out["dot"]) / (out["w2"] * (out["w2"] + 2 * out["dot"] + out["d2"])) ** 0.5).clip(
        upper=1.0)
    return out.drop(columns=["d2", "w2", "dot"])


def plot(table, path: Path) -> None:
    """Relative change against normalised depth, one line per model; and per module type."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = by_layer(table)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for model, part in layers.groupby("model"):
        axes[0].plot(part["depth"], part["rel_change"], marker="o", markersize=3, label=str(model)[-40:])
    axes[0].set_xlabel("normalised layer depth")
    axes[0].set_ylabel("‖ΔW‖ / ‖W‖ per layer")
    axes[0].legend(fontsize=7)
    modules = table[table["layer"].notna()].groupby(["module", "model"])["rel_change"].mean().unstack()
    modules.plot.bar(ax=axes[1], legend=False)
    axes[1].set_ylabel("mean ‖ΔW‖ / ‖W‖ per tensor")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
