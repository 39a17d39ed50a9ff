"""The statistics `hubkit analyze` reports, recomputed independently, and what it does with doubtful data: the fixed
shot count per benchmark, the data checks, intervals at the level of the question with corrected p-values, and the
report's honesty about what it did not run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from hubkit.analysis import figures
from hubkit.analysis.stats import MIN_CLUSTERS, benjamini_hochberg, bootstrap_corr, cluster_bootstrap_mean, holm
from hubkit.analysis.study import analyze

from ..test_cli import _assert_one_line_error
from .conftest import STUDY_CSV
from .test_study import TOL, _cells, _percent_once

OLMO, LLMJP = "allenai/OLMo-7B-hf", "llm-jp/llm-jp-3-7.2b"


def test_holm_and_benjamini_hochberg_match_their_definitions():
    rng = np.random.default_rng(7)
    p = rng.uniform(0, 0.2, 40)
    p[[3, 17]] = np.nan  # a test that could not be run is not counted
    ok = ~np.isnan(p)
    m = ok.sum()
    order = np.argsort(p[ok])
    expected = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):  # Holm: max over the step-down products, capped at 1
        running = max(running, (m - rank) * p[ok][i])
        expected[i] = min(running, 1.0)
    got = holm(p)
    assert np.isnan(got[[3, 17]]).all() and np.abs(got[ok] - expected).max() < TOL
    assert np.abs(benjamini_hochberg(p)[ok] - scipy_stats.false_discovery_control(p[ok], method="bh")).max() < TOL


def test_the_cluster_bootstrap_interval_and_p_value_reproduce():
    rng = np.random.default_rng(2)
    values = rng.normal(0.4, 1.0, 60)
    clusters = np.repeat([f"base-{i}" for i in range(12)], 5)
    est = cluster_bootstrap_mean(values, clusters)
    # independently: 1,000 draws of 12 clusters (seed 0, clusters in sorted order), the mean of the values drawn
    labels = sorted(set(clusters))
    sums = np.array([values[clusters == c].sum() for c in labels])
    counts = np.array([(clusters == c).sum() for c in labels], float)
    idx = np.random.default_rng(0).integers(0, 12, (1000, 12))
    means = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    p = 2 * scipy_stats.norm.sf(abs(values.mean()) / means.std(ddof=1))
    assert abs(est.ci_low - low) < TOL and abs(est.ci_high - high) < TOL and abs(est.p - p) < TOL
    assert est.clusters == 12 and abs(est.mean - values.mean()) < TOL
    few = cluster_bootstrap_mean(values, np.repeat(["a", "b", "c"], 20))  # three base models: no interval, no p
    assert few.clusters == 3 < MIN_CLUSTERS and np.isnan(few.ci_low) and np.isnan(few.p)
    x = rng.normal(size=40)
    y = x + rng.normal(size=40)
    r = bootstrap_corr(x, y, "spearman", clusters=np.repeat(np.arange(8), 5))
    assert abs(r.mean - scipy_stats.spearmanr(x, y).statistic) < TOL and r.clusters == 8 and r.ci_low < r.mean < r.ci_high


@pytest.mark.slow
def test_one_shot_count_per_benchmark_whatever_the_filter(study, result, tmp_path):
    lora = analyze(study, tmp_path / "lora", where={"tuning": "lora"})
    ranking = next(s for s in lora.sections if s.name == "dataset_ranking")
    note = next(n for n in ranking.dropped if n.startswith("each benchmark counted once"))
    assert "gsm8k-4shot (of gsm8k-0shot, gsm8k-4shot)" in note  # LoRA runs too: the study's 4-shot, not 0-shot
    assert json.loads((tmp_path / "lora" / "index.json").read_text())["shots"]["gsm8k"] == "gsm8k-4shot"
    qwen = analyze(study, tmp_path / "qwen", where={"base_models": "Qwen/Qwen2.5-7B"})
    alone = qwen.tables["dataset_ranking"].set_index("base_model").loc["Qwen/Qwen2.5-7B"]
    among = result.tables["dataset_ranking"].set_index("base_model").loc["Qwen/Qwen2.5-7B"]
    assert alone["best"] == among["best"] and abs(alone["best_gain"] - among["best_gain"]) < TOL
    # the leave-one-out mean effect: one column per benchmark (NQ-open once, not three times), OLMo named
    cells = _cells(study, size=None, kind="loo+all")
    once = _percent_once(cells)
    ref = once[once["dataset"] == "all"][["base_model", "column", "gain"]].rename(columns={"gain": "all"})
    effects = once[once["dataset"] != "all"].merge(ref, on=["base_model", "column"])
    effects["effect"] = effects["gain"] - effects["all"]
    per = effects.groupby("dataset")["effect"].mean().sort_values()
    loo = next(s for s in result.sections if s.name == "leave_one_out")
    assert f"Removing {per.index[0][4:]} costs the most ({per.iloc[0]:+.2f} points" in loo.finding
    assert "rests on 1 base model (allenai/OLMo-7B-hf) alone" in loo.finding
    assert once.groupby("benchmark")["column"].nunique().max() == 1


def test_identical_base_rows_are_flagged_and_their_gains_left_out(study, result):
    index = json.loads((result.report.parent / "index.json").read_text())
    checks = {c["check"] + ":" + c["subject"]: c for c in index["checks"]}
    pair = checks[f"identical-base-rows:{OLMO} and {LLMJP}"]
    assert len(pair["columns"]) == 12 and "which is right cannot be told" in pair["detail"]
    copy = checks["identical-base-rows:itpossible/Chinese-Mistral-7B-v0.1 and mistralai/Mistral-7B-v0.1"]
    assert len(copy["columns"]) == 29 and "gains of itpossible/Chinese-Mistral-7B-v0.1 on" in copy["excluded"]
    assert "## Data checks" in result.report.read_text()
    # OLMo and LLM-jp are ranked on the 5 averaged columns where their bases differ (not on a shared base row)
    ranking = result.tables["dataset_ranking"].set_index("base_model")
    assert ranking.loc[OLMO, "benchmarks"] == ranking.loc[LLMJP, "benchmarks"] == 5
    assert ranking.loc[LLMJP, "best_gain"] > 0 and ranking.loc[OLMO, "best_gain"] > -0.5
    assert "itpossible/Chinese-Mistral-7B-v0.1" not in ranking.index
    # their similarity, recomputed on the columns where the two bases differ, is no longer the artefact's 0.90
    models = result.tables["model_correlation"].set_index(["model_a", "model_b"])
    percent = _percent_once(_cells(study)).pivot_table(index=["dataset", "column"], columns="base_model", values="gain")
    both = percent[[OLMO, LLMJP]].dropna()
    assert abs(models.loc[(OLMO, LLMJP), "r"] - scipy_stats.pearsonr(both[OLMO], both[LLMJP]).statistic) < TOL
    assert abs(models.loc[(OLMO, LLMJP), "rho"] - scipy_stats.spearmanr(both[OLMO], both[LLMJP]).statistic) < TOL
    assert models.loc[(OLMO, LLMJP), "r"] < 0.8


def test_paired_intervals_resample_runs_and_base_models_and_findings_need_both(study, result):
    table = result.tables["lora_vs_full"].set_index("column")
    pairs = result.tables["lora_vs_full_pairs"]
    part = pairs[pairs["column"] == "humaneval-0shot"]
    by_base = cluster_bootstrap_mean(part["diff"].to_numpy(), part["base_model"].to_numpy())
    assert abs(table.loc["humaneval-0shot", "ci_low_bases"] - by_base.ci_low) < TOL
    assert table.loc["humaneval-0shot", "ci_low_bases"] < 0 < table.loc["humaneval-0shot", "ci_high_bases"]
    assert np.abs(table["p_holm"] - holm(table["p"].to_numpy())).max() < TOL
    finding = next(s for s in result.sections if s.name == "lora_vs_full").finding
    sure = table[(table["scale"] == "percent") & ((table["ci_low"] > 0) | (table["ci_high"] < 0))
                 & (table["p_holm"] < 0.05)]
    assert f"(interval over runs excludes 0, Holm p < 0.05) on {len(sure)}" in finding
    assert "humaneval-0shot" not in finding.split("on ", 2)[-1].split(", and")[0]
    # cross-lingual: the language varies across base models only, and no language has 5
    cross = result.tables["cross_lingual"]
    assert (cross["bases"] < MIN_CLUSTERS).all() and cross["ci_low"].isna().all() and cross["p"].isna().all()
    assert "cluster bootstrap over base models" in next(s for s in result.sections if s.name == "cross_lingual").method


@pytest.mark.slow
def test_the_default_report_lists_what_it_did_not_run_and_no_peak_without_evidence(study, result, tmp_path):
    report = result.report.read_text()
    assert "## Not run" in report
    for needle in ("Gains vs training-data properties", "--perplexity ppl.parquet",
                   "Weight change by depth vs gain", "--layers diff/layerdiff_layers.parquet", "hubkit analyze --loglik"):
        assert needle in report
    rng = np.random.default_rng(5)
    runs = study[study["dataset"] != "pretrain"]["run_id"].drop_duplicates()
    layers = pd.DataFrame([{"model": r, "layer": k, "depth": k / 9, "rel_change": float(rng.uniform(0, 0.01))}
                           for r in runs for k in range(10)])  # noise: no depth tracks the gain
    noise = analyze(study, tmp_path, layers=layers)
    layer = next(s for s in noise.sections if s.name == "layer_correlation")
    table = noise.tables["layer_correlation"]
    pearson = table[table["method"] == "pearson"]
    assert not ((pearson["ci_low"] > 0) | (pearson["ci_high"] < 0) & (pearson["p_holm"] < 0.05)).all()
    assert "no peak is claimed" in layer.finding and "peaks at" not in layer.finding
    assert "Weight change by depth" not in noise.report.read_text().split("## Not run")[-1].split("## RQ1")[0]


@pytest.mark.slow
def test_figures_have_no_overlapping_text(study, tmp_path, monkeypatch):
    seen: dict[str, list] = {}
    save = figures._save

    def checked(fig, path):
        seen[path.name] = figures.text_overlaps(fig)
        return save(fig, path)

    monkeypatch.setattr(figures, "_save", checked)
    rng = np.random.default_rng(1)
    tuned = study[study["dataset"] != "pretrain"]
    properties = tuned[["base_model", "dataset"]].drop_duplicates().assign(perplexity=lambda f: rng.uniform(2, 20, len(f)))
    layers = pd.DataFrame([{"model": r, "layer": k, "depth": k / 9, "rel_change": float(rng.uniform(0, 0.01))}
                           for r in tuned["run_id"].drop_duplicates() for k in range(10)])
    analyze(study, tmp_path, properties=properties, layers=layers)
    assert len(seen) >= 12 and {"synergy.png", "model_correlation.png", "leave_one_out.png", "data_properties.png",
                                "layer_correlation.png", "pca.png", "epochs.png"} <= set(seen)
    assert {name: pairs for name, pairs in seen.items() if pairs} == {}
    # the check itself finds an overlap: a caption drawn over rotated tick labels
    fig = figures.heatmap_figure([("a", pd.DataFrame(np.ones((3, 12)), columns=[f"benchmark-{i}" for i in range(12)]))],
                                 "gain", "caption")
    fig.text(0.3, 0.02, "a caption drawn where the tick labels are", fontsize=9)
    assert figures.text_overlaps(fig)


def test_the_model_map_keeps_models_of_unknown_epochs(tmp_path):
    from hubkit.analysis.modelspace import _legend_label, plot_map

    coords = pd.DataFrame({"model": ["a", "b", "c"], "family": ["f", "f", "g"], "dataset": ["d", None, "e"],
                           "epochs": [1.0, np.nan, 3.0], "x": [0.0, 1.0, 2.0], "y": [0.0, 1.0, 0.5], "method": "pca"})

    class Probe:
        probes = [1, 2]
        version = 1

        def describe(self):
            return {"tasks": ["t"]}

    import matplotlib.pyplot as plt

    shown = []
    real = plt.Axes.legend

    def spy(ax, *args, **kwargs):
        shown.append(list(ax.get_legend_handles_labels()[1]))
        return real(ax, *args, **kwargs)

    plt.Axes.legend = spy
    try:
        plot_map(coords, tmp_path / "map.png", Probe())
    finally:
        plt.Axes.legend = real
    assert shown[2] == ["1", "3", "unknown"] and shown[1] == ["d", "e", "unknown"]
    assert _legend_label(2.0) == "2" and _legend_label(pd.NA) == "unknown"


def _csv(tmp_path: Path, rows: list[dict]) -> Path:
    columns = ["model_name", "data_name", "mmlu-5shot", "gsm8k-4shot", "lora", "epoch", "data_size", "lr_strategy"]
    path = tmp_path / "results.csv"
    pd.DataFrame(rows, columns=columns).to_csv(path)
    return path


@pytest.mark.slow
def test_bad_inputs_give_one_line_errors_and_analyze_starts_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HF_ENDPOINT"}
    env["HUBKIT_HOME"] = str(tmp_path / "home")  # an embedded Hub would start here
    run = lambda *args: subprocess.run([sys.executable, "-m", "hubkit", *args], capture_output=True,  # noqa: E731
                                       text=True, env=env, timeout=600)
    _assert_one_line_error(run("analyze", "--results", str(STUDY_CSV), "-w", "tuning=qlora", "-o", str(tmp_path / "a")),
                           "no results with tuning `qlora` (the results have: full, lora)")
    rows = [{"model_name": "Qwen2.5-7B", "data_name": "pretrain", "mmlu-5shot": 70, "gsm8k-4shot": 50},
            {"model_name": "Qwen2.5-7B", "data_name": "lima", "mmlu-5shot": "7o", "gsm8k-4shot": 55, "lora": False,
             "epoch": 1, "data_size": 1000, "lr_strategy": "cosine"}]
    _assert_one_line_error(run("analyze", "--results", str(_csv(tmp_path, rows)), "-o", str(tmp_path / "b")),
                           "column mmlu-5shot is '7o', not a number")
    rows[1]["mmlu-5shot"], rows[1]["epoch"] = 72, "ten"
    _assert_one_line_error(run("analyze", "--results", str(_csv(tmp_path, rows)), "-o", str(tmp_path / "c")),
                           "epoch is 'ten', not a whole number")
    # a base model with no base row: its runs are said, not silently dropped
    rows[1]["epoch"] = 1
    rows.append({"model_name": "Yi-1.5-9B", "data_name": "lima", "mmlu-5shot": 60, "gsm8k-4shot": 40, "lora": False,
                 "epoch": 1, "data_size": 1000, "lr_strategy": "cosine"})
    done = run("analyze", "--results", str(_csv(tmp_path, rows)), "-o", str(tmp_path / "d"), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "Data check: no base row: 01-ai/Yi-1.5-9B: has no base-model row; 1 run(s) have no gain" in done.stderr
    assert "no base row: 01-ai/Yi-1.5-9B" in (tmp_path / "d" / "report.md").read_text()
    assert not (tmp_path / "home" / "hub").exists()  # a local CSV needs no Hub: none was started
    # a Hub id starts the embedded Hub for the command, and stops it after (here: an error)
    _assert_one_line_error(run("analyze", "--results", "nobody/no-results", "-o", str(tmp_path / "e")), "no-results")
    from hubkit.hub.client import running_hub

    assert (tmp_path / "home" / "hub").exists() and running_hub(tmp_path / "home" / "hub") is None


@pytest.mark.slow
def test_out_of_range_cells_are_flagged_and_left_out(study, tmp_path):
    frame = study.copy()
    hit = frame.index[(frame["run_id"] == frame["run_id"].iloc[40]) & (frame["benchmark"] == "gsm8k")][0]
    frame.loc[hit, "score"] = 140.0  # a percentage over 100, from a file written elsewhere
    out = analyze(frame, tmp_path)
    (check,) = [c for c in out.checks if c.check == "out-of-range"]
    assert check.subject == frame.loc[hit, "run_id"] and "= 140 is outside the percent scale" in check.detail
    synergy = out.tables["synergy"]
    assert synergy["gain"].abs().max() < 100


def test_the_leaderboard_shows_the_data_checks(study, result):
    from hubkit.space import space_module

    Board = space_module().Board

    checks = json.loads((result.report.parent / "index.json").read_text())["checks"]
    board = Board(study[study["base_model"].isin([OLMO, "Qwen/Qwen2.5-7B"])], checks=checks)
    note = board.checks_note()
    assert note.startswith("**Data checks**") and "OLMo" in note and "identical base rows" in note
    olmo = next(r for r in board.meta.index if board.meta.loc[r, "base_model"] == OLMO)
    assert "**Data check:**" in board.details(olmo) and "humaneval-0shot" in board.details(olmo)
    qwen = next(r for r in board.meta.index if board.meta.loc[r, "base_model"] == "Qwen/Qwen2.5-7B")
    assert "**Data check:**" not in board.details(qwen)
