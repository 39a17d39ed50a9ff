"""hubkit's Gride intrinsic-dimension estimator against dadapy's, on the same points, in one script.

    python scripts/bench/gride.py                                   # hubkit only (known answers)
    python scripts/bench/gride.py --dadapy-python /tmp/venv/bin/python   # side by side with dadapy

dadapy (the reference implementation, Glielmo et al.) pulls jax and flax and pins older numpy and pandas, so
hubkit implements Gride itself (`hubkit.analysis.modelspace.gride`); this script checks the two agree. Give
it a Python that has dadapy (`python -m venv /tmp/venv && /tmp/venv/bin/pip install dadapy`): dadapy runs
there, in a subprocess, on points generated from the same seed. Data: a Swiss roll (2-D) rotated into 50-D,
a 5-D Gaussian in 50-D, and 500 points of a 64-D subspace of 256-D (too few points for the true dimension:
estimates fall with scale, as they do on sentence embeddings). Scales n1 = 1, 2, 4, 8, 16 (n2 = 2·n1),
dadapy's `return_id_scaling_gride(range_max=32)`. Target: every estimate within 1 % of dadapy's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

DATA = r'''
import numpy as np
rng = np.random.default_rng(0)
n = 2000
u = rng.uniform(0, 1, (n, 2))
t, h = 1.5 * np.pi * (1 + 2 * u[:, 0]), 10 * u[:, 1]
Q, _ = np.linalg.qr(rng.normal(size=(50, 50)))
SETS = {
    "swiss roll, 2-D in 50-D (n=2000)": np.hstack([np.column_stack([t * np.cos(t), h, t * np.sin(t)]), np.zeros((n, 47))]) @ Q,
    "Gaussian, 5-D in 50-D (n=2000)": np.hstack([rng.normal(size=(n, 5)), np.zeros((n, 45))]) @ Q,
    "subspace, 64-D in 256-D (n=500)": rng.normal(size=(500, 64)) @ rng.normal(size=(64, 256)),
}
'''

DADAPY = DATA + r'''
import json, time
from dadapy import Data
out = {}
for name, X in SETS.items():
    start = time.perf_counter()
    d = Data(X)
    d.compute_distances(maxk=64)
    ids, _, _ = d.return_id_scaling_gride(range_max=32)
    out[name] = {"ids": [float(x) for x in ids], "seconds": time.perf_counter() - start}
print(json.dumps(out))
'''


def hubkit_side() -> dict:
    from hubkit.analysis.modelspace import gride_scaling

    scope: dict = {}
    exec(DATA, scope)
    out = {}
    for name, X in scope["SETS"].items():
        start = time.perf_counter()
        ids = [d for _, d, _ in gride_scaling(X, max_n1=16)]
        out[name] = {"ids": ids, "seconds": time.perf_counter() - start}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dadapy-python", help="A Python interpreter that has dadapy installed.")
    args = parser.parse_args()
    ours = hubkit_side()
    theirs = None
    if args.dadapy_python:
        done = subprocess.run([args.dadapy_python, "-c", DADAPY], capture_output=True, text=True, check=True)
        theirs = json.loads(done.stdout.strip().splitlines()[-1])
    header = "| data | n1 | hubkit | dadapy | hubkit / dadapy |" if theirs else "| data | n1 | hubkit |"
    print(header)
    print("|" + " --- |" * (header.count("|") - 1))
    worst = 0.0
    for name, result in ours.items():
        for k, value in enumerate(result["ids"]):
            row = f"| {name} | {2 ** k} | {value:.3f} |"
            if theirs:
                ref = theirs[name]["ids"][k]
                worst = max(worst, abs(value / ref - 1))
                row += f" {ref:.3f} | {value / ref:.4f} |"
            print(row)
    print()
    for name in ours:
        line = f"{name}: hubkit {ours[name]['seconds']:.2f} s"
        if theirs:
            line += f", dadapy {theirs[name]['seconds']:.2f} s (distances and all scales)"
        print(line)
    if theirs:
        print(f"\nLargest relative difference: {100 * worst:.2f} % (target: under 1 %) — "
              f"{'met' if worst < 0.01 else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(main())
