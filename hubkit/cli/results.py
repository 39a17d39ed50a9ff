"""`hubkit publish RUN` and `hubkit import-results FILE… --format …`: model repos and the results dataset."""

from __future__ import annotations

from pathlib import Path

import typer


def import_results(
    files: list[Path] = typer.Argument(..., help="The study's evaluation_result.csv, or lm-eval results JSON files."),
    format: str = typer.Option(..., "--format", help="massive-sft-csv or lm-eval."),
    repo_id: str = typer.Option(None, "--repo-id", help="Results dataset (default: <your user>/<format>-results)."),
    private: bool = typer.Option(False, "--private", help="Create the dataset private."),
) -> None:
    """Import external results into a results dataset (rows with the sweep axes and gains over the base).

    Examples:

        hubkit import-results evaluation_result.csv --format massive-sft-csv

        hubkit import-results out/results_*.json --format lm-eval
    """
    from rich.console import Console

    from ..errors import HubkitError
    from ..importers import import_key, import_lm_eval, import_massive_sft_csv

    if format == "massive-sft-csv":
        if len(files) != 1:
            raise HubkitError("massive-sft-csv takes exactly one file")
        table = import_massive_sft_csv(files[0])
    elif format == "lm-eval":
        table = import_lm_eval(list(files))
    else:
        raise HubkitError(f"unknown format {format!r} (massive-sft-csv or lm-eval)")
    if table.frame.empty:
        raise HubkitError("no results found in the given files")
    key = import_key(format, files, table.frame)
    from ..hub import get_api
    from ..publish import push_results

    api = get_api()
    if repo_id is None:
        repo_id = f"{api.whoami()['name']}/{format}-results"
    pushed = push_results(table, repo_id, key, private=private, api=api)
    frame = table.frame
    without = int((~frame.drop_duplicates("run_id")["has_repo"]).sum())
    console = Console(highlight=False)
    console.print(f"Imported {table.models:,} models ({len(frame):,} rows; {without:,} without a model repo) "
                  f"into [cyan]{pushed.repo_id}[/cyan] @ {pushed.commit[:10]} as write {pushed.sequence}: "
                  f"{pushed.models:,} models in all")
    subsets = int(frame["subset"].fillna(False).astype(bool).sum())
    scales = frame.groupby("scale")["benchmark"].nunique().to_dict()
    console.print("Scales: " + ", ".join(f"{n} benchmark(s) {s}" for s, n in sorted(scales.items()))
                  + (f"; {subsets:,} row(s) scored on a subset (flagged, never averaged)" if subsets else ""))
    for note in table.notes:
        console.print(f"Note: {note}", markup=False)
    for line in table.left_out:
        console.print(f"Left out: {line}", markup=False)
    if pushed.replaced:
        console.print(f"Replaced {len(pushed.replaced):,} earlier score(s) of the same model, benchmark, metric and "
                      "shots:", markup=False)
        for item in pushed.replaced[:20]:
            console.print(f"  {item.text()}", markup=False)
        if len(pushed.replaced) > 20:
            console.print(f"  … and {len(pushed.replaced) - 20:,} more", markup=False)


def publish(
    run_dir: Path = typer.Argument(..., help="A run directory (what `hubkit train` wrote)."),
    repo_id: str = typer.Option(None, "--repo-id", help="Target repo (default: <namespace>/<run id>)."),
    namespace: str = typer.Option(None, "--namespace", help="User or org for the default repo id."),
    private: bool = typer.Option(False, "--private", help="Create the repo private."),
    base_model: str = typer.Option(None, "--base-model", help="The base model's Hub id, if trained from a local copy."),
    sweep: str = typer.Option(None, "--sweep", help="Sweep name: tags the card; the repo joins its collection."),
    epoch: int = typer.Option(None, "--epoch", help="Publish the checkpoint saved after this epoch (save_epochs)."),
    results_repo: str = typer.Option(None, "--results-repo", help="Results dataset for the run's evaluation "
                                     "(default: <owner>/<sweep>-results with --sweep, else <owner>/hubkit-results)."),
    subset_eval_results: bool = typer.Option(False, "--subset-eval-results", help="Also write scores measured on "
                                             "a subset of a benchmark to .eval_results/ (marked SUBSET; they feed "
                                             "the Hub's public leaderboards, so they are left out by default)."),
) -> None:
    """Publish a trained run with its card in one commit (nothing is uploaded when it is unchanged).

    Examples:

        hubkit publish sweeps/demo/runs/RUN_ID

        hubkit publish ./run --repo-id my-org/my-run --base-model my-org/base
    """
    from rich.console import Console

    from ..publish import publish_run

    result = publish_run(run_dir, repo_id=repo_id, namespace=namespace, private=private, base_model=base_model,
                         sweep=sweep, epoch=epoch, results_repo=results_repo,
                         subset_eval_results=subset_eval_results)
    what = f"{result.files} file(s) in one commit" if result.changed else "unchanged: no commit"
    console = Console()
    console.print(f"Published [cyan]{result.repo_id}[/cyan] @ {result.commit[:10]} ({what})")
    if result.results:
        console.print(f"Results → [cyan]{result.results.repo_id}[/cyan] ({result.results.rows} rows, "
                      f"{result.results.models} models)")
    elif result.evaluated:
        console.print(f"Results: already in [cyan]{result.results_repo}[/cyan] (unchanged)")
    else:
        console.print(f"Results: none (the run has no evaluation; `hubkit eval {run_dir}`, then publish again to "
                      f"add its rows to {result.results_repo})")
