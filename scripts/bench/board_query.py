"""A leaderboard page query over 100,000 models: the score matrices read by row position (`_take`, what the Space
does) against label lookups (`.loc[ids, columns]`, what it did before), interleaved in one process.

    python scripts/bench/board_query.py
"""
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "spaces" / "leaderboard"))
import board as lb  # noqa: E402
import pandas as pd  # noqa: E402

from hubkit.importers import import_massive_sft_csv  # noqa: E402
from hubkit.results import normalize  # noqa: E402

study = import_massive_sft_csv(ROOT.parent / "shared" / "data" / "massive_sft_results" / "evaluation_result.csv").frame
parts = []
for k in range(98):
    part = study.copy()
    if k:
        part["run_id"] = part["run_id"] + f"-copy{k}"
        part["data_size"] = part["data_size"] + k
    parts.append(part)
b = lb.Board(normalize(pd.concat(parts, ignore_index=True)))
by_position = lb.Board._take


def by_label(self, matrix, rows, ids, columns):
    return matrix.loc[ids, columns]



times = {"by position": [], "by label": []}
b.page(search="warm", groups=[])
for _ in range(10):
    for name, take in (("by position", by_position), ("by label", by_label)):
        lb.model.BoardData._take = take
        for q in ["lora", "qwen", "math", "e3", ""]:
            t = time.perf_counter()
            b.page(search=q, groups=[])
            times[name].append(time.perf_counter() - t)
lb.model.BoardData._take = by_position
a, c = statistics.median(times["by position"]), statistics.median(times["by label"])
print(f"{len(b.meta):,} models, 10 interleaved rounds x 5 searches: by position {a*1000:.0f} ms, by label {c*1000:.0f} ms (median), {c/a:.2f}x")
