"""The leaderboard as a user sees it: timed in a real browser, beside a trivial Gradio app, in one run.

    python scripts/bench/leaderboard.py                          # 1,027, 10,000 and 100,000 models
    python scripts/bench/leaderboard.py --models 1027,10000 --rounds 5

A local Hub holds the study's released results (1,027 models, 29,612 rows) and copies of them under new run
ids up to each size (10,000 models: ~288,000 rows; 100,000: ~2.9 million). Each leaderboard runs as the Space
runs (`python spaces/leaderboard/app.py`, its own process, reading its results dataset from the Hub), and so
does the peer: a trivial Gradio app whose page is a search box and one 50-row table as wide as the leaderboard's
opening table (rank, model, average and every benchmark: the same cells to draw). Debian's chromium, driven
by Playwright, then measures, per app and round (the apps interleaved, each round a fresh browser page):

  - first render: from navigation to the first row of the table visible;
  - filter: from typing a search (one change event) to the table showing the new rows (median of 4 searches).

Each round's ratio divides by the trivial app's time in the same round. Server RSS is read from /proc once the
rounds are done. Targets: at 10,000 and 100,000 models, first row <= 1.2x and a search update <= 1.3x the
trivial app's (issue 37); first render <= 2 s and filter <= 300 ms at 10,000 models; RSS <= 1 GB at 100,000.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _isolated import isolate

work, PORT = isolate("leaderboard")

from hubkit.hub import start_local_hub  # noqa: E402
from hubkit.hub.server.auth import Users  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
STUDY = ROOT.parent / "shared" / "data" / "massive_sft_results" / "evaluation_result.csv"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SEARCHES = ["lora", "qwen", "math", "e3"]
FIRST_CELL = "() => document.querySelector('#table .virtual-row .body-cell')?.innerText.trim() || ''"

TRIVIAL_APP = '''
import gradio as gr, pandas as pd, numpy as np, os
rng = np.random.default_rng(0)
columns = int(os.environ["COLUMNS"])  # the leaderboard's opening table: rank, model, average, the benchmarks
frame = pd.DataFrame({"model": [f"model-{i:03d}-" + ("lora" if i % 2 else "full") + ("-qwen" if i % 3 else "-math")
                                + ("-e3" if i % 5 else "") for i in range(50)],
                      **{f"bench-{k}": rng.uniform(0, 100, 50).round(2) for k in range(columns - 1)}})
with gr.Blocks() as demo:
    search = gr.Textbox(label="Search", elem_id="search")
    count = gr.Markdown(f"{len(frame)} models", elem_id="count")
    table = gr.Dataframe(frame, elem_id="table", interactive=False)
    search.change(lambda s: (frame[frame["model"].str.contains(s or "")], f"{frame['model'].str.contains(s or '').sum()} models"),
                  search, [table, count])
demo.launch(server_name="127.0.0.1", server_port=int(os.environ["PORT"]))
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 600) -> float:
    import httpx

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"the app at {url} exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the app at {url} did not answer in {timeout} s")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def publish(api, models: int, study) -> str:
    """A results dataset of `models` models: the study's rows, copied under new run ids (one commit)."""
    import pandas as pd

    from hubkit.hub import push_folder
    from hubkit.publish import push_results
    from hubkit.results import normalize

    repo = f"bench/results-{models}"
    if models <= study.frame["run_id"].nunique():
        push_results(study, repo, "study", api=api)
        return repo
    runs = study.frame["run_id"].drop_duplicates()
    copies, made = [], 0
    k = 0
    while made < models:
        part = study.frame.copy()
        if k:
            part["run_id"] = part["run_id"] + f"-copy{k}"
            part["data_size"] = part["data_size"] + k
        keep = runs.iloc[: models - made]
        copies.append(part[part["run_id"].isin(keep + (f"-copy{k}" if k else ""))])
        made += len(keep)
        k += 1
    frame = normalize(pd.concat(copies, ignore_index=True))
    folder = work / f"upload-{models}"
    (folder / "data").mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "data" / "results.parquet", index=False)
    api.create_repo(repo, repo_type="dataset", exist_ok=True)
    push_folder(repo, folder, repo_type="dataset", commit_message=f"{models} models", api=api)
    return repo


def opening_width(study) -> int:
    """Columns of the leaderboard's opening table over the study's results (the trivial app's table is as wide)."""
    sys.path.insert(0, str(ROOT / "spaces" / "leaderboard"))
    import board

    return len(board.Board(study.frame).page(groups=[]).frame.columns)


def start_app(name: str, env: dict, script: list[str]) -> tuple[str, subprocess.Popen]:
    port = free_port()
    proc = subprocess.Popen(script, env={**os.environ, **env, "PORT": str(port), "GRADIO_SERVER_PORT": str(port),
                                         "GRADIO_ANALYTICS_ENABLED": "False"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    url = f"http://127.0.0.1:{port}/"
    seconds = wait_http(url, proc)
    print(f"  {name}: serving after {seconds:.1f} s", flush=True)
    return url, proc


def measure(browser, url: str) -> tuple[float, list[float]]:
    """(first render, [filter updates]) in seconds, on a fresh page."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        started = time.perf_counter()
        page.goto(url)
        page.wait_for_function(f"() => ({FIRST_CELL})() !== ''", timeout=120_000, polling="raf")
        first = time.perf_counter() - started
        updates = []
        box = page.locator("#search textarea, #search input").first
        for text in SEARCHES:
            before = page.evaluate(f"() => [({FIRST_CELL})(), document.querySelector('#count')?.innerText]")
            started = time.perf_counter()
            box.fill(text)
            page.wait_for_function(
                f"b => {{ const now = [({FIRST_CELL})(), document.querySelector('#count')?.innerText];"
                " return now[0] !== b[0] || now[1] !== b[1]; }", arg=before, timeout=60_000, polling="raf")
            updates.append(time.perf_counter() - started)
        box.fill("")
        page.wait_for_timeout(300)
        return first, updates
    finally:
        context.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="1027,10000,100000", help="comma-separated leaderboard sizes")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    sizes = [int(s) for s in args.models.split(",")]

    from huggingface_hub import HfApi
    from playwright.sync_api import sync_playwright

    from hubkit.importers import import_massive_sft_csv

    token = Users(work / "hub").add_user("bench")
    server = start_local_hub(work / "hub", port=PORT, detach=False)
    api = HfApi(endpoint=server.url, token=token)
    procs: list[subprocess.Popen] = []
    try:
        study = import_massive_sft_csv(STUDY)
        apps: dict[str, tuple[str, subprocess.Popen]] = {}
        trivial = work / "trivial_app.py"
        trivial.write_text(TRIVIAL_APP)
        apps["trivial (50 rows)"] = start_app("trivial app", {"COLUMNS": str(opening_width(study))},
                                              [sys.executable, str(trivial)])
        for models in sizes:
            repo = publish(api, models, study)
            apps[f"{models:,} models"] = start_app(
                f"leaderboard, {models:,} models",
                {"HUBKIT_RESULTS_REPO": repo, "HF_ENDPOINT": server.url, "HF_TOKEN": token},
                [sys.executable, "spaces/leaderboard/app.py"])
        procs = [p for _, p in apps.values()]
        firsts: dict[str, list[float]] = {name: [] for name in apps}
        filters: dict[str, list[float]] = {name: [] for name in apps}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
            for url, _ in apps.values():  # one unmeasured visit each: the browser's own first start
                measure(browser, url)
            for r in range(args.rounds):
                for name, (url, _) in apps.items():
                    first, updates = measure(browser, url)
                    firsts[name].append(first)
                    filters[name].extend(updates)
                print(f"  round {r + 1}/{args.rounds} done", flush=True)
            browser.close()
        peers = firsts["trivial (50 rows)"]
        peer_filters = filters["trivial (50 rows)"]
        print("\n| app | first row visible (median) | vs trivial app, paired by round (median, range) | "
              "search -> rows updated (median) | vs trivial app, paired (median, range) | server RSS |")
        print("|---|---|---|---|---|---|")
        for name, (_, proc) in apps.items():
            # each round times the apps back to back: its ratio compares them under the same machine load
            paired = [a / b for a, b in zip(firsts[name], peers)]
            searched = [a / b for a, b in zip(filters[name], peer_filters)]
            print(f"| {name} | {statistics.median(firsts[name]):.2f} s | {statistics.median(paired):.2f}x "
                  f"({min(paired):.2f}-{max(paired):.2f}) | {1000 * statistics.median(filters[name]):.0f} ms | "
                  f"{statistics.median(searched):.2f}x ({min(searched):.2f}-{max(searched):.2f}) | "
                  f"{rss_mb(proc.pid):,.0f} MB |")
        print(f"\n{args.rounds} rounds of {len(SEARCHES)} searches, apps interleaved, Chromium at 1280x800; "
              "targets at 10,000 and 100,000 models: first row <= 1.2x and search <= 1.3x the trivial app")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        server.stop()


if __name__ == "__main__":
    main()
