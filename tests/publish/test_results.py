"""The results schema, `import-results`, and the results dataset on a real local Hub."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from hubkit.errors import HubkitError
from hubkit.publish import load_results, push_results
from hubkit.results import COLUMNS, ResultsTable, csv_column_benchmark, import_lm_eval, import_massive_sft_csv

from ..test_cli import _assert_one_line_error, hubkit

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
CSV = DATA / "massive_sft_results" / "evaluation_result.csv"
LM_EVAL = sorted((DATA / "lm_eval_results_v04").glob("*/*.json"))


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
    assert len(frame) == 2 and set(frame["benchmark"]) == {"ifeval"}
    assert set(frame["run_id"]) == {"gruyere-2.0-uc-r3", "gruyere-2.0-uc-r4"}
    assert not frame["has_repo"].any() and "./runs" not in frame.to_csv()
    assert frame["evaluated_at"].str.endswith("Z").all()
    first = json.loads(LM_EVAL[0].read_text())["results"]["ifeval"]["prompt_level_strict_acc,none"]
    assert frame.sort_values("run_id")["score"].iloc[0] == pytest.approx(100 * first)


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
