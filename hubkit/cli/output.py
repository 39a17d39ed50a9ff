"""What the CLI prints for library code: `reporter` renders `utils.Progress` calls on stderr."""

from __future__ import annotations

import typer

from ..utils import Progress


def reporter(enabled: bool = True) -> Progress | None:
    """A `Progress` that prints each message on stderr (`[3/11] message` when it counts steps), or None when
    `enabled` is False (the library then says nothing).

    Example:
        >>> say = reporter()
        >>> say("analysis: LoRA vs full", 6, 11)   # prints "[7/11] analysis: LoRA vs full"
    """
    if not enabled:
        return None

    def report(message: str, done: int | None = None, total: int | None = None) -> None:
        prefix = f"[{done + 1}/{total}] " if done is not None and total else ""
        typer.echo(prefix + message, err=True)

    return report
