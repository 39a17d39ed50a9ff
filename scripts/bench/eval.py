"""Multiple-choice log-likelihood: hubkit beside lm-eval's HF backend on the same requests, in one run.

    python -m venv --system-site-packages /tmp/lmeval && /tmp/lmeval/bin/pip install lm-eval   # the peer
    python scripts/bench/eval.py --lm-eval-python /tmp/lmeval/bin/python
    python scripts/bench/eval.py --lm-eval-python /tmp/lmeval/bin/python --scale 0.5 --rounds 1   # a quick look

SmolLM2-135M-Instruct (float32, CPU, the same batch size and threads on both sides) scores the (context, choice)
requests hubkit's tasks build for MMLU and HellaSwag at 0-shot and at the study's shot counts (MMLU 5-shot,
HellaSwag 10-shot). lm-eval runs in its own virtualenv (its pins are not hubkit's), in a child process handed
the very same requests (`HFLM.loglikelihood`); hubkit runs `LM.loglikelihood` in another. Each side's model is
loaded, warmed on two requests, then timed; the sides alternate per round. Checked: the same answer for every
question (argmax of the summed log-likelihoods) and the largest log-likelihood difference.
Target (issue 36): hubkit >= 1.3x lm-eval's throughput, answers identical.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

_REAL_HOME = Path(os.environ.get("HUBKIT_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hubkit")

from _isolated import isolate  # noqa: E402  (the script's folder is on sys.path)

work, PORT = isolate("eval")
os.environ["TRANSFORMERS_VERBOSITY"] = "error"

from hubkit.hub import start_local_hub  # noqa: E402
from hubkit.hub.server.auth import Users  # noqa: E402

HUBKIT_SIDE = textwrap.dedent("""
    import json, sys, time
    from hubkit.eval.lm import LM
    model, requests_file, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    requests = [tuple(r) for r in json.load(open(requests_file))]
    lm = LM.load(model, batch_size=batch)
    lm.loglikelihood(requests[:2])
    started = time.perf_counter()
    values = [r.logprob for r in lm.loglikelihood(requests)]
    print("RESULT " + json.dumps({"seconds": time.perf_counter() - started, "logprobs": values}))
""")

LM_EVAL_SIDE = textwrap.dedent("""
    import json, sys, time
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    model, requests_file, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    requests = [tuple(r) for r in json.load(open(requests_file))]
    lm = HFLM(pretrained=model, batch_size=batch, device="cpu", dtype="float32")
    wrap = lambda rs: [Instance(request_type="loglikelihood", doc={}, arguments=r, idx=i) for i, r in enumerate(rs)]
    lm.loglikelihood(wrap(requests[:2]), disable_tqdm=True)
    started = time.perf_counter()
    values = [v for v, _ in lm.loglikelihood(wrap(requests), disable_tqdm=True)]
    print("RESULT " + json.dumps({"seconds": time.perf_counter() - started, "logprobs": values}))
""")


def side(python: str, code: str, model: Path, requests: Path, batch: int) -> dict:
    proc = subprocess.run([python, "-c", code, str(model), str(requests), str(batch)], capture_output=True, text=True,
                          env={**os.environ, "TRANSFORMERS_VERBOSITY": "error", "TOKENIZERS_PARALLELISM": "false"})
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"{python} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[7:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lm-eval-python", required=True, help="an interpreter with lm-eval installed")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the default question counts")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from huggingface_hub import HfApi

    from hubkit.eval.harness import BenchmarkData
    from hubkit.eval.tasks import build_instances, get_suite
    from hubkit.hub.seed import seed
    from hubkit.models import convert_bundled

    token = Users(work / "hub").add_user("bench", orgs=["hubkit-data"])
    server = start_local_hub(work / "hub", port=PORT, detach=False)
    try:
        seed(["mmlu", "hellaswag"], api=HfApi(endpoint=server.url, token=token), progress=False)
        model_dir = convert_bundled("smollm2", cache_dir=_REAL_HOME / "models" / "smollm2")
        data = BenchmarkData("hubkit-data")
        settings = []
        for name, shots, n in (("mmlu", 0, 16), ("hellaswag", 0, 16), ("mmlu", None, 8), ("hellaswag", None, 8)):
            run = get_suite(name, limit=max(2, int(n * args.scale)), **({} if shots is None else {"n_shot": shots}))[0]
            docs = data.split(run.task.repo, run.task.split, name)[0]
            few = data.split(run.task.repo, run.task.shots_split, name)[0] if run.task.shots_split else None
            instances = build_instances(run, docs, few)
            settings.append((f"{name}, {run.n_shot}-shot", [len(i.requests) for i in instances],
                             [r for i in instances for r in i.requests]))
    finally:
        server.stop()
    rows = []
    for label, sizes, requests in settings:
        path = work / "requests.json"
        path.write_text(json.dumps(requests))
        times: dict[str, list[float]] = {"hubkit": [], "lm-eval": []}
        values: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for who, python, code in (("hubkit", sys.executable, HUBKIT_SIDE),
                                      ("lm-eval", args.lm_eval_python, LM_EVAL_SIDE)):
                out = side(python, code, model_dir, path, args.batch_size)
                times[who].append(out["seconds"])
                values[who] = out["logprobs"]
        answers = {}
        for who, v in values.items():
            it, picks = iter(v), []
            for k in sizes:
                scores = [next(it) for _ in range(k)]
                picks.append(scores.index(max(scores)))
            answers[who] = picks
        same = sum(a == b for a, b in zip(answers["hubkit"], answers["lm-eval"]))
        diff = max(abs(a - b) for a, b in zip(values["hubkit"], values["lm-eval"]))
        ours, peer = statistics.median(times["hubkit"]), statistics.median(times["lm-eval"])
        rows.append((label, len(sizes), len(requests), peer, ours, peer / ours, f"{same}/{len(sizes)}", diff))
    print(f"\nSmolLM2-135M-Instruct, float32, CPU, batch {args.batch_size}, median of {args.rounds} alternating rounds\n")
    head = ("setting", "questions", "requests", "lm-eval s", "hubkit s", "hubkit speed-up", "same answers",
            "max |Δ log-likelihood|")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.1f} | {r[4]:.1f} | {r[5]:.2f}x | {r[6]} | {r[7]:.1e} |")
    total_peer, total_ours = sum(r[3] for r in rows), sum(r[4] for r in rows)
    print(f"\noverall {total_peer / total_ours:.2f}x lm-eval's throughput (target >= 1.3x)")


if __name__ == "__main__":
    main()
