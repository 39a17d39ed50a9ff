"""`hubkit import-results FILE… --format massive-sft-csv | lm-eval`: external results into a results dataset."""

from __future__ import annotations

from pathlib import Path

import typer


def import_results(
    files: list[Path] = typer.Argument(..., help="The study's evaluation_result.csv, or lm-eval results JSON files."),
    format: str = typer.Option(..., "--format", help="massive-sft-csv or lm-eval."),
    repo_id: str = typer.Option(None, "--repo-id", help="Results dataset (default: <your user>/<format>-results)."),
    private: bool = typer.Option(False, "--private", help="Create the dataset private."),
) -> None:
    """Import external results into a results dataset (rows with the sweep axes and gains over the base)."""
    from rich.console import Console

    from ..errors import HubkitError
    from ..results import import_lm_eval, import_massive_sft_csv

    if format == "massive-sft-csv":
        if len(files) != 1:
            raise HubkitError("massive-sft-csv takes exactly one file")
        table = import_massive_sft_csv(files[0])
        key = f"import-massive-sft-{files[0].stem}"
    elif format == "lm-eval":
        table = import_lm_eval(list(files))
        key = "import-lm-eval-" + "-".join(sorted({p.parent.name for p in files}))[:80]
    else:
        raise HubkitError(f"unknown format {format!r} (massive-sft-csv or lm-eval)")
    if table.frame.empty:
        raise HubkitError("no results found in the given files")
    from ..hub import get_api
    from ..publish import push_results

    api = get_api()
    if repo_id is None:
        repo_id = f"{api.whoami()['name']}/{format}-results"
    pushed = push_results(table, repo_id, key, private=private, api=api)
    without = int((~table.frame.drop_duplicates("run_id")["has_repo"]).sum())
    Console().print(f"Imported {table.models:,} models ({len(table.frame):,} rows; {without:,} without a model repo) "
                    f"into [cyan]{pushed.repo_id}[/cyan] @ {pushed.commit[:10]}: {pushed.models:,} models in all")
