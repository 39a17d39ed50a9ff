"""The leaderboard's table build beside the pandas floor, in one process, interleaved rounds.

    python scripts/bench/board.py                      # 100,000 and 1,000,000 result rows
    python scripts/bench/board.py --rows 100000 --rounds 5

A results parquet file of N models x 10 benchmarks (the results schema, as `hubkit publish` writes it) is built
once per size. Each round then times, in turn:

  - the pandas floor: read the file's run, benchmark and score columns, pivot to one row per model, sort by the
    mean score, take the first 50 rows;
  - the Space: `read_table` + `Board(...)` + its first page (`Board.page()`: ranked over every model).

Target (issue 36): the Space <= 2x the floor at both sizes. The first page is checked against the floor's (the
scores in the file, ordered by its average).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "spaces" / "leaderboard"))

BENCHMARKS = [("mmlu", 5), ("gsm8k", 4), ("hellaswag", 10), ("arc_challenge", 25), ("truthfulqa", 0),
              ("humaneval", 0), ("mbpp", 3), ("boolq", 0), ("winogrande", 5), ("math500", 4)]


def results_file(folder: Path, n_rows: int) -> Path:
    """N/10 models x 10 benchmarks in the results schema, written with pandas as publishing does."""
    rng = np.random.default_rng(0)
    models = n_rows // len(BENCHMARKS)
    i = np.repeat(np.arange(models), len(BENCHMARKS))
    bench = np.tile(np.arange(len(BENCHMARKS)), models)
    bases = np.array(["Qwen/Qwen2.5-7B", "meta-llama/Llama-3.1-8B", "allenai/OLMo-2-7B", "mistralai/Mistral-7B-v0.3"])
    data = np.array(["alpaca", "lima", "gsm8k_train", "code_alpaca", "flan_cot", "oasst1", "dolly", "sharegpt"])
    run_id = pd.Series(i).map("run-{:07d}".format)
    score = rng.uniform(0, 100, len(i)).round(2)
    frame = pd.DataFrame({
        "model_id": "sweep/" + run_id, "has_repo": True, "run_id": run_id, "model_revision": "main",
        "base_revision": "main", "base_model": bases[i % len(bases)], "dataset": data[i % len(data)],
        "data_size": np.array([1000, 2000, 4000, 8000])[i % 4], "tuning": np.where(i % 2, "lora", "full"),
        "epochs": 1 + i % 3, "lr_schedule": np.where(i % 5, "cosine", "constant"),
        "benchmark": np.array([b for b, _ in BENCHMARKS])[bench], "n_shot": np.array([s for _, s in BENCHMARKS])[bench],
        "metric": None, "headline": True, "scale": "percent", "higher_is_better": True, "score": score,
        "base_score": 40.0, "gain": score - 40.0, "n_samples": 100, "n_total": 100, "subset": False,
        "harness": "hubkit", "harness_version": "0.1.0", "judge": None, "source": "hubkit", "source_file": None,
        "evaluated_at": "2026-12-07T00:00:00Z",
    })
    path = folder / f"results-{n_rows}.parquet"
    frame.to_parquet(path, index=False)
    return path


def floor(path: Path) -> pd.DataFrame:
    long = pd.read_parquet(path, columns=["run_id", "benchmark", "score"])
    wide = long.pivot(index="run_id", columns="benchmark", values="score")
    return wide.assign(average=wide.mean(axis=1)).sort_values("average", ascending=False).head(50)


def same_scores(path: Path, page) -> bool:
    """The page's scores are the file's, model by model and benchmark by benchmark, and its order is by average."""
    long = pd.read_parquet(path, columns=["run_id", "benchmark", "n_shot", "score"])
    long["column"] = long["benchmark"] + "-" + long["n_shot"].astype(str) + "shot"
    wide = long.pivot(index="run_id", columns="column", values="score")
    frame = page.frame.set_index("model")
    shown = [c for c in frame.columns if c in wide.columns]
    ordered = frame["average"].is_monotonic_decreasing
    return bool(shown) and ordered and np.allclose(frame[shown].to_numpy(float), wide.loc[frame.index, shown].round(2))


def space(path: Path):
    from hubkit.space import space_module

    Board, read_table = space_module().Board, space_module().read_table

    return Board(read_table(path)).page()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="100000,1000000", help="comma-separated result-row counts")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    space(results_file(Path(tempfile.mkdtemp()), 1000))  # imports and first-call costs out of the rounds
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        for n_rows in (int(n) for n in args.rows.split(",")):
            path = results_file(Path(tmp), n_rows)
            times: dict[str, list[float]] = {"floor": [], "space": []}
            for _ in range(args.rounds):
                t = time.perf_counter()
                top = floor(path)
                times["floor"].append(time.perf_counter() - t)
                t = time.perf_counter()
                page = space(path)
                times["space"].append(time.perf_counter() - t)
            same = same_scores(path, page) and len(top) == 50
            f, s = statistics.median(times["floor"]), statistics.median(times["space"])
            table.append((f"{n_rows:,} rows ({n_rows // len(BENCHMARKS):,} models x {len(BENCHMARKS)})",
                          f"{f:.2f} s", f"{s:.2f} s", f"{s / f:.2f}x", "<= 2x", "yes" if same else "NO"))
    header = ("results", "pandas floor", "Board + first page", "ratio", "target", "page = file")
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *table]:
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    print(f"median of {args.rounds} interleaved rounds each")


if __name__ == "__main__":
    main()
