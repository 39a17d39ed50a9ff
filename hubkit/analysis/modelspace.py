"""The models themselves as data: log-likelihood vectors and their map, intrinsic dimension by depth, and how
alike the layer-wise weight changes of different fine-tunes are.

**Log-likelihood vectors.** A fixed, versioned probe set: the first `per_task` records (in hubkit's seeded
order) of each seeded benchmark in `PROBE_TASKS`, each a (question, gold answer) pair in the benchmark's own
0-shot prompt. A model's vector holds log P(answer | question), summed over the answer's tokens, for every
probe. Vectors are cached per model revision and probe digest. The map double-centres the models × probes
matrix (each probe's mean over models and each model's mean over probes removed, so that what remains is how
a model's beliefs differ, not how long a probe is) and projects it to 2-D with t-SNE, or UMAP where
`umap-learn` is installed; with fewer than 5 models, with PCA (the figure says which).

**Intrinsic dimension.** Sentence embeddings (hidden states mean-pooled over a text's tokens) of the probe
questions at every layer; per layer, the Gride estimator (Denti et al., 2022) at scales n1 = 1, 2, 4, …
(n2 = 2·n1), the headline at `GRIDE_SCALE`. Base and fine-tunes by normalised depth (layer / layers).

**Weight-change similarity.** From `hubkit layerdiff`'s per-layer table: each model's relative change
‖ΔW‖/‖W‖ by normalised depth (interpolated onto `DEPTH_BINS` points), compared between every pair of models
by Pearson correlation (the shape of the profile) and cosine.

Example:
    >>> probe = build_probe_set(per_task=150)
    >>> table = loglik_vectors(["my-org/base", "my-org/run-a", "my-org/run-b"], probe)
    >>> coords = loglik_map(table)
"""

# size: the paper's two model-space analyses (log-likelihood map, intrinsic dimension) share their model loading,
# probe set and push; split further, each half would import most of the other.

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import HubkitError
from ..utils import DATA_NAMESPACE

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

PROBE_VERSION = 1
PROBE_TASKS = ("gsm8k", "math500", "humaneval", "mbpp", "mmlu", "hellaswag", "boolq", "truthfulqa", "nq_open")
DEFAULT_PER_TASK = 150
GRIDE_SCALE = 4  # headline n1 of the per-layer intrinsic dimension (n2 = 8)
DEPTH_BINS = 20


# -- the probe set -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Probe:
    """One probe: a benchmark record as (question, gold answer)."""

    task: str
    doc_id: int
    context: str
    continuation: str


@dataclass
class ProbeSet:
    """The probes every model is scored on; `digest` identifies them exactly (content, order, version)."""

    probes: list[Probe]
    per_task: int
    data_revisions: dict[str, str | None] = field(default_factory=dict)
    version: int = PROBE_VERSION

    @property
    def digest(self) -> str:
        text = json.dumps([self.version, [(p.task, p.doc_id, p.context, p.continuation) for p in self.probes]])
        return hashlib.sha256(text.encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        """What the results record of the probe set (no texts: those are in the seeded benchmarks)."""
        counts: dict[str, int] = {}
        for p in self.probes:
            counts[p.task] = counts.get(p.task, 0) + 1
        return {"version": self.version, "digest": self.digest, "per_task": self.per_task, "probes": len(self.probes),
                "tasks": counts, "data_revisions": self.data_revisions}


def _gold(task, doc: dict) -> str:
    """The benchmark's gold answer, written as the model would continue the prompt."""
    if task.kind == "loglik":
        choices, labels = task.choices(doc), task.labels(doc)
        return choices[labels.index(1)]
    if task.name == "gsm8k":
        return " " + doc["answer"]
    if task.name in ("math", "math500"):
        return " " + doc["solution"]
    if task.name == "nq_open":
        return " " + doc["answer"][0]
    if task.name == "humaneval":
        return doc["canonical_solution"]
    if task.name == "mbpp":
        return doc["code"]
    raise HubkitError(f"probe set: no gold answer for {task.name}")


def build_probe_set(per_task: int = DEFAULT_PER_TASK, tasks: tuple[str, ...] = PROBE_TASKS,
                    namespace: str = DATA_NAMESPACE) -> ProbeSet:
    """The first `per_task` records of each benchmark in hubkit's seeded order, 0-shot, with their gold answers.

    Raises:
        HubkitError: a benchmark is unknown or not seeded (`hubkit hub seed`).
    """
    from ..eval.harness import BenchmarkData
    from ..eval.tasks import TASKS, BenchmarkRun, build_instances

    if per_task < 1:
        raise HubkitError("probe set: --per-task must be at least 1")
    unknown = [t for t in tasks if t not in TASKS or TASKS[t].kind == "judge"]
    if unknown:
        raise HubkitError(f"probe set: {unknown[0]!r} is not a benchmark with gold answers")
    data = BenchmarkData(namespace)
    probes, revisions = [], {}
    for name in tasks:
        task = TASKS[name]
        docs, revision = data.split(task.repo, task.split, name)
        revisions[name] = revision
        for inst in build_instances(BenchmarkRun(task, 0, per_task), docs, None):
            probes.append(Probe(name, inst.doc_id, inst.prompt, _gold(task, inst.doc)))
    return ProbeSet(probes, per_task, revisions)


# -- log-likelihood vectors ------------------------------------------------------------------------------------

@dataclass
class ModelAxes:
    """What a map colours by: the model's family (its base model), training data, epochs and tuning."""

    model: str
    revision: str
    family: str
    dataset: str
    epochs: int | None
    tuning: str


def model_axes(source) -> ModelAxes:
    """The axes of a resolved model (`eval.lm.ModelSource`): from its run record, else its card's `hubkit:`
    metadata, else it is a base model (its own family, `pretrain`)."""
    spec = None
    if source.run_dir is not None:
        from ..runs import load_run

        spec = load_run(source.run_dir).spec
        return ModelAxes(source.name, source.revision, source.base_model or spec.model, spec.dataset, spec.epochs,
                         spec.tuning)
    card: dict[str, Any] = {}
    if not Path(source.path).is_dir():
        from ..hub import get_api, hub_errors, retrying

        with hub_errors(f"model {source.name}"):
            info = retrying(get_api().model_info, source.name, revision=source.revision)
        card = info.card_data.to_dict() if info.card_data else {}
    axes = card.get("hubkit") if isinstance(card.get("hubkit"), dict) else {}
    if source.base_model and axes:
        return ModelAxes(source.name, source.revision, source.base_model, str(axes.get("dataset") or "unknown"),
                         axes.get("epochs"), str(axes.get("tuning") or ("lora" if source.adapter else "full")))
    if source.base_model:
        return ModelAxes(source.name, source.revision, source.base_model, "unknown", None,
                         "lora" if source.adapter else "unknown")
    return ModelAxes(source.name, source.revision, source.name, "pretrain", 0, "base")


def _cache_path(source, probe: ProbeSet) -> Path:
    from ..utils import hubkit_home

    return hubkit_home() / "loglik-cache" / source.key / f"probes-v{probe.version}-{probe.digest[:16]}.json"


def loglik_vector(source, probe: ProbeSet, batch_size: int = 8, progress: bool = True) -> list[float]:
    """log P(answer | question) of every probe under one model (`eval.lm.ModelSource`), cached by revision."""
    from ..eval.lm import LM

    path = _cache_path(source, probe)
    if path.is_file():
        try:
            cached = json.loads(path.read_text(encoding="utf-8"))
            if cached.get("digest") == probe.digest and len(cached.get("logliks", [])) == len(probe.probes):
                return [float(x) for x in cached["logliks"]]
        except (OSError, ValueError):
            pass  # a torn cache file is recomputed
    lm = LM.load(source, batch_size=batch_size)
    scores = lm.loglikelihood([(p.context, p.continuation) for p in probe.probes], progress=progress,
                              desc=f"log-likelihoods · {source.name[:40]}")
    values = [s.logprob for s in scores]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps({"model": source.name, "revision": source.revision, "digest": probe.digest,
                               "logliks": values}), encoding="utf-8")
    tmp.replace(path)
    return values


@dataclass
class LoglikTable:
    """Models × probes log-likelihoods, with each model's axes."""

    axes: list[ModelAxes]
    matrix: np.ndarray
    probe: ProbeSet

    def frame(self) -> pd.DataFrame:
        """One row per model: its axes, then one column per probe (`<task>/<doc_id>`)."""
        import pandas as pd

        meta = pd.DataFrame([vars(a) for a in self.axes])
        cols = [f"{p.task}/{p.doc_id}" for p in self.probe.probes]
        return pd.concat([meta, pd.DataFrame(self.matrix, columns=cols)], axis=1)


def loglik_vectors(models: list, probe: ProbeSet, batch_size: int = 8, progress: bool = True) -> LoglikTable:
    """The log-likelihood vectors of `models` (Hub ids, local folders, run directories, adapters, or resolved
    `eval.lm.ModelSource`s).

    Raises:
        HubkitError: fewer than 2 models, or a model that cannot be resolved or loaded.
    """
    import numpy as np

    from ..eval.lm import resolve_model

    sources = list({s.key: s for s in (resolve_model(m) if isinstance(m, str) else m for m in models)}.values())
    if len(sources) < 2:
        raise HubkitError("--loglik compares models: give at least 2 (--model A --model B …)")
    axes, rows = [], []
    for source in sources:
        axes.append(model_axes(source))
        rows.append(loglik_vector(source, probe, batch_size=batch_size, progress=progress))
    return LoglikTable(axes, np.asarray(rows, dtype=float), probe)


def double_center(matrix: np.ndarray) -> np.ndarray:
    """The matrix less each column's mean and each row's mean (plus the grand mean)."""
    return matrix - matrix.mean(axis=0, keepdims=True) - matrix.mean(axis=1, keepdims=True) + matrix.mean()


def loglik_map(table: LoglikTable, method: str = "auto", seed: int = 0) -> pd.DataFrame:
    """2-D coordinates of each model: `tsne`, `umap` (umap-learn) or `pca`; `auto` is UMAP where installed,
    else t-SNE, and PCA below 5 models. Columns: the axes, `x`, `y`, `method`."""
    import importlib.util

    import numpy as np
    import pandas as pd

    n = len(table.axes)
    centred = double_center(table.matrix)
    if method == "auto":
        method = "pca" if n < 5 else "umap" if importlib.util.find_spec("umap") else "tsne"
    if method in ("tsne", "umap") and n < 5:
        raise HubkitError(f"a {method} map needs at least 5 models ({n} given); use --map pca")
    if method == "pca":
        u, s, _ = np.linalg.svd(centred - centred.mean(axis=0), full_matrices=False)
        xy = u[:, :2] * s[:2]
        if xy.shape[1] < 2:
            xy = np.column_stack([xy, np.zeros(n)])
    elif method == "tsne":
        from sklearn.manifold import TSNE

        xy = TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), init="pca", random_state=seed).fit_transform(centred)
    elif method == "umap":
        import umap

        xy = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), random_state=seed).fit_transform(centred)
    else:
        raise HubkitError(f"unknown map method {method!r} (auto, tsne, umap or pca)")
    out = pd.DataFrame([vars(a) for a in table.axes])
    out["x"], out["y"], out["method"] = xy[:, 0], xy[:, 1], method
    return out


def _legend_label(value: Any) -> str:
    """A map legend's entry: `unknown` for a missing value (a model whose epochs no card records is still drawn),
    whole numbers without `.0`."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return "unknown"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def plot_map(coords: pd.DataFrame, path: Path, probe: ProbeSet) -> None:
    """Three panels of the map, coloured by family, training data and epochs; the legend outside the data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    method = str(coords["method"].iloc[0]).upper().replace("TSNE", "t-SNE")
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    markers = "osD^vP*Xh<>"
    for ax, (column, title) in zip(axes, (("family", "family (base model)"), ("dataset", "training data"),
                                          ("epochs", "epochs"))):
        for k, (value, part) in enumerate(coords.groupby(coords[column].map(_legend_label), sort=True)):
            ax.scatter(part["x"], part["y"], s=36, marker=markers[k % len(markers)], label=str(value)[-32:])
        ax.set_title(f"by {title}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.suptitle(f"{len(coords)} models by their log-likelihoods on {len(probe.probes):,} probes "
                 f"(v{probe.version}, {len(probe.describe()['tasks'])} benchmarks), double-centred, {method}",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


# -- intrinsic dimension ------------------------------------------------------------------------------------

def _neighbour_distances(x: np.ndarray, k: int) -> np.ndarray:
    """Distances from each point to its k nearest other points, ascending (exact; in blocks)."""
    import numpy as np

    sq = (x * x).sum(axis=1)
    out = np.empty((len(x), k))
    for start in range(0, len(x), 1024):
        block = x[start:start + 1024]
        d2 = sq[start:start + 1024, None] + sq[None, :] - 2.0 * block @ x.T
        np.maximum(d2, 0.0, out=d2)
        rows = np.arange(len(block))
        d2[rows, start + rows] = np.inf  # not its own neighbour
        part = np.partition(d2, k - 1, axis=1)[:, :k]
        out[start:start + len(block)] = np.sqrt(np.sort(part, axis=1))
    return out


def gride(x: np.ndarray, n1: int = 1, n2: int | None = None) -> tuple[float, float]:
    """The Gride intrinsic-dimension estimate (Denti et al., 2022) and its standard error.

    The ratios μ = r_{n2} / r_{n1} of each point's n2-th and n1-th neighbour distances follow
    f(μ | d) = d (μ^d − 1)^{n2−n1−1} / (B(n2−n1, n1) μ^{(n2−1) d + 1}); d maximises their likelihood. The
    error is the inverse square root of the observed information. Duplicate points are dropped first.
    Agrees with dadapy's `return_id_scaling_gride` within 1 % (`scripts/bench/gride.py`).

    Args:
        x: points (rows) in any dimension.
        n1, n2: neighbour ranks (default n2 = 2·n1).

    Raises:
        HubkitError: too few distinct points for the scale.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> plane = rng.normal(size=(1000, 2)) @ rng.normal(size=(2, 50))
        >>> round(gride(plane, n1=4)[0], 1)
        2.0
    """
    n2 = n2 or 2 * n1
    x = _distinct(x, n2)
    return _gride_fit(_neighbour_distances(x, n2), n1, n2, x.shape[1])


def _distinct(x, n2: int):
    import numpy as np

    x = np.unique(np.asarray(x, dtype=np.float64), axis=0)
    if len(x) <= n2 + 1:
        raise HubkitError(f"Gride at n2={n2} needs more than {n2 + 1} distinct points ({len(x)} given)")
    return x


def _gride_fit(dist: np.ndarray, n1: int, n2: int, dim: int) -> tuple[float, float]:
    """Gride's maximum-likelihood d from each point's sorted neighbour distances (column k: the (k+1)-th)."""
    import numpy as np
    from scipy.optimize import minimize_scalar
    from scipy.special import betaln

    r1, r2 = dist[:, n1 - 1], dist[:, n2 - 1]
    keep = (r1 > 0) & (r2 > r1)
    log_mu = np.log(r2[keep] / r1[keep])
    if len(log_mu) < 3:
        raise HubkitError("Gride: the neighbour distances are degenerate (points on top of each other)")
    k, n = n2 - n1, len(log_mu)

    def nll(d: float) -> float:
        # log(μ^d − 1) = d·logμ + log(1 − e^{−d·logμ}), stable for large μ^d
        return -(n * math.log(d) + (k - 1) * np.sum(d * log_mu + np.log(-np.expm1(-d * log_mu)))
                 - np.sum(((n2 - 1) * d + 1) * log_mu) - n * betaln(k, n1))

    best = minimize_scalar(nll, bounds=(1e-3, max(10.0, 2.0 * dim)), method="bounded", options={"xatol": 1e-6})
    d = float(best.x)
    h = max(1e-4, d * 1e-3)
    curvature = (nll(d + h) - 2 * nll(d) + nll(d - h)) / (h * h)
    return d, float(1 / math.sqrt(curvature)) if curvature > 0 else math.nan


def gride_scaling(x: np.ndarray, max_n1: int = 16) -> list[tuple[int, float, float]]:
    """(n1, estimate, error) at n1 = 1, 2, 4, … up to `max_n1` (while there are enough points); the
    neighbour distances are computed once for every scale."""
    import numpy as np

    x = np.unique(np.asarray(x, dtype=np.float64), axis=0)
    scales = []
    n1 = 1
    while n1 <= max_n1 and 2 * n1 + 1 < len(x):
        scales.append(n1)
        n1 *= 2
    if not scales:
        raise HubkitError(f"Gride needs more than 3 distinct points ({len(x)} given)")
    dist = _neighbour_distances(x, 2 * scales[-1])
    return [(n1, *_gride_fit(dist, n1, 2 * n1, x.shape[1])) for n1 in scales]


def sentence_embeddings(source, texts: list[str], batch_size: int = 8, progress: bool = True) -> np.ndarray:
    """Mean-pooled hidden states of `texts` at every layer: an array (layers + 1, texts, hidden), index 0 the
    embedding layer."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from ..eval.lm import LM

    lm = LM.load(source, batch_size=batch_size)
    tok = lm.tokenizer
    limit = min(lm.max_length, 512)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    pooled: list[np.ndarray | None] = [None] * len(texts)
    with torch.inference_mode(), tqdm(total=len(texts), desc=f"embeddings · {source.name[:40]}", disable=not progress,
                                      unit="text") as bar:
        for start in range(0, len(order), lm.batch_size):
            chunk = order[start:start + lm.batch_size]
            ids = [lm.encode(texts[i], special=True)[:limit] or [tok.eos_token_id] for i in chunk]
            width = max(len(t) for t in ids)
            batch = torch.full((len(ids), width), tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(ids), width), dtype=torch.long)
            for r, t in enumerate(ids):
                batch[r, :len(t)] = torch.tensor(t)
                mask[r, :len(t)] = 1
            out = lm.model(input_ids=batch.to(lm.device), attention_mask=mask.to(lm.device), output_hidden_states=True)
            m = mask.to(lm.device).unsqueeze(-1).float()
            layers = torch.stack([(h.float() * m).sum(1) / m.sum(1) for h in out.hidden_states], dim=1)
            for r, i in enumerate(chunk):
                pooled[i] = layers[r].cpu().numpy()
            bar.update(len(chunk))
    return np.stack(pooled, axis=1)  # type: ignore[arg-type]


def intrinsic_dimension(models: list[str], texts: list[str], base: str | None = None, scale: int = GRIDE_SCALE,
                        batch_size: int = 8, progress: bool = True) -> pd.DataFrame:
    """Per model and layer, the Gride intrinsic dimension of the texts' sentence embeddings at scales 1, 2, 4, …

    Each fine-tune's base (recorded, or `base`) is measured too. Columns: `model`, `role` (`base` or
    `fine-tune`), `layer`, `depth` (layer / layers), `n1`, `id`, `id_err`, `headline` (n1 == `scale`).

    Raises:
        HubkitError: no model, too few texts, or a model that cannot load.
    """
    import pandas as pd

    from ..eval.lm import resolve_model

    if len(texts) < 4 * scale + 2:
        raise HubkitError(f"--intrinsic-dim at scale {scale} needs at least {4 * scale + 2} texts ({len(texts)} given)")
    sources = [resolve_model(m) for m in dict.fromkeys(models)]
    if not sources:
        raise HubkitError("--intrinsic-dim needs at least one --model")
    bases = [resolve_model(b) for b in sorted({base} if base else {s.base_model for s in sources if s.base_model})]
    base_keys = {b.key for b in bases}
    sources = bases + [s for s in sources if s.key not in base_keys]
    rows = []
    for source in sources:
        role = "base" if source.key in base_keys else "fine-tune"
        layers = sentence_embeddings(source, texts, batch_size=batch_size, progress=progress)
        depth = layers.shape[0] - 1
        for layer in range(1, depth + 1):
            for n1, d, err in gride_scaling(layers[layer], max_n1=max(scale, 1) * 4):
                rows.append({"model": source.name, "role": role, "layer": layer, "depth": layer / depth, "n1": n1,
                             "id": d, "id_err": err, "headline": n1 == scale})
    return pd.DataFrame(rows)


def plot_intrinsic_dimension(table: pd.DataFrame, path: Path, scale: int = GRIDE_SCALE) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    head = table[table["headline"]]
    for (model, role), part in head.groupby(["model", "role"], sort=False):
        ax.errorbar(part["depth"], part["id"], yerr=part["id_err"], marker="o" if role == "base" else "s",
                    markersize=3, linestyle="--" if role == "base" else "-", label=f"{str(model)[-36:]} ({role})")
    ax.set_xlabel("normalised depth (layer / layers)")
    ax.set_ylabel("intrinsic dimension (Gride)")
    ax.set_title(f"Intrinsic dimension of mean-pooled sentence embeddings by depth (Gride, n1={scale}, n2={2 * scale})",
                 fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


# -- weight-change similarity --------------------------------------------------------------------------------

def weight_change_similarity(layers: pd.DataFrame, bins: int = DEPTH_BINS) -> pd.DataFrame:
    """Every pair of models' per-layer weight-change profiles compared: `model_a`, `model_b`, `pearson`,
    `cosine`, `layers_a`, `layers_b`. Profiles are interpolated onto `bins` normalised depths, so models of
    different depths compare.

    Raises:
        HubkitError: the table lacks `model`, `depth`, `rel_change`, or holds fewer than 2 models.
    """
    import numpy as np
    import pandas as pd

    missing = {"model", "depth", "rel_change"} - set(layers.columns)
    if missing:
        raise HubkitError(f"--layers: not a layer-diff table (no {sorted(missing)[0]!r} column; use "
                          "`hubkit layerdiff`'s layerdiff_layers.parquet)")
    grid = np.linspace(0, 1, bins)
    profiles, sizes = {}, {}
    for model, part in layers.dropna(subset=["depth", "rel_change"]).groupby("model", sort=True):
        part = part.sort_values("depth")
        if len(part) >= 2:
            profiles[str(model)] = np.interp(grid, part["depth"].to_numpy(float), part["rel_change"].to_numpy(float))
            sizes[str(model)] = len(part)
    if len(profiles) < 2:
        raise HubkitError("--layers: weight-change similarity needs at least 2 models with 2 or more layers each")
    names = list(profiles)
    rows = []
    for a in names:
        for b in names:
            x, y = profiles[a], profiles[b]
            xc, yc = x - x.mean(), y - y.mean()
            denom = math.sqrt(float((xc * xc).sum() * (yc * yc).sum()))
            rows.append({"model_a": a, "model_b": b, "pearson": float((xc * yc).sum() / denom) if denom else math.nan,
                         "cosine": float(x @ y / math.sqrt(float(x @ x) * float(y @ y))) if x.any() and y.any()
                         else math.nan, "layers_a": sizes[a], "layers_b": sizes[b]})
    return pd.DataFrame(rows)


def plot_similarity(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = table.pivot(index="model_a", columns="model_b", values="pearson")
    fig, ax = plt.subplots(figsize=(1.2 + 0.5 * len(matrix), 1 + 0.45 * len(matrix)))
    image = ax.imshow(matrix.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
    labels = [str(m)[-28:] for m in matrix.index]
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    for i in range(len(matrix)):
        for j in range(len(matrix)):
            ax.text(j, i, f"{matrix.iat[i, j]:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, label="Pearson r of ‖ΔW‖/‖W‖ by depth")
    ax.set_title(f"Weight-change profile similarity ({DEPTH_BINS} normalised depths)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


# -- publishing ------------------------------------------------------------------------------------------------

MODELSPACE_DIR = "modelspace"
MODELSPACE_FILES = ("loglik_vectors.parquet", "loglik_map.parquet", "loglik_map.png", "probe.json",
                    "intrinsic_dim.parquet", "intrinsic_dim.png", "weight_change_similarity.parquet",
                    "weight_change_similarity.png")


def push_modelspace(folder: str | Path, repo_id: str, api=None) -> str:
    """Upload the model-space tables and figures of `folder` to a results dataset's `modelspace/` (the
    leaderboard's model map reads `modelspace/loglik_map.parquet`); files of the same name are replaced.

    Raises:
        HubkitError: the dataset cannot be written.
    """
    from ..hub import get_api, hub_errors, push_folder, retrying

    api = api or get_api()
    with hub_errors(f"cannot push the model-space analysis to {repo_id}", endpoint=api.endpoint):
        retrying(api.create_repo, repo_id, repo_type="dataset", exist_ok=True)
        return retrying(push_folder, repo_id, folder, repo_type="dataset", path_in_repo=MODELSPACE_DIR,
                        allow_patterns=list(MODELSPACE_FILES), commit_message="Add model-space analysis",
                        api=api).commit
