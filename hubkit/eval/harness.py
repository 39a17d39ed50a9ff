"""`hubkit eval`: run a suite of benchmarks on a model, with resumable per-sample caches and gains over the base.

Every answer is appended to a per-sample cache as soon as it is scored, keyed by the model's exact weights
(Hub commit, or a content hash of a local folder) and the benchmark's settings. An interrupted evaluation
therefore resumes where it stopped, and a base model is evaluated once for all its fine-tunes: when the
evaluated model has a known base (a run's record, an adapter's config, a card's `base_model`), the base
goes through the same suite first — from its cache after the first time — and each result stores its gain.

Outputs, in the lm-evaluation-harness 0.4 layout (`hubkit import-results --format lm-eval` reads them):
`results_<time>.json` (`results`, `versions`, `n-shot`, `configs`, `config`, … plus a `hubkit` section
with the base model, gains and results-schema rows) and `samples_<benchmark>_<time>.jsonl` (one line per
record: prompt, output, target, score).

Example:
    >>> report = evaluate_model("runs/tiny-lima-1k-full-e1-cosine-1a2b3c4d", suite="quick")
    >>> report.scores["gsm8k"], report.gains["gsm8k"]
    (12.5, 2.5)
"""

# size: the evaluation loop end to end (instances, batching, resume, scoring, the results file) reads top to bottom
# as one procedure; its parts with a job of their own already live apart (tasks, lm, judged, sandbox, metrics).

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..benchmarks import BENCHMARKS, metric_spec
from ..errors import HubkitError
from ..runs import RESULTS_PREFIX
from ..utils import DATA_NAMESPACE
from .lm import ModelSource, Tokenized, resolve_model
from .tasks import BenchmarkRun, Instance, build_instances, evaluable, get_suite

DEFAULT_DATA_NAMESPACE = DATA_NAMESPACE


@dataclass
class EvalReport:
    """The outcome of `evaluate_model`.

    Attributes:
        model: what was evaluated.
        metrics: benchmark → metric → value in [0, 1], or on the benchmark's scale for judged ones
            (`<metric>_stderr` alongside).
        scores: benchmark → main metric on the benchmark's scale: percent, or 1–10 (the results schema's `score`).
        judge: who graded the judged benchmarks (`hubkit.eval.judge.JudgeIdentity`).
        base_scores, gains: the base model's score and the difference, in points, where a base is known.
        results_file: the results JSON; `samples_files` the per-sample details per benchmark.
        sizes: benchmark → (samples scored, samples in the whole benchmark); fewer scored: a subset score.
    """

    model: ModelSource
    suite: str
    metrics: dict[str, dict[str, Any]]  # numbers; a judged benchmark's counts also hold `judge_versions`
    scores: dict[str, float]
    n_shot: dict[str, int]
    base: ModelSource | None = None
    base_scores: dict[str, float] = field(default_factory=dict)
    gains: dict[str, float] = field(default_factory=dict)
    results_file: Path | None = None
    samples_files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    judge: Any = None  # `judge.JudgeIdentity` of the judged benchmarks' grader
    base_metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # the base's `metrics`, same samples
    dropped: dict[str, str] = field(default_factory=dict)  # benchmark → why it has no score
    backend: str = "hf"  # who computed the scores (`hubkit.eval.backends`), and its version
    backend_version: str = ""

    def subset(self, benchmark: str) -> bool:
        """Whether `benchmark` was scored on part of its records only (`--limit`, the quick and tiny suites)."""
        scored, total = self.sizes.get(benchmark, (0, 0))
        return scored < total


def eval_cache_dir() -> Path:
    from ..utils import hubkit_home

    return Path(os.environ.get("HUBKIT_EVAL_CACHE") or hubkit_home() / "eval-cache")


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on `path` (one evaluator per model at a time; others wait, then read its cache)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _settings_key(run: BenchmarkRun, data_revision: str | None) -> str:
    text = json.dumps({**run.settings(), "data": data_revision}, sort_keys=True)
    return f"{run.name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


class BenchmarkData:
    """Benchmark records from the seeded dataset repos, loaded once per process."""

    _cache: dict[tuple[str, str, str | None], tuple[list[dict], str | None]] = {}

    def __init__(self, namespace: str):
        self.namespace = namespace

    def split(self, repo: str, split: str, benchmark: str, config: str | None = None) -> tuple[list[dict], str | None]:
        from ..data.loading import fetch_split
        from ..data.registry import Source

        key = (f"{self.namespace}/{repo}", split, config)
        if key not in self._cache:
            try:
                ds, revision = fetch_split(Source(key[0], None, split, config), benchmark)
            except HubkitError as e:
                raise HubkitError(f"benchmark {benchmark}: {str(e).split(': ', 1)[-1]}") from None
            self._cache[key] = (ds.to_list(), revision)
        return self._cache[key]


def _read_cache(path: Path) -> dict[int, dict]:
    """Cached samples by doc id; a torn last line (a kill mid-write) is ignored."""
    done: dict[int, dict] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                done[int(rec["doc_id"])] = rec
            except (ValueError, KeyError, TypeError):
                continue
    return done


def _append(path: Path, records: list[dict]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        if f.tell() and not path.read_bytes().endswith(b"\n"):
            f.write("\n")  # after a torn line
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


@dataclass
class Backend:
    """Which backend scores, and what it needs (see `hubkit.eval.backends`)."""

    name: str = "hf"
    endpoint: str | None = None
    served_model: str | None = None
    pool: Any = None  # a `backends.ModelPool` (`hf`): one base in memory for its adapters


@dataclass
class Shared:
    """What the models of one `evaluate_models` call share: the backend (with the `hf` base kept in memory), the
    benchmark data, and the instances built from it."""

    backend: Backend = field(default_factory=Backend)
    data: dict[str, BenchmarkData] = field(default_factory=dict)  # by namespace
    instances: dict[tuple[str, str], list[Instance]] = field(default_factory=dict)


def _slug(text: str) -> str:
    from ..utils import slug

    return slug(text.replace("/", "--"))[:40]


class _Scorer:
    """Scores instances of one benchmark with one model; loads the model on first use."""

    def __init__(self, source: ModelSource, batch_size: int, progress: bool, sandbox_timeout: float,
                 backend: Backend | None = None):
        self.source, self.batch_size, self.progress = source, batch_size, progress
        self.sandbox_timeout = sandbox_timeout
        self.backend = backend or Backend()
        self._lm: Tokenized | None = None

    @property
    def lm(self) -> Any:  # an `lm.LM` or a backend of `hubkit.eval.backends` (the same methods)
        if self._lm is None:
            from .backends import open_backend

            b = self.backend
            self._lm = open_backend(b.name, self.source, self.batch_size, b.endpoint, b.served_model, b.pool)
        return self._lm

    def score(self, run: BenchmarkRun, chunk: list[Instance]) -> list[dict]:
        task = run.task
        if task.kind == "loglik":
            from .metrics.multiple_choice import scores

            requests = [r for inst in chunk for r in inst.requests]
            results = iter(self.lm.loglikelihood(requests))
            out = []
            for inst in chunk:
                lls = [next(results) for _ in inst.requests]
                choices = [c for _, c in inst.requests]
                assert task.labels is not None, f"{task.name}: a loglik task has labels"
                labels = task.labels(inst.doc)
                values = [r.logprob for r in lls]
                per = scores(values, labels, [len(c.encode()) for c in choices])
                best = max(range(len(values)), key=lambda i: values[i])
                out.append({"doc_id": inst.doc_id, "prompt": inst.prompt, "output": choices[best].strip(),
                            "target": [c.strip() for c, y in zip(choices, labels) if y],
                            "score": per[task.metrics[0]], "metrics": per, "choices": choices,
                            "logliks": values, "labels": labels})
            return out
        budget = run.max_new_tokens or task.max_new_tokens
        outputs = self.lm.generate([inst.prompt for inst in chunk], max_new_tokens=budget, stop=task.stop)
        target, program = task.target, task.program
        if task.kind == "generate":
            assert target is not None, f"{task.name}: a generate task has a target"
            return [{"doc_id": inst.doc_id, "prompt": inst.prompt, "output": text, "target": target(inst.doc),
                     "score": task.match(text, inst.doc)} for inst, text in zip(chunk, outputs)]
        from .sandbox import run_untrusted

        assert program is not None, f"{task.name}: a code task builds a program"
        programs = [program(inst.doc, text) for inst, text in zip(chunk, outputs)]
        with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
            outcomes = list(pool.map(lambda p: run_untrusted(p, timeout=self.sandbox_timeout), programs))
        return [{"doc_id": inst.doc_id, "prompt": inst.prompt, "output": text,
                 "target": inst.doc.get("entry_point") or "\n".join(inst.doc.get("test_list", [])),
                 "score": float(o.passed), "status": o.status, "detail": o.detail}
                for inst, text, o in zip(chunk, outputs, outcomes)]


def _aggregate(run: BenchmarkRun, samples: list[dict]) -> dict[str, float]:
    """The benchmark's metrics through its local `evaluate` module, plus standard errors."""
    from .metrics import load_metric

    task = run.task
    metric = load_metric(task.metric)
    if not samples:
        values = dict.fromkeys(task.metrics, 0.0)
    elif task.kind == "loglik":
        values = metric.compute(predictions=[s["logliks"] for s in samples], references=[s["labels"] for s in samples],
                                choice_lengths=[[len(c.encode()) for c in s["choices"]] for s in samples])
    elif task.kind == "code":
        values = metric.compute(predictions=[[s["score"] > 0] for s in samples],
                                references=[s["doc_id"] for s in samples])
    else:
        values = metric.compute(predictions=[s["output"] for s in samples], references=[s["target"] for s in samples])
    out: dict[str, float] = {}
    n = len(samples)
    for name in task.metrics:
        value = float(values[name])
        per = [s["metrics"][name] if "metrics" in s else s["score"] for s in samples]
        var = sum((x - value) ** 2 for x in per) / (n - 1) if n > 1 else 0.0
        out[name] = value
        out[f"{name}_stderr"] = math.sqrt(var / n) if n else 0.0
    return out


def _evaluate_source(source: ModelSource, runs: list[BenchmarkRun], data: BenchmarkData, batch_size: int,
                     progress: bool, sandbox_timeout: float, judging: Any = None,
                     shared: Shared | None = None) -> tuple[dict[str, list[dict]], dict[str, Any]]:
    """Per-sample results of every benchmark (from the cache where present) and per-benchmark facts.

    `judging` (a `judged.JudgedContext`) grades the judged benchmarks; `shared` carries what several models of one
    evaluation reuse (the backend, a base model in memory, built instances).
    """
    from tqdm.auto import tqdm

    shared = shared or Shared()
    scorer = _Scorer(source, batch_size, progress, sandbox_timeout, shared.backend)
    # samples are cached per model and per backend: a score is never another backend's under its name
    cache_root = eval_cache_dir() / (source.key if shared.backend.name == "hf" else
                                     f"{source.key}--{shared.backend.name}-{_slug(shared.backend.served_model or '')}")
    samples: dict[str, list[dict]] = {}
    facts: dict[str, Any] = {}
    with _locked(cache_root / ".lock"):
        for run in runs:
            task = run.task
            docs, revision = data.split(task.repo, task.split, task.name)
            shot_docs = data.split(task.repo, task.shots_split, task.name)[0] \
                if task.shots_split and run.n_shot else None
            settings = _settings_key(run, revision)
            if (task.name, settings) not in shared.instances:  # prompts built once for every model evaluated
                shared.instances[(task.name, settings)] = build_instances(run, docs, shot_docs)
            instances = shared.instances[(task.name, settings)]
            path = cache_root / f"{settings}.jsonl"
            facts[task.name] = {"original": len(evaluable(run, docs, shot_docs)[0]), "effective": len(instances),
                                "data_revision": revision, "dataset": f"{data.namespace}/{task.repo}"}
            if task.kind == "judge":
                from .judged import category_totals, run_judged

                samples[task.name] = run_judged(run, instances, lambda: scorer.lm, path, judging, batch_size,
                                                progress, _read_cache, _append)
                if task.name == "mt_bench":
                    facts[task.name]["totals"] = category_totals(docs)
                continue
            done = _read_cache(path)
            todo = [inst for inst in instances if inst.doc_id not in done]
            if todo:
                _ = scorer.lm  # load the model before the progress bar: a load error is then one clean line
                with tqdm(total=len(instances), initial=len(instances) - len(todo), unit="sample",
                          desc=f"{source.name[:40]} · {task.name}", disable=not progress) as bar:
                    for start in range(0, len(todo), batch_size):  # each batch is cached once scored
                        chunk = todo[start:start + batch_size]
                        records = scorer.score(run, chunk)
                        _append(path, records)
                        done.update({r["doc_id"]: r for r in records})
                        bar.update(len(chunk))
            samples[task.name] = [done[inst.doc_id] for inst in instances]
    return samples, facts


def _output_dir(source: ModelSource, output_dir: str | Path | None) -> Path:
    if output_dir is not None:
        return Path(output_dir)
    if source.run_dir is not None:
        from ..runs import RunDir

        return RunDir(source.run_dir).eval
    from ..utils import slug

    return Path("eval-results") / slug(source.name.replace("/", "--"))


@dataclass
class Entry:
    """One benchmark row of a results file: a task's score, or one of a judged task's (MT-Bench's categories).

    Attributes:
        benchmark: the results schema's benchmark name; `run` the task as the suite ran it.
        metrics: metric → value as the task reports it (fractions for ordinary tasks, the benchmark's scale
            for judged ones), with `<metric>_stderr` and, for judged rows, the grade counts.
        main: the main metric; `score` its value on the benchmark's scale (percent, or 1–10).
        scored, total: samples scored, and in the whole benchmark.
    """

    benchmark: str
    run: BenchmarkRun
    metrics: dict[str, Any]
    main: str
    score: float
    scored: int
    total: int


def _entries(run: BenchmarkRun, samples: list[dict], facts: dict[str, Any], judging: Any,
             dropped: dict[str, str] | None = None) -> list[Entry]:
    """The rows a benchmark's samples give; a judged row with no grade at all gives none (said in `dropped`)."""
    fact = facts[run.name]
    if run.task.kind != "judge":
        metrics = _aggregate(run, samples)
        main = BENCHMARKS[run.name].headline
        return [Entry(run.name, run, metrics, main, 100.0 * metrics[main], fact["effective"], fact["original"])]
    from .judged import LC_SPLITS, judged_metrics

    out = []
    for bench, metrics in judged_metrics(run, samples, judging.lc_tables if judging else None,
                                         judging.lc_folds if judging else LC_SPLITS).items():
        record = BENCHMARKS[bench]
        main = record.headline
        if metrics.get(main) is None:
            if dropped is not None:
                why = (f"; {metrics['errors']} judge request(s) failed" if metrics.get("errors") else "")
                dropped[bench] = f"the judge gave no usable grade for any of {metrics['questions']} answers{why}"
            continue
        low, high = record.metric(main).range
        if (low is not None and metrics[main] < low) or (high is not None and metrics[main] > high):
            if dropped is not None:  # FastChat keeps any [[n]]: a mean off the scale is not published as a score
                dropped[bench] = (f"the mean rating {metrics[main]:g} is outside the {record.scale} scale "
                                  f"({metrics.get('out_of_range', 0)} rating(s) off the scale)")
            continue
        total = fact.get("totals", {}).get(bench, fact["original"])
        # a grade whose request failed is a sample not scored: the row is a subset, never the full benchmark
        scored = int(metrics["questions"]) - int(metrics.get("errors", 0))
        out.append(Entry(bench, run, metrics, main, float(metrics[main]), scored, total))
    return out


def evaluate_model(
    model: str,
    suite: str = "quick",
    limit: int | None = None,
    n_shot: int | None = None,
    output_dir: str | Path | None = None,
    base: str | None = None,
    compare_base: bool = True,
    batch_size: int = 8,
    revision: str | None = None,
    data_namespace: str = DEFAULT_DATA_NAMESPACE,
    sandbox_timeout: float = 10.0,
    progress: bool = True,
    allow_unisolated_code: bool = False,
    judge_model: str | None = None,
    judge_max_tokens: int | None = None,
    judge_workers: int | None = None,
    judge_timeout: float | None = None,
    judge_retries: int | None = None,
    mt_bench_follow_up: bool = False,
    regrade_if_changed: bool = False,
    lc_folds: int | None = None,
    lc_tables: str | Path | None = None,
    max_new_tokens: int | None = None,
    backend: str = "hf",
    endpoint: str | None = None,
    served_model: str | None = None,
    shared: Shared | None = None,
    source: ModelSource | None = None,
) -> EvalReport:
    """Evaluate a model on a suite; write the results JSON and per-sample details; return the scores.

    Args:
        model: a Hub id, a local model or adapter directory, or a hubkit run directory.
        suite: `study`, `quick`, `tiny`, `judge`, a benchmark name, or a comma-separated list of them.
        limit: evaluate at most this many records per benchmark (a fixed, seeded choice).
        n_shot: override every benchmark's shot count.
        output_dir: where the results go; default `<run>/eval` for a run, else `eval-results/<model>`.
        base: the base model to compute gains against (default: the one the model records, if any).
        compare_base: evaluate the base model (cached once per base) and store gains.
        batch_size: prompts per generation batch, questions per scoring batch.
        revision: the Hub revision of `model`.
        data_namespace: where the seeded benchmark repos live.
        sandbox_timeout: seconds each generated program may run.
        progress: show progress bars.
        allow_unisolated_code: run code benchmarks even where generated programs cannot be isolated (not
            root): they can then read the user's files and reach the network (see `hubkit.eval.sandbox`).
        judge_model: the local judge when no `HUBKIT_JUDGE_URL` is set (default: the bundled SmolLM2).
        judge_max_tokens: the judge's budget per MT-Bench grade (default FastChat's 2,048).
        judge_workers: grades requested at once (default 8 for an endpoint, 1 for the local judge).
        judge_timeout, judge_retries: per judge request (default `$HUBKIT_JUDGE_TIMEOUT`, `$HUBKIT_JUDGE_RETRIES`,
            else 120 s and 2).
        mt_bench_follow_up: MT-Bench: ask for the number alone when a judgment has no rating (not FastChat's).
        regrade_if_changed: regrade cached grades made by another version (fingerprint) of the judge.
        lc_folds: AlpacaEval LC: cross-validation folds for C (default 5, AlpacaEval's; 0: a fixed C = 100).
        lc_tables: a folder with AlpacaEval's `instruction_difficulty.csv` and `df_gamed.csv`, for the
            length-controlled win rate.
        max_new_tokens: override every benchmark's answer budget.
        backend: `hf` (transformers, here), `vllm` (here, on a GPU) or `openai` (a server at `endpoint`, default
            `$HUBKIT_EVAL_URL`, serving the model as `served_model`); see `hubkit.eval.backends`.
        shared: what `evaluate_models` shares between the models it evaluates.
        source: `model` already resolved (`resolve_model`), so that a local model's files are not hashed twice.

    Raises:
        HubkitError: an unknown suite or backend, missing benchmark data, or a model that cannot be loaded.
    """
    from .backends import backend_version, check_backend

    started = time.time()
    if shared is None:
        check_backend(backend, endpoint, served_model)  # evaluate_models checked it once for all its models
        shared = Shared(Backend(backend, endpoint, served_model))
    elif shared.backend.name != backend:
        raise HubkitError("evaluate_model: `shared` was made for another backend")
    runs = get_suite(suite, limit=limit, n_shot=n_shot)
    if max_new_tokens is not None:
        from dataclasses import replace

        runs = [replace(r, max_new_tokens=max_new_tokens) for r in runs]
    if any(r.task.kind == "code" for r in runs):
        from .sandbox import require_isolation

        require_isolation(allow_unisolated_code)  # before any model is loaded
    tables = None
    if lc_tables is not None:
        from .judged import LcTables

        tables = LcTables.read(lc_tables)
    source = source or resolve_model(model, revision)
    data = shared.data.setdefault(data_namespace, BenchmarkData(data_namespace))
    with contextlib.ExitStack() as stack:
        judging = None
        if any(r.task.kind == "judge" for r in runs):
            from .judge import LOCAL, open_judge
            from .judged import LC_SPLITS, MT_JUDGE_MAX_TOKENS, JudgedContext

            judge = stack.enter_context(open_judge(judge_model, judge_timeout, judge_retries))
            judge.check()
            workers = judge_workers or (1 if judge.served_by == LOCAL else 8)
            judging = JudgedContext(judge, data, judge_max_tokens or MT_JUDGE_MAX_TOKENS, workers, tables,
                                    mt_bench_follow_up, regrade_if_changed, LC_SPLITS if lc_folds is None else lc_folds)
        samples, facts = _evaluate_source(source, runs, data, batch_size, progress, sandbox_timeout, judging, shared)
        dropped: dict[str, str] = {}
        entries = [e for run in runs for e in _entries(run, samples[run.name], facts, judging, dropped)]
        report = EvalReport(source, suite, {e.benchmark: e.metrics for e in entries},
                            {e.benchmark: e.score for e in entries}, {e.benchmark: e.run.n_shot for e in entries},
                            sizes={e.benchmark: (e.scored, e.total) for e in entries})
        base_id = base or source.base_model
        if compare_base and base_id and base_id != model:
            base_source = resolve_model(base_id, None if base else source.base_revision)
            base_samples, _ = _evaluate_source(base_source, runs, data, batch_size, progress, sandbox_timeout, judging,
                                               shared)
            report.base = base_source
            base_entries = {e.benchmark: e for run in runs for e in _entries(run, base_samples[run.name], facts, judging)}
            for e in entries:
                if e.benchmark in base_entries:
                    report.base_scores[e.benchmark] = base_entries[e.benchmark].score
                    report.base_metrics[e.benchmark] = base_entries[e.benchmark].metrics
                    report.gains[e.benchmark] = e.score - base_entries[e.benchmark].score
        report.judge = judging.judge.identity if judging else None
        report.dropped = dropped
        report.backend, report.backend_version = backend, backend_version(backend, endpoint)
    report.seconds = time.time() - started
    _write(report, entries, samples, facts, _output_dir(source, output_dir), batch_size)
    return report


def _write(report: EvalReport, entries: list[Entry], samples: dict[str, list[dict]], facts: dict[str, Any],
           out: Path, batch_size: int) -> None:
    from .. import __version__
    from ..utils import now, versions
    from .judged import COUNTS

    out.mkdir(parents=True, exist_ok=True)
    stamp = now().replace(":", "-").rstrip("Z")
    src = report.model
    results, configs, base_results = {}, {}, {}
    for e in entries:
        task, run = e.run.task, e.run
        # only metrics (with their standard errors) in `results`: a judged benchmark's grade counts go to metadata
        results[e.benchmark] = {"alias": e.benchmark, **{f"{k},none": v for k, v in e.metrics.items() if k not in COUNTS}}
        if e.benchmark in report.base_metrics:
            base_results[e.benchmark] = {f"{k},none": v for k, v in report.base_metrics[e.benchmark].items()
                                         if k not in COUNTS and not k.endswith("_stderr")}
        metadata: dict[str, Any] = {"version": task.version, "evaluate_module": task.metric}
        counts = {k: v for k, v in e.metrics.items() if k in COUNTS}
        if counts:
            metadata["counts"] = counts
        if task.kind == "judge" and report.judge:
            metadata["judge"] = report.judge.text()
        configs[e.benchmark] = {"task": e.benchmark, "dataset_path": facts[task.name]["dataset"],
                                "dataset_revision": facts[task.name]["data_revision"], "test_split": task.split,
                                "fewshot_split": task.shots_split, "num_fewshot": run.n_shot,
                                "output_type": {"loglik": "multiple_choice"}.get(task.kind, "generate_until"),
                                "generation_kwargs": {"until": list(task.stop), "do_sample": False,
                                                      "max_gen_toks": run.max_new_tokens or task.max_new_tokens}
                                if task.kind != "loglik" else None,
                                "metric_list": [{"metric": m, "aggregation": "mean",
                                                 "higher_is_better": _higher(e.benchmark, m)}
                                                for m in e.metrics if m not in COUNTS and not m.endswith("_stderr")],
                                "metadata": metadata}
    data = {
        "results": results,
        "group_subtasks": {},
        "configs": configs,
        "versions": {e.benchmark: float(e.run.task.version) for e in entries},
        "n-shot": {e.benchmark: e.run.n_shot for e in entries},
        "higher_is_better": {e.benchmark: {m: _higher(e.benchmark, m) for m in e.metrics
                                           if m not in COUNTS and not m.endswith("_stderr")} for e in entries},
        "n-samples": {e.benchmark: {"original": e.total, "effective": e.scored} for e in entries},
        "config": {"model": report.backend, "model_args": {"pretrained": src.name, "revision": src.revision,
                                                           "backend_version": report.backend_version},
                   "model_revision": src.revision, "model_sha": src.revision, "batch_size": batch_size,
                   "limit": next((e.run.limit for e in entries if e.run.limit), None), "bootstrap_iters": 0},
        "git_hash": None,
        "date": time.time(),
        "transformers_version": versions().get("transformers"),
        "hubkit_version": __version__,
        "model_name": src.name,
        "model_name_sanitized": src.name.replace("/", "__"),
        "total_evaluation_time_seconds": f"{report.seconds:.1f}",
        "hubkit": {
            "suite": report.suite,
            "base_model": report.base.name if report.base else None,
            "base_revision": report.base.revision if report.base else None,
            "scores": report.scores,
            "base_scores": report.base_scores,
            "base_results": base_results,
            "gains": report.gains,
            "judge": report.judge.to_json() if report.judge else None,
            "backend": {"name": report.backend, "version": report.backend_version},
            "evaluated_at": now(),
        },
    }
    report.results_file = out / f"{RESULTS_PREFIX}{stamp}.json"
    tmp = report.results_file.with_suffix(".json.partial")
    for name, rows in samples.items():
        path = out / f"samples_{name}_{stamp}.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for s in rows:
                f.write(json.dumps(s, ensure_ascii=False) + "\n")
        report.samples_files[name] = path
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(report.results_file)  # the results file appears last, complete


def _higher(benchmark: str, metric: str) -> bool:
    spec = metric_spec(benchmark, metric)
    return True if spec is None else spec.higher_is_better




def evaluate_models(models: list[str], backend: str = "hf", endpoint: str | None = None,
                    served_model: str | None = None, errors: dict[str, str] | None = None,
                    **kwargs: Any) -> list[EvalReport | None]:
    """Evaluate many models in one process: what every model of a sweep shares is done once.

    The benchmark data is fetched and each benchmark's prompts are built once for all the models; each base is
    evaluated once (then read from the per-sample cache); with the `hf` backend a base stays in memory for all its
    LoRA adapters (`ModelPool`: each adapter is merged into a fresh copy of its weights), and with `vllm` one engine
    serves the base and every adapter over it, unmerged.

    Args:
        models: Hub ids, model or adapter folders, or run directories (in any order; adapters of one base are
            evaluated one after another).
        backend, endpoint, served_model: as for `evaluate_model`.
        errors: when given, a model that fails is recorded here (model → one-line error) and its report is None,
            and the others go on (the sweep's eval stage); when None, the first failure raises.
        **kwargs: every other `evaluate_model` argument (`suite`, `limit`, `batch_size`, …), the same for all.

    Returns:
        One report per model, in the order given.

    Example:
        >>> reports = evaluate_models(["runs/a", "runs/b", "runs/c"], suite="tiny")
    """
    if kwargs.get("output_dir") is not None and len(models) > 1:
        raise HubkitError("--output takes one model; with several, each result goes beside its run "
                          "(or to eval-results/<model>)")
    from .backends import ModelPool, check_backend

    check_backend(backend, endpoint, served_model)
    pool = ModelPool() if backend == "hf" and len(models) > 1 else None  # one model: nothing to keep in memory
    shared = Shared(Backend(backend, endpoint, served_model, pool))
    sources: list[ModelSource | None] = []
    for m in models:
        try:
            sources.append(resolve_model(m, kwargs.get("revision")))
        except HubkitError as e:
            if errors is None:
                raise
            errors[m] = str(e)
            sources.append(None)
    order = sorted((i for i, src in enumerate(sources) if src is not None),
                   key=lambda i: (sources[i].base_model or "", not sources[i].adapter, i))  # type: ignore[union-attr]
    reports: dict[int, EvalReport | None] = dict.fromkeys(range(len(models)))
    for i in order:
        try:
            reports[i] = evaluate_model(models[i], backend=backend, endpoint=endpoint, served_model=served_model,
                                        shared=shared, source=sources[i], **kwargs)
        except HubkitError as e:
            if errors is None:
                raise
            errors[models[i]] = str(e)
    return [reports[i] for i in range(len(models))]
