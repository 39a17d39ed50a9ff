"""What hubkit does when a Hub call fails: retry it when the failure is transient, translate it once when not.

Two pieces, used together by every module that talks to a Hub:

- `retrying(fn, *args, **kwargs)` calls one Hub operation and retries it on a transient failure (HTTP 429 or
  5xx, a dropped or refused connection) with exponential backoff. It lets every other error through unchanged,
  so it wraps single calls, never code that has already translated errors.
- `hub_errors(what)` is the boundary: inside it, the client's `HfHubHTTPError` family and transport errors
  become one `HubkitError` line, `"<what>: <reason>"`, that the CLI prints without a traceback.

Example:
    >>> from hubkit.hub import get_api, hub_errors, retrying
    >>> api = get_api()
    >>> with hub_errors("publish alice/run", not_found="publish alice/run: no such repo"):
    ...     retrying(api.create_repo, "alice/run", exist_ok=True)
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from ..errors import HubkitError
from ..utils import first_line

T = TypeVar("T")

#: HTTP statuses worth another try.
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
#: Tries per call, and the first wait in seconds (doubling after each failure).
RETRY_ATTEMPTS = 5
RETRY_FIRST_WAIT = 0.5


def transport_errors() -> tuple[type[BaseException], ...]:
    """The exception types of a dropped or refused connection, for whichever HTTP stack the client uses."""
    errors: list[type[BaseException]] = [ConnectionError]
    for name in ("httpx2", "httpx"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        errors.append(module.TransportError)
    return tuple(errors)


def http_status(error: BaseException) -> int | None:
    """The HTTP status of a client error, when it carries a response."""
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def is_transient(error: BaseException) -> bool:
    """Whether `error` is worth retrying: HTTP 429/5xx from the Hub, or a dropped or refused connection."""
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(error, HfHubHTTPError):
        return http_status(error) in RETRY_STATUS
    return isinstance(error, transport_errors())


def retrying(fn: Callable[..., T], *args, attempts: int | None = None, first_wait: float | None = None,
             **kwargs) -> T:
    """`fn(*args, **kwargs)`, retried on transient Hub failures with exponential backoff.

    Args:
        fn: one Hub operation (an `HfApi` method, `hf_hub_download`, `push_folder`).
        attempts: tries in all; default `RETRY_ATTEMPTS`.
        first_wait: seconds before the second try, doubling after each; default `RETRY_FIRST_WAIT`.

    Raises:
        the last error, unchanged, once the tries are spent; any non-transient error at once.

    Example:
        >>> info = retrying(api.model_info, "alice/run", files_metadata=True)
    """
    attempts = attempts or RETRY_ATTEMPTS
    first_wait = RETRY_FIRST_WAIT if first_wait is None else first_wait
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            if attempt == attempts - 1 or not is_transient(e):
                raise
        time.sleep(first_wait * 2 ** attempt)
    raise AssertionError("unreachable")


def check_repo_id(name: str, what: str) -> None:
    """Say, before any request, that `name` is neither a local folder (it was not found) nor a Hub repo id.

    Raises:
        HubkitError: `name` is not a valid repo id (`NAMESPACE/NAME`).
    """
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        raise HubkitError(f"{what}: local folder not found, and not a Hub repo id (NAMESPACE/NAME)") from None


@contextlib.contextmanager
def hub_errors(what: str, *, not_found: str | None = None, missing_file: str | None = None,
               endpoint: str | None = None) -> Iterator[None]:
    """Translate Hub and transport errors raised inside the block into one `HubkitError` line.

    Args:
        what: what was being done, the message's start: `"cannot publish alice/run"`, `"model alice/run"`.
        not_found: the whole message for a repo or revision that does not exist (or is not visible).
        missing_file: the whole message for a file the repo does not have.
        endpoint: the Hub named when it cannot be reached; default `HF_ENDPOINT`.

    A `HubkitError` raised inside passes unchanged; other exceptions are not touched.

    Example:
        >>> with hub_errors("pull alice/run", not_found="pull alice/run: no such model on the Hub"):
        ...     api.model_info("alice/run")
    """
    try:
        yield
    except HubkitError:
        raise
    except Exception as e:
        from huggingface_hub.errors import (
            EntryNotFoundError,
            HfHubHTTPError,
            HFValidationError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        if isinstance(e, (RepositoryNotFoundError, RevisionNotFoundError)) and not_found:
            raise HubkitError(not_found) from None
        if isinstance(e, EntryNotFoundError) and missing_file:
            raise HubkitError(missing_file) from None
        if isinstance(e, HFValidationError):  # a name that is no repo id: a local folder that is not there
            raise HubkitError(f"{what}: not a Hub repo id (NAMESPACE/NAME): {first_line(e)}") from None
        if isinstance(e, HfHubHTTPError):
            status = e.response.status_code if e.response is not None else None
            sent = e.response is not None and bool(e.response.request.headers.get("authorization"))
            # a token the Hub refused (not a repo hidden from an anonymous caller, which is a 401 on huggingface.co)
            if status == 401 and sent and not isinstance(e, (RepositoryNotFoundError, RevisionNotFoundError)):
                where = (endpoint or os.environ.get("HF_ENDPOINT") or "the Hub").rstrip("/")
                raise HubkitError(f"{what}: the Hub at {where} rejected the token (401 Unauthorized): set HF_TOKEN "
                                  "to a valid token, or unset it to use the saved login") from None
            raise HubkitError(f"{what}: {first_line(e)}") from None
        if isinstance(e, transport_errors()):
            where = (endpoint or os.environ.get("HF_ENDPOINT") or "the Hub").rstrip("/")
            raise HubkitError(f"{what}: cannot reach the Hub at {where}: {first_line(e)}") from None
        raise
