"""Layer diff: hubkit vs modeldelta, vs the I/O floor, remote bytes, and LoRA analytic vs merge-then-diff.

    pip install modeldelta                # the peer (PyPI); not a hubkit dependency
    python scripts/bench/layerdiff.py     # SmolLM2-135M-Instruct vs a perturbed copy (float32, 540 MB each)

Each measured side runs in a child process of its own, which reports its wall time and peak RSS:
  1. hubkit `layer_diff` (local files) vs `modeldelta.core.weight_diff.compare_models` on the same pair;
     modeldelta always adds an SVD per tensor (no flag turns it off), so the shared metrics — relative
     Frobenius norm and cosine — are compared for equality. Targets: >= 2x faster at <= 0.5x peak RSS.
  2. the I/O floor: reading both files once, in 16 MB blocks (target: hubkit <= 1.3x of it).
  3. hubkit's peak RSS against 2x the largest tensor + 300 MB.
  4. remote (Range reads from a local Hub): bytes fetched vs the bytes of the tensors (target <= 1.05x).
  5. a rank-16 LoRA adapter on every projection: hubkit's analytic diff (all tensors, and `adapted_only`) vs
     merging with peft and diffing the merged weights, 3 interleaved rounds (target >= 10x).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

_REAL_HOME = Path(os.environ.get("HUBKIT_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hubkit")

from _isolated import isolate  # noqa: E402  (the script's folder is on sys.path)

work, PORT = isolate("layerdiff")

CHILD = textwrap.dedent("""
    import json, sys, time
    started = time.perf_counter()
    out = {}
    exec(sys.argv[1])
    out["seconds"] = time.perf_counter() - started
    # VmHWM: this process's own high-water mark (ru_maxrss would carry the parent's across fork/exec)
    hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    out["peak_rss_mb"] = int(hwm.split()[1]) / 1024
    print("RESULT " + json.dumps(out))
""")


def child(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, textwrap.dedent(code)], capture_output=True, text=True,
                          env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"child failed:\n{proc.stderr[-2000:]}")
    return json.loads(line[7:])


def main() -> None:
    import numpy as np
    from safetensors.numpy import load_file, save_file

    from hubkit.models import convert_bundled

    base = convert_bundled("smollm2", cache_dir=_REAL_HOME / "models" / "smollm2")
    tuned = work / "perturbed"
    tuned.mkdir()
    rng = np.random.default_rng(0)
    weights = load_file(str(base / "model.safetensors"))
    largest = max(v.nbytes for v in weights.values())
    save_file({k: (v + 1e-3 * rng.standard_normal(v.shape).astype(v.dtype) * (np.abs(v).mean() + 1e-8)).astype(v.dtype)
               for k, v in weights.items()}, str(tuned / "model.safetensors"))
    for f in ("config.json",):
        (tuned / f).write_bytes((base / f).read_bytes())
    adapter = work / "adapter"
    adapter.mkdir()
    lora = {}
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    for name, v in weights.items():
        if any(t in name for t in targets) and name.endswith(".weight"):
            stem = "base_model.model." + name[: -len(".weight")]
            lora[f"{stem}.lora_A.weight"] = (0.01 * rng.standard_normal((16, v.shape[1]))).astype(np.float32)
            lora[f"{stem}.lora_B.weight"] = (0.01 * rng.standard_normal((v.shape[0], 16))).astype(np.float32)
    save_file(lora, str(adapter / "adapter_model.safetensors"))
    (adapter / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 16, "lora_alpha": 32, "lora_dropout": 0.0,
        "target_modules": targets, "base_model_name_or_path": str(base), "bias": "none"}))
    del weights
    b, t, a = str(base), str(tuned), str(adapter)

    floor = child(f"""
        for path in ({b!r} + "/model.safetensors", {t!r} + "/model.safetensors"):
            with open(path, "rb") as f:
                while f.read(16 << 20):
                    pass
    """)
    ours = child(f"""
        from hubkit.analysis.layerdiff import layer_diff
        table = layer_diff({b!r}, [{t!r}], progress=False)
        out["metrics"] = {{r.tensor: [r.rel_change, r.cosine] for r in table.itertuples()}}
    """)
    peer = child(f"""
        from modeldelta.core.weight_diff import compare_models
        from modeldelta.utils.model_loader import get_tensor_map
        results, skipped = compare_models(get_tensor_map({b!r}), get_tensor_map({t!r}))
        out["metrics"] = {{r["name"]: [r["frob_norm_relative"], r["cosine_sim"]] for r in results}}
    """)
    common = sorted(set(ours["metrics"]) & set(peer["metrics"]))
    rel = max(abs(ours["metrics"][n][0] - peer["metrics"][n][0]) / max(abs(ours["metrics"][n][0]), 1e-12)
              for n in common)
    cos = max(abs(ours["metrics"][n][1] - peer["metrics"][n][1]) for n in common)

    # remote: push both to a local Hub, diff by Range reads, count the bytes fetched
    from huggingface_hub import HfApi

    from hubkit.hub import push_folder, start_local_hub
    from hubkit.hub.server.auth import Users

    token = Users(work / "hub").add_user("bench")
    server = start_local_hub(work / "hub", port=PORT, detach=False)
    try:
        api = HfApi(endpoint=server.url, token=token)
        for repo, folder in (("bench/base", base), ("bench/tuned", tuned)):
            api.create_repo(repo, exist_ok=True)
            push_folder(repo, folder, commit_message="weights", api=api)
        remote = child(f"""
            import os
            os.environ["HF_TOKEN"] = {token!r}
            from hubkit.analysis.layerdiff import layer_diff
            stats = {{}}
            layer_diff("bench/base", ["bench/tuned"], progress=False, stats=stats)
            out.update(stats)
        """)
    finally:
        server.stop()

    lora_sides = {
        "analytic": f"""
            from hubkit.analysis.layerdiff import layer_diff
            layer_diff({b!r}, [{a!r}], progress=False)
        """,
        "adapted": f"""
            from hubkit.analysis.layerdiff import layer_diff
            layer_diff({b!r}, [{a!r}], progress=False, adapted_only=True)
        """,
        "merged": f"""
            import torch
            from peft import PeftModel
            from transformers import AutoModelForCausalLM
            from hubkit.analysis.layerdiff import layer_diff
            model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained({b!r}, dtype=torch.float32), {a!r})
            model.merge_and_unload().save_pretrained({str(work / "merged")!r})
            layer_diff({b!r}, [{str(work / "merged")!r}], progress=False)
        """}
    lora_times: dict[str, list[float]] = {k: [] for k in lora_sides}
    for _ in range(3):  # interleaved rounds, each side a fresh process (imports included, as a user runs it)
        for k, code in lora_sides.items():
            lora_times[k].append(child(code)["seconds"])
    analytic, adapted, merged = (sorted(lora_times[k])[1] for k in ("analytic", "adapted", "merged"))

    print(f"\nSmolLM2-135M-Instruct ({len(ours['metrics'])} tensors, float32, largest {largest / 2**20:.0f} MB) "
          "vs a perturbed copy; each side in its own process\n")
    print("| measure | hubkit | comparison | ratio | target |\n|---|---|---|---|---|")
    print(f"| wall time vs modeldelta | {ours['seconds']:.1f} s | {peer['seconds']:.1f} s | "
          f"{peer['seconds'] / ours['seconds']:.2f}x faster | >= 2x |")
    print(f"| peak RSS vs modeldelta | {ours['peak_rss_mb']:.0f} MB | {peer['peak_rss_mb']:.0f} MB | "
          f"{ours['peak_rss_mb'] / peer['peak_rss_mb']:.2f}x | <= 0.5x |")
    print(f"| wall time vs I/O floor (read both files) | {ours['seconds']:.1f} s | {floor['seconds']:.1f} s | "
          f"{ours['seconds'] / floor['seconds']:.2f}x | <= 1.3x |")
    budget = 2 * largest / 2**20 + 300
    print(f"| peak RSS vs 2x largest tensor + 300 MB | {ours['peak_rss_mb']:.0f} MB | {budget:.0f} MB | "
          f"{ours['peak_rss_mb'] / budget:.2f}x | <= 1x |")
    print(f"| remote bytes fetched vs tensor bytes | {remote['bytes_read'] / 2**20:.1f} MB | "
          f"{remote['tensor_bytes'] / 2**20:.1f} MB | {remote['bytes_read'] / remote['tensor_bytes']:.4f}x | <= 1.05x |")
    print(f"| LoRA r=16 analytic vs merge-then-diff (median of 3) | {analytic:.2f} s | {merged:.2f} s | "
          f"{merged / analytic:.1f}x faster | >= 10x |")
    print(f"| LoRA r=16 analytic, adapted tensors only, vs merge-then-diff | {adapted:.2f} s | {merged:.2f} s | "
          f"{merged / adapted:.1f}x faster | >= 10x |")
    print(f"\nsame metrics on {len(common)} common tensors: max relative difference of ‖ΔW‖/‖W‖ {rel:.1e}, "
          f"max |Δ cosine| {cos:.1e} (modeldelta computes in float32, hubkit in float64)")


if __name__ == "__main__":
    main()
