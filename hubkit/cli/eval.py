"""`hubkit eval MODEL --suite NAME`: the study's benchmarks on one model, with gains over its base."""

from __future__ import annotations

from pathlib import Path

import typer

from ..eval.tasks import suites
from ..utils import DATA_NAMESPACE

#: The suites and benchmarks `--suite` takes, from the benchmark registry (a record with a task adds its id).
SUITE_HELP = ("A suite (`study`, `quick`, `tiny`, `judge`), a benchmark of the registry ("
              + ", ".join(s for s in suites() if s not in ("study", "quick", "tiny", "judge")) + "), or a comma list.")


def evaluate(
    models: list[str] = typer.Argument(..., help="Hub ids, local model or adapter directories, or hubkit run "
                                       "directories; several are evaluated in one process, sharing what they can."),
    suite: str = typer.Option("quick", "--suite", "-s", help=SUITE_HELP),
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
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", min=1, help="Override every benchmark's answer budget."),
    judge_model: str = typer.Option(None, "--judge-model", help="Local judge when $HUBKIT_JUDGE_URL is unset: a bundled "
                                    "model (smollm2, the default), a folder or a Hub id."),
    judge_max_tokens: int = typer.Option(None, "--judge-max-tokens", min=1, help="The judge's budget per MT-Bench grade "
                                         "(default 2048, FastChat's)."),
    judge_workers: int = typer.Option(None, "--judge-workers", min=1, help="Grades requested at once (default: 8 for "
                                      "an endpoint, 1 for the local judge)."),
    judge_timeout: float = typer.Option(None, "--judge-timeout", min=0.001, help="Seconds to wait for one judge "
                                        "answer (default $HUBKIT_JUDGE_TIMEOUT, else 120)."),
    judge_retries: int = typer.Option(None, "--judge-retries", min=0, help="Retries of a judge request that timed out "
                                      "or failed with 408/409/429/5xx (default $HUBKIT_JUDGE_RETRIES, else 2)."),
    mt_bench_follow_up: bool = typer.Option(False, "--mt-bench-follow-up", help="MT-Bench: when a judgment has no "
                                            "[[rating]], ask for the number alone and read it from log-probabilities "
                                            "(not FastChat's: it records no rating)."),
    regrade_if_changed: bool = typer.Option(False, "--regrade-if-changed", help="Regrade cached grades made by another "
                                            "version (fingerprint) of the judge than the one answering now."),
    lc_folds: int = typer.Option(None, "--lc-folds", min=0, help="AlpacaEval LC: cross-validation folds choosing C "
                                 "(default 5, as AlpacaEval's length_controlled_v1; 0: a fixed C = 100)."),
    lc_tables: Path = typer.Option(None, "--lc-tables", help="Folder with AlpacaEval's instruction_difficulty.csv and "
                                   "df_gamed.csv: adds the length-controlled win rate (alpaca_eval_v2_lc)."),
    backend: str = typer.Option("hf", "--backend", help="Who computes the scores: `hf` (transformers, here), `vllm` "
                                "(here, on a GPU: pip install 'hubkit[vllm]'), `openai` (an OpenAI-compatible server "
                                "serving MODEL: --endpoint, or $HUBKIT_EVAL_URL; key in $HUBKIT_EVAL_API_KEY)."),
    endpoint: str = typer.Option(None, "--endpoint", help="--backend openai: the server's URL."),
    served_model: str = typer.Option(None, "--served-model", help="--backend openai: the model's name on the server "
                                     "(default: the only model it lists)."),
) -> None:
    """Evaluate models; write lm-eval-style results JSON and per-sample details for each.

    Several models are evaluated in one process: the benchmark data, the prompts and each base are loaded once.
    `--backend openai` scores with any OpenAI-compatible server serving MODEL (`vllm serve`, SGLang, TGI).

    Suites: `study` (every benchmark, study shot counts), `quick` (small subsets for CPUs), `tiny` (four
    multiple-choice benchmarks, 0-shot, 8 records: the quickstart's), `judge` (MT-Bench and AlpacaEval 2, graded
    by an LLM judge), or benchmark names: gsm8k, math, math500, humaneval, mbpp, mmlu, hellaswag, boolq,
    truthfulqa, nq_open, mt_bench, alpaca_eval_v2.

    The judge is the OpenAI-compatible endpoint in $HUBKIT_JUDGE_URL (model $HUBKIT_JUDGE_MODEL, key
    $HUBKIT_JUDGE_API_KEY), or else a local model served in-process; neither address nor key is ever written.

    Examples:

        hubkit eval my-org/run-a --suite quick

        hubkit eval sweeps/demo/runs/RUN_ID --suite gsm8k,mmlu --limit 50

        hubkit eval my-org/run-a --suite judge --limit 10 --judge-workers 16

        hubkit eval sweeps/grid/runs/* --suite tiny

        hubkit eval my-org/run-a --backend openai --endpoint URL
    """

    from ..errors import HubkitError
    from ..eval.backends import BACKENDS
    from ..eval.harness import evaluate_models
    from ..eval.tasks import get_suite

    get_suite(suite)  # an unknown suite fails before any model is loaded
    if backend not in BACKENDS:  # said as the option's name, before the backend is contacted
        raise HubkitError(f"unknown --backend `{backend}` (known: {', '.join(BACKENDS)})")
    if backend != "openai" and (endpoint or served_model):
        raise HubkitError("--endpoint and --served-model go with --backend openai")
    reports = evaluate_models(models, backend=backend, endpoint=endpoint, served_model=served_model, suite=suite,
                              limit=limit, n_shot=n_shot, output_dir=output, base=base, compare_base=compare_base,
                              batch_size=batch_size, revision=revision, data_namespace=data_namespace,
                              progress=progress, allow_unisolated_code=allow_unisolated_code, judge_model=judge_model,
                              judge_max_tokens=judge_max_tokens, judge_workers=judge_workers, lc_tables=lc_tables,
                              max_new_tokens=max_new_tokens, judge_timeout=judge_timeout, judge_retries=judge_retries,
                              mt_bench_follow_up=mt_bench_follow_up, regrade_if_changed=regrade_if_changed,
                              lc_folds=lc_folds)
    for report in reports:
        assert report is not None  # without `errors`, a failure raises
        _print_report(report, suite)


def _print_report(report, suite: str) -> None:
    """The table of one evaluated model, then what a reader must know about its scores."""
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"{report.model.name} · suite {suite} · {report.backend} ({report.backend_version})")
    for col in ("benchmark", "shots", "samples", "metric", "scale", "score"):
        table.add_column(col, justify="right" if col in ("shots", "samples", "score") else "left")
    if report.gains:
        table.add_column("base", justify="right")
        table.add_column("gain", justify="right")
    from ..benchmarks import BENCHMARKS
    from ..results import samples_text

    for name, score in report.scores.items():
        metric = BENCHMARKS[name].headline if name in BENCHMARKS else next(iter(report.metrics[name]))
        scored, total = report.sizes.get(name, (None, None))
        scale = BENCHMARKS[name].scale if name in BENCHMARKS else "percent"
        row = [name, str(report.n_shot[name]), samples_text(scored, total, report.subset(name)), metric, scale,
               f"{score:.2f}" if scale == "1-10" else f"{score:.1f}"]
        if report.gains:
            row += [f"{report.base_scores[name]:.1f}", f"{report.gains[name]:+.1f}"]
        table.add_row(*row)
    console = Console()
    console.print(table)
    if any(report.subset(name) for name in report.scores):
        console.print("Scores marked subset come from part of their benchmark: compare them only with scores on the "
                      "same samples (the base's, here), never with full-benchmark results.")
    for name, why in report.dropped.items():
        console.print(f"{name}: no score: {why}.", markup=False)
    if report.judge:
        console.print(f"Judged by {report.judge.text()}")
        mt = report.metrics.get("mt_bench")
        if mt:
            console.print(f"MT-Bench grades: {mt['parsed']} read from [[rating]], {mt['follow_up']} from a follow-up "
                          f"by log-probabilities, {mt['failed']} without a rating (left out, as FastChat)"
                          + (f", {mt['out_of_range']} outside 1–10 (kept, as FastChat)" if mt.get("out_of_range") else "")
                          + ".", markup=False)
        alpaca = report.metrics.get("alpaca_eval_v2")
        if alpaca and alpaca["failed"]:
            console.print(f"AlpacaEval: the judge named neither output for {alpaca['failed']} instructions (left out).")
        for name in ("mt_bench", "alpaca_eval_v2"):
            counts = report.metrics.get(name) or {}
            if counts.get("errors"):
                console.print(f"{name}: {counts['errors']} grade(s) failed (their reasons are in the samples file): "
                              f"the score rests on {counts['questions'] - counts['errors']} of {counts['questions']} "
                              "answers and is published as a subset; rerun to retry them.", markup=False)
            versions = counts.get("judge_versions") or {}
            if len(versions) > 1 or counts.get("judge_changed"):
                listed = ", ".join(f"{fp} ×{n}" for fp, n in versions.items())
                console.print(f"{name}: grades by more than one version of the judge ({listed}); "
                              f"{counts.get('judge_changed', 0)} cached grade(s) predate the judge answering now: "
                              "--regrade-if-changed regrades them.", markup=False)
        if "alpaca_eval_v2" in report.scores and "alpaca_eval_v2_lc" not in report.scores:
            console.print("AlpacaEval's length-controlled win rate needs its published tables: pass --lc-tables DIR.")
    console.print(f"Results: {report.results_file}  ({report.seconds:.0f} s)")


judge_app = typer.Typer(help="The LLM judge of the judged benchmarks (MT-Bench, AlpacaEval 2).", no_args_is_help=True)


@judge_app.command("serve")
def judge_serve(
    model: str = typer.Option("smollm2", "--model", "-m", help="A bundled model (smollm2), a folder or a Hub id."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (keep loopback unless you mean to share it)."),
    port: int = typer.Option(8000, "--port", "-p", min=0, max=65535, help="TCP port; 0 picks a free one."),
    ready_file: Path = typer.Option(None, "--ready-file", help="Write {\"url\": ...} here once listening."),
) -> None:
    """Serve a local model as an OpenAI-compatible judge (`/v1/chat/completions`, `/v1/models`), greedy.

    With $HUBKIT_JUDGE_API_KEY set, every request must send it as a bearer token. Point `hubkit eval` at it with
    HUBKIT_JUDGE_URL=http://127.0.0.1:8000/v1 and HUBKIT_JUDGE_MODEL set to the model id it prints.

    Examples:

        hubkit judge serve --port 8000

        hubkit judge serve -m ./my-judge --port 0 --ready-file judge.json
    """
    import os

    from ..eval.judge import KEY_ENV
    from ..eval.judge_server import JudgeServer, LocalChatModel, write_ready_file
    from ..models import BUNDLED

    if model not in BUNDLED and not Path(model).is_dir():
        from ..hub.client import ensure_endpoint

        ensure_endpoint()  # a judge named by its Hub id comes from the current Hub

    if host not in ("127.0.0.1", "localhost", "::1") and not os.environ.get(KEY_ENV):
        typer.echo(f"Warning: serving on {host} with no $HUBKIT_JUDGE_API_KEY: anyone who can reach it can use it.",
                   err=True)
    server = JudgeServer(LocalChatModel.load(model), api_key=os.environ.get(KEY_ENV) or None, host=host, port=port)
    typer.echo(f"Serving {server.model.name} ({server.model.fingerprint}) at {server.url}/v1"
               + ("; requests need $HUBKIT_JUDGE_API_KEY" if os.environ.get(KEY_ENV) else ""))
    if ready_file:
        write_ready_file(ready_file, server.url)
    server.serve_forever()
