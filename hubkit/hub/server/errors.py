"""HTTP-level errors of the local Hub, shaped the way `huggingface_hub` reads them.

`hf_raise_for_status` picks its exception class from the `X-Error-Code` header, so every error the server
returns carries a status, an optional error code and a one-line message.
"""

from __future__ import annotations


class HubError(Exception):
    """An error the server answers with (status, `X-Error-Code`, message)."""

    status: int = 400
    code: str | None = None

    def __init__(
        self, message: str, *, status: int | None = None, code: str | None = None, headers: dict | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class BadRequest(HubError):
    status = 400


class Unauthorized(HubError):
    status = 401


class Forbidden(HubError):
    status = 403


class RepoNotFound(HubError):
    status = 404
    code = "RepoNotFound"


class RevisionNotFound(HubError):
    status = 404
    code = "RevisionNotFound"


class EntryNotFound(HubError):
    status = 404
    code = "EntryNotFound"

    def __init__(self, message: str, *, commit: str | None = None) -> None:
        super().__init__(message)
        self.commit = commit


class NotFound(HubError):
    status = 404


class Conflict(HubError):
    status = 409


class PreconditionFailed(HubError):
    status = 412


class RangeNotSatisfiable(HubError):
    status = 416
