"""The results schema, `import-results`, and the results dataset on a real local Hub."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from hubkit.errors import HubkitError
from hubkit.importers import csv_column_benchmark, import_lm_eval, import_massive_sft_csv
from hubkit.publish import load_results, push_results
from hubkit.results import COLUMNS, ResultsTable

from ..test_cli import _assert_one_line_error, hubkit

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
CSV = DATA / "massive_sft_results" / "evaluation_result.csv"
LM_EVAL = sorted((DATA / "lm_eval_results_v04").glob("*/*.json"))
V03 = sorted((Path(__file__).resolve().parent / "lm_eval_v03").glob("*.json"))
PYTHIA = "eleutherai-pythia-160m-rev-step"


def test_the_study_csv_becomes_1027_models_with_gains():
    table = import_massive_sft_csv(CSV)
    frame = table.frame
    assert list(frame.columns) == COLUMNS and table.models == 1027
    raw = pd.read_csv(CSV, na_values=["None"])
    bench_cols = [c for c in raw.columns if csv_column_benchmark(c)]
    assert len(frame) == int(raw[bench_cols].notna().sum().sum())  # one row per score; empty cells give none
    assert not frame["has_repo"].any() and (frame["model_id"] == "").all()

    base = frame[frame["dataset"] == "pretrain"]
    assert base["run_id"].nunique() == 11 and set(base["tuning"]) == {"base"} and base["lr_schedule"].isna().all()
    assert (base["gain"] == 0).all()
    # a cell checked by hand: Llama-3-8B, `all`, LoRA, epoch 7, cosine: GSM8K 4-shot 45.56 vs its base's 51.78
    row = frame[(frame["run_id"] == "meta-llama-3-8b-all-10k-lora-e7-cosine") & (frame["benchmark"] == "gsm8k")
                & (frame["n_shot"] == 4)].iloc[0]
    assert (row["base_model"], row["score"], row["base_score"]) == ("meta-llama/Meta-Llama-3-8B", 45.56, 51.78)
    assert row["gain"] == pytest.approx(-6.22)
    wide = table.wide()
    assert len(wide) == 1027 and {"gsm8k-4shot", "mt_bench", "mt_bench_writing", "alpaca_eval_v2"} <= set(wide.columns)


@pytest.mark.parametrize("text, message", [
    ("a,b\n1,2\n", "not the study's results CSV (missing column 'model_name')"),
    (",model_name,data_name,lora,epoch,data_size,lr_strategy,gsm8k-4shot\n0,M,lima,maybe,1,1000,cosine,3\n",
     "row 2: lora is 'maybe', expected true or false"),
    ("", "not a readable CSV"),
])
def test_malformed_csv(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(HubkitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_massive_sft_csv(path)


def test_lm_eval_files_never_store_local_paths():
    table = import_lm_eval(LM_EVAL)
    frame = table.frame
    assert len(frame) == 8 and set(frame["benchmark"]) == {"ifeval"}  # every metric: four per file
    assert table.left_out == []
    assert set(frame["run_id"]) == {"gruyere-2.0-uc-r3", "gruyere-2.0-uc-r4"}
    assert not frame["has_repo"].any() and "./runs" not in frame.to_csv()
    assert frame["evaluated_at"].str.endswith("Z").all()
    first = json.loads(LM_EVAL[0].read_text())["results"]["ifeval"]["prompt_level_strict_acc,none"]
    headline = frame[frame["headline"]]
    assert len(headline) == 2 and set(headline["metric"]) == {"prompt_level_strict_acc"}
    assert headline.sort_values("run_id")["score"].iloc[0] == pytest.approx(100 * first)


def test_lm_eval_04_files_keep_their_limit_and_provenance():
    frame = import_lm_eval(LM_EVAL).frame
    frame = frame[frame["headline"]].sort_values("run_id").set_index("run_id")
    for run, path in zip(frame.index, LM_EVAL):
        data = json.loads(path.read_text())
        counts = data["n-samples"]["ifeval"]
        row = frame.loc[run]
        assert (row["n_samples"], row["n_total"]) == (counts["effective"], counts["original"])  # `limit` kept
        assert row["subset"] and row["n_samples"] < row["n_total"]
        assert (row["scale"], row["higher_is_better"]) == ("percent", True)
        assert (row["harness"], row["harness_version"], row["source_file"]) == ("lm-eval", "0.4.13", path.name)
        assert row["n_shot"] == data["n-shot"]["ifeval"] == 0


def test_the_study_import_keeps_one_scale_per_benchmark():
    frame = import_massive_sft_csv(CSV).frame
    raw = pd.read_csv(CSV, na_values=["None"])
    truthful = frame[frame["benchmark"] == "truthfulqa"]
    assert (truthful["scale"] == "percent").all()
    assert truthful["score"].max() == pytest.approx(100 * raw["Truthful_QA-0shot"].max())  # 18.0, not 0.18
    # by hand: Llama-3-8B, `all`, LoRA, epoch 7, cosine has Truthful_QA-0shot 0.07 in the CSV: 7 points
    row = truthful[truthful["run_id"] == "meta-llama-3-8b-all-10k-lora-e7-cosine"].iloc[0]
    assert row["score"] == pytest.approx(7.0)
    judged = frame["benchmark"].str.startswith("mt_bench")
    assert (frame[judged]["scale"] == "1-10").all() and frame[judged]["score"].between(1, 10).all()
    assert set(frame[~judged]["scale"]) == {"percent"} and frame["higher_is_better"].all()
    assert (frame["subset"] == False).all()  # noqa: E712 — the study scored whole benchmarks
    assert set(frame["harness"]) == {"opencompass"} and set(frame["source_file"]) == {CSV.name}


def test_lm_eval_03_files_keep_direction_scale_shots_and_revision():
    table = import_lm_eval(V03)
    assert len(table.frame) == 7 + 7 + 2 and table.left_out == []  # every metric of every task
    frame = table.frame[table.frame["headline"]]
    assert len(frame) == 3 + 3 + 1  # one headline per task: the registry's, else the first the file lists
    rows = frame.set_index(["run_id", "benchmark", "n_shot"])
    wiki = rows.loc[(f"{PYTHIA}1000", "wikitext", 0)]
    assert (wiki["metric"], wiki["scale"], wiki["higher_is_better"]) == ("word_perplexity", "raw", False)
    assert wiki["score"] == pytest.approx(171.23)  # a perplexity as it is: never ×100, never a percentage
    lambada = rows.loc[(f"{PYTHIA}1000", "lambada_openai", 0)]
    assert (lambada["metric"], lambada["scale"], lambada["score"]) == ("ppl", "raw", 2184.31)
    # two checkpoints of one model, and two shot counts of one checkpoint, are rows of their own
    step1, step2 = rows.loc[(f"{PYTHIA}1000", "hellaswag", 0)], rows.loc[(f"{PYTHIA}2000", "hellaswag", 0)]
    five = rows.loc[(f"{PYTHIA}2000", "hellaswag", 5)]
    assert (step1["score"], step2["score"], five["score"]) == pytest.approx((26.51, 27.03, 28.0))
    assert (step1["model_revision"], step2["model_revision"]) == ("step1000", "step2000")
    assert (step2["subset"], five["subset"], five["n_samples"]) == (False, True, 100)  # `limit: 100` is a subset
    assert set(frame["model_id"]) == {"EleutherAI/pythia-160m"} and set(frame["harness_version"]) == {"0.3"}
    assert frame["gain"].isna().all()  # no base rows: no gain is made up
    norm = table.frame.set_index(["run_id", "benchmark", "metric", "n_shot"]).loc[(f"{PYTHIA}1000", "hellaswag",
                                                                                  "acc_norm", 0)]
    assert norm["score"] == pytest.approx(26.87) and not norm["headline"]  # acc_norm is its own score


def _v03(tmp_path: Path, name: str, change) -> Path:
    data = json.loads(V03[0].read_text())
    change(data)
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_a_metric_hubkit_cannot_interpret_is_left_out_and_said(tmp_path):
    odd = _v03(tmp_path, "odd-metric.json", lambda d: d["results"]["wikitext"].update({"weirdness": 3.0}))
    table = import_lm_eval([odd])
    assert "weirdness" not in set(table.frame["metric"]) and len(table.frame) == 7
    assert table.left_out == ["odd-metric.json: results.wikitext.weirdness: hubkit cannot interpret the metric "
                              "'weirdness' (its scale is unknown: add it to the task's benchmark record or the metric "
                              "catalogue)"]


@pytest.mark.parametrize("name, change, message", [
    ("fraction.json", lambda d: d["results"]["hellaswag"].update({"acc": 62.0}),
     "fraction.json: results.hellaswag.acc is 62, outside [0, 1]: lm-eval writes acc as a fraction"),
    ("no-layout.json", lambda d: d.pop("config"), "no-layout.json: cannot tell the lm-eval layout"),
    ("bad-shots.json", lambda d: d["config"].update(num_fewshot="five"),
     "bad-shots.json: config.num_fewshot is 'five', not a whole number"),
    ("bad-limit.json", lambda d: d["config"].update(limit="all"), "bad-limit.json: config.limit is 'all'"),
])
def test_lm_eval_files_it_cannot_interpret_are_refused(tmp_path, name, change, message):
    with pytest.raises(HubkitError, match=re.escape(message)):
        import_lm_eval([V03[1], _v03(tmp_path, name, change)])


def test_a_04_direction_that_contradicts_the_registry_is_refused(tmp_path):
    data = json.loads(LM_EVAL[0].read_text())
    data["higher_is_better"]["ifeval"] = {}  # missing: the registry's direction is the one known
    path = tmp_path / "results_x.json"
    path.write_text(json.dumps(data))
    assert import_lm_eval([path]).frame["higher_is_better"].all()
    data["higher_is_better"]["ifeval"] = {"prompt_level_strict_acc": False}
    path.write_text(json.dumps(data))
    with pytest.raises(HubkitError, match=re.escape("higher_is_better.ifeval.prompt_level_strict_acc is false, but "
                                                    "hubkit keeps prompt_level_strict_acc higher-is-better")):
        import_lm_eval([path])


@pytest.mark.slow
def test_imports_of_checkpoints_and_shot_counts_never_replace_each_other(hub, alice, repo_name, tmp_path):
    env = {"HF_TOKEN": hub.tokens["alice"]}
    repo_id = f"alice/{repo_name}"
    for path in V03:  # one import per file, as a user would run them over time
        proc = hubkit("import-results", str(path), "--format", "lm-eval", "--repo-id", repo_id, env=env)
        assert proc.returncode == 0, proc.stderr
        if path == V03[0]:
            assert "2 benchmark(s) percent, 2 benchmark(s) raw" in proc.stdout  # the import says what it read
            assert "Note: kept 7 score(s) of 3 task(s) and group(s) (3 headline, 4 other metrics)" in proc.stdout
    rows = load_results(repo_id, api=alice)
    assert len(rows) == 16 and rows["run_id"].nunique() == 2
    assert len(rows[(rows["benchmark"] == "hellaswag") & rows["headline"]]) == 3
    again = hubkit("import-results", str(V03[0]), "--format", "lm-eval", "--repo-id", repo_id, env=env)
    assert again.returncode == 0 and len(load_results(repo_id, api=alice)) == 16  # the same file replaces itself

    commits = len(alice.list_repo_commits(repo_id, repo_type="dataset"))
    bad = _v03(tmp_path, "odd.json", lambda d: d["results"]["hellaswag"].update({"acc": 26.0}))
    _assert_one_line_error(hubkit("import-results", str(V03[0]), str(bad), "--format", "lm-eval", "--repo-id",
                                  repo_id, env=env), "odd.json: results.hellaswag.acc is 26, outside [0, 1]")
    assert len(alice.list_repo_commits(repo_id, repo_type="dataset")) == commits  # nothing written


@pytest.mark.slow
def test_import_results_cli_publishes_a_loadable_results_dataset(hub, alice, repo_name):
    env = {"HF_TOKEN": hub.tokens["alice"]}
    repo_id = f"alice/{repo_name}"
    proc = hubkit("import-results", str(CSV), "--format", "massive-sft-csv", "--repo-id", repo_id, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Imported 1,027 models" in proc.stdout and "1,027 without a model repo" in proc.stdout
    commits = len(alice.list_repo_commits(repo_id, repo_type="dataset"))

    from datasets import load_dataset

    rows = load_dataset(repo_id, split="train").to_pandas()
    assert rows["run_id"].nunique() == 1027 and list(rows.columns) == COLUMNS
    card = alice.dataset_info(repo_id).card_data
    assert "hubkit-results" in card.tags

    again = hubkit("import-results", str(CSV), "--format", "massive-sft-csv", "--repo-id", repo_id, env=env)
    assert again.returncode == 0
    assert len(load_results(repo_id, api=alice)) == len(rows)  # the same key replaces, never duplicates
    assert len(alice.list_repo_commits(repo_id, repo_type="dataset")) <= commits + 2

    lm = hubkit("import-results", *map(str, LM_EVAL), "--format", "lm-eval", "--repo-id", repo_id, env=env)
    assert lm.returncode == 0, lm.stderr
    assert load_results(repo_id, api=alice)["run_id"].nunique() == 1029

    _assert_one_line_error(hubkit("import-results", str(CSV), "--format", "csv", "--repo-id", repo_id, env=env),
                           "unknown format 'csv'")
    _assert_one_line_error(hubkit("import-results", "nope.csv", "--format", "massive-sft-csv", env=env),
                           "results file not found: nope.csv")


def _table(i: int) -> ResultsTable:
    rows = [{"model_id": f"alice/m{i}", "has_repo": True, "run_id": f"run-{i}", "base_model": "b", "dataset": "lima",
             "data_size": 100, "tuning": "full", "epochs": 1, "lr_schedule": "cosine", "benchmark": bench,
             "n_shot": 0, "metric": "acc", "score": float(i), "base_score": None, "gain": None, "source": "hubkit",
             "evaluated_at": None} for bench in ("gsm8k", "mmlu")]
    return ResultsTable(pd.DataFrame(rows, columns=COLUMNS), "hubkit")


@pytest.mark.slow
def test_eight_parallel_publishers_lose_no_row(hub, repo_name):
    repo_id = f"alice/{repo_name}"
    with ThreadPoolExecutor(8) as pool:
        pushed = list(pool.map(lambda i: push_results(_table(i), repo_id, f"run-{i}", api=hub.api("alice")), range(8)))
    assert {p.rows_file for p in pushed} == {f"rows/run-{i}.parquet" for i in range(8)}
    frame = load_results(repo_id, api=hub.api("alice"))
    assert sorted(frame["run_id"].unique()) == [f"run-{i}" for i in range(8)] and len(frame) == 16


def test_results_errors(hub, repo_name):
    with pytest.raises(HubkitError, match="results dataset alice/none-such not found"):
        load_results("alice/none-such", api=hub.api("alice"))
    with pytest.raises(HubkitError, match="cannot publish results to bob/x"):
        push_results(_table(0), "bob/x", "k", api=hub.api("alice"))


class _FlakyProxy:
    """A real HTTP proxy in front of the local Hub that answers 503 to the first `fail` commits it sees: the
    transient failure a busy Hub gives, over the wire, with the client's own error handling."""

    def __init__(self, target: str, fail: int) -> None:
        import http.server
        import threading

        import httpx

        self.fail, self.commits = fail, 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if "/commit/" in self.path and self.command == "POST":
                    proxy.commits += 1
                    if proxy.commits <= proxy.fail:
                        self.send_response(503)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                r = httpx.request(self.command, target + self.path, headers=headers, content=body, timeout=60)
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _forward

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_pushing_results_retries_a_transient_failure(hub, monkeypatch):
    from huggingface_hub import HfApi

    import hubkit.hub.errors as hub_errors

    monkeypatch.setattr(hub_errors, "RETRY_FIRST_WAIT", 0.01)
    table = import_massive_sft_csv(CSV)
    proxy = _FlakyProxy(hub.url, fail=1)
    try:
        api = HfApi(endpoint=proxy.url, token=hub.tokens["alice"])
        pushed = push_results(table, "alice/flaky-results", "study", api=api)
        assert proxy.commits >= 2  # the refused commit and its retry (rows and the rebuilt table are one commit)
        assert pushed.models == table.models
        proxy.fail, proxy.commits = 10**6, 0  # a Hub that keeps failing: one line, after the retries
        with pytest.raises(HubkitError, match="cannot publish results to alice/flaky-results: .*503"):
            push_results(table, "alice/flaky-results", "again", api=api)
        assert proxy.commits == hub_errors.RETRY_ATTEMPTS  # retried at the call, once
    finally:
        proxy.close()
    assert len(load_results("alice/flaky-results", api=hub.api("alice"))) == len(table.frame)
