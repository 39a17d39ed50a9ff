"""The model side of evaluation: load any model hubkit knows, then score continuations and generate in batches.

`LM.loglikelihood` scores multiple-choice questions the way a reader would: the shared question (the
context) goes through the model **once**; its key/value cache is then reused for every answer choice,
all choices of a batch of questions in one more forward pass (none at all when every choice is a single
token, as in MMLU). `share_prefix=False` is the textbook way — one forward pass per (question, choice) —
kept as the reference that `scripts/bench/eval.py` compares against.

Batches are length-sorted and right-padded (left-padded for generation), so that padding never changes
a score: results at batch size 1 and 8 are the same (tested).

Example:
    >>> lm = LM.load("HuggingFaceTB/SmolLM2-135M-Instruct")
    >>> lm.loglikelihood([("The capital of France is", " Paris"), ("The capital of France is", " Rome")])
    [LogLikelihood(logprob=-1.9, greedy=True, tokens=1), LogLikelihood(logprob=-7.2, greedy=False, tokens=1)]
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import HubkitError
from ..utils import first_line


@dataclass(frozen=True)
class LogLikelihood:
    """log P(continuation | context) summed over the continuation's tokens, and whether greedy decoding picks it."""

    logprob: float
    greedy: bool
    tokens: int


@dataclass
class ModelSource:
    """What was evaluated: the reference a results file records (never a local path) and where its base is.

    Attributes:
        name: a Hub id, or the run id / folder name of a local model.
        revision: the Hub commit, or a content hash of a local model's files (`local-<sha256[:16]>`).
        base_model: the Hub id of the model it was fine-tuned from, when known (run record, adapter config,
            card metadata).
        base_revision: the base model's commit, when known.
        adapter: whether the model is a LoRA adapter applied over `base_model`.
        run_dir: the hubkit run directory, when the model is one.
    """

    name: str
    revision: str
    base_model: str | None = None
    base_revision: str | None = None
    adapter: bool = False
    run_dir: Path | None = None
    path: str = field(default="", repr=False)  # what `from_pretrained` reads (a local folder or a Hub id)

    @property
    def key(self) -> str:
        """A file-name-safe identity of these exact weights, for caches."""
        from ..utils import slug

        return f"{slug(self.name.replace('/', '--'))[:80]}--{self.revision[:16]}"


def _local_revision(folder: Path) -> str:
    """A content hash of a local model folder (weights, config, tokenizer), so caches follow the weights."""
    digest = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f.relative_to(folder).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                digest.update(chunk)
    return f"local-{digest.hexdigest()[:16]}"


def _hub_revision(repo_id: str, revision: str | None = None) -> tuple[str, list[str]]:
    from ..hub import get_api, hub_errors, retrying

    with hub_errors(f"model {repo_id}", not_found=f"model {repo_id}: not a local directory and not found on the Hub"):
        info = retrying(get_api().model_info, repo_id, revision=revision)
    card = info.card_data.to_dict() if info.card_data else {}
    base = card.get("base_model")
    base = base[0] if isinstance(base, list) and base else base
    assert info.sha is not None  # a Hub answers a model's info with its commit
    return info.sha, [s.rfilename for s in info.siblings or []] + ([f"base_model={base}"] if base else [])


def resolve_model(model: str, revision: str | None = None) -> ModelSource:
    """Work out what `model` names: a run directory, a local model or adapter folder, or a Hub repo.

    Raises:
        HubkitError: nothing loadable under that name.
    """
    path = Path(model)
    if path.is_dir():
        from ..runs import RunDir, load_run

        if RunDir(path).is_trained():
            run = load_run(path)
            folder = run.model_dir
            assert run.record is not None  # a trained run has its record
            return ModelSource(run.run_id, _local_revision(folder), run.spec.model, run.record.base_model_revision,
                               adapter=(folder / "adapter_config.json").is_file(), run_dir=path, path=str(folder))
        if (path / "adapter_config.json").is_file():
            cfg = _read_json(path / "adapter_config.json")
            base = cfg.get("base_model_name_or_path")
            if not base:
                raise HubkitError(f"{path.name}: adapter_config.json names no base model")
            return ModelSource(path.name, _local_revision(path), base, cfg.get("revision"), adapter=True,
                               path=str(path))
        if (path / "config.json").is_file():
            return ModelSource(path.resolve().name, _local_revision(path), path=str(path))
        raise HubkitError(f"{model}: a directory with no config.json, adapter_config.json or run.json")
    if path.exists():
        raise HubkitError(f"{model}: expected a model directory or a Hub repo id, got a file")
    from ..hub import check_repo_id

    check_repo_id(model, model)
    sha, files = _hub_revision(model, revision)
    base = next((f.split("=", 1)[1] for f in files if f.startswith("base_model=")), None)
    adapter = "adapter_config.json" in files
    if adapter and not base:
        from huggingface_hub import hf_hub_download

        from ..hub import hub_kwargs

        base = _read_json(Path(hf_hub_download(model, "adapter_config.json", **hub_kwargs(sha)))).get(
            "base_model_name_or_path")
    return ModelSource(model, sha, base, adapter=adapter, path=model)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise HubkitError(f"{path.name}: unreadable JSON: {e}") from None


PADDING_BUDGET = 0.1  # a batch takes another (shorter) sequence while padding stays under this share


def batches(items: list, size, limit: int) -> list[list]:
    """Consecutive items of a longest-first list in batches of at most `limit`, with little padding.

    Padding is work thrown away (on a CPU, batching long sequences gains almost nothing), so a batch is
    closed early when the next sequence would make padding exceed `PADDING_BUDGET` of the batch's tokens.
    """
    out: list[list] = []
    for item in items:
        batch = out[-1] if out else None
        if batch and len(batch) < limit:
            width = size(batch[0])
            real = sum(size(b) for b in batch) + size(item)
            if width * (len(batch) + 1) - real <= PADDING_BUDGET * width * (len(batch) + 1):
                batch.append(item)
                continue
        out.append([item])
    return out


def _tokenizer(source: ModelSource):
    """The tokenizer of a model (an adapter without one uses its base's)."""
    from transformers import AutoTokenizer

    from ..hub import hub_kwargs

    revision = None if Path(source.path).is_dir() else source.revision
    try:
        return AutoTokenizer.from_pretrained(source.path, **hub_kwargs(revision, source.path))
    except (OSError, ValueError):
        if not source.base_model:
            raise
        return AutoTokenizer.from_pretrained(source.base_model, **hub_kwargs(source.base_revision, source.base_model))


def load_tokenizer(source: ModelSource):
    """`_tokenizer` with a one-line error: what remote backends load locally, to send the same tokens as `hf`.

    Raises:
        HubkitError: no tokenizer in the model or its base.
    """
    try:
        tokenizer = _tokenizer(source)
    except Exception as e:  # missing files, a malformed tokenizer.json: many types
        raise HubkitError(f"cannot load the tokenizer of {source.name}: {first_line(e)}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


class Tokenized:
    """The tokenizer side every evaluation backend shares, so that all of them score the same tokens: the
    context/continuation split, and the prompt a conversation becomes.

    Attributes:
        tokenizer: the evaluated model's tokenizer.
        max_length: the longest sequence fed to the model; longer contexts lose their beginning.
        batch_size: questions or prompts per batch.
        backend: `hf`, `vllm` or `openai`; backend_version: what served the scores (recorded with them).
    """

    backend = "hf"
    tokenizer: Any
    max_length: int
    batch_size: int

    @property
    def backend_version(self) -> str:
        from ..utils import versions

        return f"transformers {versions().get('transformers')}"  # the `hf` backend's; others override it

    # -- tokenisation ------------------------------------------------------------------------------

    def encode(self, text: str, special: bool) -> list[int]:
        """Token ids of `text`, with the tokenizer's special tokens (BOS) when `special`."""
        return self.tokenizer(text, add_special_tokens=special)["input_ids"]

    def split(self, context: str, continuation: str,
              known: dict[str, list[int]] | None = None) -> tuple[list[int], list[int]]:
        """Context and continuation tokens, split the way lm-eval does (trailing spaces move to the continuation).

        Args:
            known: context tokens already computed, by context text (filled here).
        """
        spaces = len(context) - len(context.rstrip(" "))
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        if known is None:
            known = {}
        ctx = known.get(context)
        if ctx is None:
            ctx = known[context] = self.encode(context, special=True)
        if not ctx:  # nothing to condition on: start from the end-of-text token, as lm-eval does
            ctx = [self.tokenizer.eos_token_id]
            return ctx, self.encode(continuation, special=False)
        whole = self.encode(context + continuation, special=True)
        cont = whole[len(ctx):]
        if not cont:  # the tokenizer merged the continuation into the context's last token
            cont = self.encode(continuation, special=False)
        return ctx, cont

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """A conversation as this model's prompt for the next assistant turn: its chat template, or, for a
        model without one, the study's SFT template (`###Question: …\n###Answer: …`)."""
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        text = ""
        for m in messages:
            text += f"###Question: {m['content']}\n###Answer:" if m["role"] != "assistant" else f" {m['content']}\n"
        return text


class LM(Tokenized):
    """A causal LM and its tokenizer, with batched, padding-invariant scoring and generation (the `hf` backend).

    Args:
        model: a `PreTrainedModel` (in eval mode).
        tokenizer: its tokenizer.
        batch_size: questions per forward pass (log-likelihood) or prompts per `generate` call.
        max_length: the longest sequence fed to the model; longer contexts lose their beginning.
    """

    def __init__(self, model, tokenizer, batch_size: int = 8, max_length: int | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.batch_size = max(1, int(batch_size))
        limit = getattr(model.config, "max_position_embeddings", None) or 2048
        self.max_length = min(max_length or limit, limit)

    @property
    def device(self):
        return next(self.model.parameters()).device

    @classmethod
    def load(cls, source: ModelSource | str, batch_size: int = 8, dtype: str = "auto",
             max_length: int | None = None, base: Any = None) -> LM:
        """Load a model for evaluation: a LoRA adapter is applied over its base and merged (exact, faster).

        Args:
            base: for an adapter, its base model already in memory (`backends.ModelPool`); it is merged into.

        Raises:
            HubkitError: missing or corrupted weights, an unknown architecture, an adapter without a base.
        """
        import torch
        from transformers import AutoModelForCausalLM

        from ..hub import hub_kwargs

        if isinstance(source, str):
            source = resolve_model(source)
        cuda = torch.cuda.is_available()
        if dtype == "auto":
            dtype = "bfloat16" if cuda and torch.cuda.is_bf16_supported() else "float32"
        torch_dtype = getattr(torch, dtype)
        revision = None if Path(source.path).is_dir() else source.revision
        try:
            if source.adapter:
                from peft import PeftModel

                if not source.base_model:
                    raise HubkitError(f"adapter {source.name}: its base model is not known")
                if base is None:
                    base = AutoModelForCausalLM.from_pretrained(
                        source.base_model, **hub_kwargs(source.base_revision, source.base_model), dtype=torch_dtype)
                model = PeftModel.from_pretrained(base, source.path,
                                                  **hub_kwargs(revision, source.path)).merge_and_unload()
            else:
                model = AutoModelForCausalLM.from_pretrained(source.path, **hub_kwargs(revision, source.path),
                                                             dtype=torch_dtype)
            tokenizer = _tokenizer(source)
        except HubkitError:
            raise
        except Exception as e:  # corrupted safetensors, missing files, unknown architectures: many types
            raise HubkitError(f"cannot load model {source.name}: {first_line(e)}") from None
        if cuda:
            model = model.to("cuda")
        return cls(model, tokenizer, batch_size=batch_size, max_length=max_length)

    # -- log-likelihood ------------------------------------------------------------------------------

    def loglikelihood(self, requests: Sequence[tuple[str, str]], share_prefix: bool = True,
                      progress: bool = False, desc: str = "scoring") -> list[LogLikelihood]:
        """log P(continuation | context) for every (context, continuation) request, in input order.

        Args:
            requests: (context, continuation) pairs; choices of one question share their context string.
            share_prefix: run each distinct context once and reuse its cache for all its continuations.
                `False` runs one full forward pass per request (the reference the benchmark compares with).
            progress: show a progress bar.
            desc: the progress bar's label.
        """
        import torch

        groups: dict[tuple[int, ...], list[tuple[int, list[int]]]] = {}
        contexts: dict[str, list[int]] = {}  # each distinct context tokenized once, whatever its choice count
        for i, (context, continuation) in enumerate(requests):
            ctx, cont = self.split(context, continuation, contexts)
            if share_prefix:
                groups.setdefault(tuple(ctx), []).append((i, cont))
            else:
                groups[(i, *ctx)] = [(i, cont)]  # a group of its own; the leading index keeps it unique
        items = []
        for key, members in groups.items():
            ctx = list(key[1:]) if not share_prefix else list(key)
            longest = max(len(c) for _, c in members)
            keep = max(1, self.max_length - longest)
            items.append((ctx[-keep:], [(i, c[-(self.max_length - 1):]) for i, c in members]))
        items.sort(key=lambda it: -(len(it[0]) + max(len(c) for _, c in it[1])))
        out: list[LogLikelihood | None] = [None] * len(requests)
        from tqdm.auto import tqdm

        size = (lambda it: len(it[0])) if share_prefix else (lambda it: len(it[0]) + len(it[1][0][1]))
        with torch.inference_mode(), tqdm(total=len(requests), desc=desc, disable=not progress, unit="req") as bar:
            for batch in batches(items, size, self.batch_size):
                for idx, result in self._score_batch(batch, share_prefix):
                    out[idx] = result
                bar.update(sum(len(m) for _, m in batch))
        return out  # type: ignore[return-value]

    def _score_batch(self, batch, share_prefix: bool):
        """Scores of one batch of (context tokens, [(request index, continuation tokens)])."""
        import torch

        device, pad = self.device, self.tokenizer.pad_token_id
        if not share_prefix:  # context and continuation in one sequence
            batch = [(ctx + cont[:-1], [(i, cont[-1:])], cont[:-1]) for ctx, [(i, cont)] in batch]
        else:
            batch = [(ctx, members, None) for ctx, members in batch]
        lengths = [len(ctx) for ctx, _, _ in batch]
        width = max(lengths)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, (ctx, _, _) in enumerate(batch):
            ids[r, :len(ctx)] = torch.tensor(ctx)
            mask[r, :len(ctx)] = 1
        # logits only where a continuation token is predicted: the vocabulary projection is most of the cost
        if share_prefix:
            wanted = sorted({n - 1 for n in lengths})
        else:
            wanted = sorted({p for (ctx, [(i, last)], head), n in zip(batch, lengths)
                             for p in range(n - len(head) - len(last), n)})
        column = {p: k for k, p in enumerate(wanted)}
        keep_cache = share_prefix and any(len(c) > 1 for _, members, _ in batch for _, c in members)
        out = self.model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=keep_cache,
                         logits_to_keep=torch.tensor(wanted, device=device))
        logprobs = torch.log_softmax(out.logits.float(), dim=-1)
        results = []
        if not share_prefix:
            for r, (_ctx, [(i, last)], head) in enumerate(batch):
                tokens = head + last
                n = len(tokens)
                rows = logprobs[r, [column[p] for p in range(lengths[r] - n, lengths[r])]]
                target = torch.tensor(tokens, device=rows.device)
                chosen = rows.gather(1, target[:, None])[:, 0]
                results.append((i, LogLikelihood(float(chosen.sum()), bool((rows.argmax(-1) == target).all()), n)))
            return results
        # first continuation token: predicted by the context's last position
        owner: list[int] = []  # the batch row each choice continues
        conts, first = [], []
        for r, (_ctx, members, _) in enumerate(batch):
            for i, cont in members:
                owner.append(r)
                conts.append((i, cont))
                first.append(logprobs[r, column[lengths[r] - 1]])
        tails = [cont[:-1] for _, cont in conts]
        rest = None
        if any(tails):  # the remaining tokens: one pass over every choice of the batch, on the shared cache
            cache = out.cache
            index = torch.tensor(owner, device=device)
            cache.reorder_cache(index)
            twidth = max(len(t) for t in tails)
            tids = torch.full((len(conts), twidth), pad, dtype=torch.long)
            tmask = torch.zeros((len(conts), twidth), dtype=torch.long)
            pos = torch.zeros((len(conts), twidth), dtype=torch.long)
            for k, t in enumerate(tails):
                tids[k, :len(t)] = torch.tensor(t, dtype=torch.long)
                tmask[k, :len(t)] = 1
                pos[k] = lengths[owner[k]] + torch.arange(twidth)
            full_mask = torch.cat([mask.to(device)[index], tmask.to(device)], dim=1)
            tail_out = self.model(input_ids=tids.to(device), attention_mask=full_mask, position_ids=pos.to(device),
                                  cache=cache, use_cache=True)
            rest = torch.log_softmax(tail_out.logits.float(), dim=-1)
        for k, (i, cont) in enumerate(conts):
            dist = [first[k]] + ([rest[k, j] for j in range(len(cont) - 1)] if rest is not None else [])
            dist_t = torch.stack(dist[:len(cont)])
            target = torch.tensor(cont, device=dist_t.device)
            chosen = dist_t.gather(1, target[:, None])[:, 0]
            results.append((i, LogLikelihood(float(chosen.sum()), bool((dist_t.argmax(-1) == target).all()),
                                             len(cont))))
        return results

    # -- generation ----------------------------------------------------------------------------------

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 256, stop: Iterable[str] = (),
                 progress: bool = False, desc: str = "generating", add_special_tokens: bool = True) -> list[str]:
        """Greedy continuations of `prompts`, cut at the first stop string, in input order.

        Prompts are length-sorted and left-padded in batches of `batch_size`; a batch ends when every
        prompt in it reached a stop string, the end-of-sequence token, or `max_new_tokens`.
        `add_special_tokens=False` for prompts that already hold them (a rendered chat template).
        """
        import torch
        from tqdm.auto import tqdm

        stop = [s for s in stop if s]
        tok = self.tokenizer
        encoded = [self.encode(p, special=add_special_tokens) for p in prompts]
        budget = max(1, self.max_length - max_new_tokens)
        encoded = [e[-budget:] for e in encoded]
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        out: list[str] = [""] * len(prompts)
        eos = [t for t in {tok.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)}
               if isinstance(t, int)]
        with torch.inference_mode(), tqdm(total=len(prompts), desc=desc, disable=not progress, unit="prompt") as bar:
            for start in range(0, len(order), self.batch_size):
                chunk = order[start:start + self.batch_size]
                width = max(len(encoded[i]) for i in chunk)
                ids = torch.full((len(chunk), width), tok.pad_token_id, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for r, i in enumerate(chunk):
                    ids[r, width - len(encoded[i]):] = torch.tensor(encoded[i], dtype=torch.long)
                    mask[r, width - len(encoded[i]):] = 1
                kwargs: dict[str, Any] = {"stop_strings": stop, "tokenizer": tok} if stop else {}
                generated = self.model.generate(
                    input_ids=ids.to(self.device), attention_mask=mask.to(self.device), do_sample=False,
                    max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id, eos_token_id=eos or None,
                    temperature=None, top_p=None, top_k=None, **kwargs)
                for r, i in enumerate(chunk):
                    new = generated[r, width:].tolist()
                    for k, t in enumerate(new):
                        if t in eos:
                            new = new[:k]
                            break
                    text = tok.decode(new, skip_special_tokens=True)
                    cut = min((text.find(s) for s in stop if s in text), default=len(text))
                    out[i] = text[:cut]
                bar.update(len(chunk))
        return out
