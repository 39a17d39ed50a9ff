"""`hubkit analyze` on the study's released results: each quantity recomputed here from the imported rows with
plain pandas / numpy / scipy, on the condition the analysis states, and compared to 1e-9."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hubkit.analysis import figures
from hubkit.analysis.conditions import cluster_bootstrap_mean, parse_where
from hubkit.analysis.stats import bootstrap_corr
from hubkit.analysis.study import analyze
from hubkit.errors import HubkitError
from hubkit.importers import import_massive_sft_csv

from ..test_cli import _assert_one_line_error, hubkit
from .conftest import STUDY_CSV

TOL = 1e-9
CHANCE = {"boolq": 50.0, "mmlu": 25.0, "hellaswag": 25.0, "jmmlu": 25.0, "cmmlu": 25.0}


def _column(frame: pd.DataFrame) -> pd.Series:
    return frame["benchmark"] + frame["n_shot"].map(lambda n: "" if pd.isna(n) else f"-{int(n)}shot") \
        + frame["metric"].map(lambda m: ":" + m if m == "opencompass_score" else "")  # not TruthfulQA's headline mc2


def _distrusted(study: pd.DataFrame) -> set[tuple[str, str]]:
    """(base model, column) whose gains rest on a base score another base model shares: base rows equal (to 0.005
    points) on at least 3 columns and a quarter of those both have; both models' cells, or only the copy's where
    the study documents it (Chinese-Mistral's row is Mistral's)."""
    base = study[study["dataset"] == "pretrain"].assign(column=lambda f: _column(f))
    wide = base.pivot_table(index="base_model", columns="column", values="score")
    out = set()
    names = sorted(wide.index)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            both = wide.loc[[a, b]].dropna(axis=1)
            same = [c for c in both.columns if abs(both.loc[a, c] - both.loc[b, c]) <= 0.005]
            if len(same) >= 3 and len(same) >= 0.25 * both.shape[1]:
                hit = [a] if a == "itpossible/Chinese-Mistral-7B-v0.1" else [a, b]
                out |= {(m, c) for m in hit for c in same}
    return out


def _cells(study: pd.DataFrame, *, size=1000, schedule="cosine", epoch=10, tuning="full", kind="single",
           failures=False) -> pd.DataFrame:
    """Fine-tuned rows with a gain under a condition, each with its column name; format failures and the cells the
    data checks distrust dropped."""
    ft = study[(study["dataset"] != "pretrain") & study["gain"].notna()].copy()
    ft = ft[ft["subset"].astype("boolean").eq(False).fillna(False).to_numpy(bool)]
    for col, value in (("data_size", size), ("lr_schedule", schedule), ("epochs", epoch), ("tuning", tuning)):
        if value is not None:
            ft = ft[(ft[col] == value).fillna(False).to_numpy(bool)]
    is_all = ft["dataset"] == "all"
    is_loo = ft["dataset"].str.startswith("w/o-")
    if kind == "single":
        ft = ft[~is_all & ~is_loo]
    elif kind == "loo+all":
        ft = ft[is_all | is_loo]
    ft["column"] = _column(ft)
    distrusted = _distrusted(study)
    ft = ft[[(b, c) not in distrusted for b, c in zip(ft["base_model"], ft["column"])]]
    shots = ft["n_shot"].fillna(0).astype(int)
    chance = ft["benchmark"].map(CHANCE).fillna(0.0)
    ft["failure"] = (ft["scale"] == "percent") & (shots > 0) & ((ft["base_score"] <= 2.5) | (ft["base_score"] < chance / 4))
    return ft if failures else ft[~ft["failure"]]


def test_lora_vs_full_pairs_the_main_grid_and_bootstraps_runs(study, result):
    cells = _cells(study, tuning=None)
    table = result.tables["lora_vs_full"].set_index("column")
    for column, part in cells.groupby("column"):
        w = part.pivot_table(index=["base_model", "dataset"], columns="tuning", values="gain")
        if {"full", "lora"} - set(w.columns):
            continue
        diff = (w["lora"] - w["full"]).dropna()
        assert table.loc[column, "pairs"] == len(diff)
        assert abs(table.loc[column, "mean"] - diff.mean()) < TOL
    assert table.loc["alpaca_eval_v2", "pairs"] == 99  # 109 runs, less Chinese-Mistral's (its base row is Mistral's)
    # pooling every condition (the "all" and leave-one-out runs too) reverses AlpacaEval's sign: the main grid
    # says LoRA is ahead, the pool says it is behind
    pooled = study[(study["dataset"] != "pretrain") & (study["benchmark"] == "alpaca_eval_v2")]
    keys = ["base_model", "dataset", "data_size", "epochs", "lr_schedule"]
    pooled = pooled.pivot_table(index=keys, columns="tuning", values="score")
    assert (pooled["lora"] - pooled["full"]).dropna().mean() < 0 < table.loc["alpaca_eval_v2", "mean"]
    # the interval: resample (base, dataset) runs, 1,000 times, seed 0, clusters in sorted key order
    part = cells[cells["column"] == "mmlu-0shot"].pivot_table(index=["base_model", "dataset"], columns="tuning",
                                                              values="gain")
    diff = (part["lora"] - part["full"]).dropna().sort_index()
    keys = sorted(f"{b}|{d}|1000|cosine" for b, d in diff.index)
    values = diff.reindex([tuple(k.split("|")[:2]) for k in keys]).to_numpy()
    idx = np.random.default_rng(0).integers(0, len(values), (1000, len(values)))
    low, high = np.percentile(values[idx].mean(axis=1), [2.5, 97.5])
    assert abs(table.loc["mmlu-0shot", "ci_low"] - low) < TOL and abs(table.loc["mmlu-0shot", "ci_high"] - high) < TOL


def test_data_size_is_paired_at_equal_epochs_and_resamples_runs(study, result):
    cells = _cells(study, size=None, schedule="constant", epoch=None)
    table = result.tables["data_size"].set_index("column")
    by_epoch = result.tables["data_size_by_epochs"].set_index(["epochs", "column"])
    for column, part in cells.groupby("column"):
        w = part.pivot_table(index=["base_model", "dataset", "epochs"], columns="data_size", values="gain")
        diff = (w[20000] - w[1000]).dropna()
        assert table.loc[column, "pairs"] == len(diff)
        assert table.loc[column, "runs"] == diff.reset_index()[["base_model", "dataset"]].drop_duplicates().shape[0]
        assert abs(table.loc[column, "mean"] - diff.mean()) < TOL
        at3 = diff.xs(3, level="epochs")
        assert abs(by_epoch.loc[(3, column), "mean"] - at3.mean()) < TOL
    assert table.loc["gsm8k-4shot", "pairs"] == 270 and table.loc["gsm8k-4shot", "runs"] == 27
    # ten checkpoints of one run are not ten observations: the run-level interval is wider than a naive one
    pairs = result.tables["data_size_pairs"]
    part = pairs[pairs["column"] == "hellaswag-0shot"]  # run-level intervals are 1.4–3.0× as wide over the benchmarks
    lineage = part["base_model"] + "|" + part["dataset"]
    clustered = cluster_bootstrap_mean(part["diff"].to_numpy(), lineage.to_numpy())
    naive = cluster_bootstrap_mean(part["diff"].to_numpy())
    assert clustered.ci_high - clustered.ci_low > 1.5 * (naive.ci_high - naive.ci_low)
    assert abs(table.loc["hellaswag-0shot", "ci_low"] - clustered.ci_low) < TOL


STUDY_SHOTS = {"mbpp": 4, "gsm8k": 4, "mmlu": 5, "nq_open": 1, "boolq": 5, "hellaswag": 10}


def _percent_once(cells: pd.DataFrame) -> pd.DataFrame:
    """The percent-scale cells at one shot count per benchmark, whatever the filter: the study's (the CSV holds each
    benchmark at it, or at one count only)."""
    percent = cells[(cells["scale"] == "percent") & cells["higher_is_better"]]
    shots = percent["column"].str.extract(r"-(\d+)shot(?::|$)")[0].astype(float).fillna(0)
    study = percent["benchmark"].map(STUDY_SHOTS)
    return percent[(study.isna() | (shots == study)).to_numpy(bool)]


def _common_mean(part: pd.DataFrame) -> pd.Series:
    """Per run: mean gain over the benchmarks at least half the runs have; runs lacking one dropped."""
    wide = part.pivot_table(index="run_id", columns="column", values="gain")
    used = wide.columns[wide.notna().mean() >= 0.5]
    return wide[used].dropna().mean(axis=1)


def test_epoch_curves_are_per_model_on_one_grid(study, result):
    cells = _cells(study, schedule="constant", epoch=None)
    curves = result.tables["epochs"].set_index("run_id")
    once = _percent_once(cells)
    # the study scored NQ-open at four shot counts and five other benchmarks at two: each enters a mean once
    assert once.groupby("benchmark")["column"].nunique().max() == 1
    assert cells[cells["benchmark"] == "nq_open"]["column"].nunique() == 4
    epochs = next(s for s in result.sections if s.name == "epochs")
    assert any("each benchmark counted once" in note and "nq_open" in note for note in epochs.dropped)
    expected = pd.concat([_common_mean(part) for _, part in once.groupby("base_model")])
    assert len(curves) == len(expected) == cells["run_id"].nunique() == 297  # 3 bases × 10 sets × 10 epochs, 3 unscored
    assert (curves["mean_gain"] - expected.reindex(curves.index)).abs().max() < TOL
    assert set(curves["data_size"]) == {1000} and set(curves["lr_schedule"]) == {"constant"}
    meta = cells.drop_duplicates("run_id").set_index("run_id")
    frame = pd.DataFrame({"gain": expected}).join(meta[["base_model", "dataset", "epochs"]])
    last = frame[frame["epochs"] == 10].set_index(["base_model", "dataset"])["gain"]
    vs_last = result.tables["epochs_vs_last"].set_index("epochs")
    for e in (1, 3, 9):
        at = frame[frame["epochs"] == e].set_index(["base_model", "dataset"])["gain"]
        diff = (at - last).dropna()
        assert vs_last.loc[e, "runs"] == len(diff) and abs(vs_last.loc[e, "mean"] - diff.mean()) < TOL


def test_synergy_agreement_and_format_failures(study, result):
    cells = _cells(study, failures=True)
    synergy = result.tables["synergy"].set_index(["base_model", "dataset", "column"])
    for (base, dataset, column), gain in cells.groupby(["base_model", "dataset", "column"])["gain"].mean().items():
        assert abs(synergy.loc[(base, dataset, column), "gain"] - gain) < TOL
    failures = result.tables["format_failures"]
    boolq = failures[failures["column"] == "boolq-5shot"]
    assert len(boolq) == 9 and "01-ai/Yi-1.5-9B" not in set(boolq["base_model"])  # Yi's base scores 75
    assert (boolq["base_score"] <= 2.5).all()
    clean = cells[~cells["failure"]]
    per_base = clean[(clean["dataset"] == "code_alpaca") & (clean["column"] == "humaneval-0shot")].set_index(
        "base_model")["gain"]
    row = result.tables["agreement"].set_index(["dataset", "column"]).loc[("code_alpaca", "humaneval-0shot")]
    positive = int((per_base > 0).sum())
    assert row["bases"] == len(per_base)
    assert abs(row["agreement"] - max(positive, len(per_base) - positive) / len(per_base)) < TOL
    assert result.tables["agreement"].set_index(["dataset", "column"]).loc[("ultrachat", "boolq-5shot"), "bases"] == 1
    report = result.report.read_text()
    top = report.split("### Best, second")[0]
    assert "boolq-5shot |" not in top and "| mt_bench" not in top  # no format failure, no grades among points
    assert "boolq-5shot (9 base models)" in report


def test_rankings_correlations_and_pca(study, result):
    cells = _cells(study)
    ranking = result.tables["dataset_ranking"].set_index("base_model")
    meta = cells.drop_duplicates("run_id").set_index("run_id")
    for base, part in _percent_once(cells).groupby("base_model"):
        means = _common_mean(part).rename("g").to_frame().join(meta["dataset"]).groupby("dataset")["g"].mean()
        order = means.sort_values(ascending=False)
        assert ranking.loc[base, ["best", "second", "worst"]].tolist() == [order.index[0], order.index[1], order.index[-1]]
        assert abs(ranking.loc[base, "best_gain"] - order.iloc[0]) < TOL
    by_run = cells.pivot_table(index="run_id", columns="column", values="gain")
    bench = result.tables["benchmark_correlation"].set_index(["column_a", "column_b"])
    for a, b in (("gsm8k-4shot", "math-0shot"), ("mmlu-0shot", "jmmlu-0shot"), ("mt_bench", "alpaca_eval_v2")):
        both = by_run[[a, b]].dropna()
        assert bench.loc[(a, b), "n"] == len(both)
        assert abs(bench.loc[(a, b), "r"] - stats.pearsonr(both[a], both[b]).statistic) < TOL
    # the finding names the most similar *different* benchmarks, not two shot counts of one (NQ-open at 5 and 25
    # shots, r = 0.92) nor MT-Bench and one of its categories
    family = {c: re.sub(r"-\d+shot$", "", c).split("_")[0] for c in by_run.columns}
    pairs = result.tables["benchmark_correlation"].dropna(subset=["r"])
    pairs = pairs[(pairs["column_a"] < pairs["column_b"]) & (pairs["column_a"].map(family) != pairs["column_b"].map(family))]
    top = pairs.sort_values("r").iloc[-1]
    finding = next(s for s in result.sections if s.name == "gain_correlation").finding
    assert f"most similar benchmarks are {top['column_a']} and {top['column_b']}" in finding
    assert "nq_open-25shot and nq_open-5shot" not in finding
    percent = _percent_once(cells)  # a benchmark scored at several shot counts is one variable, not several
    assert percent.groupby("benchmark")["column"].nunique().max() == 1
    by_model = percent.pivot_table(index=["dataset", "column"], columns="base_model", values="gain")
    models = result.tables["model_correlation"].set_index(["model_a", "model_b"])
    a, b = "Qwen/Qwen2.5-7B", "allenai/OLMo-7B-hf"
    both = by_model[[a, b]].dropna()
    assert abs(models.loc[(a, b), "r"] - stats.pearsonr(both[a], both[b]).statistic) < TOL
    # PCA: eigenvalues of the covariance of the complete gain patterns (percent scale)
    wide = percent.pivot_table(index="run_id", columns="column", values="gain")
    wide = wide[wide.columns[wide.notna().mean() >= 0.5]].dropna()
    eig = np.sort(np.linalg.eigvalsh(np.cov(wide.to_numpy().T)))[::-1]
    pca = result.tables["pca"]
    assert len(pca) == min(wide.shape)
    assert np.abs(pca["explained"].to_numpy() - eig[: len(pca)] / eig.sum()).max() < TOL
    assert pca["cumulative"].iloc[-1] == pytest.approx(1.0, abs=TOL)


def test_leave_one_out_and_cross_lingual(study, result):
    cells = _cells(study, size=None, kind="loo+all")
    loo = result.tables["leave_one_out"].set_index(["removed", "column"])
    ref = cells[cells["dataset"] == "all"].set_index(["base_model", "column"])["gain"]
    without = cells[cells["dataset"] != "all"].set_index(["base_model", "dataset", "column"])["gain"]
    assert len(loo) == len(without)
    for (base, dataset, column), gain in without.items():
        assert abs(loo.loc[(dataset[4:], column), "effect"] - (gain - ref[(base, column)])) < TOL
    assert loo.index.get_level_values("removed").nunique() == 10
    main = _cells(study)  # format failures out: English mmlu-5shot gains +4.33 with them, +0.16 without
    languages = {"allenai/OLMo-7B-hf": "English", "meta-llama/Meta-Llama-3-8B": "English",
                 "mistralai/Mistral-7B-v0.1": "English", "google/gemma-2-9b": "English",
                 "llm-jp/llm-jp-3-7.2b": "Japanese", "sbintuitions/sarashina2-7b": "Japanese",
                 "tokyotech-llm/Llama-3-Swallow-8B-v0.1": "Japanese", "Qwen/Qwen2.5-7B": "Chinese",
                 "01-ai/Yi-1.5-9B": "Chinese", "hfl/llama-3-chinese-8b": "Chinese",
                 "itpossible/Chinese-Mistral-7B-v0.1": "Chinese"}
    main = main[main["benchmark"].isin(["mmlu", "jmmlu", "cmmlu"])].assign(language=main["base_model"].map(languages))
    table = result.tables["cross_lingual"].set_index(["language", "column"])
    for (language, column), part in main.groupby(["language", "column"]):
        assert table.loc[(language, column), "runs"] == len(part)
        assert abs(table.loc[(language, column), "mean"] - part["gain"].mean()) < TOL
        assert table.loc[(language, column), "bases"] == part["base_model"].nunique()
        # languages vary only across base models: with under 5 of them there is no interval to draw
        assert np.isnan(table.loc[(language, column), "ci_low"]) == (part["base_model"].nunique() < 5)
    assert abs(table.loc[("English", "mmlu-5shot"), "mean"] - 0.16) < 0.005
    wide = main.pivot_table(index=["run_id", "language"], columns="column", values="gain").reset_index()
    ja = wide[wide["language"] == "Japanese"][["mmlu-0shot", "jmmlu-0shot"]].dropna()
    transfer = result.tables["cross_lingual_transfer"].set_index(["language", "target", "method"])
    assert abs(transfer.loc[("Japanese", "jmmlu-0shot", "pearson"), "r"]
               - stats.pearsonr(ja.iloc[:, 0], ja.iloc[:, 1]).statistic) < TOL
    assert abs(transfer.loc[("Japanese", "jmmlu-0shot", "spearman"), "r"]
               - stats.spearmanr(ja.iloc[:, 0], ja.iloc[:, 1]).statistic) < TOL


def test_every_output_states_its_condition_n_and_what_was_left_out(result):
    out = result.report.parent
    index = json.loads((out / "index.json").read_text())["analyses"]
    names = [a["name"] for a in index]
    assert names == ["synergy", "dataset_ranking", "gain_correlation", "pca", "lora_vs_full", "data_size", "epochs",
                     "leave_one_out", "cross_lingual"]
    for entry in index:
        assert entry["condition"] and entry["n"] > 0 and isinstance(entry["dropped"], list)
        for figure in entry["figures"]:
            assert (out / figure).stat().st_size > 5000
        for table in entry["tables"]:
            assert pd.read_parquet(out / table)["condition"].eq(entry["condition"]).all()
    lvf = next(a for a in index if a["name"] == "lora_vs_full")
    assert lvf["compared"] == "tuning" and lvf["pooled"] == []
    assert lvf["condition"] == ("data size 1,000 · cosine schedule · epoch 10 · full-parameter and LoRA · "
                                "single training sets · full-benchmark scores")
    pca = next(a for a in index if a["name"] == "pca")
    assert any("longbench_v2-0shot" in d for d in pca["dropped"])  # scored for 1 of 109 runs: said, not hidden
    report = result.report.read_text()
    order = [report.index(h) for h in ("## RQ1", "### Training data × benchmark synergy", "### Principal components",
                                       "## Training factors", "### LoRA vs full", "### Gain by epoch",
                                       "### Leave one training set out", "## Cross-lingual")]
    assert order == sorted(order)
    assert report.count("- *Condition:*") == len(index)


def test_heatmaps_share_rows_columns_and_a_zero_centred_scale():
    a = pd.DataFrame({"x": [1.0, -2.0], "y": [3.0, 0.5]}, index=["d1", "d2"])
    b = pd.DataFrame({"y": [-8.0], "z": [1.0]}, index=["d3"])
    panels = figures.aligned([("A", a), ("B", b), ("empty", pd.DataFrame())])
    assert [t for t, _ in panels] == ["A", "B"]
    assert all(list(m.columns) == ["x", "y", "z"] and list(m.index) == ["d1", "d2", "d3"] for _, m in panels)
    fig = figures.heatmap_figure([("A", a), ("B", b)], "gain (points)", "caption")
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 2 and all(im.get_cmap().name.startswith("RdBu") for im in images)
    assert all(im.norm.vmin == -im.norm.vmax for im in images)
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)


@pytest.mark.slow
def test_conditions_from_the_command_line(study, tmp_path):
    assert parse_where(["tuning=lora", "epochs=any", "size=20000"]) == {"tuning": "lora", "epochs": None,
                                                                         "data_size": 20000}
    for bad, message in ((["tunin=lora"], "did you mean `tuning`"), (["epochs=ten"], "whole number"),
                         (["tuning"], "expected KEY=VALUE")):
        with pytest.raises(HubkitError, match=message):
            parse_where(bad)
    lora = analyze(study, tmp_path, where={"tuning": "lora"})
    synergy = lora.tables["synergy"]
    cells = _cells(study, tuning="lora", failures=True)
    assert synergy["runs"].sum() == cells.drop_duplicates(["run_id", "column"]).shape[0]
    assert next(s for s in lora.sections if s.name == "data_size").finding == "No results under this condition."
    with pytest.raises(HubkitError, match="did you mean `Qwen/Qwen2.5-7B`"):
        analyze(study, tmp_path, where={"base_models": "Qwen/Qwen2.5-7"})


def test_bootstrap_interval_is_seeded_and_covers_the_estimate():
    x = np.arange(50, dtype=float)
    y = x + np.random.default_rng(0).normal(0, 10, 50)
    corr = bootstrap_corr(x, y, "pearson")
    assert corr == bootstrap_corr(x, y, "pearson")  # seeded: the same interval every time
    r = float(np.corrcoef(x, y)[0, 1])
    assert corr.mean == pytest.approx(r, abs=1e-12)  # the estimate is the sample's r, not a resampled mean
    assert corr.ci_low < r < corr.ci_high and corr.ci_high - corr.ci_low < 0.5  # it covers r, and is informative
    assert np.isnan(bootstrap_corr(x[:2], y[:2], "pearson").mean)
    est = cluster_bootstrap_mean(y)
    assert est.ci_low < y.mean() < est.ci_high


@pytest.fixture(scope="module")
def inputs(study):
    rng = np.random.default_rng(1)
    pairs = study[study["dataset"] != "pretrain"][["base_model", "dataset"]].drop_duplicates()
    properties = pairs.assign(perplexity=rng.uniform(2, 20, len(pairs)), avg_length=rng.uniform(50, 900, len(pairs)))
    runs = study[study["dataset"] != "pretrain"]["run_id"].drop_duplicates()
    layers = pd.DataFrame([{"model": r, "layer": k, "depth": k / 9, "rel_change": float(rng.uniform(0, 0.01))}
                           for r in runs for k in range(10)])
    return properties, layers


@pytest.mark.slow
def test_properties_and_layers_on_the_main_grid(study, inputs, tmp_path):
    properties, layers = inputs
    result = analyze(study, tmp_path, properties=properties, layers=layers)
    cells = _cells(study)
    gains = cells[cells["column"] == "gsm8k-4shot"].groupby(["base_model", "dataset"])["gain"].mean()
    joined = gains.reset_index().merge(properties, on=["base_model", "dataset"])
    props = result.tables["data_properties"].set_index(["column", "property", "method"])
    for method in ("pearson", "spearman"):
        r = props.loc[("gsm8k-4shot", "perplexity", method)]
        assert abs(r["r"] - joined["perplexity"].corr(joined["gain"], method=method)) < TOL
        assert r["n"] == len(joined) and r["ci_low"] <= r["r"] <= r["ci_high"]
    depth = result.tables["layer_correlation"]
    model_gain = _common_mean(_percent_once(cells))
    first = layers[layers["layer"] == 0].set_index("model")["rel_change"]
    both = pd.concat([first, model_gain], axis=1, join="inner")
    got = depth[depth["method"] == "pearson"].sort_values("depth").iloc[0]
    # the main grid's 109 runs less Chinese-Mistral's 10 (a copied base row) and OLMo's and LLM-jp's 20, whose
    # 0-shot gains rest on one shared base row: they lack benchmarks every other run has
    assert got["models"] == len(both) == 79
    assert abs(got["r"] - stats.pearsonr(both.iloc[:, 0], both.iloc[:, 1]).statistic) < TOL
    index = json.loads((tmp_path / "index.json").read_text())["analyses"]
    layer = next(a for a in index if a["name"] == "layer_correlation")
    assert any("outside the condition" in d for d in layer["dropped"])


@pytest.mark.slow
def test_cli_pushes_analyses_the_leaderboard_shows(hub, inputs, tmp_path):
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
                  "--push", "alice/analysis-results", "--no-progress", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "LoRA vs full-parameter tuning: n = 99 paired training runs [data size 1,000" in proc.stdout
    board = load_board("alice/analysis-results")
    assert set(board.analysis) == {"perplexity", "layerdiff"}
    assert len(board.gain_vs_perplexity("gsm8k-4shot")) > 50 and len(board.gain_vs_layer_change("gsm8k-4shot")) > 50
    titles = board.analysis_titles()
    assert titles[0] == "Training data × benchmark synergy" and "LoRA vs full-parameter tuning" in titles
    shown, note = board.analysis_view("LoRA vs full-parameter tuning")
    assert [Path(p).name for p, _ in shown] == ["lora_vs_full.png"] and Path(shown[0][0]).stat().st_size > 5000
    assert "*Condition:* data size 1,000 · cosine schedule · epoch 10" in note and "*n* = 99" in note
    assert "*Compared:* tuning" in note
    _assert_one_line_error(hubkit("analyze", "--results", str(tmp_path / "nope.csv")), "results file not found")
    _assert_one_line_error(hubkit("analyze", "--results", str(STUDY_CSV), "--where", "tunin=lora",
                                  "--output", str(tmp_path / "o1")), "did you mean `tuning`")
    (tmp_path / "bad.parquet").write_bytes(b"nope")
    _assert_one_line_error(hubkit("analyze", "--results", str(STUDY_CSV), "--layers", str(tmp_path / "bad.parquet"),
                                  "--output", str(tmp_path / "o2")), "bad.parquet: not a readable table")


def test_the_leaderboard_ignores_hostile_analysis_entries(hub, tmp_path):
    from hubkit.hub import push_folder
    from hubkit.space import space_module

    Board, load_study_analyses = space_module().Board, space_module().load_study_analyses

    folder = tmp_path / "up" / "analysis"
    folder.mkdir(parents=True)
    (folder / "ok.png").write_bytes(b"\x89PNG fake")
    entries = [{"title": "ok", "figures": ["ok.png", "../../../etc/passwd.png", "sub/x.png", 7]},
               {"title": "x | y\n# injected", "condition": "<img src=x onerror=alert(1)>", "n": 3, "dropped": ["a\nb"]},
               "not a mapping", {"figures": ["ok.png"]}]
    (folder / "index.json").write_text(json.dumps({"analyses": entries}))
    alice = hub.api("alice")
    alice.create_repo("alice/hostile-analysis", repo_type="dataset", exist_ok=True)
    push_folder("alice/hostile-analysis", tmp_path / "up", repo_type="dataset", commit_message="x", api=alice)
    loaded = load_study_analyses("alice/hostile-analysis", endpoint=hub.url, token=hub.tokens["alice"])
    assert [e["title"] for e in loaded] == ["ok", "x | y\n# injected"]
    assert [Path(p).name for p in loaded[0]["figure_paths"]] == ["ok.png"]
    board = Board(import_massive_sft_csv(STUDY_CSV).frame.head(200), analyses=loaded)
    _, note = board.analysis_view("x | y\n# injected")
    assert "\n# injected" not in note and "x \\| y" in note and "a b" in note
