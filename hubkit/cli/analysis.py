"""`hubkit layerdiff` and `hubkit perplexity`: reanalysis of models pulled back from the Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, cast

import typer


def layerdiff(
    models: list[str] = typer.Argument(..., help="Fine-tunes: Hub ids or local folders (full weights or LoRA adapters)."),
    base: str = typer.Option(..., "--base", help="The base model (Hub id or local folder)."),
    output: Path = typer.Option(Path("layerdiff"), "--output", "-o", help="Folder for the tables and the plot."),
    revision: str = typer.Option(None, "--revision", help="Hub revision of the base."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    adapted_only: bool = typer.Option(False, "--adapted-only", help="LoRA adapters only: read and report only the "
                                      "tensors an adapter changes (per-layer figures then cover those tensors)."),
) -> None:
    """Per tensor and layer, how far each fine-tune moved from the base (Hub repos are read by Range requests).

    Writes `layerdiff.parquet` (per tensor), `layerdiff_layers.parquet` (per layer) and `layerdiff.png`.

    Examples:

        hubkit layerdiff --base my-org/base my-org/run-a my-org/run-b -o diff

        hubkit layerdiff --base ./base ./pulled/my-org--run-lora

        hubkit layerdiff --base ./base ./pulled/my-org--run-lora --adapted-only
    """
    from rich.console import Console
    from rich.table import Table

    from ..analysis.layerdiff import by_layer, layer_diff, plot

    stats: dict[str, int] = {}
    table = layer_diff(base, models, revision=revision, progress=progress, stats=stats, adapted_only=adapted_only)
    output.mkdir(parents=True, exist_ok=True)
    table.to_parquet(output / "layerdiff.parquet", index=False)
    layers = by_layer(table)
    layers.to_parquet(output / "layerdiff_layers.parquet", index=False)
    plot(table, output / "layerdiff.png")
    summary = Table(title="relative weight change ‖ΔW‖/‖W‖ by depth, and the cosine of W and W+ΔW")
    for col in ("model", "first third", "middle third", "last third", "min layer cosine"):
        summary.add_column(col, justify="left" if col == "model" else "right")
    for model, part in layers.groupby("model"):
        thirds = [part[(part["depth"] >= lo) & (part["depth"] <= hi)]["rel_change"].mean()
                  for lo, hi in ((0, 1 / 3), (1 / 3, 2 / 3), (2 / 3, 1))]
        summary.add_row(str(model), *(f"{v:.4g}" for v in thirds), f"{part['cosine'].min():.6f}")
    console = Console()
    console.print(summary)
    console.print(f"{stats.get('bytes_read', 0) / 2**20:,.1f} MB of weights read for "
                  f"{stats.get('tensor_bytes', 0) / 2**20:,.1f} MB of tensors compared (remote repos by Range requests)")
    console.print(f"Tables and plot in {output}")


def perplexity(
    model: str = typer.Option(..., "--model", "-m", help="Hub id, local folder, run directory or adapter."),
    data: str = typer.Option(..., "--data", "-d", help="Training set (registry name, Hub id, file) or a `text` dataset."),
    mode: str = typer.Option("response", "--mode", help="`response` (completions given prompts) or `full`."),
    size: int = typer.Option(None, "--size", min=1, help="Score a seeded sample of N examples."),
    max_length: int = typer.Option(None, "--max-length", min=2, help="Window length (default: the model's)."),
    stride: int = typer.Option(None, "--stride", min=1, help="New tokens per window after the first."),
    batch_size: int = typer.Option(16, "--batch-size", "-b", min=1, help="Windows per forward pass at most."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    table: Path = typer.Option(None, "--table", "-t", help="Add the result to this table (parquet or CSV; one row "
                               "per model, dataset and mode), which `hubkit analyze --perplexity` reads."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Score again even when a cached result exists."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Token-weighted perplexity and bits-per-byte of a dataset under a model (cached by model weights, the
    scored texts' content, mode and settings).

    Examples:

        hubkit perplexity -m my-org/base --data lima --size 1000 -t ppl.parquet

        hubkit perplexity -m ./my-run --data notes.jsonl --mode full --no-cache
    """
    import json

    from ..analysis.perplexity import add_to_table
    from ..analysis.perplexity import perplexity as measure

    result = measure(model, data, mode=cast(Literal["response", "full"], mode), size=size,  # checked by measure max_length=max_length, stride=stride,
                     batch_size=batch_size, progress=progress, use_cache=not no_cache)
    if table is not None:
        rows = add_to_table(result, table)
        if not as_json:
            typer.echo(f"{table}: {rows} row(s) (use it with `hubkit analyze --perplexity {table}`)")
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
        return
    typer.echo(f"{result.model} on {result.data} ({result.mode}, {result.documents:,} examples, "
               f"{result.tokens:,} tokens): perplexity {result.perplexity:.4f}, {result.bits_per_byte:.4f} bits/byte"
               + (" (cached)" if result.cached else f" in {result.seconds:.1f} s"))


def pull(
    repo_ids: list[str] = typer.Argument(None, help="Repo ids to pull (or select with --author and filters)."),
    author: str = typer.Option(None, "--author", help="Select this user's or org's hubkit models."),
    base_model: str = typer.Option(None, "--base-model", help="Filter: the base model's Hub id."),
    dataset: str = typer.Option(None, "--dataset", help="Filter: the training set."),
    tuning: str = typer.Option(None, "--tuning", help="Filter: full or lora."),
    epochs: int = typer.Option(None, "--epochs", help="Filter: epochs."),
    data_size: int = typer.Option(None, "--data-size", help="Filter: training examples."),
    sweep: str = typer.Option(None, "--sweep", help="Filter: the sweep."),
    only: str = typer.Option("all", "--only", help="all, weights (safetensors + configs) or configs."),
    output: Path = typer.Option(Path("pulled"), "--output", "-o", help="Folder that receives one folder per model."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress."),
) -> None:
    """Download models by id or card metadata, resumably, verifying every file's checksum against the repo.

    Examples:

        hubkit pull my-org/run-a my-org/run-b -o pulled

        hubkit pull --author my-org --tuning lora --dataset lima --only weights
    """
    from ..pull import pull as run_pull

    pulled = run_pull(output, only=only, progress=progress, repo_ids=repo_ids or None, author=author,
                      base_model=base_model, dataset=dataset, tuning=tuning, epochs=epochs, data_size=data_size,
                      sweep=sweep)
    for p in pulled:
        again = f", {len(p.refetched)} re-fetched" if p.refetched else ""
        typer.echo(f"{p.repo_id} @ {p.revision[:10]}: {p.files} files, {p.bytes:,} bytes, checksums verified{again} "
                   f"→ {output / p.folder}")


def analyze(
    results: str = typer.Option(None, "--results", help="The study's CSV, a results parquet, or a results dataset."),
    perplexity_table: Path = typer.Option(None, "--perplexity", "--properties",
                                          help="Data properties: base_model, dataset, perplexity (`hubkit perplexity`), "
                                          "or dataset, benchmark, … (`hubkit data properties`)."),
    layers: Path = typer.Option(None, "--layers", help="`hubkit layerdiff`'s layerdiff_layers.parquet."),
    where: list[str] = typer.Option(None, "--where", "-w", metavar="KEY=VALUE",
                                    help="Change every analysis's condition (default: the study's main grid, data_size=1000 "
                                    "lr_schedule=cosine epochs=10 tuning=full datasets=single samples=full); `any` "
                                    "opens an axis. Repeat for several keys."),
    include_format_failures: bool = typer.Option(False, "--include-format-failures",
                                                 help="Keep base-model format failures (a base near 0 on a few-shot "
                                                 "benchmark) in rankings and means."),
    loglik: bool = typer.Option(False, "--loglik", help="Log-likelihood vectors of --model on the probe set, and "
                                "their 2-D map."),
    intrinsic_dim: bool = typer.Option(False, "--intrinsic-dim", help="Per-layer intrinsic dimension (Gride) of "
                                       "--model and their bases; with --layers, weight-change similarity."),
    models: list[str] = typer.Option(None, "--model", "-m", help="A model for --loglik / --intrinsic-dim (Hub id, "
                                     "folder, run directory or adapter). Repeat for several."),
    base: str = typer.Option(None, "--base", help="--intrinsic-dim: the base to compare with (default: each "
                             "model's recorded base)."),
    per_task: int = typer.Option(None, "--per-task", min=1, help="Probes per benchmark (default 150 for --loglik; "
                                 "--intrinsic-dim uses --texts)."),
    texts: int = typer.Option(450, "--texts", min=10, help="--intrinsic-dim: probe questions embedded per model."),
    map_method: str = typer.Option("auto", "--map", help="--loglik map: auto, tsne, umap or pca."),
    gride_scale: int = typer.Option(4, "--gride-scale", min=1, help="--intrinsic-dim: the headline Gride n1 (n2 = 2·n1)."),
    batch_size: int = typer.Option(8, "--batch-size", "-b", min=1, help="Texts per forward pass."),
    output: Path = typer.Option(Path("analysis"), "--output", "-o", help="Folder for tables, plots and report.md."),
    push: str = typer.Option(None, "--push", help="Also upload the tables to this results dataset (analysis/…, "
                             "modelspace/…)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """The study's analyses, each on a stated condition: synergy, rankings, gain correlations and PCA (RQ1), data
    properties (RQ2), weight change by depth (RQ3), LoRA vs full, data size, epochs, leave-one-out, cross-lingual.
    With --loglik / --intrinsic-dim, the models themselves: log-likelihood map, intrinsic dimension by depth.

    Examples:

        hubkit analyze --results evaluation_result.csv

        hubkit analyze --results study.csv -w tuning=lora -w samples=any

        hubkit analyze --results ns/res --perplexity ppl.parquet --push ns/res

        hubkit analyze --loglik -m org/base -m org/run-a -m org/run-b

        hubkit analyze --intrinsic-dim -m org/run-a --layers diff/layers.parquet
    """
    from ..errors import HubkitError

    if not results and not (loglik or intrinsic_dim):
        raise HubkitError("analyze needs --results (the study's analyses), --loglik or --intrinsic-dim")
    _analyze(results, perplexity_table, layers, where, include_format_failures, loglik, intrinsic_dim, models or [],
             base, per_task, texts, map_method, gride_scale, batch_size, output, push, progress)


def _analyze(results: str | None, perplexity_table: Path | None, layers: Path | None, where: list[str] | None,
             include_format_failures: bool, loglik: bool, intrinsic_dim: bool, models: list[str], base: str | None,
             per_task: int | None, texts: int, map_method: str, gride_scale: int, batch_size: int, output: Path,
             push: str | None, progress: bool) -> None:
    output.mkdir(parents=True, exist_ok=True)
    if loglik or intrinsic_dim:
        _model_space(models or [], loglik, intrinsic_dim, base, per_task, texts, map_method, gride_scale, batch_size,
                     layers, output, progress)
        if push:
            from ..analysis.modelspace import push_modelspace

            commit = push_modelspace(output, push)
            typer.echo(f"Pushed the model-space analysis to {push} @ {commit[:10]} (modelspace/)")
        if not results:
            return
    assert results, "analyze() asks for --results when there is no model-space analysis"
    from ..analysis.conditions import parse_where
    from ..analysis.study import analyze as run
    from ..analysis.tables import load_results_table, push_analysis, read_table
    from .output import live

    overrides = parse_where(where)
    with live(progress) as say:
        analysis = run(load_results_table(results), output,
                       properties=read_table(perplexity_table) if perplexity_table else None,
                       layers=read_table(layers) if layers else None, where=overrides,
                       include_format_failures=include_format_failures, progress=say)
    for issue in analysis.checks:
        typer.echo(f"Data check: {issue.text()}", err=True)
    for s in analysis.sections:
        typer.echo(f"{s.title}: n = {s.n:,} {s.unit} [{s.condition.text()}]")
    for entry in analysis.not_run:
        typer.echo(f"Not run: {entry['title']} (needs {entry['needs']}): {entry['command']}")
    typer.echo(f"{len(analysis.tables)} tables and {len(analysis.plots)} plots in {output}; report: {analysis.report}")
    if push:
        commit = push_analysis(analysis, push, output)
        typer.echo(f"Pushed the analysis to {push} @ {commit[:10]}")


def _model_space(models: list[str], loglik: bool, intrinsic_dim: bool, base: str | None, per_task: int | None,
                 texts: int, map_method: str, gride_scale: int, batch_size: int, layers: Path | None, output: Path,
                 progress: bool) -> None:
    """`analyze --loglik` / `--intrinsic-dim`: tables and figures into `output`, a summary on the terminal."""
    import json
    import math

    from rich.console import Console
    from rich.table import Table

    from ..analysis import modelspace as ms
    from ..errors import HubkitError

    console = Console()
    if map_method not in ("auto", "tsne", "umap", "pca"):
        raise HubkitError(f"--map {map_method!r}: expected auto, tsne, umap or pca")
    if loglik:
        from ..eval.lm import resolve_model

        if len(set(models)) < 2:
            raise HubkitError("--loglik compares models: give at least 2 (--model A --model B …)")
        sources = [resolve_model(m) for m in dict.fromkeys(models)]  # every name checked before any work
        probe = ms.build_probe_set(per_task or ms.DEFAULT_PER_TASK)
        table = ms.loglik_vectors(sources, probe, batch_size=batch_size, progress=progress)
        coords = ms.loglik_map(table, method=map_method)
        table.frame().to_parquet(output / "loglik_vectors.parquet", index=False)
        coords.to_parquet(output / "loglik_map.parquet", index=False)
        (output / "probe.json").write_text(json.dumps(probe.describe(), indent=1) + "\n", encoding="utf-8")
        ms.plot_map(coords, output / "loglik_map.png", probe)
        summary = Table(title=f"log-likelihood vectors: {len(probe.probes):,} probes (v{probe.version}, "
                              f"digest {probe.digest[:12]}), map: {coords['method'].iloc[0]}")
        for col in ("model", "family", "dataset", "epochs", "mean log-lik", "x", "y"):
            summary.add_column(col, justify="left" if col in ("model", "family", "dataset") else "right")
        for (_, c), row in zip(coords.iterrows(), table.matrix):
            summary.add_row(str(c["model"]), str(c["family"]), str(c["dataset"]), str(c["epochs"]),
                            f"{row.mean():.3f}", f"{c['x']:.2f}", f"{c['y']:.2f}")
        console.print(summary)
    if intrinsic_dim:
        if models:
            n_tasks = len(ms.PROBE_TASKS)
            probe = ms.build_probe_set(per_task or math.ceil(texts / n_tasks))
            questions = [p.context for p in probe.probes][:texts]
            ids = ms.intrinsic_dimension(models, questions, base=base, scale=gride_scale, batch_size=batch_size,
                                         progress=progress)
            ids.to_parquet(output / "intrinsic_dim.parquet", index=False)
            ms.plot_intrinsic_dimension(ids, output / "intrinsic_dim.png", gride_scale)
            head = ids[ids["headline"]]
            summary = Table(title=f"intrinsic dimension (Gride n1={gride_scale}) of {len(questions)} probe questions' "
                                  "mean-pooled embeddings, by depth")
            for col in ("model", "role", "first third", "middle third", "last third", "max at depth"):
                summary.add_column(col, justify="left" if col in ("model", "role") else "right")
            for (model, role), part in head.groupby(["model", "role"], sort=False):
                thirds = [part[(part["depth"] > lo) & (part["depth"] <= hi)]["id"].mean()
                          for lo, hi in ((0, 1 / 3), (1 / 3, 2 / 3), (2 / 3, 1))]
                summary.add_row(str(model), role, *(f"{v:.2f}" for v in thirds),
                                f"{part.loc[part['id'].idxmax(), 'depth']:.2f}")
            console.print(summary)
        elif layers is None:
            raise HubkitError("--intrinsic-dim needs --model (embeddings) or --layers (weight-change similarity)")
        if layers is not None:
            from ..analysis.tables import read_table

            sim = ms.weight_change_similarity(read_table(layers))
            sim.to_parquet(output / "weight_change_similarity.parquet", index=False)
            ms.plot_similarity(sim, output / "weight_change_similarity.png")
            pairs = sim[sim["model_a"] < sim["model_b"]]
            console.print(f"Weight-change similarity of {sim['model_a'].nunique()} models ({len(pairs)} pairs): "
                          f"median Pearson r = {pairs['pearson'].median():.3f}")
    console.print(f"Model-space tables and figures in {output}")
