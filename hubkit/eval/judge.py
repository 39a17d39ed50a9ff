"""The LLM judge: any OpenAI-compatible endpoint, reached through the `openai` client.

Configured from the environment only, so that neither the address nor the key is ever written to a card, a
results file or a log:

| variable | meaning |
| --- | --- |
| `HUBKIT_JUDGE_URL` | the endpoint's base URL, e.g. `http://127.0.0.1:8000/v1` (vLLM, SGLang, llama.cpp server, TGI) or a hosted API |
| `HUBKIT_JUDGE_MODEL` | the judge model's id at that endpoint |
| `HUBKIT_JUDGE_API_KEY` | its key, when it needs one |
| `HUBKIT_JUDGE_TIMEOUT` | seconds to wait for one answer (default 120; `hubkit eval --judge-timeout`) |
| `HUBKIT_JUDGE_RETRIES` | retries of a request that timed out or failed with 408/409/429/5xx (default 2; `--judge-retries`) |

With no `HUBKIT_JUDGE_URL`, `open_judge` serves a local model (default: the bundled SmolLM2-135M-Instruct)
through `hubkit.eval.judge_server` in-process, behind a per-session key, and talks to it the same way.

What a score records of its judge (`JudgeIdentity`): the model id the endpoint answers with and its version
(the response's `system_fingerprint`, or the model id alone when the endpoint sends none), and whether it was
the local judge. Never the URL or the key. Every grade also records the fingerprint it was answered with.

Errors: a refused key, an unknown model or an unreachable endpoint at the start stop the run with one line
(`HubkitError`); a request that fails once grading runs — rejected (HTTP 400, e.g. a context too long), timed
out after its retries, answered with something that is not JSON — raises `JudgeFailure`, which the judged
benchmarks record against that grade before going on.

Example:
    >>> with open_judge() as judge:
    ...     reply = judge.chat([{"role": "user", "content": "Say OK."}], max_tokens=4)
    >>> judge.identity.text()
    'HuggingFaceTB/SmolLM2-135M-Instruct (hubkit-judge-0.1.0-local-0fce86e839e6; hubkit local judge)'
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import HubkitError

URL_ENV, MODEL_ENV, KEY_ENV = "HUBKIT_JUDGE_URL", "HUBKIT_JUDGE_MODEL", "HUBKIT_JUDGE_API_KEY"
TIMEOUT_ENV, RETRIES_ENV = "HUBKIT_JUDGE_TIMEOUT", "HUBKIT_JUDGE_RETRIES"
DEFAULT_TIMEOUT, DEFAULT_RETRIES = 120.0, 2
LOCAL = "hubkit local judge"
REMOTE = "OpenAI-compatible endpoint"


class JudgeFailure(HubkitError):
    """One judge request failed (rejected, timed out after its retries, not JSON): the grade is recorded as failed
    with this message, and grading goes on."""


def _from_env(name: str, kind: type, default: float, expected: str):
    """`$name` as `kind`, `default` when unset, or a one-line error saying what was expected."""
    text = os.environ.get(name, "").strip()
    try:
        return kind(text) if text else default
    except ValueError:
        raise HubkitError(f"${name}={text!r}: expected {expected}") from None


def request_settings(timeout: float | None = None, retries: int | None = None) -> tuple[float, int]:
    """The judge's timeout (seconds) and retries: the arguments, else `$HUBKIT_JUDGE_TIMEOUT` /
    `$HUBKIT_JUDGE_RETRIES`, else 120 s and 2.

    Raises:
        HubkitError: a value that is not a positive number (timeout) or a whole number ≥ 0 (retries).
    """
    timeout = _from_env(TIMEOUT_ENV, float, DEFAULT_TIMEOUT, "seconds, e.g. 120") if timeout is None else timeout
    retries = _from_env(RETRIES_ENV, int, DEFAULT_RETRIES, "a whole number, e.g. 2") if retries is None else retries
    if not math.isfinite(timeout) or timeout <= 0:
        raise HubkitError(f"judge timeout {timeout!r}: expected a positive number of seconds")
    if retries < 0:
        raise HubkitError(f"judge retries {retries!r}: expected 0 or more")
    return float(timeout), int(retries)


@dataclass(frozen=True)
class JudgeIdentity:
    """Which judge graded: `model` (its id at the endpoint), `version` (the response's system fingerprint),
    and `served_by` (`hubkit local judge` or `OpenAI-compatible endpoint`)."""

    model: str
    version: str | None
    served_by: str

    def text(self) -> str:
        """`model (version; served by)`: the provenance line cards and the leaderboard show."""
        return f"{self.model} ({'; '.join(p for p in (self.version, self.served_by) if p)})"

    def to_json(self) -> dict[str, str | None]:
        return {"model": self.model, "version": self.version, "served_by": self.served_by}


@dataclass
class Reply:
    """A judge's answer: its text and, when asked and the endpoint sends them, the first token's top
    log-probabilities (`token text → logprob`); the fingerprint and model id it answered with; and every position's
    log-probabilities as the endpoint sent them (`logprobs`: token, logprob, top), which a grade's record keeps so
    that the grade can be re-derived offline."""

    text: str
    top_logprobs: dict[str, float] | None = None
    first_token: str | None = None  # the token answered first, and the alternatives at the next position
    next_logprobs: dict[str, float] | None = None
    fingerprint: str | None = None
    model: str | None = None
    logprobs: list[dict] | None = None


@dataclass
class Judge:
    """A judge model at an OpenAI-compatible endpoint.

    Args:
        base_url: the endpoint (ending in `/v1` for most servers).
        model: the model id to call.
        api_key: the key (never stored beyond this object, never printed).
        served_by: `LOCAL` or `REMOTE`, for the provenance.
    """

    base_url: str = field(repr=False)
    model: str
    api_key: str | None = field(default=None, repr=False)
    served_by: str = REMOTE
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    _client: object = field(default=None, init=False, repr=False)
    _fingerprint: str | None = field(default=None, init=False)
    _answered_as: str | None = field(default=None, init=False)

    @property
    def client(self):
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(base_url=self.base_url, api_key=self.api_key or "none", timeout=self.timeout,
                                  max_retries=self.retries)
        return self._client

    @property
    def identity(self) -> JudgeIdentity:
        """The judge as the endpoint names it (after at least one call: the model id and fingerprint it answered
        with), reduced to the characters ids use: an endpoint cannot put markup or lines into a card."""
        return JudgeIdentity(_clean(self._answered_as or self.model), _clean(self._fingerprint) or None, self.served_by)

    @property
    def fingerprint(self) -> str | None:
        """The version the endpoint last answered with (`system_fingerprint`; for the local judge, its weights)."""
        return _clean(self._fingerprint) or None

    @property
    def cache_key(self) -> str:
        """The judge as configured, known before any call: endpoint kind and model id, and for the local judge its
        weights. (What an endpoint answers with comes later, per grade: see `Reply.fingerprint`.)"""
        local = self.served_by == LOCAL
        return f"{'local' if local else 'remote'}-{self.model}" + (f"-{self._fingerprint}" if local else "")

    @property
    def _where(self) -> str:
        return "the local judge" if self.served_by == LOCAL else f"the judge endpoint (${URL_ENV})"

    @contextlib.contextmanager
    def _errors(self):
        import openai

        where = self._where
        try:
            yield
        except (openai.AuthenticationError, openai.PermissionDeniedError):
            raise HubkitError(f"{where} refused the key (${KEY_ENV})") from None
        except openai.NotFoundError:
            raise HubkitError(f"{where} does not serve model {self.model!r} (${MODEL_ENV})") from None
        except openai.APITimeoutError:
            raise JudgeFailure(f"{where} did not answer within {self.timeout:g} s (tried {self.retries + 1} times; "
                               f"${TIMEOUT_ENV}, ${RETRIES_ENV})") from None
        except openai.APIConnectionError as e:
            raise JudgeFailure(f"cannot reach {where}: {type(e).__name__}") from None
        except openai.APIStatusError as e:
            raise JudgeFailure(f"{where} answered HTTP {e.status_code}: {_message(e)}") from None
        except (openai.APIResponseValidationError, json.JSONDecodeError, UnicodeDecodeError) as e:
            raise JudgeFailure(f"{where} answered with something that is not an OpenAI-style JSON reply "
                               f"({type(e).__name__})") from None

    def check(self) -> None:
        """Fail early, before hours of answers: the endpoint answers, takes the key, and serves the model
        (when it lists its models).

        Raises:
            HubkitError: as `chat`; here any failure stops the run.
        """
        try:
            with self._errors():
                served = [m.id for m in self.client.models.list()]
        except JudgeFailure as e:
            raise HubkitError(str(e)) from None
        if served and self.model not in served:
            raise HubkitError(f"{self._where} does not serve model {self.model!r} (${MODEL_ENV}); it serves "
                              f"{', '.join(repr(_clean(m)) for m in served[:5])}")

    def chat(self, messages: list[dict[str, str]], max_tokens: int, top_logprobs: int | None = None) -> Reply:
        """One greedy (temperature 0) chat completion; `top_logprobs` asks for the first token's alternatives.

        Raises:
            HubkitError: the endpoint refuses the key or does not know the model (one line that names neither the
                URL nor the key).
            JudgeFailure: this request failed: rejected, timed out after its retries, or not an OpenAI-style reply.
        """
        kwargs = {"logprobs": True, "top_logprobs": top_logprobs} if top_logprobs else {}
        with self._errors():
            response = self.client.chat.completions.create(model=self.model, messages=messages, temperature=0,
                                                           max_tokens=max_tokens, **kwargs)
        if not hasattr(response, "choices"):  # a body that parsed as JSON but is not a completion
            raise JudgeFailure(f"{self._where} answered with something that is not an OpenAI-style JSON reply")
        fingerprint = getattr(response, "system_fingerprint", None)
        self._fingerprint = fingerprint or self._fingerprint
        self._answered_as = getattr(response, "model", None) or self._answered_as
        if not response.choices:
            raise JudgeFailure(f"{self._where} answered with no choices")
        choice = response.choices[0]
        content = getattr(choice.logprobs, "content", None) if choice.logprobs else None
        tops = [_alternatives(c) for c in content[:2]] if content else []
        every = [{"token": c.token, "logprob": c.logprob, "top": _alternatives(c)} for c in content] if content else None
        return Reply(choice.message.content or "", tops[0] if tops else None, content[0].token if content else None,
                     tops[1] if len(tops) > 1 else None, _clean(fingerprint or self._fingerprint) or None,
                     _clean(getattr(response, "model", None)) or None, every)


def _alternatives(position) -> dict[str, float]:
    """token → logprob of one position's top alternatives (and the token chosen there)."""
    top: dict[str, float] = {}
    for alt in position.top_logprobs or []:
        if math.isfinite(alt.logprob):
            top[alt.token] = max(alt.logprob, top.get(alt.token, -math.inf))
    top.setdefault(position.token, position.logprob)
    return top


def _clean(text: str | None) -> str:
    return re.sub(r"[^A-Za-z0-9._:/@+-]+", " ", text or "").strip()[:120]


def _message(error) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"].splitlines()[0][:200]
    return type(error).__name__


@contextlib.contextmanager
def open_judge(local_model: str | None = None, timeout: float | None = None,
               retries: int | None = None) -> Iterator[Judge]:
    """The judge to grade with: the configured endpoint, else a local model served in-process for the block.

    Args:
        local_model: the local judge (a bundled model's name, a folder or a Hub id); default `smollm2`.
            Ignored when `HUBKIT_JUDGE_URL` is set.
        timeout, retries: per request (default `$HUBKIT_JUDGE_TIMEOUT` / `$HUBKIT_JUDGE_RETRIES`, else 120 s, 2).

    Raises:
        HubkitError: `HUBKIT_JUDGE_URL` is set without `HUBKIT_JUDGE_MODEL`, bad timeout or retries, or the local
            judge cannot load.
    """
    timeout, retries = request_settings(timeout, retries)
    url = os.environ.get(URL_ENV)
    if url:
        model = os.environ.get(MODEL_ENV)
        if not model:
            raise HubkitError(f"${URL_ENV} is set but ${MODEL_ENV} is not: name the judge model")
        yield Judge(url, model, os.environ.get(KEY_ENV) or None, REMOTE, timeout, retries)
        return
    from .judge_server import JudgeServer, LocalChatModel

    key = secrets.token_urlsafe(24)  # other local users cannot borrow this process's judge
    server = JudgeServer(LocalChatModel.load(local_model or "smollm2"), api_key=key).start()
    try:
        judge = Judge(server.url + "/v1", server.model.name, key, LOCAL, timeout, retries)
        judge._fingerprint = server.model.fingerprint
        yield judge
    finally:
        server.stop()
