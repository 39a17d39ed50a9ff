"""`hubkit eval MODEL --suite NAME`: the study's benchmarks on one model, with gains over its base."""

from __future__ import annotations

from pathlib import Path

import typer

from ..utils import DATA_NAMESPACE


def evaluate(
    model: str = typer.Argument(..., help="Hub id, local model or adapter directory, or hubkit run directory."),
    suite: str = typer.Option("quick", "--suite", "-s", help="`study`, `quick`, `tiny`, a benchmark, or a comma list."),
    limit: int = typer.Option(None, "--limit", "-l", min=1, help="At most N records per benchmark."),
    n_shot: int = typer.Option(None, "--n-shot", min=0, help="Override every benchmark's shot count."),
    output: Path = typer.Option(None, "--output", "-o", help="Results folder (default: <run>/eval or eval-results/<model>)."),
    base: str = typer.Option(None, "--base", help="Base model for gains (default: the one the model records)."),
    compare_base: bool = typer.Option(True, "--gains/--no-gains", help="Evaluate the base (cached) and store gains."),
    batch_size: int = typer.Option(8, "--batch-size", "-b", min=1, help="Prompts or questions per forward batch."),
    revision: str = typer.Option(None, "--revision", help="Hub revision of MODEL."),
    data_namespace: str = typer.Option(DATA_NAMESPACE, "--data-namespace", help="Where the benchmark repos live."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    allow_unisolated_code: bool = typer.Option(False, "--allow-unisolated-code", help="Run HumanEval/MBPP programs "
                                               "even without isolation (not root): they can read your files."),
) -> None:
    """Evaluate a model; write lm-eval-style results JSON and per-sample details.

    Suites: `study` (every benchmark, study shot counts), `quick` (small subsets for CPUs), `tiny` (four
    multiple-choice benchmarks, 0-shot, 8 records: the quickstart's), or benchmark
    names: gsm8k, math, math500, humaneval, mbpp, mmlu, hellaswag, boolq, truthfulqa, nq_open.

    Examples:

        hubkit eval my-org/run-a --suite quick

        hubkit eval sweeps/demo/runs/RUN_ID --suite gsm8k,mmlu --limit 50
    """
    from rich.console import Console
    from rich.table import Table

    from ..eval.harness import evaluate_model
    from ..eval.tasks import get_suite

    get_suite(suite)  # an unknown suite fails before any model is loaded
    report = evaluate_model(model, suite=suite, limit=limit, n_shot=n_shot, output_dir=output, base=base,
                            compare_base=compare_base, batch_size=batch_size, revision=revision,
                            data_namespace=data_namespace, progress=progress,
                            allow_unisolated_code=allow_unisolated_code)
    table = Table(title=f"{report.model.name} · suite {suite}")
    for col in ("benchmark", "shots", "samples", "metric", "score"):
        table.add_column(col, justify="right" if col in ("shots", "samples", "score") else "left")
    if report.gains:
        table.add_column("base", justify="right")
        table.add_column("gain", justify="right")
    from ..results import samples_text

    for name, score in report.scores.items():
        metric = next(iter(report.metrics[name]))
        scored, total = report.sizes.get(name, (None, None))
        row = [name, str(report.n_shot[name]), samples_text(scored, total, report.subset(name)), metric, f"{score:.1f}"]
        if report.gains:
            row += [f"{report.base_scores[name]:.1f}", f"{report.gains[name]:+.1f}"]
        table.add_row(*row)
    console = Console()
    console.print(table)
    if any(report.subset(name) for name in report.scores):
        console.print("Scores marked subset come from part of their benchmark: compare them only with scores on the "
                      "same samples (the base's, here), never with full-benchmark results.")
    console.print(f"Results: {report.results_file}  ({report.seconds:.0f} s)")
