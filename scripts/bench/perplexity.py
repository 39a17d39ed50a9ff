"""Perplexity throughput: hubkit vs lm-eval's `HFLM.loglikelihood_rolling` vs a bare forward pass, in one run.

    pip install lm-eval                   # the peer (PyPI); not a hubkit dependency
    python scripts/bench/perplexity.py    # SmolLM2-135M-Instruct, 24 C4 documents

All sides score the same documents (C4 documents under 512 tokens) with the same model (float32, CPU
threads as available): full text, each token conditioned on the BOS token and everything before it
(the documents fit one 512-token window, so lm-eval's rolling windows and hubkit's coincide). Checked: summed log-likelihoods equal within 1e-6
relative. Targets: >= 0.95x the bare forward pass (the floor: one forward per document, no loss), and
>= 1.3x lm-eval's batched mode.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

_REAL_HOME = Path(os.environ.get("HUBKIT_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hubkit")

from _isolated import isolate  # noqa: E402  (the script's folder is on sys.path)

work, PORT = isolate("perplexity")
os.environ["TRANSFORMERS_VERBOSITY"] = "error"

from hubkit.hub import start_local_hub  # noqa: E402
from hubkit.hub.server.auth import Users  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    import torch
    from huggingface_hub import HfApi
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from hubkit.analysis.perplexity import perplexity, prefix_token, text_column
    from hubkit.eval.lm import LM
    from hubkit.hub.seed import seed
    from hubkit.models import convert_bundled

    token = Users(work / "hub").add_user("bench", orgs=["hubkit-data"])
    server = start_local_hub(work / "hub", port=PORT, detach=False)
    try:
        seed(["c4_demo"], api=HfApi(endpoint=server.url, token=token), progress=False)
        model_dir = convert_bundled("smollm2", cache_dir=_REAL_HOME / "models" / "smollm2")
        lm = LM.load(str(model_dir))
        # documents that fit one 512-token window, so that every method scores exactly the same tokens
        texts = [t for _, t in text_column("hubkit-data/c4_demo", None, 42)[0]
                 if len(lm.encode(t, special=False)) < 512][:args.docs]
        docs = work / "docs.jsonl"
        docs.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        tokens = sum(len(lm.encode(t, special=False)) for t in texts)
        rows = []

        started = time.perf_counter()
        with torch.inference_mode():
            for t in texts:  # the floor: one forward pass per document, nothing else
                lm.model(input_ids=torch.tensor([[prefix_token(lm.tokenizer)] + lm.encode(t, special=False)]))
        rows.append(("bare forward pass (batch 1)", time.perf_counter() - started, None))

        started = time.perf_counter()
        ours = perplexity(str(model_dir), str(docs), mode="full", batch_size=args.batch_size, progress=False,
                          use_cache=False, lm=lm)  # the model loaded once, as for the floor
        rows.append((f"hubkit perplexity (batch {args.batch_size})", time.perf_counter() - started, -ours.nll))

        for bs in (1, args.batch_size):
            peer = HFLM(pretrained=str(model_dir), batch_size=bs, device="cpu", dtype="float32", max_length=512)
            requests = [Instance(request_type="loglikelihood_rolling", doc={}, arguments=(t,), idx=i)
                        for i, t in enumerate(texts)]
            started = time.perf_counter()
            values = peer.loglikelihood_rolling(requests, disable_tqdm=True)
            rows.append((f"lm-eval loglikelihood_rolling (batch {bs})", time.perf_counter() - started, sum(values)))
            del peer

        floor = rows[0][1]
        lm_batched = rows[-1][1]
        print(f"\nSmolLM2-135M-Instruct, float32, {torch.get_num_threads()} threads, {len(texts)} C4 documents, "
              f"{tokens:,} tokens\n")
        print("| method | seconds | tokens/s | summed log-likelihood | vs bare forward | vs lm-eval batched |")
        print("|---|---|---|---|---|---|")
        for name, seconds, ll in rows:
            print(f"| {name} | {seconds:.1f} | {tokens / seconds:.0f} | {'' if ll is None else f'{ll:.4f}'} | "
                  f"{floor / seconds:.2f}x | {lm_batched / seconds:.2f}x |")
        reference = rows[2][2]
        worst = max(abs(r[2] - reference) / abs(reference) for r in rows[1:])
        print(f"\nmax relative difference of summed log-likelihoods: {worst:.2e} (target <= 1e-6)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
