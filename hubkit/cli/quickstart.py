"""`hubkit quickstart [key=value ...]`: the main job end to end on the current endpoint (default: the embedded Hub)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from ..quickstart import QuickstartResult


def quickstart(
    ctx: typer.Context,
    recipe: Path = typer.Option(None, "--recipe", help="Sweep YAML or shipped recipe name (default: quickstart)."),
    output: Path = typer.Option(Path("hubkit-quickstart"), "--output", "-o",
                                help="Folder for the sweep, perplexity and layer tables, and the analysis."),
    namespace: str = typer.Option(None, "--namespace", help="Where to publish (default: the token's user)."),
    study: bool = typer.Option(True, "--study/--no-study", help="Import the study's released results too."),
    data: Path = typer.Option(None, "--data", help="The shared data folder (default: ../shared/data)."),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve the leaderboard at the end."),
    port: int = typer.Option(None, "--port", help="Leaderboard port (default: the first free one from 7860)."),
) -> None:
    """Train, evaluate and publish a small sweep of SmolLM2-135M fine-tunes with cards and results; import
    the study's results; measure perplexity and layer changes; analyse; serve the leaderboard.

    Overrides follow the options, as for `hubkit sweep`: `grid.dataset=\\[math]`, `eval_limit=4`,
    `run.data_size=64`. Rerunning resumes: finished stages and runs are not redone.

    Examples:

        hubkit quickstart

        hubkit quickstart 'grid.dataset=[math]' eval_limit=4 --no-serve
    """
    import time

    from rich.console import Console

    from ..quickstart import run
    from ..space import check_port
    from .output import live

    if serve:
        check_port("127.0.0.1", port)  # before the job, not after it
    console = Console()
    with live(err=False) as say:
        result = run(recipe=recipe, overrides=list(ctx.args), output_dir=output, namespace=namespace, study=study,
                     data_dir=data, progress=say)
    if not serve:
        _report(console, result)
        return
    from ..space import build_app, serving, wait_until_interrupted

    started = time.perf_counter()
    with serving(build_app(result.results_repo), port=port) as url:  # closed, its threads joined, on the way out
        result.url = url
        result.seconds["leaderboard"] += time.perf_counter() - started
        _report(console, result)
        console.print(f"[bold green]Leaderboard running on {url}[/bold green] (Ctrl-C to stop)", soft_wrap=True)
        wait_until_interrupted()
    console.print("Leaderboard stopped.")


def _report(console: Console, result: QuickstartResult) -> None:
    """The summary tables, the time of each stage, and where everything is."""
    _print_summary(console, result.summary, result)
    console.print("[dim]" + " · ".join(f"{name} {s:.0f} s" for name, s in result.seconds.items()) + "[/dim]")
    hub = result.endpoint.rstrip("/")
    console.print(f"Models: {hub}/{result.namespace} · results: {hub}/datasets/{result.results_repo} · "
                  f"Space: {hub}/spaces/{result.space_repo}", soft_wrap=True)
    console.print(f"Local outputs: {result.output_dir}/ (summary.csv, perplexity.parquet, layerdiff/, "
                  "analysis/report.md)", soft_wrap=True)


def _print_summary(console: Console, table: pd.DataFrame, result: QuickstartResult) -> None:
    """Two narrow tables (they fit 80 columns): scores with gains per benchmark, then what the analysis joins."""
    from rich.table import Table

    def number(value, fmt: str) -> str:
        return "—" if value != value else format(value, fmt)  # NaN → —

    labels = [f"{r.dataset} · {r.tuning}" for r in table.itertuples()]
    benches = [c for c in table.columns if f"{c} gain" in table.columns]
    scores = Table(title=f"{len(table)} runs of {result.namespace} on {result.endpoint}: score (gain over the base)")
    scores.add_column("run")
    for col in benches:
        scores.add_column(col, justify="right")
    for label, (_, row) in zip(labels, table.iterrows()):
        scores.add_row(label, *(f"{number(row[c], '.1f')} ({number(row[c + ' gain'], '+.1f')})" for c in benches))
    console.print(scores)
    subsets = sorted({s for s in table.get("samples", []) if str(s).startswith("subset")})
    if subsets:
        console.print(f"[dim]Scores on a subset of each benchmark ({', '.join(subsets)}): gains are over the base on "
                      "the same records; not comparable with full-benchmark results.[/dim]")
    extra = [c for c in ("mean gain", "data perplexity", "mid-layer change") if c in table.columns]
    joined = Table(title="what the analysis relates: gain, perplexity of the training data under the base, "
                         "mean ‖ΔW‖/‖W‖ of the middle third of layers")
    joined.add_column("run")
    for col in extra:
        joined.add_column(col, justify="right")
    formats = {"mean gain": "+.2f", "data perplexity": ".2f", "mid-layer change": ".2e"}
    for label, (_, row) in zip(labels, table.iterrows()):
        joined.add_row(label, *(number(row[c], formats[c]) for c in extra))
    console.print(joined)

