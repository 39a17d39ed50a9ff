"""Publishing 200 tiny runs and aggregating their results, with the HTTP requests each publish costs.

    python scripts/bench/publish.py               # 200 runs
    python scripts/bench/publish.py --runs 20     # a quick look

One tiny run is trained; the other runs are copies of it under their own run ids (distinct configs, the
same small weights), so the numbers measure publishing, not training. Every request the official client
sends is counted through its client factory (`huggingface_hub.set_client_factory`), with the bytes of
the request bodies.

Measures:
  1. HTTP requests per first publish of a run (target <= 6), and per unchanged re-publish (target <= 2,
     0 bytes of file content)
  2. wall time of publishing every run, and of aggregating one result row per run into a results dataset
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

from _isolated import isolate  # the script's folder is on sys.path

work, PORT = isolate("publish")

import os  # noqa: E402

os.environ["TRANSFORMERS_VERBOSITY"] = "error"

import httpx2  # noqa: E402
import huggingface_hub  # noqa: E402
from huggingface_hub.utils._http import hf_request_event_hook  # noqa: E402

from hubkit.config import RunSpec  # noqa: E402
from hubkit.hub import start_local_hub  # noqa: E402
from hubkit.hub.server.auth import Users  # noqa: E402
from hubkit.models import build_tiny_model  # noqa: E402
from hubkit.runs import RunDir, RunRecord  # noqa: E402


class Counter:
    """Requests and request-body bytes sent by the client, since the last `reset`."""

    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0
        self.paths: list[str] = []

    def reset(self) -> None:
        self.requests, self.bytes, self.paths = 0, 0, []

    def hook(self, request: httpx2.Request) -> None:
        self.requests += 1
        self.paths.append(f"{request.method} {request.url.path}")
        length = request.headers.get("content-length")
        self.bytes += int(length) if length and length.isdigit() else 0


COUNTER = Counter()
huggingface_hub.set_client_factory(lambda: httpx2.Client(
    event_hooks={"request": [hf_request_event_hook, COUNTER.hook]}, follow_redirects=True, timeout=None))


def make_runs(template: Path, out: Path, n: int) -> list[Path]:
    """n copies of one run under distinct run ids (the seed in their config differs)."""
    import yaml

    dirs = []
    for i in range(n):
        target = out / f"{template.name[:80]}-{i:03d}"
        shutil.copytree(template, target)
        config = yaml.safe_load((target / "config.yaml").read_text())
        config["seed"] = 1000 + i
        (target / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        paths = RunDir(target)
        record = RunRecord.read(paths.record_file)
        record.run_id = target.name
        record.write(paths.record_file)
        dirs.append(target)
    return dirs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()

    root = work / "hub"
    os.environ["HF_TOKEN"] = Users(root).add_user("hubkit", orgs=["hubkit-data", "bench"])
    hub = start_local_hub(root, port=PORT, detach=False)
    try:
        import pandas as pd

        from hubkit.hub import get_api, push_folder
        from hubkit.hub.seed import seed
        from hubkit.publish import publish_run, push_results
        from hubkit.results import COLUMNS, ResultsTable
        from hubkit.train import train

        api = get_api()
        seed(["lima"], progress=False)
        build_tiny_model(work / "tiny", seed=0)
        api.create_repo("bench/tiny-base", exist_ok=True)
        push_folder("bench/tiny-base", work / "tiny", api=api)
        run = train(RunSpec(model="bench/tiny-base", dataset="lima", data_size=16, epochs=1, batch_size=8,
                            max_length=128, output_dir=str(work / "runs")), progress=False)
        dirs = make_runs(run.run_dir, work / "copies", args.runs)

        first, again, first_bytes, again_bytes = [], [], [], []
        started = time.perf_counter()
        for d in dirs:
            COUNTER.reset()
            publish_run(d, repo_id=f"bench/{d.name}", api=api)
            first.append(COUNTER.requests)
            first_bytes.append(COUNTER.bytes)
        publish_seconds = time.perf_counter() - started
        example_paths = list(COUNTER.paths)
        for d in dirs:
            COUNTER.reset()
            result = publish_run(d, repo_id=f"bench/{d.name}", api=api)
            assert not result.changed
            again.append(COUNTER.requests)
            again_bytes.append(COUNTER.bytes)

        rows = [dict.fromkeys(COLUMNS) | {"model_id": f"bench/{d.name}", "has_repo": True, "run_id": d.name,
                                              "base_model": "bench/tiny-base", "dataset": "lima", "data_size": 16,
                                              "tuning": "full", "epochs": 1, "lr_schedule": "cosine",
                                              "benchmark": "gsm8k", "n_shot": 4, "metric": "exact_match",
                                              "score": float(i % 7), "source": "hubkit"} for i, d in enumerate(dirs)]
        started = time.perf_counter()
        pushed = push_results(ResultsTable(pd.DataFrame(rows, columns=COLUMNS), "hubkit"), "bench/results",
                              "bench", api=api)
        aggregate_seconds = time.perf_counter() - started
    finally:
        hub.stop()

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"publishing {len(dirs)} tiny runs (one commit each) on a local Hub")
    for col in ("measure", "value", "target"):
        table.add_column(col)
    table.add_row("requests per first publish (median / max)", f"{statistics.median(first):g} / {max(first)}",
                  "<= 6")
    table.add_row("requests per unchanged re-publish (median / max)",
                  f"{statistics.median(again):g} / {max(again)}", "<= 2")
    table.add_row("request bytes per unchanged re-publish (max)", f"{max(again_bytes):,}", "0 bytes of files")
    table.add_row("request bytes per first publish (median)", f"{statistics.median(first_bytes):,.0f}", "")
    table.add_row("wall time, all first publishes", f"{publish_seconds:.1f} s "
                  f"({publish_seconds / len(dirs) * 1000:.0f} ms per run)", "")
    table.add_row("aggregate one row per run into a results dataset", f"{aggregate_seconds:.2f} s "
                  f"({pushed.rows} rows)", "")
    Console().print(table)
    Console().print("requests of the last first publish: " + ", ".join(example_paths))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
