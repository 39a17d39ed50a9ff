"""`hubkit perplexity`: token-weighted perplexity and bits-per-byte of a dataset under a model.

The study's finding: the training data's perplexity under the base model predicts SFT gains. Here a
dataset is what `hubkit train` reads (a registry name like `lima`, a Hub dataset id or a local file, as
prompt/completion pairs in the study's format), or any dataset with a `text` column.

- `mode="response"` scores the completion given its prompt (what SFT trains on); `mode="full"` scores
  every token of the text, the first one conditioned on the BOS token (EOS when there is none), as
  lm-eval's `loglikelihood_rolling` does.
- Texts longer than the model's window are scored in rolling windows: each token is predicted exactly
  once, with at least `max_length - stride` tokens of context (all of it for the first window).
- Token-weighted: total negative log-likelihood over total scored tokens. Bits per byte divides the same
  total (in bits) by the UTF-8 bytes of the scored text, which makes models with different tokenizers
  comparable.
- Windows are length-sorted and right-padded in batches under a token budget, in inference mode; the
  values do not depend on the batch size (tested to 1e-5).
- Results are cached by (model weights, content hash of the scored texts, dataset revision, mode, settings): at sweep scale perplexity under
  a base is computed once per (base, dataset), not once per run.

Example:
    >>> perplexity("HuggingFaceTB/SmolLM2-135M-Instruct", "lima", size=100).perplexity
    7.9
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import HubkitError

Mode = Literal["response", "full"]


@dataclass
class PerplexityResult:
    """One (model, dataset, mode) measurement."""

    model: str
    model_revision: str
    data: str
    data_revision: str | None
    mode: str
    documents: int
    tokens: int
    bytes: int
    nll: float  # summed negative log-likelihood, nats
    perplexity: float
    bits_per_byte: float
    seconds: float
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _texts(data: str, size: int | None, seed: int) -> tuple[list[tuple[str, str]], str | None]:
    """(prompt, completion) pairs and the data revision; a `text` dataset gives ("", text) pairs."""
    from ..data.loading import load_training_data

    try:
        loaded = load_training_data(data, size=size, seed=seed)
    except HubkitError as first:
        try:
            return text_column(data, size, seed)
        except HubkitError:
            raise first from None
    revision = ",".join(sorted({str(s.revision) for s in loaded.sources})) or None
    return [(r["prompt"], r["completion"]) for r in loaded.dataset], revision


def text_column(data: str, size: int | None, seed: int) -> tuple[list[tuple[str, str]], str | None]:
    """The texts a perplexity is measured on: `(id, text)` pairs of a file, a registry set or a Hub dataset
    (`size` of them, sampled with `seed` as training samples them), and the data's revision when it has one."""
    import random

    from ..data.loading import fetch_split
    from ..data.registry import Source

    if Path(data).is_file():
        from ..data.loading import load_file

        ds, revision = load_file(Path(data)), None
    elif "/" in data:
        ds, revision = fetch_split(Source(data, None, "train"), data)
    else:
        raise HubkitError(f"dataset {data}: not a training set and not a Hub dataset with a `text` column")
    if "text" not in ds.column_names:
        raise HubkitError(f"dataset {data}: no `text` column (columns: {', '.join(ds.column_names)})")
    order = list(range(len(ds)))
    random.Random(seed).shuffle(order)
    texts = ds["text"]
    return [("", texts[i]) for i in order[:size]], revision


def prefix_token(tokenizer) -> int:
    """What the first token of a text is conditioned on: BOS when the tokenizer has one, else EOS (lm-eval's rule)."""
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def _windows(tokens: list[int], scored_from: int, max_length: int, stride: int) -> list[tuple[list[int], int, int]]:
    """Rolling windows over `tokens`: (input ids, first scored position in the window, tokens scored).

    Token i (i ≥ 1) is predicted from tokens[:i]; only i ≥ scored_from counts. Each window predicts up to
    `stride` new tokens with the longest context that fits.
    """
    out = []
    start = max(1, scored_from)
    while start < len(tokens):
        # the first window starts at token 0 (all the context there is); later ones slide by `stride`
        end = min(len(tokens), max_length if start < max_length else start + stride)
        begin = max(0, end - max_length)
        out.append((tokens[begin:end], start - begin, end - start))
        start = end
    return out


def perplexity(model: str, data: str, mode: Mode = "response", size: int | None = None, seed: int = 42,
               max_length: int | None = None, stride: int | None = None, batch_tokens: int = 8192,
               batch_size: int = 16, progress: bool = True, use_cache: bool = True, lm=None) -> PerplexityResult:
    """Perplexity and bits-per-byte of `data` under `model`.

    Args:
        model: a Hub id, a local folder, a run directory or an adapter (as `hubkit eval` takes).
        data: a training set (registry name, Hub id, local file) or a Hub dataset with a `text` column.
        mode: `response` (completions given prompts) or `full` (every token).
        size: score this many examples (a seeded sample, the same one `hubkit train` would draw).
        seed: the sample's seed.
        max_length: the window (default: the model's context, at most 2048).
        stride: new tokens per window after the first (default: half the window).
        batch_tokens: padded tokens per forward pass at most.
        batch_size: windows per forward pass at most.
        progress: show a progress bar.
        use_cache: reuse a cached result of the same model weights, scored texts (their content hash), data
            revision, mode and settings.
        lm: the model already loaded (`hubkit.eval.lm.LM`) for `model`, to score several datasets with one load;
            or a function returning it, called only when the value is not cached.

    Raises:
        HubkitError: unknown data, a model that cannot be loaded, or no text to score (naming the row).
    """
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    from ..eval.lm import LM, resolve_model
    from ..utils import hubkit_home

    if mode not in ("response", "full"):
        raise HubkitError(f"perplexity: mode must be `response` or `full`, got {mode!r}")
    source = resolve_model(model)
    pairs, data_revision = _texts(data, size, seed)
    if not pairs:
        raise HubkitError(f"dataset {data}: no examples to score")
    settings = {"size": size, "seed": seed, "max_length": max_length, "stride": stride, "mode": mode, "v": 2}
    # the texts themselves are part of the key: an edited local file (no revision) is never answered from the cache
    content = hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode()).hexdigest()
    data_revision = data_revision or f"sha256:{content[:16]}"
    key = hashlib.sha256(json.dumps([data, data_revision, content, settings], sort_keys=True).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("HUBKIT_PPL_CACHE") or hubkit_home() / "perplexity-cache") / source.key / f"{key}.json"
    if use_cache and cache.is_file():
        return PerplexityResult(**{**json.loads(cache.read_text()), "cached": True})
    started = time.time()
    lm = (lm() if callable(lm) else lm) or LM.load(source, batch_size=batch_size)
    window = min(max_length or lm.max_length, lm.max_length)
    if window < 2:
        raise HubkitError(f"perplexity: max_length must be at least 2, got {window}")
    step = max(1, min(stride or window // 2, window - 1))
    work, total_bytes = _work(lm, pairs, data, mode, window, step)
    nll, count = 0.0, 0
    device = lm.device
    with torch.inference_mode(), tqdm(total=len(work), desc=f"perplexity {data}", unit="window",
                                      disable=not progress) as bar:
        from ..eval.lm import batches

        chunks = []
        for group in batches(work, lambda w: len(w[0]), batch_size):  # little padding, longest first
            width = len(group[0][0])
            n = max(1, batch_tokens // width)
            chunks += [group[k:k + n] for k in range(0, len(group), n)]
        for batch in chunks:
            width = len(batch[0][0])
            ids = torch.full((len(batch), width), lm.tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, (toks, _, _) in enumerate(batch):
                ids[r, :len(toks)] = torch.tensor(toks)
                mask[r, :len(toks)] = 1
            logits = lm.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            for r, (toks, first, scored) in enumerate(batch):
                # position p predicts token p + 1; the scored tokens are toks[first : first + scored]
                pred = logits[r, first - 1:first - 1 + scored].float()
                target = torch.tensor(toks[first:first + scored], device=pred.device)
                nll += float(F.cross_entropy(pred, target, reduction="sum").double())
                count += scored
            bar.update(len(batch))
    if count == 0:
        raise HubkitError(f"dataset {data}: no tokens to score in mode {mode}")
    result = PerplexityResult(
        model=source.name, model_revision=source.revision,
        data=data if not Path(data).exists() else Path(data).name, data_revision=data_revision, mode=mode,
        documents=len(pairs), tokens=count, bytes=total_bytes, nll=nll, perplexity=math.exp(nll / count),
        bits_per_byte=nll / math.log(2) / total_bytes, seconds=time.time() - started)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".partial")
    tmp.write_text(json.dumps(result.to_dict(), indent=2))
    tmp.replace(cache)
    return result


def _work(lm, pairs: list[tuple[str, str]], data: str, mode: str, window: int,
          step: int) -> tuple[list[tuple[list[int], int, int]], int]:
    """The windows to score (tokens, first scored position, tokens scored), longest first, and the scored text's
    UTF-8 bytes (the denominator of bits per byte).

    Raises:
        HubkitError: an example with nothing to score.
    """
    prefix = prefix_token(lm.tokenizer)
    work = []
    total_bytes = 0
    for row, (prompt, completion) in enumerate(pairs):
        text = prompt + completion
        if not (completion if mode == "response" else text).strip():
            raise HubkitError(f"dataset {data} row {row}: empty {'completion' if mode == 'response' else 'text'}")
        if mode == "response" and prompt:
            ctx, cont = lm.split(prompt, completion)
            tokens, scored_from = ctx + cont, len(ctx)
            total_bytes += len(completion.encode("utf-8"))
        else:
            tokens, scored_from = [prefix] + lm.encode(text, special=False), 1
            total_bytes += len(text.encode("utf-8"))
        work += _windows(tokens, scored_from, window, step)
    work.sort(key=lambda w: -len(w[0]))
    return work, total_bytes


TABLE_COLUMNS = ["base_model", "dataset", "mode", "perplexity", "bits_per_byte", "documents", "tokens",
                 "model_revision", "data_revision"]


def add_to_table(result: PerplexityResult, path: str | Path) -> int:
    """Add (or replace) `result`'s row in a perplexity table that `hubkit analyze --perplexity` reads directly:
    `base_model` (the scoring model), `dataset`, `mode`, `perplexity`, … One row per (model, dataset, mode);
    returns the table's row count. The file is replaced atomically.
    """
    import pandas as pd

    path = Path(path)
    row = {"base_model": result.model, "dataset": result.data, "mode": result.mode, "perplexity": result.perplexity,
           "bits_per_byte": result.bits_per_byte, "documents": result.documents, "tokens": result.tokens,
           "model_revision": result.model_revision, "data_revision": result.data_revision}
    if path.is_file():
        from .tables import read_table

        table = read_table(path)
        missing = [c for c in ("base_model", "dataset", "mode") if c not in table.columns]
        if missing:
            raise HubkitError(f"{path.name}: not a perplexity table (no {missing[0]!r} column)")
        keep = ~((table["base_model"] == result.model) & (table["dataset"] == result.data)
                 & (table["mode"] == result.mode))
        table = pd.concat([table[keep], pd.DataFrame([row])], ignore_index=True)
    else:
        table = pd.DataFrame([row], columns=TABLE_COLUMNS)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    if path.suffix == ".csv":
        table.to_csv(tmp, index=False)
    else:
        table.to_parquet(tmp, index=False)
    tmp.replace(path)
    return len(table)
