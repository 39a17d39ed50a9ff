"""`hubkit train CONFIG [key=value ...]`: one SFT run from a YAML RunSpec plus overrides."""

from __future__ import annotations

from pathlib import Path

import typer

EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def print_settings(cls) -> None:
    """A table of a config dataclass's settings: name, default, help."""
    import dataclasses

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{cls.__name__} settings")
    for col in ("setting", "default", "help"):
        table.add_column(col)
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        table.add_row(f.name, "" if default in (None, "") else str(default), f.metadata.get("help", ""))
    Console().print(table)


def split_config(ctx: typer.Context, config: Path | None) -> Path | None:
    """A first argument that looks like `key=value` is an override, not a config file."""
    if config is not None and "=" in str(config) and not config.exists():
        ctx.args.insert(0, str(config))
        return None
    return config


def train(
    ctx: typer.Context,
    config: Path | None = typer.Argument(None, help="RunSpec YAML file (optional when overrides give every setting)."),
    force: bool = typer.Option(False, "--force", help="Train again even if the run directory exists."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the trainer's progress bar."),
    settings: bool = typer.Option(False, "--settings", help="List every setting with its default, then exit."),
) -> None:
    """Train one run (TRL SFTTrainer, full or LoRA) and write its run directory.

    Overrides follow the config as `key=value` or `--key value`, e.g.
    `hubkit train run.yaml epochs=1 --tuning lora`.

    Examples:

        hubkit train model=my-org/base dataset=lima data_size=64 epochs=1

        hubkit train my-run.yaml tuning=lora lora_r=8
    """
    from ..config import RunSpec, parse_config

    if settings:
        print_settings(RunSpec)
        return
    from rich.console import Console

    from ..train import train as run_training

    config = split_config(ctx, config)
    spec = parse_config(RunSpec, config, ctx.args)
    result = run_training(spec, force=force, progress=progress)
    console = Console()
    if result.skipped:
        console.print(f"Run [cyan]{result.run_id}[/cyan] already trained: {result.run_dir} (use --force to retrain)")
        return
    m = result.metrics
    console.print(
        f"Trained [cyan]{result.run_id}[/cyan] → {result.run_dir}\n"
        f"  loss {m.train_loss:.4f} · {m.steps} steps · {m.train_tokens:,} tokens · "
        f"{m.tokens_per_second or 0:.0f} tokens/s · {m.wall_seconds:.1f} s · "
        f"peak RAM {m.peak_cpu_memory_mb or 0:.0f} MB")
