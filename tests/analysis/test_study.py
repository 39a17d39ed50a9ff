"""`hubkit analyze` on the study's released results, checked against plain pandas computations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hubkit.analysis.study import analyze, bootstrap_corr
from hubkit.results import import_massive_sft_csv

from ..test_cli import _assert_one_line_error, hubkit

STUDY_CSV = Path(__file__).resolve().parents[3] / "shared" / "data" / "massive_sft_results" / "evaluation_result.csv"


@pytest.fixture(scope="module")
def study():
    return import_massive_sft_csv(STUDY_CSV).frame


@pytest.fixture(scope="module")
def inputs(study):
    rng = np.random.default_rng(1)
    pairs = study[study["dataset"] != "pretrain"][["base_model", "dataset"]].drop_duplicates()
    properties = pairs.assign(perplexity=rng.uniform(2, 20, len(pairs)), avg_length=rng.uniform(50, 900, len(pairs)))
    runs = study[study["dataset"] != "pretrain"]["run_id"].drop_duplicates()
    layers = pd.DataFrame([{"model": r, "layer": k, "depth": k / 9, "rel_change": float(rng.uniform(0, 0.01))}
                           for r in runs for k in range(10)])
    return properties, layers


def test_synergy_and_training_factors_equal_pandas(study, inputs, tmp_path):
    properties, layers = inputs
    result = analyze(study, tmp_path, properties=properties, layers=layers)
    ft = study[(study["dataset"] != "pretrain") & study["gain"].notna()]
    # (a) one cell of the synergy matrix, and the sign agreement across base models
    cell = ft[(ft["base_model"] == "Qwen/Qwen2.5-7B") & (ft["dataset"] == "lima") & (ft["benchmark"] == "gsm8k")
              & (ft["n_shot"] == 4)]["gain"].mean()
    synergy = result.tables["synergy"].set_index(["base_model", "dataset", "column"])["gain"]
    assert synergy[("Qwen/Qwen2.5-7B", "lima", "gsm8k-4shot")] == pytest.approx(cell)
    per_base = ft[(ft["dataset"] == "code_alpaca") & (ft["benchmark"] == "humaneval")].groupby("base_model")["gain"].mean()
    positive = int((per_base > 0).sum())
    row = result.tables["agreement"].set_index(["dataset", "column"]).loc[("code_alpaca", "humaneval-0shot")]
    assert row["bases"] == len(per_base) and row["agreement"] == pytest.approx(max(positive, len(per_base) - positive) / len(per_base))
    # (d) LoRA minus full on identical settings
    keys = ["base_model", "dataset", "data_size", "epochs", "lr_schedule"]
    m = ft[(ft["benchmark"] == "mmlu") & (ft["n_shot"] == 5)]
    paired = m[m["tuning"] == "lora"].groupby(keys)["gain"].mean() - m[m["tuning"] == "full"].groupby(keys)["gain"].mean()
    lvf = result.tables["lora_vs_full"].set_index("column").loc["mmlu-5shot"]
    assert lvf["pairs"] == paired.dropna().size and lvf["mean"] == pytest.approx(paired.dropna().mean())
    assert lvf["ci_low"] <= lvf["mean"] <= lvf["ci_high"]
    epochs = result.tables["epochs"].set_index(["tuning", "epochs", "column"])["gain"]
    assert epochs[("full", 3, "mmlu-5shot")] == pytest.approx(m[(m["tuning"] == "full") & (m["epochs"] == 3)]["gain"].mean())
    # (b) and (c): correlations equal pandas', inside their bootstrap intervals
    gains = ft[(ft["benchmark"] == "gsm8k") & (ft["n_shot"] == 4)].groupby(["base_model", "dataset"])["gain"].mean()
    joined = gains.reset_index().merge(properties, on=["base_model", "dataset"])
    props = result.tables["data_properties"].set_index(["column", "property", "method"])
    for method in ("pearson", "spearman"):
        r = props.loc[("gsm8k-4shot", "perplexity", method)]
        assert r["r"] == pytest.approx(joined["perplexity"].corr(joined["gain"], method=method))
        assert r["ci_low"] <= r["r"] <= r["ci_high"]
    depth = result.tables["layer_correlation"]
    assert len(depth[depth["method"] == "spearman"]) == 10
    # the mean gain per model is over percent-scale benchmarks only: MT-Bench's 1-10 grades stay out
    percent = study[study["gain"].notna() & ~study["benchmark"].str.startswith("mt_bench")]
    model_gain = percent.groupby("run_id")["gain"].mean()
    first = layers[layers["layer"] == 0].set_index("model")["rel_change"]
    both = pd.concat([first, model_gain], axis=1, join="inner")
    got = depth[(depth["method"] == "pearson")].sort_values("depth").iloc[0]["r"]
    assert got == pytest.approx(both.iloc[:, 0].corr(both.iloc[:, 1]))
    report = result.report.read_text()
    assert "## (a)" in report and "## (b)" in report and "## (c)" in report and "## (d)" in report
    assert (tmp_path / "synergy.png").stat().st_size > 1000
    assert (tmp_path / "synergy-1-10.png").stat().st_size > 1000  # MT-Bench's grades on a colour scale of their own
    scales = result.tables["synergy"].groupby("column")["scale"].first()
    assert scales["mt_bench"] == "1-10" and scales["truthfulqa-0shot"] == "percent"
    top = report.split("## (d)")[0]
    assert "| mt_bench" not in top  # the top-synergy list never ranks grades beside percentage points


def test_bootstrap_interval_is_seeded_and_covers_the_estimate():
    x = np.arange(50, dtype=float)
    y = x + np.random.default_rng(0).normal(0, 10, 50)
    assert bootstrap_corr(x, y, "pearson") == bootstrap_corr(x, y, "pearson")
    assert np.isnan(bootstrap_corr(x[:2], y[:2], "pearson")[0])


def test_cli_pushes_tables_the_leaderboard_reads(hub, inputs, tmp_path):
    from hubkit.publish import push_results
    from hubkit.space import load_board

    properties, layers = inputs
    properties.to_parquet(tmp_path / "ppl.parquet")
    layers.to_parquet(tmp_path / "layers.parquet")
    alice = hub.api("alice")
    push_results(import_massive_sft_csv(STUDY_CSV), "alice/analysis-results", "study", api=alice)
    env = {"HF_TOKEN": hub.tokens["alice"]}
    proc = hubkit("analyze", "--results", str(STUDY_CSV), "--perplexity", str(tmp_path / "ppl.parquet"),
                  "--layers", str(tmp_path / "layers.parquet"), "--output", str(tmp_path / "out"),
                  "--push", "alice/analysis-results", env=env)
    assert proc.returncode == 0, proc.stderr
    board = load_board("alice/analysis-results")
    assert set(board.analysis) == {"perplexity", "layerdiff"}
    assert len(board.gain_vs_perplexity("gsm8k-4shot")) > 50 and len(board.gain_vs_layer_change("gsm8k-4shot")) > 50
    _assert_one_line_error(hubkit("analyze", "--results", str(tmp_path / "nope.csv")), "results file not found")
    (tmp_path / "bad.parquet").write_bytes(b"nope")
    _assert_one_line_error(hubkit("analyze", "--results", str(STUDY_CSV), "--layers", str(tmp_path / "bad.parquet"),
                                  "--output", str(tmp_path / "o2")), "bad.parquet: not a readable table")
