"""Evaluation backends: who computes log-likelihoods and greedy generations (`hubkit eval --backend`).

| backend | what runs the model | when |
| --- | --- | --- |
| `hf` | transformers in this process (`lm.LM`; `ModelPool` keeps one base in memory for its adapters) | the default; CPUs |
| `vllm` | vLLM in this process: the base once, each LoRA fine-tune as an adapter over it, never merged | a GPU with `pip install 'hubkit[vllm]'` |
| `openai` | any OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp, `hubkit judge serve`) | a server you run |

Every backend tokenizes locally with the evaluated model's own tokenizer (`lm.Tokenized`) and sends token ids, so
all three score exactly the same tokens: the context/continuation split of lm-eval, the same prompts, the same
truncation. Log-likelihoods come from prompt log-probabilities (vLLM's `prompt_logprobs`; a server's `echo` with
`logprobs`), generations are greedy. Scores record the backend and its version (`backend_version`).

An adapter served by vLLM is checked before its scores count: its log-probabilities on the first batch must differ
from the base's, since a known failure of adapter serving (a rank above `max_lora_rank`, a module vLLM does not
adapt, a name clash) is to silently serve the base.

Example:
    >>> lm = open_backend("openai", resolve_model("alice/run-a"), endpoint="http://127.0.0.1:8000")
    >>> lm.loglikelihood([("The capital of France is", " Paris")])
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import HubkitError
from ..utils import first_line
from .lm import LM, LogLikelihood, ModelSource, Tokenized, load_tokenizer

BACKENDS = ("hf", "vllm", "openai")
#: Stop strings an OpenAI-compatible server takes at most; the rest are applied here, after the fact.
SERVER_STOPS = 4


def _cut(text: str, stop: Sequence[str]) -> str:
    return text[:min((text.find(s) for s in stop if s and s in text), default=len(text))]


def scoring_tokens(lm: Tokenized, requests: Sequence[tuple[str, str]]) -> list[tuple[list[int], int]]:
    """(context + continuation tokens, continuation length) of each request, cut to `max_length` from the left:
    what a backend that scores whole sequences (a server's `echo`, vLLM's prompt log-probabilities) sends."""
    known: dict[str, list[int]] = {}
    out = []
    for context, continuation in requests:
        ctx, cont = lm.split(context, continuation, known)
        cont = cont[-(lm.max_length - 1):]
        out.append(((ctx + cont)[-(lm.max_length - 1):], len(cont)))
    return out


class ModelPool:
    """One base model kept in memory for every LoRA adapter of it evaluated in this process, and for the base's own
    evaluation (`hf` backend).

    The base is loaded once; its weights are copied aside, and before each use they are put back, so each adapter is
    merged into exactly the weights a separate `hubkit eval` would load, and scores exactly as it would.
    """

    def __init__(self) -> None:
        self._key: tuple[str | None, str | None] | None = None
        self._base: Any = None
        self._pristine: dict[str, Any] = {}
        self.reads = 0  # models read from disk or the Hub (the tests and the benchmark count them)

    @staticmethod
    def _where(path: str | None, revision: str | None) -> tuple[str | None, str | None]:
        return path, None if path is None or Path(path).is_dir() else revision

    def load(self, source: ModelSource, batch_size: int) -> LM:
        import torch

        if source.adapter:
            if not source.base_model:
                raise HubkitError(f"adapter {source.name}: its base model is not known")
            key = self._where(source.base_model, source.base_revision)
        else:
            key = self._where(source.path, source.revision)
            if key != self._key:  # a full model that is not the pooled base: loaded as usual
                self.reads += 1
                return LM.load(source, batch_size=batch_size)
        if key != self._key:  # the base, loaded as `hubkit eval` loads any model (dtype, device, errors)
            base_source = source if not source.adapter else ModelSource(
                str(source.base_model), source.base_revision or "", path=str(source.base_model))
            self._base = LM.load(base_source, batch_size=batch_size).model
            self._key, self.reads = key, self.reads + 1
            # kept in host memory: on a GPU a second copy of the base would halve the room for it
            self._pristine = {k: v.detach().to("cpu", copy=True) for k, v in self._base.state_dict().items()}
        else:
            with torch.no_grad():
                self._base.load_state_dict(self._pristine)
        if not source.adapter:
            return LM(self._base, load_tokenizer(source), batch_size=batch_size)
        return LM.load(source, batch_size=batch_size, base=self._base)


class OpenAIBackend(Tokenized):
    """A model served by an OpenAI-compatible server, scored through the legacy completions API.

    Args:
        source: the model being evaluated (its tokenizer is loaded here; the server must serve these weights).
        endpoint: the server's base URL (`http://host:8000`, with or without `/v1`).
        api_key: its key, if it wants one.
        served_model: the model name the server knows it by (default: the only one it lists).
        batch_size: prompts per request.
        max_length: the server's context (default: the model config's, else 2048).
    """

    backend = "openai"

    def __init__(self, source: ModelSource, endpoint: str, api_key: str | None = None, served_model: str | None = None,
                 batch_size: int = 8, max_length: int | None = None, timeout: float = 600.0):
        import openai

        self.tokenizer = load_tokenizer(source)
        self.batch_size = max(1, int(batch_size))
        self.max_length = max_length or _context(source)
        self.root = _root(endpoint)
        self.client = openai.OpenAI(base_url=self.root + "/v1", api_key=api_key or "EMPTY", timeout=timeout,
                                    max_retries=2)
        self.served_model = _served(self.client, served_model)
        self._version: str | None = None

    @property
    def backend_version(self) -> str:
        if self._version is None:
            self._version = backend_version("openai", self.root)
        return self._version

    def _complete(self, prompts: list[list[int]], **kwargs: Any) -> list[Any]:
        import openai

        try:
            response = self.client.completions.create(model=self.served_model, prompt=prompts, temperature=0.0,
                                                      **kwargs)
        except openai.APIError as e:
            raise HubkitError(f"eval backend openai: the server refused a request: {first_line(e)}") from None
        return sorted(response.choices, key=lambda c: c.index)

    def loglikelihood(self, requests: Sequence[tuple[str, str]], share_prefix: bool = True,
                      progress: bool = False, desc: str = "scoring") -> list[LogLikelihood]:
        """log P(continuation | context) from the server's prompt log-probabilities (`echo` + `logprobs`)."""
        from tqdm.auto import tqdm

        encoded = scoring_tokens(self, requests)
        out: list[LogLikelihood] = []
        with tqdm(total=len(requests), desc=desc, disable=not progress, unit="req") as bar:
            for start in range(0, len(encoded), self.batch_size):
                chunk = encoded[start:start + self.batch_size]
                choices = self._complete([ids for ids, _ in chunk], max_tokens=1, echo=True, logprobs=1)
                for (ids, n), choice in zip(chunk, choices):
                    lp = choice.logprobs
                    if lp is None or len(lp.token_logprobs) < len(ids):
                        raise HubkitError("eval backend openai: the server returned no prompt log-probabilities "
                                          "(it needs `echo` with `logprobs` on completions)")
                    values = lp.token_logprobs[len(ids) - n:len(ids)]
                    tops = lp.top_logprobs[len(ids) - n:len(ids)] if lp.top_logprobs else [None] * n
                    greedy = all(top is not None and v >= max(top.values()) - 1e-6 for v, top in zip(values, tops))
                    out.append(LogLikelihood(float(sum(values)), greedy, n))
                bar.update(len(chunk))
        return out

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 256, stop: Iterable[str] = (),
                 progress: bool = False, desc: str = "generating", add_special_tokens: bool = True) -> list[str]:
        """Greedy continuations, cut at the first stop string (the server is given the first four)."""
        from tqdm.auto import tqdm

        stop = [s for s in stop if s]
        budget = max(1, self.max_length - max_new_tokens)
        encoded = [self.encode(p, special=add_special_tokens)[-budget:] for p in prompts]
        out: list[str] = []
        with tqdm(total=len(prompts), desc=desc, disable=not progress, unit="prompt") as bar:
            for start in range(0, len(encoded), self.batch_size):
                chunk = encoded[start:start + self.batch_size]
                choices = self._complete(chunk, max_tokens=max_new_tokens, **({"stop": stop[:SERVER_STOPS]} if stop else {}))
                out += [_cut(c.text, stop) for c in choices]
                bar.update(len(chunk))
        return out


def _root(endpoint: str) -> str:
    base = endpoint.rstrip("/")
    return base[:-3] if base.endswith("/v1") else base


def _served(client: Any, served_model: str | None) -> str:
    """The served model's name, checked against the server's list (which also proves the server and key work)."""
    import openai

    try:
        listed = [m.id for m in client.models.list().data]
    except openai.APIError as e:
        raise HubkitError(f"eval backend openai: cannot list the models at the endpoint: {first_line(e)}") from None
    if served_model is None:
        if len(listed) != 1:
            raise HubkitError(f"eval backend openai: the server lists {len(listed)} models; name one with "
                              "--served-model")
        return listed[0]
    if served_model not in listed:
        raise HubkitError(f"eval backend openai: the server does not serve `{served_model}` "
                          f"(it lists: {', '.join(listed[:5])})")
    return served_model


def check_backend(name: str, endpoint: str | None = None, served_model: str | None = None) -> None:
    """Fail now, before any data is read, on a backend that cannot work: an unknown name, vLLM not installed, an
    OpenAI-compatible server that is missing, refuses the key, or does not serve the model named.

    Raises:
        HubkitError: one line naming the problem.
    """
    if name not in BACKENDS:
        raise HubkitError(f"unknown eval backend `{name}` (known: {', '.join(BACKENDS)})")
    if name == "vllm":
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            raise HubkitError("eval backend vllm needs vLLM and a GPU: pip install 'hubkit[vllm]'")
    if name == "openai":
        import openai

        url = endpoint or os.environ.get("HUBKIT_EVAL_URL")
        if not url:
            raise HubkitError("eval backend openai needs a server: --endpoint URL or $HUBKIT_EVAL_URL")
        client = openai.OpenAI(base_url=_root(url) + "/v1", api_key=os.environ.get("HUBKIT_EVAL_API_KEY") or "EMPTY",
                               timeout=30, max_retries=1)
        _served(client, served_model)


def _context(source: ModelSource) -> int:
    from transformers import AutoConfig

    from ..hub import hub_kwargs

    where = source.base_model if source.adapter and source.base_model else source.path
    revision = None if Path(where).is_dir() else (source.base_revision if source.adapter else source.revision)
    try:
        config = AutoConfig.from_pretrained(where, **hub_kwargs(revision, where))
    except Exception:  # an unreadable config: the common 2k context
        return 2048
    return int(getattr(config, "max_position_embeddings", None) or 2048)


class VLLMBackend(Tokenized):
    """vLLM in this process: the base model loaded once per process, a LoRA fine-tune applied as an adapter.

    Args:
        source: the model being evaluated (a full model, or a LoRA adapter with a known base).
        batch_size: unused by vLLM's scheduler beyond being recorded (it batches everything it is given).
        max_lora_rank: the largest adapter rank the engine accepts.
    """

    backend = "vllm"
    _engines: dict[tuple[str, str | None, bool], Any] = {}  # one engine per base, shared by its adapters
    _adapter_ids: dict[str, int] = {}

    def __init__(self, source: ModelSource, batch_size: int = 8, max_length: int | None = None,
                 max_lora_rank: int = 64):
        try:
            import vllm
        except ImportError:
            raise HubkitError("eval backend vllm needs vLLM and a GPU: pip install 'hubkit[vllm]'") from None
        self._vllm = vllm
        self.source = source
        self.tokenizer = load_tokenizer(source)
        self.batch_size = max(1, int(batch_size))
        if source.adapter and not source.base_model:
            raise HubkitError(f"adapter {source.name}: its base model is not known")
        base = source.base_model if source.adapter else source.path
        assert base is not None
        key = (base, source.base_revision if source.adapter else source.revision, source.adapter)
        if key not in self._engines:
            revision = None if Path(base).is_dir() else key[1]
            try:
                self._engines[key] = vllm.LLM(model=base, revision=revision, tokenizer=base, seed=0,
                                              enable_lora=source.adapter, max_lora_rank=max_lora_rank,
                                              enable_prefix_caching=True, max_model_len=max_length)
            except Exception as e:  # CUDA missing, out of memory, an architecture vLLM lacks: many types
                raise HubkitError(f"eval backend vllm cannot load {base}: {first_line(e)}") from None
        self.llm = self._engines[key]
        try:
            self.max_length = int(self.llm.llm_engine.model_config.max_model_len)
        except AttributeError:  # an engine layout of another vLLM version: the model's own context
            self.max_length = max_length or _context(source)
        self.lora = None
        if source.adapter:
            from vllm.lora.request import LoRARequest

            path = source.path if Path(source.path).is_dir() else _snapshot(source)
            number = self._adapter_ids.setdefault(source.key, len(self._adapter_ids) + 1)
            self.lora = LoRARequest(source.name, number, path)
        self._checked = self.lora is None

    @property
    def backend_version(self) -> str:
        return f"vllm {self._vllm.__version__}"

    def _prompt_logprobs(self, prompts: list[list[int]], lora: Any) -> list[list[Any]]:
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1, detokenize=False)
        outputs = self.llm.generate([{"prompt_token_ids": p} for p in prompts], params, lora_request=lora,
                                    use_tqdm=False)
        return [o.prompt_logprobs for o in outputs]

    def loglikelihood(self, requests: Sequence[tuple[str, str]], share_prefix: bool = True,
                      progress: bool = False, desc: str = "scoring") -> list[LogLikelihood]:
        """log P(continuation | context) from vLLM's prompt log-probabilities (prefix caching shares contexts)."""
        encoded = scoring_tokens(self, requests)
        rows = self._prompt_logprobs([ids for ids, _ in encoded], self.lora)
        if not self._checked:
            self._check_adapter(encoded, rows)
        out = []
        for (ids, n), row in zip(encoded, rows):
            values, greedy = [], True
            for pos in range(len(ids) - n, len(ids)):
                entry = row[pos][ids[pos]]
                values.append(entry.logprob)
                greedy = greedy and entry.rank == 1
            out.append(LogLikelihood(float(sum(values)), greedy, n))
        return out

    def _check_adapter(self, encoded: list[tuple[list[int], int]], rows: list[list[Any]]) -> None:
        """Refuse to score an adapter whose log-probabilities equal the base's: it is not being applied."""
        probe = encoded[:8]
        base_rows = self._prompt_logprobs([ids for ids, _ in probe], None)
        for (ids, _), ours, theirs in zip(probe, rows, base_rows):
            if any(abs(ours[p][ids[p]].logprob - theirs[p][ids[p]].logprob) > 1e-6 for p in range(1, len(ids))):
                self._checked = True
                return
        raise HubkitError(f"eval backend vllm: the adapter {self.source.name} leaves every log-probability of its base "
                          "unchanged, so vLLM is scoring the base; check max_lora_rank and the adapted modules, or "
                          "evaluate with --backend hf")

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 256, stop: Iterable[str] = (),
                 progress: bool = False, desc: str = "generating", add_special_tokens: bool = True) -> list[str]:
        stop = [s for s in stop if s]
        budget = max(1, self.max_length - max_new_tokens)
        encoded = [self.encode(p, special=add_special_tokens)[-budget:] for p in prompts]
        params = self._vllm.SamplingParams(max_tokens=max_new_tokens, temperature=0.0, stop=stop or None)
        outputs = self.llm.generate([{"prompt_token_ids": p} for p in encoded], params, lora_request=self.lora,
                                    use_tqdm=progress)
        return [_cut(o.outputs[0].text, stop) for o in outputs]


def _snapshot(source: ModelSource) -> str:
    from huggingface_hub import snapshot_download

    return snapshot_download(source.path, revision=source.revision)


def backend_version(name: str, endpoint: str | None = None) -> str:
    """What a backend's scores record as its version, without loading a model: `transformers 5.x`, `vllm 0.x`, or
    an OpenAI-compatible server's own `GET /version` (vLLM, hubkit), else the client's version.
    """
    from ..utils import versions

    if name == "vllm":
        import importlib.metadata

        try:
            return f"vllm {importlib.metadata.version('vllm')}"
        except importlib.metadata.PackageNotFoundError:
            return "vllm (not installed)"
    if name == "openai":
        import httpx
        import openai

        url = (endpoint or os.environ.get("HUBKIT_EVAL_URL") or "").rstrip("/")
        url = url[:-3] if url.endswith("/v1") else url
        key = os.environ.get("HUBKIT_EVAL_API_KEY")
        try:
            answer = httpx.get(url + "/version", timeout=10,
                               headers={"Authorization": f"Bearer {key}"} if key else {}).json()
            return f"server {str(answer['version'])[:80]}"
        except Exception:  # no such route (TGI, llama.cpp) or no server: the client's version is all we know
            return f"openai client {openai.__version__}"
    return f"transformers {versions().get('transformers')}"


def open_backend(name: str, source: ModelSource, batch_size: int = 8, endpoint: str | None = None,
                 served_model: str | None = None, pool: Any = None) -> Tokenized:
    """The backend `name` for `source`.

    Args:
        name: `hf`, `vllm` or `openai`.
        source: the model being evaluated.
        batch_size: questions or prompts per batch.
        endpoint: `openai`: the server's URL (default `$HUBKIT_EVAL_URL`); its key comes from
            `$HUBKIT_EVAL_API_KEY` (never from the command line, never written anywhere).
        served_model: `openai`: the model name on the server.
        pool: `hf`: a `backends.ModelPool` that keeps one base in memory for all its adapters.

    Raises:
        HubkitError: an unknown backend, a missing endpoint or extra, a model that cannot be loaded.
    """
    if name == "hf":
        return pool.load(source, batch_size) if pool is not None else LM.load(source, batch_size=batch_size)
    if name == "vllm":
        return VLLMBackend(source, batch_size=batch_size)
    if name == "openai":
        url = endpoint or os.environ.get("HUBKIT_EVAL_URL")
        if not url:
            raise HubkitError("eval backend openai needs a server: --endpoint URL or $HUBKIT_EVAL_URL")
        return OpenAIBackend(source, url, os.environ.get("HUBKIT_EVAL_API_KEY"), served_model, batch_size)
    raise HubkitError(f"unknown eval backend `{name}` (known: {', '.join(BACKENDS)})")
