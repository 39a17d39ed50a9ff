"""`hubkit quickstart`: the main job, end to end on the current endpoint (the embedded Hub by default)."""

from __future__ import annotations

import typer


def quickstart(
    namespace: str = typer.Option(None, "--namespace", help="Where to publish (default: the token's user)."),
    seed_data: bool = typer.Option(True, "--seed/--no-seed", help="Seed the shared datasets first."),
) -> None:
    """Start the local Hub, seed the datasets, publish a tiny model with a card, list it, pull it back."""
    from ..quickstart import run

    run(namespace=namespace, seed_data=seed_data)
