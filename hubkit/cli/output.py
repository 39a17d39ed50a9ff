"""What the CLI prints for library code: it renders `utils.Progress` calls.

Library code never prints; it calls `progress(message, done, total)`. `live` keeps one bar for the counted calls
(the sweep's stages done of all, the analyses run of all) and prints the others above it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..utils import Progress


@contextmanager
def live(enabled: bool = True, err: bool = True) -> Iterator[Progress | None]:
    """A `Progress` for the length of a `with` block: one bar (description, done of total, time elapsed) that
    counted calls move, with uncounted messages printed above it (on stderr, or stdout with `err=False`); None
    when `enabled` is False.

    Example:
        >>> with live() as say:
        ...     run_sweep(spec, progress=say)
    """
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=err)
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console)
    task = None

    def report(message: str, done: int | None = None, total: int | None = None) -> None:
        nonlocal task
        if done is None:
            console.print(message, markup=False, highlight=False)
        elif task is None:
            task = bar.add_task(message, total=total, completed=done)
        else:
            bar.update(task, description=message, completed=done, total=total)

    with bar:
        yield report
