"""`hubkit data …`: the training-set registry."""

from __future__ import annotations

import typer

app = typer.Typer(help="The study's training sets: where they come from, online and offline.", no_args_is_help=True)


@app.command("list")
def list_sets() -> None:
    """List the registry: name, public Hub id, offline (seeded) source and any stand-in."""
    from rich.console import Console
    from rich.table import Table

    from ..data.registry import REGISTRY

    table = Table(title="Training sets (also: all, w/o-<name>, a Hub dataset id, or a local file)")
    for col in ("name", "public Hub id", "offline source", "stand-in"):
        table.add_column(col, overflow="fold")
    for e in REGISTRY.values():
        table.add_row(e.name, e.public.describe(), e.offline.describe(), e.stand_in or "")
    Console().print(table)
