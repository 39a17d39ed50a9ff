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

import difflib
import os
import platform
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

#: The user or org that holds the seeded datasets and benchmarks (`hubkit-data/<name>`) on a local Hub.
DATA_NAMESPACE = "hubkit-data"

#: Libraries whose versions a run records (with Python's and hubkit's).
VERSIONED = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "huggingface_hub")


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
    when = datetime.now(timezone.utc) if timestamp is None else datetime.fromtimestamp(timestamp, timezone.utc)
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
