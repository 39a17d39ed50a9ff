"""`hubkit space deploy` and `hubkit leaderboard serve`: the leaderboard Space, on the Hub or locally."""

from __future__ import annotations

import typer

space_app = typer.Typer(help="Deploy the leaderboard as a Gradio Space.",
                 no_args_is_help=True, rich_markup_mode=None)
leaderboard_app = typer.Typer(help="Run the leaderboard app locally.",
                 no_args_is_help=True, rich_markup_mode=None)


@space_app.command("deploy")
def deploy(
    repo_id: str = typer.Option(..., "--repo-id", help="The Space to create or update (NS/NAME)."),
    results: str = typer.Option(..., "--results", help="The results dataset it shows (NS/DATASET)."),
    private: bool = typer.Option(False, "--private", help="Create the Space private."),
) -> None:
    """Create the Space (sdk gradio) and upload the app with its settings, in one commit.

    Examples:

        hubkit space deploy --results my-org/results --repo-id my-org/board
    """
    from ..hub import ensure_endpoint
    from ..space import deploy_space

    deploy_space(repo_id, results, private=private)
    typer.echo(f"Deployed {ensure_endpoint().rstrip('/')}/spaces/{repo_id} (showing {results})")


@leaderboard_app.command("serve")
def serve(
    results: str = typer.Option(..., "--results", help="The results dataset to show (NS/DATASET)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(7860, "--port", help="Port to listen on."),
) -> None:
    """Serve the leaderboard over a results dataset on the current Hub, until interrupted.

    Examples:

        hubkit leaderboard serve --results my-org/sweep-results --port 7860
    """
    import time

    from ..space import build_app, check_port, serving, wait_until_interrupted

    check_port(host, port)  # before the results load (seconds)
    started = time.perf_counter()
    demo = build_app(results)
    typer.echo(f"Loaded {results} in {time.perf_counter() - started:.1f} s")
    with serving(demo, host=host, port=port) as url:
        typer.echo(f"Leaderboard running on {url} (Ctrl-C to stop)")
        wait_until_interrupted()
    typer.echo("Leaderboard stopped.")
