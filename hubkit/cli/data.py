"""`hubkit data …`: the training-set registry."""

from __future__ import annotations

import typer

app = typer.Typer(help="The study's training sets: where they come from, online and offline.",
                 no_args_is_help=True, rich_markup_mode=None)


@app.command("list")
def list_sets() -> None:
    """List the registry: name, public Hub id, offline (seeded) source and any stand-in.

    Examples:

        hubkit data list
    """
    from rich.console import Console
    from rich.table import Table

    from ..data.registry import REGISTRY

    table = Table(title="Training sets (also: all, w/o-<name>, a Hub dataset id, or a local file)")
    for col in ("name", "public Hub id", "offline source", "stand-in"):
        table.add_column(col, overflow="fold")
    for e in REGISTRY.values():
        table.add_row(e.name, e.public.describe(), e.offline.describe(), e.stand_in or "")
    Console().print(table)


@app.command("properties")
def properties(
    datasets: str = typer.Option(..., "--datasets", help="Training sets, comma-separated (registry names, Hub ids)."),
    benchmarks: str = typer.Option(..., "--benchmarks", help="Benchmarks, comma-separated (as `hubkit eval` names them)."),
    size: int = typer.Option(200, "--size", min=1, help="Examples sampled from each side."),
    output: str = typer.Option("data_properties.parquet", "--output", "-o", help="Parquet file to write."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress."),
) -> None:
    """Length of each training set and its similarity to each benchmark (embeddings, 3-gram overlap).

    Examples:

        hubkit data properties --datasets lima,math --benchmarks gsm8k,mmlu
    """
    from ..analysis.properties import data_properties

    table = data_properties([d.strip() for d in datasets.split(",") if d.strip()],
                            [b.strip() for b in benchmarks.split(",") if b.strip()], size=size, progress=progress)
    table.to_parquet(output, index=False)
    typer.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    typer.echo(f"Written to {output} (use it with `hubkit analyze --properties`)")
