"""`hubkit train` against a bare TRL script, and packed (padding-free) against padded batches, in one run.

    python scripts/bench/train.py                 # 256 LIMA examples, a small random Llama, 3 repeats
    python scripts/bench/train.py --scale 0.25    # a quick look

Measures, on a local Hub seeded with LIMA (real, variable-length data: 10 to 3,000+ tokens per example):
  1. wall time of `hubkit.train.train` (data from the Hub registry, model load, SFTTrainer, save, run record)
     vs a bare script doing the same work with `datasets` + `trl.SFTTrainer` directly; median of N
     alternating repeats (target: ratio <= 1.05x)
  2. tokens/s of packed, padding-free batches (`packing=True`) vs padded batches on the same examples
     (target: ratio >= 1.5x; report). Packing keeps examples apart through position_ids, which needs a
     varlen attention kernel (flash attention on a GPU) to pay off; with PyTorch SDPA on a CPU the
     block-diagonal mask turns the fused causal kernel off, and packed batches come out slower.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import time
from pathlib import Path

from _isolated import isolate  # the script's folder is on sys.path

work, PORT = isolate("train")
os.environ["TRANSFORMERS_VERBOSITY"] = "error"

from hubkit.config import RunSpec  # noqa: E402
from hubkit.hub import start_local_hub  # noqa: E402
from hubkit.hub.server.auth import Users  # noqa: E402
from hubkit.models import build_tiny_model  # noqa: E402


def bare_trl(model_dir: Path, out: Path, spec: RunSpec) -> float:
    """What a researcher would write by hand: load, format with the study template, train, save."""
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import SFTConfig, SFTTrainer

    started = time.perf_counter()
    rows = datasets.load_dataset("hubkit-data/lima", split="train")
    order = list(range(len(rows)))
    random.Random(spec.data_seed).shuffle(order)  # the same examples hubkit samples
    examples = []
    for i in order[: spec.data_size]:
        r = rows[i]
        question, answer = r["history"][0] if r["history"] else (r["instruction"], r["output"])
        examples.append({"prompt": f"###Question: {question}\n###Answer:", "completion": " " + answer})
    ds = datasets.Dataset.from_list(examples)
    set_seed(spec.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    args = SFTConfig(output_dir=str(out), num_train_epochs=spec.epochs, learning_rate=spec.learning_rate,
                     lr_scheduler_type="cosine", per_device_train_batch_size=spec.micro_batch_size,
                     max_length=spec.max_length, seed=spec.seed, save_strategy="no", report_to="none", bf16=False,
                     activation_checkpointing=False, use_cpu=True, disable_tqdm=True, logging_steps=10)
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer)
    trainer.train()
    trainer.model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    return time.perf_counter() - started


def hubkit_train(spec: RunSpec) -> tuple[float, dict]:
    from hubkit.train import train

    started = time.perf_counter()
    result = train(spec, force=True, progress=False)
    return time.perf_counter() - started, result.metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the default example count")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    root = work / "hub"
    token = Users(root).add_user("hubkit", orgs=["hubkit-data"])
    os.environ["HF_TOKEN"] = token
    hub = start_local_hub(root, port=PORT, detach=False)
    try:
        from hubkit.hub.seed import seed

        seed(["lima"], progress=False)
        model_dir = work / "model"
        build_tiny_model(model_dir, seed=0, hidden_size=256, layers=4)
        size = max(32, int(256 * args.scale))
        spec = RunSpec(model=str(model_dir), dataset="lima", data_size=size, epochs=1, batch_size=8,
                       micro_batch_size=8, max_length=512, learning_rate=1e-4, output_dir=str(work / "runs"))

        ours, theirs = [], []
        hubkit_train(spec)  # warm-up: dataset cache, imports
        for i in range(args.repeats):
            ours.append(hubkit_train(spec)[0])
            theirs.append(bare_trl(model_dir, work / f"bare-{i}", spec))
            shutil.rmtree(work / f"bare-{i}", ignore_errors=True)

        padded = hubkit_train(spec)[1]
        packed = hubkit_train(RunSpec(**{**spec.to_dict(), "packing": True}))[1]
    finally:
        hub.stop()

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"hubkit train vs peers ({size} LIMA examples, 1 epoch, random Llama "
                        f"{padded['parameters'] / 1e6:.1f}M, CPU, median of {args.repeats})")
    for col in ("measure", "hubkit", "peer", "peer is", "ratio", "target"):
        table.add_column(col)
    ratio = statistics.median(ours) / statistics.median(theirs)
    table.add_row("wall time, whole run", f"{statistics.median(ours):.2f} s", f"{statistics.median(theirs):.2f} s",
                  "bare TRL SFTTrainer script", f"{ratio:.3f}x", "<= 1.05x")
    tp = packed["tokens_per_second"] / padded["tokens_per_second"]
    table.add_row("tokens/s, packed vs padded", f"{packed['tokens_per_second']:.0f}",
                  f"{padded['tokens_per_second']:.0f}", "padded batches (packing=False)", f"{tp:.2f}x", ">= 1.5x")
    Console().print(table)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
