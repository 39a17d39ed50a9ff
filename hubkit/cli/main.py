"""`hubkit`: the typer application and its error contract (one line on stderr, non-zero exit)."""

from __future__ import annotations

import os
import sys

import click
import typer

from ..errors import HubkitError
from . import analysis as analysis_cli
from . import data as data_cli
from . import eval as eval_cli
from . import hub as hub_cli
from . import quickstart as quickstart_cli
from . import results as results_cli
from . import space as space_cli
from . import sweep as sweep_cli
from . import train as train_cli

# typer >= 0.23 vendors click: its commands raise `typer._click`'s exceptions, not `click`'s (both are caught)
_CLICK_EXCEPTIONS = getattr(typer, "_click", click).exceptions
_USAGE_ERRORS = (click.exceptions.UsageError, _CLICK_EXCEPTIONS.UsageError)
_EXITS = (click.exceptions.Exit, typer.Exit)
_ABORTS = (click.exceptions.Abort, typer.Abort)
_NO_ARGS = (click.exceptions.NoArgsIsHelpError, _CLICK_EXCEPTIONS.NoArgsIsHelpError)

app = typer.Typer(
    name="hubkit",
    help="Train many SFT variants, publish each to the Hugging Face Hub with a full card, and analyse them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: flags read as flags (`--json`), values as `--size <int>`
)
app.add_typer(hub_cli.app, name="hub")
app.add_typer(data_cli.app, name="data")
app.add_typer(space_cli.space_app, name="space")
app.add_typer(space_cli.leaderboard_app, name="leaderboard")
app.add_typer(eval_cli.judge_app, name="judge")
app.command("quickstart", context_settings=train_cli.EXTRA_ARGS)(quickstart_cli.quickstart)
app.command("train", context_settings=train_cli.EXTRA_ARGS)(train_cli.train)
app.command("sweep", context_settings=train_cli.EXTRA_ARGS)(sweep_cli.sweep)
app.command("eval")(eval_cli.evaluate)
app.command("publish")(results_cli.publish)
app.command("import-results")(results_cli.import_results)
app.command("layerdiff")(analysis_cli.layerdiff)
app.command("perplexity")(analysis_cli.perplexity)
app.command("pull")(analysis_cli.pull)
app.command("analyze")(analysis_cli.analyze)


# The `hub` group manages Hubs and names its endpoint itself (`hub status` reports whether HF_ENDPOINT was set).
SETTLED_BY_COMMAND = {"hub"}
_ARGV: list[str] = []


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"hubkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True,
                                 callback=_print_version, expose_value=True),
) -> None:
    settle_endpoint(ctx.invoked_subcommand, _ARGV)


def settle_endpoint(command: str | None, argv: list[str]) -> None:
    """Name the Hub once, at CLI entry, before any command module imports `huggingface_hub` (which reads
    `HF_ENDPOINT` when it is imported): `HF_ENDPOINT` when set, else the embedded Hub's fixed URL. Nothing
    starts here: the embedded Hub starts when a command first talks to it (`ensure_endpoint`), so a command
    on local paths starts none, and it stops when the last command using it exits.
    """
    if command is None or command in SETTLED_BY_COMMAND or "--help" in argv or "-h" in argv:
        return
    from ..hub.client import choose_endpoint

    choose_endpoint()


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    first = text[0] if text else type(err).__name__
    if isinstance(err, HubkitError):
        return first
    if type(err).__name__ in ("ConnectError", "ConnectTimeout", "ConnectionError", "ConnectionRefusedError"):
        return f"cannot reach the Hub at {os.environ.get('HF_ENDPOINT', 'the default endpoint')}: {first}"
    return f"{type(err).__name__}: {first}"


def _usage_line(err) -> str:
    """A usage error as one line that names the command whose help explains it."""
    message = " ".join(err.format_message().split())
    command = err.ctx.command_path if getattr(err, "ctx", None) is not None else "hubkit"
    command = "hubkit" + command[command.index(" "):] if " " in command else "hubkit"
    return f"{message} (see `{command} --help`)"


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `hubkit` console script."""
    _ARGV[:] = list(sys.argv[1:] if argv is None else argv)
    try:
        from ..benchmarks import check

        check()  # a malformed record of `$HUBKIT_BENCHMARKS_PATH`: one line, before any command runs
        # click returns a `typer.Exit(code)`'s code in this mode
        code = app(args=argv, prog_name="hubkit", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except _NO_ARGS:  # `hubkit` alone (or a group alone, `hubkit hub`): its help, as `--help` prints it
        app(args=[*_ARGV, "--help"], prog_name="hubkit", standalone_mode=False)
        sys.exit(0)
    except _EXITS as e:
        sys.exit(e.exit_code)
    except _ABORTS:
        sys.exit(130)
    except _USAGE_ERRORS as e:
        print(f"Error: {_usage_line(e)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        sys.exit(130)
    except Exception as e:
        if os.environ.get("HUBKIT_DEBUG"):
            raise
        print(f"Error: {_one_line(e)}", file=sys.stderr)
        sys.exit(1)
