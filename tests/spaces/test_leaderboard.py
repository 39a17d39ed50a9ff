"""The leaderboard Space: its aggregation (against plain pandas) and, in a real browser, the page itself."""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from hubkit.benchmarks import BENCHMARKS
from hubkit.importers import import_massive_sft_csv
from hubkit.publish import push_results
from hubkit.results import ResultsTable, rows_frame
from hubkit.space import SPACE_DIR, benchmarks_json, build_app, deploy_space, load_board, serving

from ..conftest import ServingCommand, _free_port, chromium_page
from ..test_cli import _assert_one_line_error, hubkit

STUDY_CSV = Path(__file__).resolve().parents[3] / "shared" / "data" / "massive_sft_results" / "evaluation_result.csv"
HOSTILE = '<img src=x onerror="window.__pwned=1">'
CURVES = {"lb-full": [2.0, 1.5, 1.2, 1.1], "lb-lora": [2.0, 1.8, 1.7, 1.65]}


def _row(run_id: str, model_id: str, tuning: str, bench: str, score: float, dataset: str = "lima") -> dict:
    return {"model_id": model_id, "has_repo": bool(model_id), "run_id": run_id, "base_model": "alice/tiny-base",
            "dataset": dataset, "data_size": 16, "tuning": tuning, "epochs": 1, "lr_schedule": "cosine",
            "benchmark": bench, "n_shot": 5, "metric": BENCHMARKS[bench].headline if bench in BENCHMARKS else "acc",
            "score": score, "base_score": 25.0, "gain": score - 25.0,
            "source": "hubkit", "evaluated_at": "2026-11-25T00:00:00Z"}


@pytest.fixture(scope="module")
def results(hub):
    """The study's imported results plus three published runs (one with a hostile name) in alice/lb-results."""
    alice = hub.api("alice")
    push_results(import_massive_sft_csv(STUDY_CSV), "alice/lb-results", "study", api=alice)
    for name, losses in CURVES.items():  # each with the training metrics every hubkit model publishes
        alice.create_repo(f"alice/{name}", exist_ok=True)
        metrics = {"loss_curve": [{"step": i + 1, "epoch": (i + 1) / 2, "loss": v} for i, v in enumerate(losses)]}
        alice.upload_file(path_or_fileobj=json.dumps(metrics).encode(), path_in_repo="training_metrics.json",
                          repo_id=f"alice/{name}")
    rows = [_row("lb-full", "alice/lb-full", "full", "mmlu", 31.0), _row("lb-full", "alice/lb-full", "full", "boolq", 60.0),
            _row("lb-lora", "alice/lb-lora", "lora", "mmlu", 28.0), _row("lb-lora", "alice/lb-lora", "lora", "boolq", 55.0),
            _row(HOSTILE, "", "lora", "mmlu", 20.0, dataset=HOSTILE)]
    push_results(ResultsTable(rows_frame(rows), "hubkit"), "alice/lb-results", "runs", api=alice)
    return "alice/lb-results"


@pytest.fixture(scope="module")
def board(results):
    return load_board(results)


def test_the_opening_view_averages_the_largest_complete_block_of_the_study(board):
    """Every benchmark at 0-shot: the average takes the benchmarks that the most models have in full (12 of the
    study's, each held by every ranked model), checked against the study's CSV with plain pandas; no other
    benchmark could join them without leaving more cells out than it adds; the sorted column sits by the model."""
    page = board.page(groups=[])
    assert list(page.frame.columns[:3]) == ["rank", "model", "average"]
    assert list(page.frame.columns[3:]) == board.benchmark_columns([], board.default_shots)  # every one
    study = import_massive_sft_csv(STUDY_CSV).frame
    zero = study[(study["n_shot"].fillna(0) == 0) & (study["scale"] == "percent")]
    from hubkit.space import space_module

    label = space_module().column_label
    zero = zero.assign(column=[label(r.benchmark, None if pd.isna(r.n_shot) else int(r.n_shot), r.metric)
                               for r in zero.itertuples()])
    wide = zero.pivot_table(index="run_id", columns="column", values="score", aggfunc="first")
    averaged = page.averaged
    assert len(averaged) == page.required == 12 and "longbench_v2-0shot" not in averaged
    held = wide[averaged].notna().all(axis=1)
    assert page.complete == int(held.sum()) == 1003
    view = board.view(groups=[]).set_index("model")
    expected = wide.loc[held, averaged].mean(axis=1).round(2)
    assert (view.loc[expected.index, "average"] - expected).abs().max() < 1e-9
    for other in set(wide.columns) - set(averaged):  # no benchmark left out would make the block larger
        assert (len(averaged) + 1) * int(wide.loc[held, other].notna().sum()) < len(averaged) * int(held.sum())
    by = board.page(groups=[], sort="mbpp-0shot")
    assert list(by.frame.columns[:4]) == ["rank", "model", "mbpp-0shot", "average"]
    assert by.frame["mbpp-0shot"].is_monotonic_decreasing
    by_axis = board.page(groups=[], sort="training data", descending=False)
    assert list(by_axis.frame.columns[:3]) == ["rank", "model", "training data"]


def test_loss_curves_come_from_each_models_repo_and_overlay(board, hub):
    """A model's training loss is read from its repo's training_metrics.json (by epoch); Compare overlays one line per
    model; a model without a repo, or with a malformed or oversized file, has no curve (and breaks nothing)."""
    figure = board.loss_curves(["lb-full", "lb-lora", HOSTILE])
    lines = figure.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["lb-full", "lb-lora"]
    for line, losses in zip(lines, CURVES.values()):
        assert list(line.get_ydata()) == losses and list(line.get_xdata()) == [0.5, 1.0, 1.5, 2.0]
    assert figure.axes[0].get_xlabel() == "epoch" and "2 of 3 models" in figure.axes[0].get_title()
    assert board.loss_curves([HOSTILE]) is None
    alice = hub.api("alice")
    for name, body in {"lb-bad-json": b"{not json", "lb-bad-points": b'{"loss_curve": [{"step": "x"}, 3, null]}',
                       "lb-big": b'{"loss_curve": [' + b" " * (9 << 20) + b"]}"}.items():
        alice.create_repo(f"alice/{name}", exist_ok=True)
        alice.upload_file(path_or_fileobj=body, path_in_repo="training_metrics.json", repo_id=f"alice/{name}")
        assert board._read_loss(f"alice/{name}", None) is None, name


def test_benchmarks_json_matches_hubkit():
    assert (SPACE_DIR / "benchmarks.json").read_text(encoding="utf-8") == benchmarks_json()


def test_the_table_equals_a_plain_pandas_computation(board):
    study = import_massive_sft_csv(STUDY_CSV).frame
    assert len(board.meta) == study["run_id"].nunique() + 3
    view = board.view(filters={"tuning": ["lora"], "base_model": ["Qwen/Qwen2.5-7B"]}, groups=["math"], value="gain")
    expected = study[(study["tuning"] == "lora") & (study["base_model"] == "Qwen/Qwen2.5-7B")]
    assert len(view) == expected["run_id"].nunique()
    math_cols = [c for c in view.columns if c.split("-")[0] in ("gsm8k", "math", "math500")]
    assert set(math_cols) == {"gsm8k-0shot", "gsm8k-4shot", "math-0shot"}
    gsm = expected[(expected["benchmark"] == "gsm8k") & (expected["n_shot"] == 4)].set_index("run_id")["gain"]
    mine = view.set_index("model")["gsm8k-4shot"]
    assert (mine - gsm.round(2).reindex(mine.index)).abs().max() < 1e-9
    assert view["average"].is_monotonic_decreasing
    assert (view["repo"] == "no repo (imported)").all()
    assert view["reproduce"].str.startswith("hubkit train model=Qwen/Qwen2.5-7B dataset=").all()


def test_search_compare_synergy_and_export(board):
    found = board.view("lb-full")
    assert list(found["model"]) == ["lb-full"] and found.loc[0, "repo"].startswith("[alice/lb-full](")
    assert found.loc[0, "reproduce"] == "hf download alice/lb-full hubkit_config.yaml && hubkit train hubkit_config.yaml"
    compared = board.compare(["lb-full", "lb-lora"]).set_index("benchmark")
    assert compared.loc["mmlu-5shot", "Δ lb-lora"] == pytest.approx(-3.0)
    study = import_massive_sft_csv(STUDY_CSV).frame
    qwen = study[(study["base_model"] == "Qwen/Qwen2.5-7B") & (study["dataset"] != "pretrain")]
    expected = qwen[(qwen["benchmark"] == "gsm8k") & (qwen["n_shot"] == 4)].groupby("dataset")["gain"].mean()
    synergy = board.synergy("Qwen/Qwen2.5-7B")
    assert (synergy["gsm8k-4shot"] - expected.reindex(synergy.index)).abs().max() < 1e-9
    path = board.export(board.view(filters={"tuning": ["lora"]}))
    exported = pd.read_csv(path)
    assert len(exported) == len(board.view(filters={"tuning": ["lora"]})) and set(exported["full/LoRA"]) == {"lora"}
    hostile = board.view(HOSTILE.split()[0])
    assert list(hostile["model"]) == [HOSTILE] and hostile.loc[0, "repo"] == "no repo (imported)"


def test_the_average_never_ranks_unlike_with_unlike(monkeypatch):
    monkeypatch.syspath_prepend(str(SPACE_DIR))  # the Space's own module, as `app.py` imports it
    from hubkit.space import space_module

    Board = space_module().Board

    def row(run: str, bench: str, score: float, subset: bool | None, n: int | None, total: int | None,
            scale: str = "percent") -> dict:
        return {**_row(run, f"alice/{run}", "full", bench, score), "n_shot": 0, "scale": scale, "subset": subset,
                "n_samples": n, "n_total": total, "base_score": None, "gain": None}

    rows = [row("full", "mmlu", 50.0, False, 14042, 14042), row("full", "boolq", 60.0, False, 3270, 3270),
            row("full", "mt_bench", 9.0, False, 80, 80, scale="1-10"),
            row("tiny", "mmlu", 90.0, True, 8, 14042), row("tiny", "boolq", 95.0, True, 8, 3270),
            row("unsure", "mmlu", 70.0, None, None, None)]
    board = Board(rows_frame(rows))
    view = board.view().set_index("model")
    assert list(view.index) == ["full", "tiny", "unsure"]  # ranked on full-benchmark scores only
    assert view.loc["full", "average"] == 55.0 and view.loc["full", "benchmarks averaged"] == 2  # MT-Bench apart
    assert pd.isna(view.loc["tiny", "average"]) and view.loc["tiny", "benchmarks averaged"] == 0
    assert view.loc["tiny", "mmlu-0shot"] == 90.0  # shown, flagged, not ranked
    assert (view.loc["full", "samples"], view.loc["tiny", "samples"], view.loc["unsure", "samples"]) == (
        "full", "subset (n=8)", "unknown")
    mixed = board.view(full_only=False).set_index("model")  # the toggle off: subsets averaged, still flagged
    # `unsure` (70, MMLU alone) lacks BoolQ: incomplete, so after `full` (55 over both) and without a rank
    assert list(mixed.index) == ["tiny", "full", "unsure"] and mixed.loc["tiny", "average"] == 92.5
    assert list(mixed["rank"].astype("Float64").fillna(-1)) == [1, 2, -1]
    assert mixed.loc["tiny", "samples"] == "subset (n=8)"
    # a results table written before these columns existed still loads: its sample counts are unknown
    legacy = Board(rows_frame(rows).drop(columns=["scale", "higher_is_better", "subset", "n_samples", "n_total"]))
    old = legacy.view().set_index("model")
    assert set(old["samples"]) == {"unknown"} and old["average"].isna().all()
    assert "mt_bench" not in legacy.averaged


def test_each_benchmark_counts_once_in_an_average(monkeypatch):
    """A benchmark scored at several shot counts (the study has NQ-open at 0, 1, 5 and 25) is one benchmark: the
    table shows and averages one shot setting at a time, other shot counts are shown on request and never
    averaged, and judged benchmarks (no shot count) belong to every setting."""
    monkeypatch.syspath_prepend(str(SPACE_DIR))
    from hubkit.space import space_module

    Board = space_module().Board

    def row(run: str, bench: str, shots: int | None, score: float, subset: bool = False) -> dict:
        return {**_row(run, f"alice/{run}", "full", bench, score), "n_shot": shots, "subset": subset,
                "n_samples": 100, "n_total": 100, "base_score": None, "gain": None}

    nq = {0: 10.0, 1: 20.0, 5: 30.0, 25: 40.0}
    rows = [*(row("a", "nq_open", k, v) for k, v in nq.items()), row("a", "mmlu", 0, 50.0), row("a", "mmlu", 5, 60.0),
            row("a", "alpaca_eval_v2", None, 70.0),
            *(row("b", "nq_open", k, v + 5) for k, v in nq.items()), row("b", "mmlu", 0, 40.0)]
    board = Board(rows_frame(rows))
    # 0-shot holds 5 full scores (a: nq 0, mmlu 0; b: nq 0, mmlu 0; plus a's AlpacaEval), the study's 4 (mmlu-5shot
    # only for a): the table opens on 0-shot
    assert board.default_shots == "0-shot"
    study = board.view(groups=["knowledge"], shots="study", columns=["benchmarks averaged"]).set_index("model")
    assert [c for c in study.columns if c in board.columns] == ["mmlu-5shot", "nq_open-1shot"]
    assert study.loc["a", "average"] == 40.0 and study.loc["a", "benchmarks averaged"] == 2  # (60 + 20) / 2
    assert study.loc["b", "average"] == 25.0 and study.loc["b", "benchmarks averaged"] == 1  # no MMLU 5-shot
    zero = board.view(shots="0-shot", columns=["benchmarks averaged"]).set_index("model")
    assert [c for c in zero.columns if c in board.columns] == ["mmlu-0shot", "nq_open-0shot", "alpaca_eval_v2"]
    # AlpacaEval, which only `a` has, is shown but not averaged: the view's benchmarks are the two both models have
    assert zero.loc["a", "average"] == round((50 + 10) / 2, 2) and list(zero.index) == ["a", "b"]
    assert zero.loc["b", "average"] == round((40 + 15) / 2, 2) and list(zero["rank"]) == [1, 2]
    # every shot count on request: shown, the average unchanged (still two benchmarks, not six scores)
    every = board.view(shots="0-shot", columns=["benchmarks averaged", "other shot counts"]).set_index("model")
    assert [c for c in every.columns if c.startswith("nq_open")] == [f"nq_open-{k}shot" for k in (0, 1, 5, 25)]
    assert every["average"].equals(zero["average"]) and every.loc["a", "benchmarks averaged"] == 2
    assert board.view(shots="0-shot")["average"].equals(zero["average"].reset_index(drop=True))  # the CSV export
    # sorting by a shot count not shown shows it, and orders by it, without averaging it
    by = board.page(shots="study", groups=["knowledge"], sort="nq_open-25shot", descending=True)
    assert by.run_ids == ["b", "a"] and list(by.frame.columns[:4]) == ["rank", "model", "nq_open-25shot", "average"]
    assert by.frame.set_index("model").loc["a", "average"] == 40.0
    with pytest.raises(ValueError, match="unknown shot setting 'five'"):
        board.view(shots="five")


def test_rebuilds_from_model_cards_when_the_parquet_is_missing(hub):
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    alice = hub.api("alice")
    data = ModelCardData(base_model="alice/tiny-base", tags=["hubkit-sft"], model_name="lb-card",
                         hubkit={"run_id": "lb-card", "dataset": "lima", "data_size": 16, "tuning": "full",
                                 "epochs": 1, "lr_schedule": "cosine"},
                         eval_results=[EvalResult(task_type="text-generation", dataset_type="cais/mmlu",
                                                  dataset_name="MMLU", metric_type="acc", metric_value=33.0,
                                                  dataset_args={"num_few_shot": 5})])
    alice.create_repo("alice/lb-card", exist_ok=True)
    ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n# lb-card\n").push_to_hub(
        "alice/lb-card", token=hub.tokens["alice"])
    board = load_board("alice/no-such-results")  # no dataset: rows come from alice's hubkit model cards
    row = board.view("lb-card")
    assert list(row["model"]) == ["lb-card"] and row.loc[0, "mmlu-5shot"] == 33.0


def test_deploy_and_errors(hub, results):
    alice = hub.api("alice")
    deploy_space("alice/leaderboard", results, api=alice)
    files = set(alice.list_repo_files("alice/leaderboard", repo_type="space"))
    assert {"app.py", "board/model.py", "benchmarks.json", "requirements.txt", "README.md", "settings.json"} <= files
    info = alice.space_info("alice/leaderboard")
    assert info.card_data.to_dict()["sdk"] == "gradio"
    env = {"HF_TOKEN": hub.tokens["alice"]}
    proc = hubkit("space", "deploy", "--repo-id", "alice/leaderboard", "--results", results, env=env)
    assert proc.returncode == 0 and "alice/leaderboard" in proc.stdout
    _assert_one_line_error(hubkit("space", "deploy", "--repo-id", "bob/x", "--results", results, env=env),
                           "cannot deploy the Space bob/x")
    _assert_one_line_error(hubkit("leaderboard", "serve", "--results", "nobody/nothing", env=env), "no results")


@pytest.fixture(scope="module")
def page_url(results):
    with serving(build_app(results), port=_free_port()) as url:
        yield url


def test_the_page_exposes_no_api_endpoints(page_url):
    """The table's events serve the page only: no endpoint is offered to API clients (the results dataset is the
    data's API), and the page does not carry API docs for them (they were most of its HTML)."""
    import httpx

    info = httpx.get(page_url + "gradio_api/info", timeout=30).json()
    assert info["named_endpoints"] == {} and info["unnamed_endpoints"] == {}
    html = httpx.get(page_url, timeout=30).text
    assert "gradio_api/call/" not in html and len(html) < 200_000


def test_serving_waits_for_the_threads_of_the_app():
    """Leaving `serving` returns only once the handler still running has finished and every thread the app
    started has ended: a process that exits with them alive can abort in interpreter finalization."""
    import gradio as gr
    import httpx

    started, finished = threading.Event(), threading.Event()

    def slow(text: str) -> str:
        started.set()
        time.sleep(2)
        finished.set()
        return text.upper()

    with gr.Blocks() as demo:
        box = gr.Textbox()
        box.submit(slow, box, gr.Textbox(), api_name="slow")
    before = set(threading.enumerate())
    with serving(demo, port=_free_port()) as url:
        assert httpx.post(f"{url}gradio_api/call/slow", json={"data": ["x"]}, timeout=30).status_code == 200
        assert started.wait(30)
    assert finished.is_set()
    assert [t.name for t in set(threading.enumerate()) - before if t.is_alive()] == []


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.slow
def test_leaderboard_serve_until_stopped(results, stop):
    """`hubkit leaderboard serve` answers on its port, and ends cleanly (exit 0) on Ctrl-C or SIGTERM after
    serving pages."""
    import httpx

    served = ServingCommand("leaderboard", "serve", "--results", results, "--port", str(_free_port()))
    try:
        served.serving.wait(timeout=120)
        assert served.url, served.output
        for path in ("", "config", "gradio_api/info"):
            assert httpx.get(served.url + path, timeout=30).status_code == 200
        served.proc.send_signal(stop)
        assert served.wait(timeout=60) == 0, served.output
    finally:
        served.proc.kill()
    out = served.output
    assert "Leaderboard stopped." in out and "terminate" not in out and "Traceback" not in out


@pytest.mark.slow
def test_the_page_in_a_real_browser(page_url, board):
    with chromium_page() as page:
        if page is None:
            pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(page_url)
        total = len(board.meta)
        page.get_by_text(f"{total:,} models", exact=True).first.wait_for(timeout=60_000)

        # it opens on rank, model, average and every benchmark (the first screen is checked in `test_the_first_screen`)
        opening = board.page(groups=[])
        headers = page.locator("#table th.header-cell").all_inner_texts()
        assert [" ".join(h.split()) for h in headers] == [
            f"average ({opening.required})" if c == "average" else c for c in opening.frame.columns]
        # the first row's model cell (after its rank)
        first_cell = "() => document.querySelectorAll('#table .virtual-row .body-cell')[1]?.innerText.trim()"
        assert page.evaluate(first_cell) == opening.run_ids[0]
        page.locator("#page textarea, #page input").first.fill("3")
        page.keyboard.press("Enter")
        page.wait_for_function(f"m => ({first_cell})() === m", arg=board.page(groups=[], number=3).run_ids[0],
                               timeout=30_000)

        # one shot setting at a time: the study's shot counts swap the columns and rank again from page 1
        page.locator("#options").get_by_text("Filters, benchmarks, shots and columns").click()  # unfolded
        page.locator("#shots input").click()
        page.locator("#shots input").fill("the study's shot counts")
        page.keyboard.press("Enter")
        study = board.page(groups=[], shots="study")
        page.wait_for_function(f"m => ({first_cell})() === m", arg=study.run_ids[0], timeout=30_000)
        page.wait_for_function("h => [...document.querySelectorAll('#table th.header-cell')].map(e => e.innerText"
                               ".split(/\\s+/).join(' ').trim()).join('|') === h", timeout=30_000,
                               arg="|".join(f"average ({study.required})" if c == "average" else c
                                            for c in study.frame.columns))
        assert "mmlu-5shot" in study.frame.columns and "mmlu-0shot" not in study.frame.columns
        assert "page 1 of" in page.locator("#page-info").inner_text()
        assert "at the study's shot counts" in page.locator("#page-info").inner_text()

        # filter by an axis: full/LoRA = lora
        lora = len(board.view(filters={"tuning": ["lora"]}))
        page.locator("#filter-tuning input").click()
        page.locator("#filter-tuning input").fill("lora")
        page.keyboard.press("Enter")
        page.get_by_text(f"{lora:,} models", exact=True).first.wait_for(timeout=30_000)

        # export the filtered view and check its rows
        page.locator("#export").click()
        page.get_by_text(f"Download the CSV ({lora:,} models)").wait_for(timeout=30_000)
        with page.expect_download() as download:
            page.locator("#exported").click()
        assert download.value.suggested_filename == "leaderboard.csv"
        rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
        assert len(rows) == lora and {r["full/LoRA"] for r in rows} == {"lora"}

        # the planted model name shows as text, and nothing it carries runs
        page.locator("#search textarea, #search input").first.fill("onerror")
        page.get_by_text("1 models", exact=True).first.wait_for(timeout=30_000)
        page.wait_for_function("t => document.querySelector('#table').innerText.includes(t)", arg=HOSTILE,
                               timeout=30_000)  # shown as its literal text
        assert page.locator("#table img").count() == 0
        assert page.evaluate("window.__pwned") is None and not dialogs

        # sorting applies to every matching model, not to the page in view; paging walks through them
        page.locator("#search textarea, #search input").first.fill("")
        page.get_by_text(f"{lora:,} models", exact=True).first.wait_for(timeout=30_000)
        page.locator("#sort input").click()
        page.locator("#sort input").fill("gsm8k-4shot")
        page.keyboard.press("Enter")
        page.locator("#descending input").uncheck()
        query = {"filters": {"tuning": ["lora"]}, "sort": "gsm8k-4shot", "descending": False, "shots": "study"}
        expected = board.page(**query)
        assert expected.total == lora and expected.pages > 1
        page.wait_for_function(f"m => ({first_cell})() === m", arg=expected.run_ids[0], timeout=30_000)
        page.locator("#next").click()
        page.wait_for_function(f"m => ({first_cell})() === m", arg=board.page(**query, number=2).run_ids[0],
                               timeout=30_000)
        assert "page 2 of" in page.locator("#page-info").inner_text()
        sorted_header = page.locator("#table th.header-cell").nth(2)  # the sorted column, beside the model
        assert " ".join(sorted_header.inner_text().split()) == "gsm8k-4shot" and sorted_header.bounding_box()["x"] < 700
        # the rank and model columns stay in view when the table scrolls sideways
        shift = page.evaluate("""() => {
            const view = document.querySelector('#table .virtual-table-viewport');
            const cells = () => [...document.querySelectorAll('#table .virtual-row .body-cell')].slice(0, 2);
            const left = () => cells().map(c => c.getBoundingClientRect().left - view.getBoundingClientRect().left);
            const before = left();
            view.scrollLeft = 900;
            return [view.scrollLeft, before, left()];
        }""")
        assert shift[0] > 0 and abs(shift[2][0]) < 2 and abs(shift[2][1] - shift[1][1]) < 2, shift
        assert page.locator("#table .virtual-row").count() <= 50  # one page is sent, not every row
        header = page.locator("#table th.header-cell").nth(5)
        header.hover()  # the table's own menu (it would sort or filter the page in view alone) shows on hover
        shown = header.evaluate("h => getComputedStyle(h.querySelector('.cell-menu-button')).display")
        assert shown == "none", shown

        # click a row: its details (each score with its samples, shots and source); then compare two runs
        page.goto(page_url)
        page.locator("#search textarea, #search input").first.fill("lb-")
        page.get_by_text("2 models", exact=True).first.wait_for(timeout=30_000)
        for run in ("lb-full", "lb-lora"):
            page.locator("#table .virtual-row", has_text=run).first.locator(".body-cell").nth(1).click()
            page.wait_for_function("r => document.querySelector('#details').innerText.includes(r)", arg=run,
                                   timeout=30_000)
            page.locator("#add-compare").click()
        details = page.locator("#details").inner_text()
        assert "alice/lb-lora" in details and "mmlu-5shot" in details and "unknown" in details  # no sample count
        page.locator("#details-loss img").wait_for(timeout=30_000)  # the clicked model's loss curve
        page.get_by_role("tab", name="Compare").click()
        page.get_by_text("Δ lb-lora").first.wait_for(timeout=30_000)
        page.locator("#compare-loss img").wait_for(timeout=30_000)  # both curves, overlaid
        assert "-3" in page.locator("#compared").inner_text()
        assert page.evaluate("window.__pwned") is None and not dialogs


@pytest.mark.slow
def test_the_first_screen(page_url, board):
    """At 1280×800, with nothing clicked: rank, model, average (with its count) and the first benchmarks in view, at
    least 15 whole rows, every model id whole (or whole on hover); a search shows no progress timer anywhere; the
    heatmap's smallest text is at least 11 px on screen, with a value in every cell."""
    with chromium_page() as page:
        if page is None:
            pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
        page.set_viewport_size({"width": 1280, "height": 800})
        page.goto(page_url)
        page.locator("#table .virtual-row").first.wait_for(timeout=60_000)
        opening = board.page(groups=[])
        heads = page.locator("#table th.header-cell")
        assert [" ".join(heads.nth(i).inner_text().split()) for i in range(3)] == [
            "rank", "model", f"average ({opening.required})"]
        assert all(heads.nth(i).bounding_box()["x"] >= 0 and heads.nth(i).bounding_box()["x"] +
                   heads.nth(i).bounding_box()["width"] <= 1280 for i in range(6))  # and three benchmarks
        rows = page.evaluate("""() => [...document.querySelectorAll('#table .virtual-row')].filter(r => {
            const b = r.getBoundingClientRect(); return b.top >= 0 && b.bottom <= innerHeight; }).length""")
        assert rows >= 15, rows
        # the model column: each id whole, or cut with an ellipsis and whole in the cell's title on hover
        cells = page.locator("#table .virtual-row .body-cell:nth-child(2)")
        for i in range(min(15, cells.count())):
            cell = cells.nth(i)
            cell.hover()
            assert cell.get_attribute("title") == opening.run_ids[i]
            fits = cell.evaluate("c => { const s = c.querySelector('span'); return s.scrollWidth <= s.clientWidth; }")
            assert fits, opening.run_ids[i]  # the study's ids fit whole in the first screen
        # no progress timer is shown while the table updates (it used to flicker "0.1s" in the model count)
        page.evaluate("""() => { window.__timers = []; setInterval(() => { for (const e of document.querySelectorAll(
            '#count *, #page-info *, #table *, #page *, #search *')) { if (e.children.length === 0 &&
            /\\d\\.\\d\\s?s\b/.test(e.textContent || '') && e.getClientRects().length) window.__timers.push(e.textContent); }
            }, 5); }""")
        for text in ("lora", "qwen", ""):
            page.locator("#search textarea, #search input").first.fill(text)
            page.get_by_text(f"{len(board.view(search=text)):,} models", exact=True).first.wait_for(timeout=30_000)
        page.locator("#next").click()
        page.wait_for_function("() => document.querySelector('#page-info').innerText.includes('page 2 of')",
                               timeout=30_000)
        assert page.evaluate("window.__timers") == []
        # the heatmap: drawn 1:1, so the figure's smallest text (points at its dpi) is its size on screen
        base, _ = board.plot_defaults()
        page.get_by_role("tab", name="Plots").click()
        image = page.locator("#plot-heat img")
        image.wait_for(timeout=60_000)
        natural, shown = image.evaluate("i => [i.naturalWidth, i.getBoundingClientRect().width]")
        figure = board.heatmap(base)
        texts = [t for t in figure.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text"))
                 if t.get_text().strip() and t.get_visible()]
        smallest = min(t.get_fontsize() for t in texts) * figure.dpi / 72 * shown / natural
        assert smallest >= 11, smallest
        matrix = board.synergy(base, "percent")
        cell_values = list(figure.axes[0].texts)
        assert len(cell_values) == int(matrix.notna().to_numpy().sum()) > 0  # a value in every cell


def test_compare_keeps_only_models_of_the_board(results):
    """The clicked row's run id and the Compare list come back from the browser: an id the board does not hold
    (a forged one, or markup) is dropped, not listed."""
    demo = build_app(results)
    add = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "add_to_compare")
    assert add("<b>forged</b>", ["lb-full", "no-such-model"]) == {"__type__": "update", "choices": ["lb-full"],
                                                                     "value": ["lb-full"]}
    assert add("lb-lora", ["lb-full"])["value"] == ["lb-full", "lb-lora"]


def test_one_page_is_the_sorted_whole_cut_to_size(board):
    """Paging and sorting happen over every matching model: a page is the sorted full view, cut."""
    for sort, descending in (("average", True), ("model", False), ("data size", True), ("gsm8k-4shot", False),
                             ("base model", True), ("benchmarks averaged", True)):
        whole = board.view(filters={"tuning": ["full"]}, sort=sort, descending=descending)
        for number in (1, 3):
            page = board.page(filters={"tuning": ["full"]}, sort=sort, descending=descending, number=number)
            assert page.run_ids == list(whole["model"].iloc[(number - 1) * 50:number * 50])
            assert page.total == len(whole) and page.pages == -(-len(whole) // 50)
    column = board.view(sort="gsm8k-4shot", descending=False)["gsm8k-4shot"]
    known = column.dropna()
    assert known.is_monotonic_increasing and column.iloc[len(known):].isna().all()  # missing values last
    sizes = board.view(sort="data size", descending=False)["data size"]
    assert pd.to_numeric(sizes, errors="coerce").dropna().is_monotonic_increasing  # numbers, not text order
    last = board.page(number=10**6)
    assert last.number == last.pages and len(last.run_ids) == board.page(number=last.pages).frame.shape[0]
    shown = board.page(columns=[]).frame.columns
    assert list(shown[:3]) == ["rank", "model", "average"] and shown[3] == board.columns[0]
    assert "repo" not in shown and "reproduce" not in shown and "base model" not in shown
    picked = board.page(columns=["training data", "samples"]).frame.columns
    assert list(picked[-2:]) == ["training data", "samples"]  # picked columns follow the benchmarks


def test_the_table_opens_on_the_shot_setting_with_the_most_full_scores(board):
    """The opening view is every benchmark at one shot setting: the one with the most full-benchmark
    percent-scale scores (counted here from the study's CSV, independently of the board); sorting by a benchmark
    of another setting orders by it over every model and shows its column beside the model."""
    study = import_massive_sft_csv(STUDY_CSV).frame
    spec = json.loads((SPACE_DIR / "benchmarks.json").read_text())
    counted = study[study["score"].notna() & (study["subset"] == False)  # noqa: E712
                    & study["benchmark"].map(lambda b: spec.get(b, {}).get("scale", "percent") == "percent"
                                             and spec.get(b, {}).get("higher_is_better", True))]
    shots = counted["n_shot"].astype("Float64")
    settings = {"0-shot": counted[shots.isna() | (shots == 0)],
                "study": counted[shots.isna() | (shots == counted["benchmark"].map(lambda b: spec[b]["n_shot"] or 0))]}
    assert len(settings["0-shot"]) > len(settings["study"])  # the study's CSV: every benchmark at 0 shots
    assert board.default_shots == "0-shot"
    opening = board.page(groups=[])
    assert {board.column_group[c] for c in opening.frame.columns if c in board.columns} == {
        board.column_group[c] for c in board.columns}
    assert all(board.column_shots[c] in (None, 0) for c in opening.frame.columns if c in board.columns)
    other = next(c for c in board.columns if board.column_shots[c] not in (None, 0))
    page = board.page(groups=[], sort=other, descending=False)
    assert page.frame.columns[2] == other
    assert page.run_ids == board.page(sort=other, descending=False).run_ids  # the same order as over all columns


def test_details_say_how_each_score_was_measured(board):
    run = "qwen2.5-7b-alpaca_cleaned-1k-full-e9-constant"
    text = board.details(run)
    assert text.startswith("### qwen2.5-7b-alpaca\\_cleaned-1k-full-e9-constant")
    assert "No model repo: imported results (massive-sft-csv)" in text
    row = next(line for line in text.splitlines() if line.startswith("| gsm8k-4shot |"))
    assert "| full |" in row and "| 4 |" in row and "massive-sft-csv" in row
    assert "grade 1–10 (LLM judge)" in text and "hubkit train model=Qwen/Qwen2.5-7B" in text
    hostile = board.details(HOSTILE)
    prose = hostile.split("Reproduce:")[0]  # the command below it sits in a code block, where text is literal
    assert "\\<img" in prose and re.search(r"(?<!\\)<", prose) is None  # escaped: shown as text, never as HTML
    sneaky = type(board)(rows_frame([_row("sneaky", "", "full", "mmlu", 30.0, dataset="x\n````\n<b>out</b>")]))
    fenced = sneaky.details("sneaky").splitlines()
    opening = fenced.index("`````bash")
    assert fenced[-1] == "`````" and "````" in fenced[opening:-1]  # the shorter run inside cannot close it
    assert not any(line.startswith("`````") for line in fenced[opening + 1:-1])
    assert board.details("no-such-run").startswith("Click a row")


def test_details_quote_the_model_cards_summary(board, hub):
    card = ("---\nlicense: apache-2.0\ntags: [hubkit]\n---\n\n# lb-full\n\nA tiny model fine-tuned on *lima* "
            "<script>alert(1)</script> for the leaderboard test.\n\n| a | b |\n| - | - |\n")
    hub.api("alice").upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id="alice/lb-full")
    summary = board.card_summary("lb-full")
    assert summary == "A tiny model fine-tuned on *lima* <script>alert(1)</script> for the leaderboard test."
    shown = board.details("lb-full", card_summary=summary)
    assert "> A tiny model fine-tuned on \\*lima\\* \\<script\\>" in shown  # quoted as text, never markup
    assert board.card_summary("lb-lora") is None  # a repo without a card
    assert board.card_summary("qwen2.5-7b-alpaca_cleaned-1k-full-e9-constant") is None  # imported: no repo


def test_plot_defaults_always_show_data(board):
    base, column = board.plot_defaults()
    size, schedule = board.curve_condition(base, column)
    rows = board.long[(board.long["base_model"] == base) & (board.long["column"] == column)
                      & (board.long["data_size"].astype(str) == size) & (board.long["lr_schedule"] == schedule)]
    assert rows["epochs"].nunique() >= 2 and rows["score"].notna().any()
    figure = board.epoch_curves(base, column)
    figure.savefig(io.BytesIO(), format="png")  # drawn as `gr.Plot` draws it (no bbox_inches="tight")
    legend = figure.legends[0].get_window_extent()
    assert legend.x0 >= max(ax.get_window_extent().x1 for ax in figure.axes)  # outside the data,
    assert legend.x1 <= figure.bbox.x1 and legend.y0 >= 0 and legend.y1 <= figure.bbox.y1  # inside the image
    lines = [line for ax in figure.axes for line in ax.get_lines()]
    assert len({(line.get_color(), line.get_marker()) for line in lines}) == len({line.get_label() for line in lines})
    assert "data size" in figure._suptitle.get_text() and "schedule" in figure._suptitle.get_text()
    assert "pooled over" in board.heatmap(base)._suptitle.get_text()

def test_analysis_tables_add_gain_plots(hub, results, tmp_path):
    from hubkit.hub import push_folder

    study = import_massive_sft_csv(STUDY_CSV).frame
    pairs = study[study["dataset"] != "pretrain"][["base_model", "dataset"]].drop_duplicates()
    ppl = pairs.assign(perplexity=[5.0 + i for i in range(len(pairs))])
    runs = study[study["dataset"] != "pretrain"]["run_id"].drop_duplicates().iloc[:50]
    diff = pd.DataFrame([{"run_id": r, "depth": d, "rel_change": 0.01 * (i + 1) * (1 + d)}
                         for i, r in enumerate(runs) for d in (0.0, 0.5, 1.0)])
    (tmp_path / "analysis").mkdir()
    ppl.to_parquet(tmp_path / "analysis" / "perplexity.parquet", index=False)
    diff.to_parquet(tmp_path / "analysis" / "layerdiff.parquet", index=False)
    push_folder(results, tmp_path, repo_type="dataset", commit_message="analysis tables", api=hub.api("alice"))
    board = load_board(results)
    table = board.gain_vs_perplexity("gsm8k-4shot").set_index(["base_model", "dataset"])
    gsm = study[(study["benchmark"] == "gsm8k") & (study["n_shot"] == 4) & study["gain"].notna()
                & (study["dataset"] != "pretrain")]
    expected = gsm.groupby(["base_model", "dataset"])["gain"].mean()
    assert len(table) == len(expected)
    assert (table["gain"] - expected.reindex(table.index)).abs().max() < 1e-9
    layer = board.gain_vs_layer_change("gsm8k-4shot").set_index("run_id")
    assert layer.loc[runs.iloc[0], "rel_change"] == pytest.approx(0.01 * 1.5)  # the middle layer only
    assert build_app(results) is not None


@pytest.mark.slow
def test_the_plots_tab_shows_the_pushed_analyses(hub, tmp_path):
    """`hubkit analyze --push` → the Space's Plots tab lists each analysis with its figures, condition and n."""
    from hubkit.analysis.study import analyze
    from hubkit.analysis.tables import push_analysis

    study = import_massive_sft_csv(STUDY_CSV)
    repo = "alice/lb-analyses"
    push_results(study, repo, "study", api=hub.api("alice"))
    bases = "Qwen/Qwen2.5-7B,allenai/OLMo-7B-hf,llm-jp/llm-jp-3-7.2b"  # three models: a quicker analysis
    result = analyze(study.frame, tmp_path, where={"base_models": bases})
    push_analysis(result, repo, tmp_path, api=hub.api("alice"))
    board = load_board(repo)
    assert board.analysis_titles() == [s.title for s in result.sections]
    with serving(build_app(repo), port=_free_port()) as url, chromium_page() as page:
        if page is None:
            pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
        page.goto(url)
        page.get_by_role("tab", name="Plots").click()
        page.wait_for_function("() => document.querySelector('#analysis-about')?.innerText.includes('Condition:')",
                               timeout=60_000)
        about = page.locator("#analysis-about").inner_text()
        assert "data size 1,000 · cosine schedule · epoch 10" in about and "n = 30 runs" in about
        page.locator("#analysis-figures img").first.wait_for(timeout=30_000)
        page.locator("#analysis-pick input").click()
        page.locator("#analysis-pick input").fill("LoRA vs full")
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.querySelector('#analysis-about').innerText.includes('Compared:')",
                               timeout=30_000)
        assert "n = 30 paired training runs" in page.locator("#analysis-about").inner_text()
        page.wait_for_function("() => [...document.querySelectorAll('#analysis-figures img')]"
                               ".some(i => (i.getAttribute('src') || '').includes('lora_vs_full'))", timeout=30_000)
