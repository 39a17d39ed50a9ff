"""`hubkit sweep SWEEP.yaml [key=value ...]`: run a grid of SFT runs, resumably."""

from __future__ import annotations

from pathlib import Path

import typer

from .train import print_settings


def sweep(
    ctx: typer.Context,
    config: Path = typer.Argument(None, help="A SweepSpec YAML file, or a shipped recipe's name (see --recipes)."),
    list_recipes: bool = typer.Option(False, "--recipes", help="List the shipped recipes by name, then exit."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the runs the grid expands to; run nothing."),
    status: bool = typer.Option(False, "--status", help="Show the manifest: each run's state, attempts, error."),
    as_json: bool = typer.Option(False, "--json", help="With --status: print the manifest rows as JSON lines."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Try failed runs again."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress over runs."),
    settings: bool = typer.Option(False, "--settings", help="List every sweep setting with its default, then exit."),
    hardware: str = typer.Option(None, "--hardware", help="With `plan`: the throughput profile to cost the sweep on "
                                 "(`study-gpu`, the default, or `cpu`; see hubkit/sweep/throughput.yaml)."),
) -> None:
    """Expand a grid of runs and carry each through its stages (train, …), skipping what is done.

    Overrides follow the file: `workers=2`, `executor=ray`, `run.epochs=1` (dotted keys reach into `run`).
    Kill it at any time; rerunning resumes. Logs: <output_dir>/<name>/logs/<run id>.log.

    `hubkit sweep plan SWEEP.yaml` runs nothing: it prints the runs, GPU-hours of training and evaluation, the
    checkpoints' disk and the bytes to upload, from measured throughput tables, beside the study's own figures.

    Examples:

        hubkit sweep --recipes

        hubkit sweep tiny-demo

        hubkit sweep plan study-main-grid

        hubkit sweep grid.yaml executor=slurm slurm_partition=gpu

        hubkit sweep cpu-demo workers=2 --dry-run

        hubkit sweep cpu-demo --status
    """
    from ..config import SweepSpec, parse_config
    from ..errors import HubkitError
    from ..resources import recipe_path, recipes, resource_dir

    if settings:
        print_settings(SweepSpec)
        return
    if list_recipes:
        shipped = recipes()
        width = max(map(len, shipped), default=0)
        print(f"Shipped recipes ({resource_dir('recipes')}/): run one by name, `hubkit sweep NAME`.")
        for name, summary in shipped.items():
            print(f"  {name:<{width}}  {summary}")
        return
    if config is None:
        raise HubkitError("give a sweep file or a recipe name: hubkit sweep SWEEP.yaml (hubkit sweep --recipes "
                          "lists the shipped recipes)")
    args = list(ctx.args)
    if str(config) == "plan" and not config.exists():  # `hubkit sweep plan SWEEP.yaml [overrides]`
        if not args or "=" in args[0] or args[0].startswith("-"):
            raise HubkitError("give a sweep file to plan: hubkit sweep plan SWEEP.yaml")
        _print_plan(parse_config(SweepSpec, recipe_path(args[0]), args[1:]), hardware)
        return
    if hardware is not None:
        raise HubkitError("--hardware goes with `plan`: hubkit sweep plan SWEEP.yaml --hardware cpu")
    from rich.console import Console
    from rich.table import Table

    spec = parse_config(SweepSpec, recipe_path(config), args)
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


def _print_plan(spec, hardware: str | None) -> None:
    """The table of `hubkit sweep plan`: a row per base model, the total, and the study's figures beside it."""
    from rich.console import Console
    from rich.table import Table

    from ..sweep.plan import plan_cost, tables
    from ..utils import human_bytes

    plan = plan_cost(spec, hardware)
    evaluating = "eval" in plan.stages
    device = "GPU" if tables()["hardware"][plan.hardware]["gpu"] else "CPU"
    table = Table(title=f"sweep {plan.sweep}: what it will cost on `{plan.hardware}` (stages: {', '.join(plan.stages)})")
    for col in ("base model", "parameters", "runs", "models", "train tokens", f"train {device}-h", f"eval {device}-h",
                "checkpoints", "Hub upload"):
        table.add_column(col, justify="left" if col == "base model" else "right", overflow="fold")

    def row(name: str, params: str, c) -> list[str]:
        return [name, params, f"{c.runs:,}", f"{c.models:,}", _count(c.train_tokens), _hours(c.train_gpu_hours),
                _hours(c.eval_gpu_hours) if evaluating else "-", human_bytes(c.disk_bytes),
                human_bytes(c.hub_bytes) if "publish" in plan.stages else "-"]

    for model, cost in plan.rows.items():
        table.add_row(*row(model, _count(plan.sizes[model].params), cost))
    table.add_section()
    table.add_row(*row("total", "", plan.total))
    console = Console()
    console.print(table)
    if evaluating:
        console.print(f"Evaluation: suite `{plan.eval_suite}` on every saved model, plus {len(plan.sizes)} base "
                      f"model(s) once ({plan.base_eval_gpu_hours:,.1f} GPU-h more).", markup=False)
    study = tables()["study"]
    console.print(f"The study, for scale: {study['runs']:,} runs, {study['train_gpu_hours']:,} GPU-h of training, "
                  f"{study['eval_gpu_hours']:,} GPU-h to evaluate {study['models_evaluated']:,} models, "
                  f"~{study['storage_tb']} TB of checkpoints.", markup=False)
    console.print(f"Throughput `{plan.hardware}`: {plan.hardware_note}.", markup=False)
    sizes = sorted({s.source for s in plan.sizes.values()})
    console.print(f"Model sizes from: {', '.join(sizes)}. {device}-hours are summed over devices; wall time divides "
                  "them by the devices running at once.", markup=False)
    for note in plan.notes:
        console.print(f"Note: {note}.", markup=False)


def _count(n: float) -> str:
    """`359.4M`, `7.20B`, `10.9k`: a count of tokens or parameters."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:,.2f}{unit}" if unit == "B" else f"{n / size:,.1f}{unit}"
    return f"{n:,.0f}"


def _hours(h: float) -> str:
    """Hours to one decimal, or to two significant digits below 10 (a CPU sweep's 0.047)."""
    return f"{h:,.1f}" if h >= 10 else f"{h:.2g}"

