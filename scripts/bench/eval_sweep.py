"""Evaluating a sweep: one `hubkit eval` over 8 fine-tunes of one base against 8 separate `hubkit eval` calls.

    python scripts/bench/eval_sweep.py                      # SmolLM2-135M, 8 LoRA adapters, `tiny` suite (~15 min)
    python scripts/bench/eval_sweep.py --model tiny --rounds 3   # a tiny random Llama: the fixed costs alone

Both sides run the real command line (`python -m hubkit eval …`) against the same local Hub, each with a fresh
per-sample cache, so that each evaluates the base once (for the gains) and every fine-tune once. The 8 fine-tunes
are LoRA adapters (r=16, all linear layers, random non-zero weights: each changes every output) of one base; the
study's sweeps are half LoRA. The sides alternate per round. Checked: every score of every model equal on both
sides. Goal (issue 34): >= 2x less wall time on CPU at equal scores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _isolated import isolate  # the script's folder is on sys.path

work, PORT = isolate("eval-sweep")
os.environ["TRANSFORMERS_VERBOSITY"] = "error"

from hubkit.hub import start_local_hub  # noqa: E402
from hubkit.hub.server.auth import Users  # noqa: E402

FINE_TUNES = 8


def adapters(base: Path, n: int) -> list[Path]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = []
    for i in range(n):
        torch.manual_seed(100 + i)
        peft = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                              LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False,
                                         task_type="CAUSAL_LM"))
        path = work / "models" / f"ft-{i}"
        peft.save_pretrained(path)
        AutoTokenizer.from_pretrained(base).save_pretrained(path)
        out.append(path)
    return out


def run(args: list[str], cache: Path) -> float:
    env = {**os.environ, "HUBKIT_EVAL_CACHE": str(cache)}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "hubkit", "eval", *args], env=env, cwd=work,
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"hubkit eval failed: {proc.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - started


def scores(models: list[Path]) -> dict[str, dict[str, float]]:
    out = {}
    for m in models:
        folder = work / "eval-results" / m.name
        data = json.loads(max(folder.glob("results_*.json")).read_text())
        out[m.name] = data["hubkit"]["scores"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    ap.add_argument("--suite", default="tiny")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    root = work / "hub"
    os.environ["HF_TOKEN"] = Users(root).add_user("hubkit", orgs=["hubkit-data"])
    hub = start_local_hub(root, port=PORT, detach=False)
    try:
        from hubkit.hub.seed import seed

        seed(["mmlu", "hellaswag", "boolq", "truthfulqa"], progress=False)
        if args.model == "smollm2":
            from hubkit.models import convert_bundled

            base = convert_bundled("smollm2", cache_dir=work / "smollm2")
        else:
            from hubkit.models import build_tiny_model

            base = work / "tiny"
            build_tiny_model(base, seed=0, hidden_size=256, layers=4)
        models = adapters(base, FINE_TUNES)
        common = ["--suite", args.suite, "--no-progress", "--batch-size", "8"]
        separate, together = [], []
        for r in range(args.rounds):
            sides = [("separate", separate), ("together", together)]
            for name, times in (sides if r % 2 == 0 else sides[::-1]):
                cache = work / f"cache-{name}-{r}"
                shutil.rmtree(work / "eval-results", ignore_errors=True)
                if name == "separate":
                    times.append(sum(run([str(m), *common], cache) for m in models))
                else:
                    times.append(run([*map(str, models), *common], cache))
                got = scores(models)
                if name == "separate":
                    expected = got
                print(f"round {r + 1}: {name} {times[-1]:.1f} s", flush=True)
            if got != expected:
                raise SystemExit(f"scores differ between the sides: {expected} vs {got}")
    finally:
        hub.stop()

    from rich.console import Console
    from rich.table import Table

    params = "SmolLM2-135M" if args.model == "smollm2" else "a 4-layer random Llama (256 wide)"
    table = Table(title=f"{FINE_TUNES} LoRA fine-tunes of {params}, suite `{args.suite}`, CPU, "
                        f"median of {args.rounds} round(s), sides alternating")
    for col in ("measure", "one `hubkit eval` over 8", "8 separate `hubkit eval`", "ratio", "goal"):
        table.add_column(col)
    a, b = statistics.median(together), statistics.median(separate)
    table.add_row("wall time, 8 fine-tunes + their base", f"{a:.1f} s", f"{b:.1f} s", f"{b / a:.2f}x less", ">= 2x")
    table.add_row("scores", "equal on every model and benchmark", "", "", "equal")
    Console().print(table)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
