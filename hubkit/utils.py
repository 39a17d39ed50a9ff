"""Small helpers every stage shares: names, sizes, times, versions and hubkit's folders.

Nothing here imports a heavy library, so any module (the config, the CLI, the Hub server) may use it.

Example:
    >>> from hubkit.utils import slug, size_token, did_you_mean
    >>> slug("SmolLM2 135M/Instruct")
    'smollm2-135m-instruct'
    >>> size_token(20000)
    '20k'
    >>> did_you_mean("lmia", ["lima", "alpaca"])
    ' (did you mean `lima`?)'
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import platform
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

R = TypeVar("R", bound="JsonRecord")

#: The user or org that holds the seeded datasets and benchmarks (`hubkit-data/<name>`) on a local Hub.
DATA_NAMESPACE = "hubkit-data"

#: Request header with which hubkit's client asks a local Hub for LFS transfers (`hubkit.hub.transfer`); the
#: server reads it. Here, below both, so that neither imports the other for it.
TRANSFER_HEADER = "x-hubkit-transfer"

#: Libraries whose versions a run records (with Python's and hubkit's).
VERSIONED = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "huggingface_hub")


class Progress(Protocol):
    """How library code says what it is doing, the one way: `progress(message, done, total)`.

    `done` and `total` count the steps of a long piece of work when they are known. Library code never prints:
    the CLI renders these calls (`hubkit.cli.output.reporter`); other callers log them or pass None.
    """

    def __call__(self, message: str, done: int | None = None, total: int | None = None) -> None: ...


def silent(message: str, done: int | None = None, total: int | None = None) -> None:
    """The `Progress` of a caller that wants none."""


def slug(text: str) -> str:
    """Lower-case letters, digits, `.`, `_` and `-` only; no `--` or `..`; no leading or trailing `-`/`.`.

    The one name-to-identifier rule: run ids, card tags and imported ids all go through it.

    Args:
        text: any name (a model id, a dataset name, a sweep name).
    """
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", text)
    text = re.sub(r"-{2,}", "-", text)
    text = re.sub(r"\.{2,}", ".", text)
    return text.strip("-.").lower()


def size_token(size: int | None) -> str:
    """`1000` → `1k`, `1500` → `1500`, None (every example) → `full`."""
    if size is None:
        return "full"
    if size >= 1000 and size % 1000 == 0:
        return f"{size // 1000}k"
    return str(size)


def signal_on_parent_death(sig: int) -> None:
    """Ask Linux to send this process `sig` when its parent dies, even by SIGKILL (`PR_SET_PDEATHSIG`); for a
    child's `preexec_fn`, between fork and exec. Elsewhere a no-op."""
    import ctypes
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)
        except OSError:
            pass


def human_bytes(n: float) -> str:
    """`81_200_000_000_000` → `81.2 TB`: decimal units, as the Hub and disk vendors count."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """` (did you mean `x`?)` for the closest of `known`, or an empty string.

    Args:
        name: what the user wrote.
        known: the names that exist.
    """
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


def first_line(error: BaseException) -> str:
    """The first line of an error's text (what a one-line message quotes), or its type's name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def now(timestamp: float | None = None) -> str:
    """An ISO-8601 UTC time with microseconds, ending in `Z` (now, or of a `time.time()` value).

    Example:
        >>> now(0)
        '1970-01-01T00:00:00.000000Z'
    """
    when = datetime.now(UTC) if timestamp is None else datetime.fromtimestamp(timestamp, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def versions() -> dict[str, str]:
    """Python's, hubkit's and the training stack's versions (those installed), for run and eval records."""
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    out = {"python": platform.python_version(), "hubkit": __version__}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def hubkit_home() -> Path:
    """hubkit's own cache folder: `$HUBKIT_HOME`, else `$XDG_CACHE_HOME/hubkit`, else `~/.cache/hubkit`."""
    if os.environ.get("HUBKIT_HOME"):
        return Path(os.environ["HUBKIT_HOME"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hubkit"


class JsonRecord:
    """`to_json` / `from_json` / `write` / `read` for a flat dataclass: the one shape of every JSON file and
    message that passes between hubkit's stages.

    Keys a record does not know are kept in its `extra` field when it has one (and written back, so a file
    from a newer hubkit survives a round trip), else dropped. Fields named in `OPTIONAL` are left out of the
    JSON while they are None.

    Example:
        >>> @dataclasses.dataclass
        ... class Done(JsonRecord):
        ...     ok: bool
        >>> Done.from_json({"ok": True, "later": 1})
        Done(ok=True)
    """

    OPTIONAL: ClassVar[tuple[str, ...]] = ()

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}  # type: ignore[arg-type]
        for key in self.OPTIONAL:
            if out[key] is None:
                del out[key]
        return {**out, **getattr(self, "extra", {})}

    @classmethod
    def from_json(cls: type[R], data: dict[str, Any] | None) -> R:
        """Raises: ValueError (not a JSON object), TypeError (a required field is missing)."""
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        known = {k: v for k, v in data.items() if k in names and k != "extra"}
        if "extra" in names:
            known["extra"] = {k: v for k, v in data.items() if k not in names}
        return cls(**known)

    def write(self, path: str | Path) -> None:
        """Write the record as indented JSON."""
        Path(path).write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n", encoding="utf-8")

    @classmethod
    def read(cls: type[R], path: str | Path) -> R:
        """Read a record back.

        Raises:
            HubkitError: the file is missing, not JSON, or not this record.
        """
        from .errors import HubkitError

        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as e:
            raise HubkitError(f"{path}: unreadable {cls.__name__}: {e}") from None
