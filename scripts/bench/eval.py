"""Multiple-choice scoring: hubkit's shared-context log-likelihood vs one forward pass per choice, in one run.

    python scripts/bench/eval.py                  # SmolLM2-135M, 24 MMLU (5-shot) + 12 HellaSwag (10-shot) questions
    python scripts/bench/eval.py --scale 0.25     # a quick look

Both sides score the same (context, choice) requests with the same model, batch size and length-sorted
batching; the peer is the textbook method lm-eval also uses for multi-token choices (context and choice
in one sequence, one sequence per choice). hubkit runs each question's context once and reuses its
key/value cache for all its choices; MMLU's single-token choices need no second pass at all.
Targets: throughput ratio >= 3x, and the same answers (max score difference 0).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

_REAL_HOME = Path(os.environ.get("HUBKIT_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hubkit")

from _isolated import isolate  # noqa: E402  (the script's folder is on sys.path)

work, PORT = isolate("eval")
os.environ["TRANSFORMERS_VERBOSITY"] = "error"

from hubkit.hub import start_local_hub  # noqa: E402
from hubkit.hub.server.auth import Users  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the default question counts")
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()

    import torch
    from huggingface_hub import HfApi

    from hubkit.eval.harness import BenchmarkData
    from hubkit.eval.lm import LM
    from hubkit.eval.metrics.multiple_choice import scores
    from hubkit.eval.tasks import build_instances, get_suite
    from hubkit.hub.seed import seed
    from hubkit.models import convert_bundled

    torch.set_num_threads(os.cpu_count() or 1)
    token = Users(work / "hub").add_user("bench", orgs=["hubkit-data"])
    server = start_local_hub(work / "hub", port=PORT, detach=False)
    try:
        seed(["mmlu", "hellaswag"], api=HfApi(endpoint=server.url, token=token), progress=False)
        model_dir = convert_bundled("smollm2", cache_dir=_REAL_HOME / "models" / "smollm2")
        lm = LM.load(str(model_dir), batch_size=args.batch_size)
        data = BenchmarkData("hubkit-data")
        rows = []
        for name, n in (("mmlu", 24), ("hellaswag", 12)):
            run = get_suite(name, limit=max(2, int(n * args.scale)))[0]
            task = run.task
            docs = data.split(task.repo, task.split, name)[0]
            shots = data.split(task.repo, task.shots_split, name)[0] if task.shots_split else None
            instances = build_instances(run, docs, shots)
            requests = [r for inst in instances for r in inst.requests]
            tokens = sum(len(lm._encode(c + x, special=True)) for c, x in requests)
            timings, answers = {}, {}
            for method, shared in (("one pass per choice", False), ("hubkit shared context", True)):
                lm.loglikelihood(requests[:2], share_prefix=shared)  # warm-up
                started = time.perf_counter()
                results = lm.loglikelihood(requests, share_prefix=shared)
                timings[method] = time.perf_counter() - started
                it = iter(results)
                per = []
                for inst in instances:
                    values = [next(it).logprob for _ in inst.requests]
                    per.append(scores(values, task.labels(inst.doc), [len(c.encode()) for _, c in inst.requests]))
                answers[method] = per
            metric = task.metrics[0]
            diff = max(abs(a[metric] - b[metric]) for a, b in zip(*answers.values()))
            score = 100 * sum(p[metric] for p in answers["hubkit shared context"]) / len(instances)
            peer, ours = timings["one pass per choice"], timings["hubkit shared context"]
            rows.append((f"{name} ({run.n_shot}-shot)", len(instances), len(requests), tokens, peer, ours,
                         peer / ours, diff, f"{metric} {score:.1f}"))
        print(f"\nSmolLM2-135M-Instruct, float32, batch {args.batch_size}, {torch.get_num_threads()} threads "
              f"({'GPU' if torch.cuda.is_available() else 'CPU'})\n")
        head = ("benchmark", "questions", "requests", "tokens", "per-choice s", "hubkit s", "speed-up",
                "max score diff", "score")
        print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
        for r in rows:
            print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:,} | {r[4]:.1f} | {r[5]:.1f} | {r[6]:.2f}x | {r[7]:g} | {r[8]} |")
        total_peer, total_ours = sum(r[4] for r in rows), sum(r[5] for r in rows)
        print(f"\noverall speed-up {total_peer / total_ours:.2f}x (target >= 3x); "
              f"max score difference {max(r[7] for r in rows):g} (target 0)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
