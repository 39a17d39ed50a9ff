"""The leaderboard server's resident size at 100,000 models as browsers visit it: the Space as it is (the heap
trimmed after each page, `board.trim_heap`) beside the same app with the trim disabled, visits interleaved.

    python scripts/bench/leaderboard_memory.py
    python scripts/bench/leaderboard_memory.py --models 10000 --visits 40

Each visit is a fresh Chromium page and four searches (`leaderboard.measure`); RSS is read from /proc.
"""

from __future__ import annotations

import argparse
import sys
import time

sys.argv, ARGS = sys.argv[:1], sys.argv[1:]  # the helpers' module parses nothing of ours
import leaderboard as bench  # noqa: E402  (sets up an isolated work folder and port)

NO_TRIM = """
import runpy, sys
sys.path.insert(0, {space!r})
import board
board.trim_heap = lambda: None
runpy.run_path({app!r}, run_name="__main__")
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=100_000)
    ap.add_argument("--visits", type=int, default=20)
    args = ap.parse_args(ARGS)
    from huggingface_hub import HfApi
    from playwright.sync_api import sync_playwright

    from hubkit.importers import import_massive_sft_csv

    token = bench.Users(bench.work / "hub").add_user("bench")
    server = bench.start_local_hub(bench.work / "hub", port=bench.PORT, detach=False)
    procs = []
    try:
        api = HfApi(endpoint=server.url, token=token)
        repo = bench.publish(api, args.models, import_massive_sft_csv(bench.STUDY))
        env = {"HUBKIT_RESULTS_REPO": repo, "HF_ENDPOINT": server.url, "HF_TOKEN": token}
        space = bench.ROOT / "spaces" / "leaderboard"
        wrapper = bench.work / "no_trim_app.py"
        wrapper.write_text(NO_TRIM.format(space=str(space), app=str(space / "app.py")))
        apps = {"as shipped (trim after each page)": bench.start_app("trim", env, [sys.executable, str(space / "app.py")]),
                "trim disabled": bench.start_app("no trim", env, [sys.executable, str(wrapper)])}
        procs = [p for _, p in apps.values()]
        time.sleep(3)
        rows = {name: [bench.rss_mb(p.pid)] for name, (_, p) in apps.items()}
        step = max(1, args.visits // 4)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=bench.CHROMIUM_ARGS)
            for i in range(args.visits):
                for name, (url, proc) in apps.items():
                    bench.measure(browser, url)
                    if (i + 1) % step == 0:
                        rows[name].append(bench.rss_mb(proc.pid))
            browser.close()
        marks = [f"after {v}" for v in range(step, args.visits + 1, step)]
        print(f"\n| {args.models:,} models | loaded | " + " | ".join(marks) + " visits |")
        print("|---|" + "---|" * (len(marks) + 1))
        for name, values in rows.items():
            print(f"| {name} | " + " | ".join(f"{v:,.0f} MB" for v in values) + " |")
    finally:
        for proc in procs:
            proc.terminate()
        server.stop()


if __name__ == "__main__":
    main()
