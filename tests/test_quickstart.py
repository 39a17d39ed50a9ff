"""The main job end to end: `hubkit quickstart` at reduced size (SmolLM2-135M × math × full/LoRA, 4 records per
benchmark) on the embedded Hub it starts itself, then what it left on the Hub, the leaderboard page it
serves, and a rerun that redoes nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from huggingface_hub import HfApi, ModelCard, hf_hub_download

from .conftest import ServingCommand, chromium_page

pytestmark = pytest.mark.slow  # one quickstart run (about 2.5 minutes) shared by every test here

REDUCED = ["grid.dataset=[math]", "eval_limit=4"]
RUNS = {"full", "lora"}


def _env(tmp: Path) -> dict[str, str]:
    """A fresh machine: no endpoint or token, so hubkit starts its embedded Hub under its own HUBKIT_HOME."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_ENDPOINT", "HF_TOKEN")}
    env.update(HUBKIT_HOME=str(tmp / "home"), HF_HOME=str(tmp / "hf"), COLUMNS="200",
               PYTHONFAULTHANDLER="1")  # a native crash prints every thread's stack
    return env


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quickstart")
    run = ServingCommand("quickstart", *REDUCED, cwd=tmp, env=_env(tmp))
    try:
        run.serving.wait(timeout=1200)
        assert run.url, f"no leaderboard URL; exit {run.proc.poll()}\n{run.output[-4000:]}"
        run.tmp = tmp
        run.page = _page_checks(run.url)
        run.proc.send_signal(signal.SIGINT)  # Ctrl-C stops the leaderboard; the quickstart ends cleanly
        run.returncode = run.wait(timeout=120)
        yield run
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
        subprocess.run([sys.executable, "-m", "hubkit", "hub", "stop"], env=_env(tmp), capture_output=True)


def _page_checks(url: str) -> dict:
    """The served page answers; in a real browser, searching the table finds the quickstart's two runs."""
    import httpx

    page = httpx.get(url, timeout=30)
    out = {"status": page.status_code, "html": page.text, "found": None}
    with chromium_page() as browser_page:
        if browser_page is not None:
            browser_page.goto(url)
            browser_page.locator("#search textarea, #search input").first.fill("smollm2")
            browser_page.get_by_text("2 models", exact=True).first.wait_for(timeout=60_000)
            out["found"] = browser_page.locator("#table").inner_text()
    return out


@pytest.fixture(scope="module")
def hub_api(first):
    """The quickstart's Hub stopped with it; `hubkit hub start` serves it again, at the URL the quickstart printed."""
    endpoint = next(line.split()[1] for line in first.lines if line.startswith("endpoint "))
    started = subprocess.run([sys.executable, "-m", "hubkit", "hub", "start"], env=_env(first.tmp),
                             capture_output=True, text=True, timeout=120)
    assert started.stdout.split()[0] == endpoint.rstrip("/"), started.stdout + started.stderr
    token = (first.tmp / "home" / "hub" / "embedded-token").read_text()
    return HfApi(endpoint=endpoint, token=token)


def test_it_runs_every_stage_and_serves_the_leaderboard(first):
    out = first.output
    assert first.returncode == 0, out[-4000:]
    for i, stage in enumerate(["hub", "data", "base model", "sweep", "study results", "perplexity", "layer diff",
                               "analysis", "leaderboard"], 1):
        assert f"{i}/9 {stage} (about " in out  # said with the time it took on the README's hardware
    assert "(about 2 min on 2 CPU cores for 2 runs)" in out
    assert "mirrored HuggingFaceTB/SmolLM2-135M-Instruct" in out
    assert "2 runs published (5 jobs this time)" in out
    assert "Leaderboard stopped." in out
    assert first.page["status"] == 200 and "gradio" in first.page["html"].lower()
    if first.page["found"] is not None:
        assert "math" in first.page["found"] and "lora" in first.page["found"]
    # the summary table: both runs with scores, gains, the perplexity of their data and their mid-layer change
    summary = pd.read_csv(first.tmp / "hubkit-quickstart" / "summary.csv")
    assert set(summary["tuning"]) == RUNS and set(summary["dataset"]) == {"math"}
    for column in ("mmlu-0shot", "mmlu-0shot gain", "hellaswag-0shot", "boolq-0shot", "truthfulqa-0shot",
                   "mean gain", "data perplexity", "mid-layer change"):
        assert summary[column].notna().all(), column
    assert (summary["mid-layer change"] > 0).all() and (summary["data perplexity"] > 1).all()


def test_every_link_it_prints_opens_a_page(first, hub_api):
    """The user's page, the results dataset and the Space: each printed link answers with an HTML page."""
    import re

    import httpx

    line = next(line for line in first.lines if line.startswith("Models: "))
    links = re.findall(r"http://127\.0\.0\.1:\d+/[^\s·]+", line)
    assert len(links) == 3 and links[0].endswith("/hubkit"), line
    for link in links:
        page = httpx.get(link, timeout=30)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), link
    assert "hubkit/quickstart-results" in httpx.get(links[0], timeout=30).text  # the user's page lists its repos


def test_the_hub_holds_repos_cards_results_and_analysis(first, hub_api):
    models = [m.id for m in hub_api.list_models(author="hubkit", filter="sweep-quickstart")]
    assert len(models) == 2, models
    for repo_id in models:
        files = set(hub_api.list_repo_files(repo_id))
        weights = "adapter_model.safetensors" if "-lora-" in repo_id else "model.safetensors"
        assert {weights, "README.md", "hubkit_config.yaml", "loss_curve.png"} <= files, files
        assert any(f.startswith("eval/results_") for f in files)
        # the tiny suite scores 4 records per benchmark: subset scores stay out of `.eval_results/` by default
        assert not any(f.startswith(".eval_results/") for f in files), files
        card = ModelCard.load(hf_hub_download(repo_id, "README.md", endpoint=hub_api.endpoint, token=hub_api.token))
        assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
        assert {r.dataset_type for r in card.data.eval_results} == {
            "cais/mmlu", "Rowan/hellaswag", "google/boolq", "truthfulqa/truthful_qa"}
        assert "## Evaluation" in card.text and "/tmp" not in card.content and str(first.tmp) not in card.content
        assert "(subset)" in card.text and all("subset" in r.metric_name for r in card.data.eval_results)

    space = hub_api.space_info("hubkit/quickstart-leaderboard")
    assert space.sdk == "gradio" and {"app.py", "board/plots.py", "settings.json"} <= {s.rfilename for s in space.siblings}

    repo = "hubkit/quickstart-results"
    files = set(hub_api.list_repo_files(repo, repo_type="dataset"))
    assert {"data/results.parquet", "analysis/report.md", "analysis/perplexity.parquet",
            "analysis/layerdiff.parquet", "analysis/data_properties.parquet",
            "analysis/layer_correlation.parquet"} <= files, files
    get = lambda name: hf_hub_download(repo, name, repo_type="dataset", endpoint=hub_api.endpoint,  # noqa: E731
                                       token=hub_api.token)
    results = pd.read_parquet(get("data/results.parquet"))
    ours = results[results["source"] == "hubkit"]
    assert set(ours["model_id"]) == set(models)
    # every metric of the tiny suite's four benchmarks (HellaSwag's acc_norm and TruthfulQA's mc1 beside the headlines)
    assert len(ours) == 2 * 6 and ours["headline"].sum() == 2 * 4
    assert ours["gain"].notna().all() and (ours["n_shot"] == 0).all()
    assert ours["subset"].all() and (ours["n_samples"] == 4).all() and (ours["n_total"] > 4).all()
    assert ours["base_model"].eq("HuggingFaceTB/SmolLM2-135M-Instruct").all()
    study = results[results["source"] == "massive-sft-csv"]
    assert study["run_id"].nunique() == 1027
    ppl = pd.read_parquet(get("analysis/perplexity.parquet"))
    assert list(ppl["dataset"]) == ["math"] and ppl["perplexity"].between(1, 1000).all()
    layers = pd.read_parquet(get("analysis/layerdiff.parquet"))
    assert set(layers["run_id"]) == set(ours["run_id"]) and layers["depth"].between(0, 1).all()


def test_a_rerun_redoes_nothing(first, hub_api):
    repos = {m.id: "model" for m in hub_api.list_models(author="hubkit", filter="sweep-quickstart")}
    repos.update({"hubkit/quickstart-results": "dataset", "hubkit/quickstart-leaderboard": "space"})
    before = {r: hub_api.repo_info(r, repo_type=kind).sha for r, kind in repos.items()}
    started = time.perf_counter()
    again = subprocess.run([sys.executable, "-m", "hubkit", "quickstart", *REDUCED, "--no-serve"], cwd=first.tmp,
                           env=_env(first.tmp), capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - started
    try:
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        assert "2 runs published (0 jobs this time)" in again.stdout
        after = {r: hub_api.repo_info(r, repo_type=kind).sha for r, kind in repos.items()}
        assert after == before  # nothing committed again
        assert "is on the Hub" in again.stdout
        print(f"rerun: {seconds:.0f} s")
        status = subprocess.run([sys.executable, "-m", "hubkit", "hub", "status"], capture_output=True, text=True,
                                env=_env(first.tmp))
        assert "embedded Hub" in status.stdout and hub_api.endpoint in status.stdout  # the same Hub, reused
    finally:
        subprocess.run([sys.executable, "-m", "hubkit", "hub", "stop"], env=_env(first.tmp), capture_output=True)
    token = (first.tmp / "home" / "hub" / "embedded-token").read_text()
    assert token not in first.output + again.stdout + again.stderr


def test_bad_recipe_overrides_fail_in_one_line(tmp_path):
    from .test_cli import _assert_one_line_error, hubkit

    env = _env(tmp_path)
    _assert_one_line_error(hubkit("quickstart", "grid.dataset=[no_such_set]", env=env, timeout=120),
                           "no_such_set")
    _assert_one_line_error(hubkit("quickstart", "eval_suite=nope", env=env, timeout=120), "nope")
    _assert_one_line_error(hubkit("quickstart", "--recipe", str(tmp_path / "missing.yaml"), env=env, timeout=120),
                           "config file not found")
    assert not (tmp_path / "home" / "hub").exists()  # refused before anything started



def test_the_summary_mean_gain_takes_percent_benchmarks_once_each():
    """Two of the study's runs have MT-Bench grades (1-10), NQ-open at four shot counts and five benchmarks at two:
    the summary's mean gain is over the percent-scale benchmarks, each at one shot count (the study's on a tie)."""
    from hubkit.importers import import_massive_sft_csv
    from hubkit.quickstart import summarize

    study = import_massive_sft_csv(Path(__file__).resolve().parents[2] / "shared" / "data" / "massive_sft_results"
                                   / "evaluation_result.csv").frame
    runs = sorted(study[(study["dataset"] == "lima") & (study["epochs"] == 10) & (study["tuning"] == "full")
                        & (study["data_size"] == 1000)]["run_id"].unique())[:2]
    summary = summarize(study, runs, None, None).set_index("run_id")
    study_shots = {"mbpp": 4, "gsm8k": 4, "mmlu": 5, "nq_open": 1, "boolq": 5, "hellaswag": 10}
    for run in runs:
        rows = study[(study["run_id"] == run) & study["gain"].notna()]
        percent = rows[rows["scale"] == "percent"]
        at = percent[percent["n_shot"].fillna(0) == percent["benchmark"].map(study_shots).fillna(0)]
        assert at["benchmark"].is_unique and set(at["benchmark"]) == set(percent["benchmark"])
        assert summary.loc[run, "mean gain"] == pytest.approx(at["gain"].mean(), abs=1e-9)
        assert summary.loc[run, "mean gain"] != pytest.approx(rows["gain"].mean(), abs=1e-3)  # what it was
        assert (rows["scale"] == "1-10").any() and percent[percent["benchmark"] == "nq_open"]["n_shot"].nunique() == 4
