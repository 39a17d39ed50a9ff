"""Measure the throughput tables `hubkit sweep plan` reads, and write them to hubkit/sweep/throughput.yaml.

    python scripts/bench/throughput.py            # about 7 minutes on 2 CPU cores
    python scripts/bench/throughput.py --print    # measure and print; leave the tables as they are

What it measures, on a local Hub seeded from ../shared/data:
  1. tokens per training example (study prompt format, SmolLM2's tokenizer) of every registry set, over the
     offline seed subsets (up to 1,000 records each);
  2. records each eval suite scores per model (every benchmark of the registry, as the harness selects them);
  3. this machine's training throughput: SmolLM2-135M, full-parameter and LoRA, 32 LIMA examples, float32, as
     effective FLOP/s (6·P or 4·P per token), printed beside the study's GPUs (derived, below);
  4. this machine's evaluation cost per scored record: SmolLM2-135M on the `tiny` suite (32 records), cold.

The `study-gpu` profile is not measured here: it is derived from the study's own figures (0.5 GPU-hours per
1k-example run of a 7-9B model for 10 epochs; 16,700 GPU-hours to evaluate 1,027 models on the study suite), with
the tokens per example and suite sizes measured in 1 and 2. `scripts/device_check.sh` prints the rows of a lent
GPU in the same units.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from _isolated import isolate  # the script's folder is on sys.path

work, PORT = isolate("throughput")
os.environ["TRANSFORMERS_VERBOSITY"] = "error"

from hubkit.hub import start_local_hub  # noqa: E402
from hubkit.hub.server.auth import Users  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TABLES = REPO / "hubkit" / "sweep" / "throughput.yaml"
# The study's figures (the issue that asked for plans quotes them; study.md): a reference point for every plan
STUDY = {"runs": 1059, "models_evaluated": 1027, "train_gpu_hours": 530, "eval_gpu_hours": 16700, "storage_tb": 80,
         "params": 7.6e9, "gpu_hours_per_run": 0.5, "run_examples": 1000, "run_epochs": 10}


def tokens_per_example(tokenizer) -> dict[str, dict[str, float]]:
    from hubkit.data import load_training_data
    from hubkit.data.registry import REGISTRY

    out = {}
    for name in REGISTRY:
        data = load_training_data(name, None, 42, "study")
        rows = data.dataset.select(range(min(1000, len(data.dataset))))
        counts = [len(tokenizer(r["prompt"] + r["completion"])["input_ids"]) for r in rows]
        out[name] = {"tokens": round(statistics.fmean(counts), 1), "records": len(counts)}
        print(f"  {name}: {out[name]['tokens']} tokens per example over {len(counts)} records")
    return out


def suite_records() -> tuple[dict[str, int], dict[str, int], dict[str, list[str]]]:
    from hubkit.eval.harness import BenchmarkData
    from hubkit.eval.tasks import NAMED, build_instances, get_suite, tasks
    from hubkit.utils import DATA_NAMESPACE

    data = BenchmarkData(DATA_NAMESPACE)

    def records(run) -> int:
        task = run.task
        docs, _ = data.split(task.repo, task.split, task.name)
        shots = data.split(task.repo, task.shots_split, task.name)[0] if task.shots_split and run.n_shot else None
        return len(build_instances(run, docs, shots))

    benchmarks = {name: records(get_suite(name)[0]) for name in tasks()}
    suites = {"study": sum(benchmarks[r.name] for r in get_suite("study"))}
    for name in NAMED:
        suites[name] = sum(records(r) for r in get_suite(name))
    members = {name: [r.name for r in get_suite(name)] for name in ("study", *NAMED)}
    return suites, benchmarks, members


def train_rate(model_dir: Path, tuning: str) -> tuple[float, float]:
    """(tokens/s, parameters) of a SmolLM2-135M run on 32 LIMA examples."""
    from hubkit.config import RunSpec
    from hubkit.train import train

    kw = {"learning_rate": 1e-4, "batch_size": 8} if tuning == "full" else {"learning_rate": 1e-3, "batch_size": 8}
    spec = RunSpec(model=str(model_dir), dataset="lima", data_size=32, epochs=1, micro_batch_size=4, max_length=512,
                   dtype="float32", tuning=tuning, output_dir=str(work / "runs"), **kw)
    result = train(spec, force=True, progress=False)
    base = result.metrics.parameters - (result.metrics.trainable_parameters if tuning == "lora" else 0)
    return float(result.metrics.tokens_per_second or 0), float(base)


def eval_seconds_per_record(model_dir: Path) -> float:
    from hubkit.eval.harness import evaluate_model

    started = time.perf_counter()
    report = evaluate_model(str(model_dir), suite="tiny", compare_base=False, progress=False,
                            output_dir=work / "eval")
    seconds = time.perf_counter() - started
    records = sum(scored for scored, _ in report.sizes.values())
    return seconds / records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--print", action="store_true", help="print the tables; do not write them")
    args = ap.parse_args()
    root = work / "hub"
    os.environ["HF_TOKEN"] = Users(root).add_user("hubkit", orgs=["hubkit-data"])
    hub = start_local_hub(root, port=PORT, detach=False)
    try:
        from transformers import AutoTokenizer

        from hubkit.data.registry import REGISTRY
        from hubkit.hub.seed import SEEDS, seed
        from hubkit.models import convert_bundled

        print("seeding the local Hub from ../shared/data …")
        seed([s.name for s in SEEDS], progress=False)
        smollm2 = convert_bundled("smollm2", cache_dir=work / "smollm2")
        tokenizer = AutoTokenizer.from_pretrained(smollm2)
        print("tokens per example:")
        datasets = tokens_per_example(tokenizer)
        suites, benchmarks, members = suite_records()
        print(f"records per model: {suites}")
        rates = {t: train_rate(smollm2, t) for t in ("full", "lora")}
        per_record = eval_seconds_per_record(smollm2)
    finally:
        hub.stop()

    import yaml

    params = rates["full"][1]
    cpu_flops = {t: round(FLOPS[t] * params * rate) for t, (rate, _) in rates.items()}
    study_tokens = statistics.fmean(min(datasets[n]["tokens"], 2048) for n in REGISTRY)
    run_flops = 6 * STUDY["params"] * STUDY["run_examples"] * study_tokens * STUDY["run_epochs"]
    gpu_flops = round(run_flops / (STUDY["gpu_hours_per_run"] * 3600))
    gpu_per_record = STUDY["eval_gpu_hours"] * 3600 / (STUDY["models_evaluated"] * suites["study"])
    today = time.strftime("%Y-%m-%d")
    data = {
        "study": STUDY,
        "default_examples": 10000,
        "hardware": {
            "study-gpu": {
                "gpu": True, "params": STUDY["params"],
                "train_flops_per_s": {"full": gpu_flops, "lora": gpu_flops},
                "eval_seconds_per_record": round(gpu_per_record, 4),
                "source": (f"derived from the study's figures: 0.5 GPU-h per 1k-example 10-epoch run of a 7-9B model "
                           f"({study_tokens:.0f} tokens per example measured), 16,700 GPU-h for 1,027 models x "
                           f"{suites['study']:,} records of the study suite"),
            },
            "cpu": {
                "gpu": False, "params": params,
                "train_flops_per_s": cpu_flops,
                "eval_seconds_per_record": round(per_record, 4),
                "source": (f"measured {today} by scripts/bench/throughput.py: SmolLM2-135M on 2 CPU cores, float32, "
                           f"{rates['full'][0]:.0f} (full) and {rates['lora'][0]:.0f} (LoRA) tokens/s, "
                           f"{per_record:.2f} s per record of the tiny suite"),
            },
        },
        "datasets": datasets,
        "suites": suites,
        "suite_members": members,
        "benchmarks": benchmarks,
    }
    header = ("# Throughput tables of `hubkit sweep plan` (hubkit/sweep/plan.py). Written by\n"
              "#   python scripts/bench/throughput.py\n"
              "# `cpu` is measured; `study-gpu` is derived from the study's own figures (see each `source`).\n")
    text = header + yaml.safe_dump(data, sort_keys=False, width=120)
    print(text)
    if not args.print:
        TABLES.write_text(text, encoding="utf-8")
        print(f"written: {TABLES.relative_to(REPO)}")


FLOPS = {"full": 6, "lora": 4}

if __name__ == "__main__":
    main()
