"""`hubkit sweep SWEEP.yaml [key=value ...]`: run a grid of SFT runs, resumably."""

from __future__ import annotations

from pathlib import Path

import typer

from .train import print_settings


def sweep(
    ctx: typer.Context,
    config: Path = typer.Argument(None, help="SweepSpec YAML file."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the runs the grid expands to; run nothing."),
    status: bool = typer.Option(False, "--status", help="Show the manifest: each run's state, attempts, error."),
    as_json: bool = typer.Option(False, "--json", help="With --status: print the manifest rows as JSON lines."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Try failed runs again."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress over runs."),
    settings: bool = typer.Option(False, "--settings", help="List every sweep setting with its default, then exit."),
) -> None:
    """Expand a grid of runs and carry each through its stages (train, …), skipping what is done.

    Overrides follow the file: `workers=2`, `executor=ray`, `run.epochs=1` (dotted keys reach into `run`).
    Kill it at any time; rerunning resumes. Logs: <output_dir>/<name>/logs/<run id>.log.

    Examples:

        hubkit sweep scripts/recipes/tiny-demo.yaml

        hubkit sweep scripts/recipes/cpu-demo.yaml workers=2 --dry-run

        hubkit sweep scripts/recipes/cpu-demo.yaml --status
    """
    from ..config import SweepSpec, parse_config
    from ..errors import HubkitError

    if settings:
        print_settings(SweepSpec)
        return
    if config is None:
        raise HubkitError("give a sweep file: hubkit sweep SWEEP.yaml")
    from rich.console import Console
    from rich.table import Table

    spec = parse_config(SweepSpec, config, ctx.args)
    console = Console()
    if dry_run:
        from ..sweep import plan_sweep

        runs = plan_sweep(spec)
        table = Table(title=f"sweep {spec.name}: {len(runs)} runs")
        for col in ("run id", "dataset", "size", "tuning", "epochs", "schedule", "lr", "batch"):
            table.add_column(col)
        for rid, run in runs:
            r = run.resolved()
            table.add_row(rid, r.dataset, str(r.data_size or "all"), r.tuning, str(r.epochs), r.lr_schedule,
                          f"{r.learning_rate:g}", str(r.batch_size))
        console.print(table)
        return
    if status:
        from ..sweep import sweep_status

        rows = sweep_status(spec)
        if as_json:
            import dataclasses
            import json

            for row in rows:
                typer.echo(json.dumps({k: v for k, v in dataclasses.asdict(row).items() if k != "spec"}))
            return
        if not rows:
            console.print(f"sweep {spec.name} has not run yet ({spec.directory})")
            return
        table = Table(title=f"sweep {spec.name}")
        for col in ("run id", "state", "attempts", "seconds", "error"):
            table.add_column(col, overflow="fold")
        for row in rows:
            seconds = " ".join(f"{k} {v:.0f}" for k, v in row.timings.items())
            table.add_row(row.run_id, row.state, str(row.attempts), seconds,
                          f"{row.failed_stage}: {row.error}" if row.error else "")
        console.print(table)
        return
    from ..sweep import run_sweep
    from .output import live

    with live(progress) as say:
        report = run_sweep(spec, retry_failed=retry_failed, progress=say)
    summary = ", ".join(f"{n} {state}" for state, n in sorted(report.counts.items()))
    console.print(f"sweep {report.name}: {summary} ({report.jobs_run} jobs this time) → {report.directory}")
    if report.counts.get("failed"):
        hint = "" if retry_failed else "; rerun with --retry-failed to try them again"
        raise HubkitError(f"{report.counts['failed']} run(s) failed (see --status and the logs){hint}")
