"""The body of scripts/device_check.sh (run that): FSDP over NCCL, vLLM adapters against hf, throughput rows.

    python scripts/device_check.py WORKDIR
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
WORK = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/hubkit-device-check")
WORK.mkdir(parents=True, exist_ok=True)
FAILED: list[str] = []


def say(text: str) -> None:
    print(text, flush=True)


def check(ok: bool, what: str) -> None:
    say(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        FAILED.append(what)


def synthetic_data(n: int = 64) -> Path:
    """Alpaca-layout examples with some structure to learn (no network)."""
    rng = random.Random(0)
    path = WORK / "arith.jsonl"
    with open(path, "w") as f:
        for _ in range(n):
            a, b = rng.randint(1, 99), rng.randint(1, 99)
            f.write(json.dumps({"instruction": f"What is {a} plus {b}?", "input": "",
                                "output": f"{a} plus {b} is {a + b}."}) + "\n")
    return path


def fsdp_check(model: Path, data: Path) -> None:
    import torch

    from hubkit.config import RunSpec
    from hubkit.train import train

    gpus = torch.cuda.device_count()
    say(f"1. FSDP over NCCL: {gpus} process(es), one per GPU, against the same run unsharded")
    common = {"model": str(model), "dataset": str(data), "data_size": 64, "epochs": 2, "batch_size": 8,
              "micro_batch_size": 8, "max_length": 128, "learning_rate": 1e-3, "logging_steps": 1, "dtype": "float32"}
    started = time.time()
    plain = train(RunSpec(**common, output_dir=str(WORK / "plain")), progress=False)
    sharded = train(RunSpec(**common, output_dir=str(WORK / "fsdp"), gpus=gpus, distributed="fsdp"), progress=False)
    a = [p.loss for p in plain.metrics.loss_curve]
    b = [p.loss for p in sharded.metrics.loss_curve]
    gap = max(abs(x - y) for x, y in zip(a, b)) if a and len(a) == len(b) else float("inf")
    check(sharded.metrics.world_size == gpus and sharded.metrics.distributed == "fsdp" and sharded.metrics.device == "cuda",
          f"the sharded run trained on {sharded.metrics.world_size} × {sharded.metrics.device} ({sharded.metrics.distributed})")
    check(gap < 1e-3, f"loss curves agree: largest gap {gap:.2e} over {len(a)} steps (tolerance 1e-3, float32)")
    check(sharded.run_id == plain.run_id, "same run id (sharding is not hashed)")
    say(f"  {time.time() - started:.0f} s")


def adapters(model: Path, n: int = 2) -> list[str]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = []
    for i in range(n):
        torch.manual_seed(i + 1)
        peft = get_peft_model(AutoModelForCausalLM.from_pretrained(model),
                              LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False,
                                         task_type="CAUSAL_LM"))
        path = WORK / f"adapter-{i}"
        peft.save_pretrained(path)
        AutoTokenizer.from_pretrained(model).save_pretrained(path)
        out.append(str(path))
    return out


def vllm_check(model: Path) -> None:
    say("2. --backend vllm: two LoRA adapters of one base, against --backend hf on the same items")
    if importlib.util.find_spec("vllm") is None:
        say("  skipped: vLLM is not installed (pip install 'hubkit[vllm]')")
        return
    from hubkit.eval.backends import VLLMBackend
    from hubkit.eval.lm import LM, resolve_model

    rng = random.Random(1)
    questions = [f"Question: what is {a} plus {b}?\nAnswer:" for a, b in
                 ((rng.randint(1, 99), rng.randint(1, 99)) for _ in range(16))]
    requests = [(q, f" {c}") for q in questions for c in ("one", "two", "three", "four")]
    started = time.time()
    for path in adapters(model):
        source = resolve_model(path)
        hf = LM.load(source, batch_size=8)
        ref = hf.loglikelihood(requests)
        ref_gen = hf.generate(questions, max_new_tokens=16)
        del hf
        served = VLLMBackend(source)
        got = served.loglikelihood(requests)  # refuses an adapter that leaves the base's outputs unchanged
        gen = served.generate(questions, max_new_tokens=16)
        gap = max(abs(x.logprob - y.logprob) for x, y in zip(ref, got))
        picks = [max(range(4), key=lambda k, i=i: r[i * 4 + k].logprob) for i in range(16) for r in (ref,)]
        served_picks = [max(range(4), key=lambda k, i=i: got[i * 4 + k].logprob) for i in range(16)]
        check(picks == served_picks, f"{Path(path).name}: the same answer to all 16 questions")
        check(gap < 5e-2, f"{Path(path).name}: log-likelihoods within 5e-2 (largest gap {gap:.2e})")
        same = sum(a == b for a, b in zip(ref_gen, gen))
        check(same >= 14, f"{Path(path).name}: {same} of 16 greedy generations identical")
    say(f"  vLLM {served.backend_version}, {time.time() - started:.0f} s")


def throughput_rows() -> None:
    import torch

    from hubkit.config import RunSpec
    from hubkit.models import build_tiny_model
    from hubkit.train import train

    say("3. throughput rows of this GPU (units of hubkit/sweep/throughput.yaml)")
    model = WORK / "wide"
    params = build_tiny_model(model, seed=0, hidden_size=1024, layers=8)
    data = synthetic_data(512)
    rows = {}
    for tuning in ("full", "lora"):
        result = train(RunSpec(model=str(model), dataset=str(data), data_size=512, epochs=1, batch_size=32,
                               micro_batch_size=32, max_length=128, tuning=tuning, learning_rate=1e-4,
                               dtype="bfloat16", output_dir=str(WORK / f"tp-{tuning}")), progress=False)
        rate = result.metrics.tokens_per_second or 0.0
        rows[tuning] = round({"full": 6, "lora": 4}[tuning] * params * rate)
        say(f"  {tuning}: {rate:,.0f} tokens/s at {params / 1e6:.0f}M parameters, bf16")
    name = torch.cuda.get_device_name(0).lower().replace(" ", "-")
    say(f"  {name}:\n    gpu: true\n    params: {float(params)}\n    train_flops_per_s: {rows}\n"
        f"    source: measured by scripts/device_check.sh on {torch.cuda.get_device_name(0)}")


def main() -> int:
    import torch

    missing = [m for m in ("transformers", "trl", "peft", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        say(f"device check: missing {', '.join(missing)}: pip install -e . first")
        return 1
    from hubkit.models import build_tiny_model

    say(f"device check on {torch.cuda.device_count()} × {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    model = WORK / "tiny"
    build_tiny_model(model, seed=0, hidden_size=128, layers=4)
    data = synthetic_data()
    for step in (lambda: fsdp_check(model, data), lambda: vllm_check(model), throughput_rows):
        try:
            step()
        except Exception as e:  # one part failing must not hide the others' results
            FAILED.append(f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
            say(f"  FAIL {FAILED[-1]}")
    say("device check: " + ("all passed" if not FAILED else f"{len(FAILED)} failed: " + "; ".join(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
