"""An OpenAI-compatible endpoint for a local model: hubkit's offline LLM judge, and a server `--backend openai` can
evaluate against.

`hubkit eval --suite judge` talks to its judge through the `openai` client only. With no endpoint
configured, it serves a local model through this module, in-process, on 127.0.0.1 with a per-session key,
so that the offline path and a hosted judge (vLLM, SGLang, llama.cpp server, TGI, an API) are the same
code. `hubkit judge serve` runs it as a process of its own.

Routes (the subset of the OpenAI API a judge needs):

| route | what |
| --- | --- |
| `GET /v1/models` | the one model served, `{"object": "list", "data": [{"id", "owned_by"}]}` |
| `POST /v1/chat/completions` | greedy completion of `messages`; `max_tokens`, `logprobs`, `top_logprobs` (≤ 20), `stop` |
| `POST /v1/completions` | greedy completion of `prompt` (text or token ids, one or a list); `echo` with `logprobs` returns the prompt's own log-probabilities (what log-likelihood scoring needs) |
| `GET /version` | `{"version": "hubkit <version>"}` (vLLM answers the same route with its own) |

Decoding is greedy whatever `temperature` says: a judge's grades must be reproducible. Each response's
`system_fingerprint` names the weights (`hubkit-judge-<version>-<revision>`), which is how a score's
provenance records the judge's version.

Limits against a hostile or runaway client: bodies over 4 MB, more than 256 messages, `max_tokens` over
4,096, or a prompt longer than the model's context get a 4xx with an OpenAI-style error body; one request
is decoded at a time.

Example:
    >>> server = JudgeServer(LocalChatModel.load("smollm2"), api_key="s3cret").start()
    >>> from openai import OpenAI
    >>> client = OpenAI(base_url=server.url + "/v1", api_key="s3cret")
    >>> client.chat.completions.create(model=server.model.name, messages=[{"role": "user", "content": "Hi"}])
"""

from __future__ import annotations

import hmac
import json
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import HubkitError
from ..utils import first_line

MAX_BODY = 4 * 1024 * 1024
MAX_MESSAGES = 256
MAX_TOKENS = 4096
MAX_TOP_LOGPROBS = 20
ROLES = ("system", "user", "assistant")


@dataclass
class Completion:
    """What the model produced for one request."""

    text: str
    finish_reason: str  # `stop` (end of turn or a stop string) or `length`
    prompt_tokens: int
    tokens: list[dict[str, Any]] = field(default_factory=list)  # OpenAI `logprobs.content` entries, when asked


class LocalChatModel:
    """A causal LM with a chat template, decoding greedily, with per-token log-probabilities on request.

    Args:
        model: a `PreTrainedModel`; tokenizer: its tokenizer (with a chat template).
        name: the id clients call it by (a public Hub id where known).
        revision: the weights' commit or content hash: part of the judge's version.
    """

    def __init__(self, model, tokenizer, name: str, revision: str):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.revision = revision
        self.context = getattr(model.config, "max_position_embeddings", None) or 2048
        self.lock = threading.Lock()

    @property
    def fingerprint(self) -> str:
        from .. import __version__

        return f"hubkit-judge-{__version__}-{self.revision[:16]}"

    @classmethod
    def load(cls, source: str = "smollm2") -> LocalChatModel:
        """Load a judge: a bundled model's name (`smollm2`), a local model folder, or a Hub id (current endpoint).

        Raises:
            HubkitError: the model cannot be loaded, or its tokenizer has no chat template.
        """
        from ..models import BUNDLED, convert_bundled
        from .lm import LM, resolve_model

        if source in BUNDLED:
            folder = convert_bundled(source)
            resolved = resolve_model(str(folder))
            resolved.name = BUNDLED[source].repo_id
        else:
            resolved = resolve_model(source)
        lm = LM.load(resolved, batch_size=1)
        if not getattr(lm.tokenizer, "chat_template", None):
            raise HubkitError(f"judge model {resolved.name}: its tokenizer has no chat template")
        return cls(lm.model, lm.tokenizer, resolved.name, resolved.revision)

    def complete(self, messages: list[dict[str, str]], max_tokens: int, top_logprobs: int | None = None,
                 stop: list[str] | None = None) -> Completion:
        """Greedy completion of a conversation; `top_logprobs` (0–20) asks for per-token log-probabilities.

        Raises:
            ValueError: the prompt does not fit the model's context with room for one token.
        """
        import torch

        tok = self.tokenizer
        ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        if len(ids) >= self.context:
            raise ValueError(f"the prompt has {len(ids)} tokens; this model's context is {self.context}")
        max_tokens = min(max_tokens, self.context - len(ids))
        eos = [t for t in {tok.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)}
               if isinstance(t, int)]
        kwargs: dict[str, Any] = {"stop_strings": stop, "tokenizer": tok} if stop else {}
        with self.lock, torch.inference_mode():
            out = self.model.generate(
                input_ids=torch.tensor([ids], device=self.model.device), do_sample=False, max_new_tokens=max_tokens,
                eos_token_id=eos or None, pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else eos[0],
                temperature=None, top_p=None, top_k=None, output_scores=top_logprobs is not None,
                return_dict_in_generate=True, **kwargs)
        new = out.sequences[0, len(ids):].tolist()
        finish = "length"
        for k, t in enumerate(new):
            if t in eos:
                new, finish = new[:k], "stop"
                break
        text = tok.decode(new, skip_special_tokens=True)
        for s in stop or []:
            if s and s in text:
                text, finish = text[:text.index(s)], "stop"
        tokens = []
        if top_logprobs is not None:
            for step, t in enumerate(new):
                logprobs = torch.log_softmax(out.scores[step][0].float(), dim=-1)
                top = torch.topk(logprobs, max(1, top_logprobs))
                tokens.append({**_token(tok, t, float(logprobs[t])), "top_logprobs": [
                    _token(tok, int(i), float(v)) for v, i in zip(top.values.tolist(), top.indices.tolist())]
                    if top_logprobs else []})
        return Completion(text, finish, len(ids), tokens)


    def complete_prompt(self, prompt: list[int], max_tokens: int, echo: bool, logprobs: int | None,
                        stop: list[str]) -> dict[str, Any]:
        """A legacy-completions choice for token ids: greedy continuation, and with `echo` the prompt's own
        tokens with their log-probabilities (the first token has none), as vLLM and the OpenAI API return them.

        Raises:
            ValueError: the prompt is empty or does not fit the model's context.
        """
        import torch

        if not prompt or len(prompt) + max_tokens > self.context:
            raise ValueError(f"the prompt has {len(prompt)} tokens and asks for {max_tokens} more; this model's "
                             f"context is {self.context}")
        tok = self.tokenizer
        ids = torch.tensor([prompt], device=self.model.device)
        entries: list[tuple[int, float | None, dict[str, float] | None]] = []
        with self.lock, torch.inference_mode():
            if echo and logprobs is not None:
                scores = torch.log_softmax(self.model(input_ids=ids).logits[0].float(), dim=-1)
                entries.append((prompt[0], None, None))
                for pos in range(1, len(prompt)):
                    row = scores[pos - 1]
                    entries.append((prompt[pos], float(row[prompt[pos]]), _top(tok, row, logprobs)))
            new: list[int] = []
            finish = "length"
            if max_tokens:
                eos = [t for t in {tok.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)}
                       if isinstance(t, int)]
                out = self.model.generate(
                    input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=max_tokens,
                    eos_token_id=eos or None, pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else eos[0],
                    temperature=None, top_p=None, top_k=None, output_scores=logprobs is not None,
                    return_dict_in_generate=True, **({"stop_strings": stop, "tokenizer": tok} if stop else {}))
                new = out.sequences[0, len(prompt):].tolist()
                for k, t in enumerate(new):
                    if t in eos:
                        new, finish = new[:k], "stop"
                        break
                if logprobs is not None:
                    for step, t in enumerate(new):
                        row = torch.log_softmax(out.scores[step][0].float(), dim=-1)
                        entries.append((t, float(row[t]), _top(tok, row, logprobs)))
        text = tok.decode(new, skip_special_tokens=True)
        for s in stop:
            if s and s in text:
                text, finish = text[:text.index(s)], "stop"
        shown = tok.decode(prompt) + text if echo else text
        choice: dict[str, Any] = {"text": shown, "index": 0, "finish_reason": finish, "logprobs": None}
        if logprobs is not None:
            pieces = [tok.decode([t]) for t, _, _ in entries]
            offsets, at = [], 0
            for piece in pieces:
                offsets.append(at)
                at += len(piece)
            choice["logprobs"] = {"tokens": pieces, "token_logprobs": [lp for _, lp, _ in entries],
                                  "top_logprobs": [top for _, _, top in entries], "text_offset": offsets}
        choice["usage"] = (len(prompt), len(new))
        return choice


def _top(tok, row, k: int) -> dict[str, float]:
    """The `k` most likely next tokens (at least one: the greedy choice) as {token text: log-probability}."""
    import torch

    top = torch.topk(row, max(1, k))
    return {tok.decode([int(i)]): float(v) for v, i in zip(top.values.tolist(), top.indices.tolist())}


def _token(tok, token_id: int, logprob: float) -> dict[str, Any]:
    text = tok.decode([token_id])
    return {"token": text, "logprob": logprob if math.isfinite(logprob) else -9999.0,
            "bytes": list(text.encode("utf-8"))}


def _error(status: int, message: str, kind: str = "invalid_request_error"):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": None}}, status_code=status)


def _check(body: Any, model_name: str) -> tuple[list[dict[str, str]], int, int | None, list[str]]:
    """The request's messages, max_tokens, top_logprobs and stop strings, or ValueError naming the field."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    if body.get("model") not in (None, model_name):
        raise LookupError(f"the model `{str(body.get('model'))[:100]}` does not exist; this server serves `{model_name}`")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or len(messages) > MAX_MESSAGES:
        raise ValueError(f"`messages` must be a list of 1 to {MAX_MESSAGES} messages")
    clean = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise ValueError(f"each message needs a `role` ({', '.join(ROLES)}) and a string `content`")
        clean.append({"role": m["role"], "content": m["content"]})
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens", 1024))
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 1 <= max_tokens <= MAX_TOKENS:
        raise ValueError(f"`max_tokens` must be an integer from 1 to {MAX_TOKENS}")
    top = None
    if body.get("logprobs"):
        top = body.get("top_logprobs") or 0
        if not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= MAX_TOP_LOGPROBS:
            raise ValueError(f"`top_logprobs` must be an integer from 0 to {MAX_TOP_LOGPROBS}")
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) and len(s) <= 200 for s in stop):
        raise ValueError("`stop` must be a string or up to 4 strings")
    return clean, max_tokens, top, stop


def create_app(model: LocalChatModel, api_key: str | None = None):
    """The ASGI app serving `model`; with `api_key`, every request must carry `Authorization: Bearer <key>`."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def authorised(request: Request) -> bool:
        if not api_key:
            return True
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode())

    async def models(request: Request):
        if not authorised(request):
            return _error(401, "invalid API key", "authentication_error")
        return JSONResponse({"object": "list", "data": [{"id": model.name, "object": "model", "created": 0,
                                                         "owned_by": "hubkit"}]})

    async def chat(request: Request):
        got = await _parsed(request, authorised, lambda body: _check(body, model.name))
        if isinstance(got, JSONResponse):
            return got
        body, (messages, max_tokens, top, stop) = got
        if body.get("stream"):
            return _error(400, "streaming is not supported by this server")
        try:
            done = await run_in_threadpool(model.complete, messages, max_tokens, top, stop)
        except ValueError as e:
            return _error(400, first_line(e))
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": done.text},
                                  "logprobs": {"content": done.tokens} if top is not None else None,
                                  "finish_reason": done.finish_reason}
        return JSONResponse({
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": model.name, "system_fingerprint": model.fingerprint, "choices": [choice],
            "usage": {"prompt_tokens": done.prompt_tokens, "completion_tokens": len(done.tokens) or None,
                      "total_tokens": None}})

    async def completions(request: Request):
        got = await _parsed(request, authorised, lambda body: _check_completion(body, model))
        if isinstance(got, JSONResponse):
            return got
        _, (prompts, max_tokens, echo, logprobs, stop) = got
        choices = []
        try:
            for index, prompt in enumerate(prompts):
                choice = await run_in_threadpool(model.complete_prompt, prompt, max_tokens, echo, logprobs, stop)
                choice["index"] = index
                choices.append(choice)
        except ValueError as e:
            return _error(400, first_line(e))
        usage = [c.pop("usage") for c in choices]
        return JSONResponse({
            "id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
            "model": model.name, "system_fingerprint": model.fingerprint, "choices": choices,
            "usage": {"prompt_tokens": sum(u[0] for u in usage), "completion_tokens": sum(u[1] for u in usage),
                      "total_tokens": sum(u[0] + u[1] for u in usage)}})

    async def version(request: Request):
        from .. import __version__

        return JSONResponse({"version": f"hubkit {__version__}"})

    return Starlette(routes=[Route("/v1/models", models, methods=["GET"]),
                             Route("/v1/chat/completions", chat, methods=["POST"]),
                             Route("/v1/completions", completions, methods=["POST"]),
                             Route("/version", version, methods=["GET"])])


async def _parsed(request, authorised, check) -> Any:
    """(the body, what `check` reads from it), or the error response (401, 413, 404, 400) to send instead."""
    if not authorised(request):
        return _error(401, "invalid API key", "authentication_error")
    raw = await _read_body(request)
    if raw is None:
        return _error(413, f"the body is over {MAX_BODY // 2**20} MB")
    try:
        body = json.loads(raw)
        return body, check(body)
    except LookupError as e:
        return _error(404, str(e))
    except ValueError as e:
        return _error(400, first_line(e) if not isinstance(e, json.JSONDecodeError) else "the body is not JSON")


async def _read_body(request) -> bytes | None:
    """The request body, or None once it passes `MAX_BODY` (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        return None
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            return None
    return raw


def _check_completion(body: Any, model: LocalChatModel) -> tuple[list[list[int]], int, bool, int | None, list[str]]:
    """A legacy-completions request's prompts (as token ids), max_tokens, echo, logprobs and stop strings."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    if body.get("model") not in (None, model.name):
        raise LookupError(f"the model `{str(body.get('model'))[:100]}` does not exist; this server serves `{model.name}`")
    if body.get("stream"):
        raise ValueError("streaming is not supported by this server")
    prompt = body.get("prompt")
    if isinstance(prompt, str) or (isinstance(prompt, list) and prompt and isinstance(prompt[0], (str, int))):
        prompt = [prompt]
    if not isinstance(prompt, list) or not 1 <= len(prompt) <= MAX_MESSAGES:
        raise ValueError(f"`prompt` must be a string, token ids, or a list of 1 to {MAX_MESSAGES} of them")
    vocab = len(model.tokenizer)
    prompts = []
    for p in prompt:
        if isinstance(p, str):
            p = model.tokenizer(p)["input_ids"]
        if not isinstance(p, list) or not all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < vocab
                                              for t in p):
            raise ValueError(f"token ids must be integers from 0 to {vocab - 1}")
        prompts.append(p)
    max_tokens = body.get("max_tokens", 16)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 0 <= max_tokens <= MAX_TOKENS:
        raise ValueError(f"`max_tokens` must be an integer from 0 to {MAX_TOKENS}")
    echo = body.get("echo", False) is True
    logprobs = body.get("logprobs")
    if logprobs is not None and (not isinstance(logprobs, int) or isinstance(logprobs, bool)
                                 or not 0 <= logprobs <= MAX_TOP_LOGPROBS):
        raise ValueError(f"`logprobs` must be an integer from 0 to {MAX_TOP_LOGPROBS}")
    if not max_tokens and not echo:
        raise ValueError("`max_tokens` 0 needs `echo`")
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) and len(s) <= 200 for s in stop):
        raise ValueError("`stop` must be a string or up to 4 strings")
    return prompts, max_tokens, echo, logprobs, stop


class JudgeServer:
    """`create_app(model)` served by uvicorn on 127.0.0.1, in a thread of this process (`start`) or in the
    foreground (`serve_forever`).

    Args:
        model: what to serve.
        api_key: the key clients must send (None: none needed).
        host, port: where to listen; port 0 picks a free one.
    """

    def __init__(self, model: LocalChatModel, api_key: str | None = None, host: str = "127.0.0.1", port: int = 0):
        import uvicorn

        from ..hub.server import listening_socket

        self.model = model
        self.socket = listening_socket(host, port)
        self.url = f"http://{host}:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(create_app(model, api_key), log_level="warning", access_log=False, http="h11",
                                lifespan="off", limit_concurrency=64, timeout_keep_alive=30)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def start(self) -> JudgeServer:
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self.socket]}, daemon=True,
                                        name="hubkit-judge")
        self._thread.start()
        deadline = time.time() + 30
        while not self._server.started and time.time() < deadline and self._thread.is_alive():
            time.sleep(0.02)
        if not self._server.started:
            raise HubkitError("the local judge server did not start")
        return self

    def serve_forever(self) -> None:
        self._server.run(sockets=[self.socket])

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.socket.close()


def write_ready_file(path: Path, url: str) -> None:
    """`{"url": ...}` in `path`, atomically: how a parent process learns where `hubkit judge serve` listens."""
    import os

    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}), encoding="utf-8")
    os.replace(tmp, path)
