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
from pathlib import Path
from typing import Any

from .config import slug
from .train import RunResult

TEMPLATES = Path(__file__).resolve().parent.parent / "model_cards"
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


def eval_results(results: list[dict[str, Any]]) -> list:
    """The model-index entries (`EvalResult`) of results-schema rows."""
    from huggingface_hub import EvalResult

    from .eval.tasks import PUBLIC_IDS
    from .results import BENCHMARKS

    out = []
    for r in results:
        bench = BENCHMARKS.get(r["benchmark"])
        shots = r.get("n_shot")
        out.append(EvalResult(
            task_type="text-generation", dataset_type=PUBLIC_IDS.get(r["benchmark"], r["benchmark"]),
            dataset_name=bench.title if bench else r["benchmark"], metric_type=r["metric"],
            metric_value=round(float(r["score"]), 4), metric_name=f"{r['metric']} ({shots}-shot)" if shots is not None
            else r["metric"], dataset_args={"num_few_shot": int(shots)} if shots is not None else None,
            verified=False))
    return out


def eval_results_files(results: list[dict[str, Any]], repo_id: str) -> dict[str, str]:
    """The Hub's `.eval_results/<benchmark>.yaml` files (path → YAML text) of results-schema rows."""
    import yaml

    from .eval.tasks import PUBLIC_IDS

    files = {}
    for r in results:
        shots = r.get("n_shot")
        notes = f"{shots}-shot, {r['metric']}" if shots is not None else r["metric"]
        if r.get("gain") is not None:
            notes += f"; {float(r['gain']):+.2f} over the base model {r.get('base_model') or ''}".rstrip()
        entry = {"dataset": {"id": PUBLIC_IDS.get(r["benchmark"], r["benchmark"]), "task_id": r["benchmark"]},
                 "value": round(float(r["score"]), 4),
                 "date": str(r.get("evaluated_at") or "")[:10] or None,
                 "source": {"name": "hubkit eval", "url": f"https://huggingface.co/{repo_id}"},
                 "notes": notes}
        files[f".eval_results/{r['benchmark']}.yaml"] = yaml.safe_dump([{k: v for k, v in entry.items() if v}],
                                                                       sort_keys=False)
    return files


def render_card(run: RunResult, repo_id: str, base_model: str, sweep: str | None = None,
                results: list[dict[str, Any]] | None = None, loss_curve: bool = False,
                license: str = "other", epoch: int | None = None) -> str:
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
    """
    from huggingface_hub import ModelCard, ModelCardData

    spec = run.spec.resolved()
    epoch = epoch if epoch is not None and epoch != spec.epochs else None
    lora = spec.tuning == "lora"
    record, metrics = run.record, run.metrics
    sources = record.get("data_sources", [])
    datasets = sorted({s["repo"] for s in sources if "/" in s["repo"]})
    data = ModelCardData(
        base_model=base_model, base_model_relation="adapter" if lora else "finetune",
        datasets=datasets or None, library_name="peft" if lora else "transformers",
        pipeline_tag="text-generation", license=license, language=["en"], tags=axis_tags(run, sweep, epoch),
        hubkit={"run_id": run.run_id, "sweep": sweep, "dataset": spec.dataset, "data_size": spec.data_size,
                "tuning": spec.tuning, "epochs": epoch or spec.epochs, "trained_epochs": spec.epochs,
                "lr_schedule": spec.lr_schedule,
                "learning_rate": spec.learning_rate, "batch_size": spec.batch_size, "seed": spec.seed},
        model_name=repo_id.split("/")[-1] if results else None,
        eval_results=eval_results(results) if results else None,
    )
    size = f"{metrics.get('examples', spec.data_size):,} examples" if metrics.get("examples") else "all examples"
    summary = (f"{md(base_model)} fine-tuned ({'LoRA adapter' if lora else 'full-parameter'}) on {size} of "
               f"{md(spec.dataset)} for {spec.epochs} epoch{'s' if spec.epochs != 1 else ''} with a "
               f"{md(spec.lr_schedule)} learning-rate schedule"
               + (f" — the checkpoint saved after epoch {epoch} of {spec.epochs}" if epoch else "")
               + (f", one model of the sweep {md(sweep)}" if sweep else "") + ". Trained and published with hubkit.")
    hyper = [("learning rate", f"{spec.learning_rate:g}"), ("schedule", spec.lr_schedule),
             ("warm-up ratio", f"{spec.warmup_ratio:g}"), ("epochs", spec.epochs),
             ("effective batch size", spec.batch_size), ("micro batch size", spec.micro_batch_size),
             ("max length", spec.max_length), ("weight decay", f"{spec.weight_decay:g}"), ("seed", spec.seed),
             ("precision", metrics.get("dtype", spec.dtype)), ("packing", "yes" if spec.packing else "no")]
    if lora:
        hyper += [("LoRA r", spec.lora_r), ("LoRA alpha", spec.lora_alpha), ("LoRA dropout", spec.lora_dropout),
                  ("LoRA target modules", md(", ".join(spec.lora_target_modules)))]
    training = [("steps", metrics.get("steps")), ("final loss", _num(metrics.get("final_loss"))),
                ("mean training loss", _num(metrics.get("train_loss"))),
                ("tokens seen", f"{metrics.get('train_tokens', 0):,}"),
                ("tokens/s", _num(metrics.get("tokens_per_second"), 0)),
                ("training time", f"{metrics.get('train_seconds', 0):.1f} s on {metrics.get('device', 'cpu')}"),
                ("trainable parameters",
                 f"{metrics.get('trainable_parameters', 0):,} of {metrics.get('parameters', 0):,}")]
    training = [(k, v) for k, v in training if v not in (None, "", "None")]
    from .results import BENCHMARKS

    rows = [{**r, "title": md(BENCHMARKS[r["benchmark"]].title if r["benchmark"] in BENCHMARKS else r["benchmark"]),
             "score": _num(r.get("score"), 2), "base_score": _num(r.get("base_score"), 2),
             "gain": _signed(r.get("gain")), "metric": md(r["metric"]),
             "n_shot": "" if r.get("n_shot") is None else r["n_shot"]} for r in results or []]
    card = ModelCard.from_template(
        data, template_path=str(TEMPLATES / "sft_model.md"), title=md(repo_id.split("/")[-1]), summary=summary,
        usage=_usage(repo_id, base_model, lora),
        sources=[{k: md(v) if isinstance(v, str) else v for k, v in s.items()} for s in sources],
        stand_ins=[md(s["stand_in"]) for s in sources if s.get("stand_in")],
        prompt_format="the study's `###Question: …\\n###Answer: …`" if spec.prompt_format == "study"
        else "the tokenizer's chat template",
        lora=lora, hyperparameters=hyper, training=training, loss_curve=loss_curve, results=rows,
        gains=any(r.get("gain") is not None for r in results or []),
        results_note=_results_note(results or []),
        command="hubkit train hubkit_config.yaml", versions=sorted(metrics.get("versions", {}).items()),
    )
    return str(card)


def _results_note(results: list[dict[str, Any]]) -> str:
    if not results:
        return ""
    base = next((r.get("base_model") for r in results if r.get("base_score") is not None), None)
    note = "Scores in percent, from `hubkit eval` (`eval/` holds the lm-eval-style results file)"
    if base:
        note += f"; base and gain: the same suite on {md(base)}"
    return note + "."


def _num(value: Any, digits: int = 4) -> str | None:
    if value is None:
        return None
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return None


def _signed(value: Any) -> str:
    try:
        return f"{float(value):+.2f}"
    except (TypeError, ValueError):
        return ""


def loss_curve_png(run: RunResult, path: Path) -> bool:
    """Plot the run's loss curve to `path`; False when the run logged no loss."""
    curve = run.metrics.get("loss_curve") or []
    if not curve:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot([p["step"] for p in curve], [p["loss"] for p in curve], marker="o", markersize=3)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title(run.run_id[:60], fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})  # no timestamps or versions: same curve, same bytes
    plt.close(fig)
    return True
