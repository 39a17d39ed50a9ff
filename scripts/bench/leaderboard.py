"""Leaderboard latency, server side: first render and filtering at 1,027 and 10,000 models, in one run.

    python scripts/bench/leaderboard.py

A local Hub holds two results datasets: the study's released CSV imported (1,027 models, 29,612 rows), and
the same rows replicated under new run ids to 10,000 models (~288,000 rows). For each:
  - first render: download `data/results.parquet`, build the board, compute the initial view and serialise
    it as the Dataframe component sends it (the table shows the best 1,000 rows; counts, filters and the
    CSV export cover all) (target <= 2 s);
  - filter: a filter or search change, view + serialisation, median over 20 different changes (target
    <= 200 ms).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from _isolated import isolate

work, PORT = isolate("leaderboard")

from hubkit.hub import start_local_hub  # noqa: E402
from hubkit.hub.server.auth import Users  # noqa: E402

STUDY = Path(__file__).resolve().parents[3] / "shared" / "data" / "massive_sft_results" / "evaluation_result.csv"


def main() -> None:
    import gradio as gr
    import pandas as pd
    from huggingface_hub import HfApi

    from hubkit.publish import push_results
    from hubkit.results import ResultsTable, import_massive_sft_csv
    from hubkit.space import SPACE_DIR

    sys.path.insert(0, str(SPACE_DIR))
    from leaderboard import AXES, MAX_ROWS, Board, load_results

    token = Users(work / "hub").add_user("bench")
    server = start_local_hub(work / "hub", port=PORT, detach=False)
    api = HfApi(endpoint=server.url, token=token)
    try:
        study = import_massive_sft_csv(STUDY)
        push_results(study, "bench/study", "study", api=api)
        copies = []
        for k in range(10):
            part = study.frame.copy()
            part["run_id"] = part["run_id"] + f"-copy{k}"
            part["data_size"] = part["data_size"] + k
            copies.append(part)
        big = pd.concat(copies, ignore_index=True)
        big = big[big["run_id"].isin(big["run_id"].drop_duplicates().iloc[:10_000])]
        push_results(ResultsTable(big, "bench"), "bench/big", "big", api=api)
        component = gr.Dataframe()
        table = []
        for repo in ("bench/study", "bench/big"):
            started = time.perf_counter()
            board = Board(load_results(repo, endpoint=server.url, token=token), endpoint=server.url)
            component.postprocess(board.view().head(MAX_ROWS))
            first = time.perf_counter() - started
            changes = []
            choices = {a: board.choices(a) for a in AXES}
            for i in range(20):
                axis = AXES[i % len(AXES)]
                filters = {axis: choices[axis][i % len(choices[axis]):][:2]}
                search = ["qwen", "lora", "math", "e3", ""][i % 5]
                t = time.perf_counter()
                component.postprocess(board.view(search, filters, ["math", "code"] if i % 2 else None,
                                                 "gain" if i % 3 else "score").head(MAX_ROWS))
                changes.append(time.perf_counter() - t)
            table.append((repo, len(board.meta), len(board.long), first, statistics.median(changes), max(changes)))
        print("\n| results | models | rows | first render | filter (median) | filter (max) |\n|---|---|---|---|---|---|")
        for repo, models, rows, first, median, worst in table:
            print(f"| {repo} | {models:,} | {rows:,} | {first:.2f} s | {1000 * median:.0f} ms | {1000 * worst:.0f} ms |")
        print("\ntargets: first render <= 2 s, filter <= 200 ms")
    finally:
        server.stop()


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    main()
