"""Model cards for trained runs, rendered from `model_cards/sft_model.md` through `ModelCard.from_template`.

Metadata a machine can filter on: `base_model` (always a Hub id) with `base_model_relation` (`adapter`
for LoRA, `finetune` for full), `datasets`, `library_name`, `pipeline_tag`, `license`, `language`, and
tags for every sweep axis, so `list_models(filter=[...])` returns any slice of a grid:

    hubkit, hubkit-sft, sft-dataset-<name>, data-size-<n>, tuning-<full|lora>, epochs-<n>, schedule-<name>,
    sweep-<name>

The axes are also stored as structured keys under `hubkit:` in the card metadata. Text that comes from
users (dataset or model names, descriptions) is escaped, so it shows as text and never as Markdown or HTML.
A section with no data (evaluation, before there are results) is left out.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .benchmarks import BENCHMARKS, SCALES
from .resources import resource_dir
from .results import ResultRow
from .runs import RunMetrics, RunResult
from .utils import slug

TEMPLATES = resource_dir("model_cards")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def md(text: Any) -> str:
    """`text` as literal Markdown text on one line: HTML-escaped (`<`, `>`, `&`) and Markdown punctuation
    backslash-escaped, so that it renders as itself and never as markup or HTML."""
    value = html.escape(" ".join(str(text).split()), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", value)


def axis_tags(run: RunResult, sweep: str | None, epoch: int | None = None) -> list[str]:
    spec = run.spec
    tags = ["hubkit", "hubkit-sft", f"sft-dataset-{slug(spec.dataset.replace('w/o-', 'wo-'))}",
            f"data-size-{spec.data_size if spec.data_size is not None else 'full'}", f"tuning-{spec.tuning}",
            f"epochs-{epoch or spec.epochs}", f"schedule-{spec.lr_schedule}"]
    if epoch is not None and epoch != spec.epochs:
        tags.append(f"checkpoint-of-{spec.epochs}-epochs")
    if sweep:
        tags.append(f"sweep-{slug(sweep)}")
    return tags + (["lora", "peft"] if spec.tuning == "lora" else [])


def _usage(repo_id: str, base_model: str, lora: bool) -> str:
    if lora:
        return (f"from peft import PeftModel\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
                f"base = AutoModelForCausalLM.from_pretrained(\"{base_model}\")\n"
                f"model = PeftModel.from_pretrained(base, \"{repo_id}\")\n"
                f"tokenizer = AutoTokenizer.from_pretrained(\"{repo_id}\")\n"
                f"prompt = \"###Question: What is 2 + 3?\\n###Answer:\"" + _GENERATE)
    return (f"from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
            f"model = AutoModelForCausalLM.from_pretrained(\"{repo_id}\")\n"
            f"tokenizer = AutoTokenizer.from_pretrained(\"{repo_id}\")\n"
            f"prompt = \"###Question: What is 2 + 3?\\n###Answer:\"" + _GENERATE)


_GENERATE = ("\ninputs = tokenizer(prompt, return_tensors=\"pt\")\n"
             "print(tokenizer.decode(model.generate(**inputs, max_new_tokens=64)[0], skip_special_tokens=True))")


def _rows(results: Sequence[ResultRow | dict[str, Any]] | None) -> list[ResultRow]:
    return [r if isinstance(r, ResultRow) else ResultRow.from_json(r) for r in results or []]


def _shots_label(row: ResultRow) -> str:
    if row.n_shot is None and row.judge:
        return "LLM-judged"
    return f"{row.n_shot}-shot" if row.n_shot is not None else "shots unknown"


def eval_results(results: Sequence[ResultRow | dict[str, Any]], source_url: str | None = None) -> list:
    """The model-index entries (`EvalResult`) of results-schema rows.

    Each entry says how it was measured: shots and sample counts in `dataset_args`; scale, direction, headline,
    harness and the revisions of the model and its base in `metric_args`; the harness as its `source` (with
    `source_url`, the model's page on the Hub it is published to); a subset score says so in its `metric_name`
    too (the name sites display).
    """
    from huggingface_hub import EvalResult

    rows = _rows(results)
    ids = [public_id(r.benchmark) for r in rows]
    out = []
    for r, public in zip(rows, ids):
        if r.score is None:
            continue
        bench = BENCHMARKS.get(r.benchmark)
        label = f"{r.metric} ({_shots_label(r)}" + (f", subset: {r.samples_text()}" if r.subset else "") + ")"
        how = {"scale": r.scale, "higher_is_better": bool(r.higher_is_better), "headline": bool(r.headline),
               "harness": r.harness, "harness_version": r.harness_version, "model_revision": r.model_revision,
               "base_model": r.base_model if r.base_score is not None else None,
               "base_revision": r.base_revision if r.base_score is not None else None}
        args: dict[str, Any] = {"num_few_shot": int(r.n_shot)} if r.n_shot is not None else {}
        if r.n_samples is not None:
            args["n_samples"] = int(r.n_samples)
        if r.n_total is not None:
            args["n_total"] = int(r.n_total)
        if r.subset is not None:
            args["subset"] = bool(r.subset)
        out.append(EvalResult(
            task_type="text-generation", dataset_type=public,
            # benchmarks that share a public dataset (MT-Bench's categories, AlpacaEval's two win rates) are told
            # apart by config; the model index would otherwise merge them into one dataset entry
            dataset_config=r.benchmark if ids.count(public) > 1 else None,
            dataset_name=bench.title if bench else r.benchmark, metric_type=r.metric,
            metric_value=round(float(r.score), 4), metric_name=label, dataset_args=args or None,
            metric_args={k: v for k, v in how.items() if v is not None}, verified=False,
            source_name=" ".join(str(x) for x in (r.harness or "hubkit", r.harness_version) if x) if source_url
            else None, source_url=source_url))
    return out


def model_url(repo_id: str, endpoint: str | None = None) -> str:
    """A model's page on the Hub it is published to: `endpoint`, else `HF_ENDPOINT`, else huggingface.co."""
    import os

    return f"{(endpoint or os.environ.get('HF_ENDPOINT') or 'https://huggingface.co').rstrip('/')}/{repo_id}"


def public_id(benchmark: str) -> str:
    """The public dataset a benchmark's scores name (the registry's `dataset.id`; an unknown one's own name)."""
    known = BENCHMARKS.get(benchmark)
    return known.public_id if known else benchmark


def measured(row: ResultRow) -> str:
    """How a score was measured, in one line: shots, metric, scale, samples, harness, revision."""
    parts = [f"{_shots_label(row)} {row.metric}",
             f"{SCALES.get(row.scale, row.scale)}, {'higher' if row.higher_is_better else 'lower'} is better",
             f"{row.samples_text()} samples" if row.n_samples is not None or row.n_total is not None
             else row.samples_text().replace("unknown", "sample count unknown"),
             " ".join(str(x) for x in (row.harness, row.harness_version) if x),
             f"judged by {row.judge}" if row.judge else ""]
    if row.model_revision:
        parts.append(f"model revision {row.model_revision}")
    if row.base_revision and row.base_score is not None:
        parts.append(f"base revision {row.base_revision}")
    return "; ".join(p for p in parts if p)


def eval_results_files(results: Sequence[ResultRow | dict[str, Any]], repo_id: str,
                       include_subsets: bool = False, endpoint: str | None = None) -> dict[str, str]:
    """The Hub's `.eval_results/<benchmark>-<n>shot-<metric>.yaml` files (path → YAML text) of results-schema rows:
    one file per score (benchmark, metric, shots), so that a second shot count or metric never overwrites the first.

    These files feed the Hub's public benchmark leaderboards, so only scores on a whole benchmark go in by
    default: a subset score (or one whose sample count is unknown) is left out unless `include_subsets`,
    and then its `notes` start with `SUBSET`. `source.url` is the model's page on `endpoint`, the Hub the model is
    published to (default `HF_ENDPOINT`, else huggingface.co); `notes` name the harness and the revisions.
    """
    import re

    import yaml

    files = {}
    for r in _rows(results):
        if (r.subset is not False and not include_subsets) or r.score is None:
            continue
        notes = ("SUBSET: " if r.subset else "") + measured(r)
        if r.gain is not None and not (isinstance(r.gain, float) and r.gain != r.gain):
            notes += f"; {float(r.gain):+.2f} over the base model {r.base_model or ''}".rstrip()
            notes += " on the same samples"
        entry = {"dataset": {"id": public_id(r.benchmark), "task_id": r.benchmark},
                 "value": round(float(r.score), 4),
                 "date": str(r.evaluated_at or "")[:10] or None,
                 "source": {"name": " ".join(x for x in ("hubkit eval", r.harness_version) if x),
                            "url": model_url(repo_id, endpoint)},
                 "notes": notes}
        shots = "" if r.n_shot is None else f"-{int(r.n_shot)}shot"
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{r.benchmark}{shots}-{r.metric}")
        files[f".eval_results/{name}.yaml"] = yaml.safe_dump([{k: v for k, v in entry.items() if v}],
                                                              sort_keys=False, allow_unicode=True)
    return files


def license_text(run: RunResult, base_model: str) -> str:
    """`LICENSE.md` of a published run (the card's `license: other` links here): the terms that apply to it."""
    sources = run.record.data_sources if run.record else []
    lines = ["# Terms of this model", "",
             f"This model is a fine-tune of [{md(base_model)}](/{base_model}): the base model's licence applies to it.",
             "It was trained on the data below; each dataset's licence (see its card) applies to what the model "
             "learned from it, and several common SFT sets are for non-commercial research only.", ""]
    lines += [f"- {md(s.get('name', ''))}: {md(s.get('repo', ''))}"
              + (f" at revision {md(s['revision'])}" if s.get("revision") else "") for s in sources]
    if not sources:
        lines.append("- (no data sources recorded)")
    return "\n".join(lines) + "\n"


def render_card(run: RunResult, repo_id: str, base_model: str, sweep: str | None = None,
                results: Sequence[ResultRow | dict[str, Any]] | None = None, loss_curve: bool = False,
                license: str = "other", epoch: int | None = None, subset_eval_results: bool = False,
                weights_commit: str | None = None, endpoint: str | None = None, tracking: Any = None) -> str:
    """The README.md of a published run.

    Args:
        run: the finished run.
        repo_id: where it is published.
        base_model: the base model's Hub id (never a local path).
        sweep: the sweep it belongs to, if any.
        results: rows of the results schema for this model (the evaluation section is left out without them).
        loss_curve: whether `loss_curve.png` is published beside the card.
        license: the card's license (the base model's and the data's terms still apply).
        epoch: the card of the checkpoint saved after this epoch (default: the final model).
        subset_eval_results: whether subset scores were also written to `.eval_results/` (the card says so).
        weights_commit: the Hub commit that holds the evaluated weights (the card names it beside the scores).
        endpoint: the Hub the model is published to (`source.url` of its scores; default `HF_ENDPOINT`).
        tracking: where the run's trackio metrics were synced (`publish.tracking.TrackingLink`), linked from the card.
    """
    from huggingface_hub import ModelCard, ModelCardData

    scored = _rows(results)
    spec = run.spec.resolved()
    epoch = epoch if epoch is not None and epoch != spec.epochs else None
    lora = spec.tuning == "lora"
    metrics = run.metrics
    sources = run.record.data_sources if run.record else []
    datasets = sorted({s["repo"] for s in sources if "/" in s["repo"]})
    data = ModelCardData(
        base_model=base_model, base_model_relation="adapter" if lora else "finetune",
        datasets=datasets or None, library_name="peft" if lora else "transformers",
        pipeline_tag="text-generation", license=license, language=["en"], tags=axis_tags(run, sweep, epoch),
        license_name="base-model-and-data-terms" if license == "other" else None,
        license_link="LICENSE.md" if license == "other" else None,
        hubkit={"run_id": run.run_id, "sweep": sweep, "dataset": spec.dataset, "data_size": spec.data_size,
                "tuning": spec.tuning, "epochs": epoch or spec.epochs, "trained_epochs": spec.epochs,
                "lr_schedule": spec.lr_schedule,
                "learning_rate": spec.learning_rate, "batch_size": spec.batch_size, "seed": spec.seed,
                **({"trackio": f"{tracking.repo_id}/{tracking.path}"} if tracking else {})},
        model_name=repo_id.split("/")[-1] if scored else None,
        eval_results=eval_results(scored, model_url(repo_id, endpoint)) if scored else None,
    )
    size = f"{metrics.examples:,} examples" if metrics.examples else "all examples"
    summary = (f"{md(base_model)} fine-tuned ({'LoRA adapter' if lora else 'full-parameter'}) on {size} of "
               f"{md(spec.dataset)} for {spec.epochs} epoch{'s' if spec.epochs != 1 else ''} with a "
               f"{md(spec.lr_schedule)} learning-rate schedule"
               + (f" — the checkpoint saved after epoch {epoch} of {spec.epochs}" if epoch else "")
               + (f", one model of the sweep {md(sweep)}" if sweep else "") + ". Trained and published with hubkit.")
    hyper = [("learning rate", f"{spec.learning_rate:g}"), ("schedule", spec.lr_schedule),
             ("warm-up ratio", f"{spec.warmup_ratio:g}"), ("epochs", spec.epochs),
             ("effective batch size", spec.batch_size), ("micro batch size", spec.micro_batch_size),
             ("max length", spec.max_length), ("weight decay", f"{spec.weight_decay:g}"), ("seed", spec.seed),
             ("precision", metrics.dtype or spec.dtype), ("packing", "yes" if spec.packing else "no")]
    if lora:
        hyper += [("LoRA r", spec.lora_r), ("LoRA alpha", spec.lora_alpha), ("LoRA dropout", spec.lora_dropout),
                  ("LoRA target modules", md(", ".join(spec.lora_target_modules)))]
    training = [("steps", metrics.steps), ("final loss", _num(metrics.final_loss)),
                ("mean training loss", _num(metrics.train_loss)),
                ("tokens seen", f"{metrics.train_tokens:,}"),
                ("tokens/s", _num(metrics.tokens_per_second, 0)),
                ("training time", f"{metrics.train_seconds:.1f} s on {_hardware(metrics)}"),
                ("trainable parameters", f"{metrics.trainable_parameters:,} of {metrics.parameters:,}")]
    training = [(k, v) for k, v in training if v not in (None, "", "None")]
    rows = [{"title": md(BENCHMARKS[r.benchmark].title if r.benchmark in BENCHMARKS else r.benchmark)
             + ("" if r.headline else f" ({md(r.metric)})"),
             "score": _num(r.score, 2), "base_score": _num(r.base_score, 2), "gain": _signed(r.gain),
             "metric": md(r.metric) + ("\\*" if r.headline else "")
             + ("" if r.scale == "percent" and r.higher_is_better else
                                       f" ({r.scale}, {'higher' if r.higher_is_better else 'lower'} is better)"),
             "samples": r.samples_text(), "n_shot": "" if r.n_shot is None else r.n_shot} for r in scored]
    card = ModelCard.from_template(
        data, template_path=str(TEMPLATES / "sft_model.md"), title=md(repo_id.split("/")[-1]), summary=summary,
        usage=_usage(repo_id, base_model, lora),
        sources=[{k: md(v) if isinstance(v, str) else v for k, v in s.items()} for s in sources],
        stand_ins=[md(s["stand_in"]) for s in sources if s.get("stand_in")],
        prompt_format="the study's `###Question: …\\n###Answer: …`" if spec.prompt_format == "study"
        else "the tokenizer's chat template",
        lora=lora, hyperparameters=hyper, training=training, loss_curve=loss_curve, results=rows,
        tracking=_tracking_line(tracking, endpoint) if tracking else "",
        gains=any(r.gain is not None and r.gain == r.gain for r in scored),
        results_note=_results_note(scored, subset_eval_results, weights_commit),
        command="hubkit train hubkit_config.yaml", versions=sorted(metrics.versions.items()),
    )
    return str(card)


def _tracking_line(tracking: Any, endpoint: str | None) -> str:
    """The card's link to the run's trackio metrics, on the same Hub as the model."""
    return (f"Training metrics logged with trackio (project {md(tracking.project)}, run "
            f"{md(tracking.path.removeprefix('runs/'))}, {tracking.rows} logged steps): "
            f"[{md(tracking.repo_id)}]({model_url('datasets/' + tracking.repo_id, endpoint)}), "
            f"file `{md(tracking.path)}/metrics.parquet`.")


def _results_note(results: list[ResultRow], subset_eval_results: bool = False,
                  weights_commit: str | None = None) -> str:
    if not results:
        return ""
    based = next((r for r in results if r.base_score is not None and r.base_score == r.base_score), None)
    harness = next((f"{r.harness} {r.harness_version or ''}".strip() for r in results if r.harness), "hubkit eval")
    note = (f"Scores in percent (higher is better) unless the metric says otherwise, from {md(harness)} "
            "(`eval/` holds the lm-eval-style results file)")
    if weights_commit:
        note += f", of the weights at revision `{md(weights_commit)}` of this repo"
    if based is not None:
        note += f"; base and gain: the same suite, on the same samples, on {md(based.base_model)}"
        if based.base_revision:
            note += f" at revision `{md(based.base_revision)}`"
    note += ". A score's headline metric is the benchmark's own (marked *); other metrics of it are listed too."
    subsets = [r for r in results if r.subset]
    if subsets:
        where = ("they are also in `.eval_results/`, each marked SUBSET" if subset_eval_results
                 else "they are kept out of `.eval_results/`, which feeds public benchmark leaderboards")
        note += (f"\n\n**Subset scores.** {len(subsets)} of these {len(results)} scores were measured on a fixed, "
                 "seeded subset of the benchmark (see *samples*): they show how this model compares with its base "
                 "on those samples, and are not comparable with full-benchmark results or other models' published "
                 f"scores; {where}.")
    return note


def _hardware(metrics: RunMetrics) -> str:
    """`cpu`, or `4 × cuda (fsdp)`: the processes a run trained in and how they shared the model."""
    if metrics.world_size <= 1:
        return metrics.device
    return f"{metrics.world_size} × {metrics.device} ({metrics.distributed if metrics.distributed != 'none' else 'ddp'})"


def _num(value: Any, digits: int = 4) -> str | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else f"{number:.{digits}f}"


def _signed(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if number != number else f"{number:+.2f}"


def loss_curve_png(run: RunResult, path: Path) -> bool:
    """Plot the run's loss curve to `path`; False when the run logged no loss."""
    curve = run.metrics.loss_curve
    if not curve:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot([p.step for p in curve], [p.loss for p in curve], marker="o", markersize=3)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title(run.run_id[:60], fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})  # no timestamps or versions: same curve, same bytes
    plt.close(fig)
    return True
