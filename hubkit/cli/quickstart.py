"""`hubkit quickstart [key=value ...]`: the main job end to end on the current endpoint (default: the embedded Hub)."""

from __future__ import annotations

from pathlib import Path

import typer


def quickstart(
    ctx: typer.Context,
    recipe: Path = typer.Option(None, "--recipe", help="Sweep YAML (default: scripts/recipes/quickstart.yaml)."),
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
    from ..quickstart import run

    run(recipe=recipe, overrides=list(ctx.args), output_dir=output, namespace=namespace, study=study,
        data_dir=data, serve=serve, port=port)
