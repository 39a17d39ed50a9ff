"""The results table cannot hold a wrong number: every way the issue found to write one, tried against the one
write path (`push_results`, on a running local Hub) and the importers, with files built here by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from hubkit.errors import HubkitError
from hubkit.importers import import_lm_eval, import_massive_sft_csv
from hubkit.publish import load_results, push_results
from hubkit.results import ResultsTable, rows_frame, score_column

from ..test_cli import _assert_one_line_error, hubkit

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
CSV = DATA / "massive_sft_results" / "evaluation_result.csv"


def _row(run: str, bench: str, metric: str, score: float, scale: str = "percent", higher: bool = True,
         shots: int | None = 0, source: str = "lm-eval", file: str = "a.json") -> dict:
    return {"model_id": "", "run_id": run, "benchmark": bench, "metric": metric, "n_shot": shots, "scale": scale,
            "higher_is_better": higher, "score": score, "subset": False, "source": source, "source_file": file}


def _commits(api, repo_id: str) -> int:
    return len(api.list_repo_commits(repo_id, repo_type="dataset"))


def test_one_scale_per_benchmark_and_metric_across_the_dataset(alice, repo_name):
    """Two sources that put one (benchmark, metric) on two scales: the second write is refused, naming both, and
    nothing of it is committed (the leaderboard used to take the column's scale from its first row)."""
    repo_id = f"alice/{repo_name}"
    first = ResultsTable(rows_frame([_row("m1", "lambada_openai", "perplexity", 38.06, "raw", False,
                                          file="first.json")]), "lm-eval")
    push_results(first, repo_id, "first", api=alice)
    commits = _commits(alice, repo_id)
    second = ResultsTable(rows_frame([_row("m2", "lambada_openai", "perplexity", 38.0, "percent", True,
                                           file="second.json")]), "lm-eval")
    with pytest.raises(HubkitError) as err:
        push_results(second, repo_id, "second", api=alice)
    message = str(err.value)
    assert "lambada_openai perplexity is on two scales" in message
    assert "first.json" in message and "second.json" in message and "\n" not in message
    assert _commits(alice, repo_id) == commits  # refused before anything was written
    # a (benchmark, metric) the registry declares can only arrive on the registry's scale
    with pytest.raises(HubkitError, match=re.escape("mmlu acc arrives on the 1-10 scale, higher is better, from "
                                                    "lm-eval · b.json; the benchmark registry keeps it on the percent")):
        push_results(ResultsTable(rows_frame([_row("m3", "mmlu", "acc", 5.0, "1-10", file="b.json")]), "x"),
                     repo_id, "third", api=alice)


@pytest.mark.parametrize("row, message", [
    (_row("m", "mmlu", "acc", 6200.0), "m mmlu acc = 6200 is outside its percent range [0, 100]"),
    (_row("m", "mt_bench", "judge_score", 11.0, "1-10", shots=None), "outside its 1-10 range [1, 10]"),
    (_row("m", "wikitext", "word_perplexity", 0.5, "raw", False), "outside its raw range [1, inf]"),
    (_row("m", "arc_easy", "acc", float("inf")), "m arc_easy acc: score is infinite"),
    (_row("", "mmlu", "acc", 50.0), "a row has no run_id"),
])
def test_no_value_outside_its_range_is_written(alice, repo_name, row, message):
    with pytest.raises(HubkitError, match=re.escape(message)):
        push_results(ResultsTable(rows_frame([row]), "x"), f"alice/{repo_name}", "bad", api=alice)
    assert not alice.repo_exists(f"alice/{repo_name}", repo_type="dataset")  # refused before the repo was made


def _csv(tmp_path: Path, change) -> Path:
    raw = pd.read_csv(CSV)
    change(raw)
    path = tmp_path / "evaluation_result.csv"
    raw.to_csv(path, index=False)
    return path


def test_the_study_csv_unit_is_decided_from_the_values(tmp_path):
    raw = pd.read_csv(CSV, na_values=["None"])
    study = import_massive_sft_csv(CSV).frame
    truthful = study[study["benchmark"] == "truthfulqa"]
    # the study's own file: TruthfulQA a fraction (0-0.18), stored in percent, its own metric (not mc2)
    assert set(truthful["metric"]) == {"opencompass_score"} and truthful["headline"].all()  # the study's one metric
    assert score_column("truthfulqa", 0, "opencompass_score") == "truthfulqa-0shot:opencompass_score"
    assert truthful["score"].max() == pytest.approx(100 * raw["Truthful_QA-0shot"].max())
    # a copy already in percent is kept as it is, never x100 (it imported as 400-1200 "percent" before)
    percent = import_massive_sft_csv(_csv(tmp_path, lambda r: r.__setitem__(
        "Truthful_QA-0shot", pd.to_numeric(r["Truthful_QA-0shot"], errors="coerce") * 100))).frame
    again = percent[percent["benchmark"] == "truthfulqa"]
    assert again["score"].max() == pytest.approx(truthful["score"].max()) and again["score"].max() <= 100
    # a percent column whose every value is at most 1 cannot be told from a fraction: refused, never guessed
    with pytest.raises(HubkitError, match=re.escape("column mmlu-5shot: every value is between 0 and 1")):
        import_massive_sft_csv(_csv(tmp_path, lambda r: r.__setitem__(
            "mmlu-5shot", pd.to_numeric(r["mmlu-5shot"], errors="coerce") / 100)))
    with pytest.raises(HubkitError, match=re.escape("column gsm8k-4shot: exact_match = 140 is outside its percent range [0, 100]")):
        import_massive_sft_csv(_csv(tmp_path, lambda r: r.__setitem__("gsm8k-4shot", 140.0)))
    with pytest.raises(HubkitError, match=re.escape("column gsm8k-4shot is 'lots', not a number")):
        import_massive_sft_csv(_csv(tmp_path, lambda r: r.__setitem__("gsm8k-4shot", "lots")))
    odd = import_massive_sft_csv(_csv(tmp_path, lambda r: r.__setitem__("vibes-0shot", 1.0)))
    assert odd.left_out == ["column vibes-0shot: no benchmark of the registry is known by this name"]


def _lm_eval_file(path: Path, tasks: dict[str, float], model: str = "org/model", limit=None) -> Path:
    """A minimal lm-eval 0.4 file scoring `model` on each task's `acc`."""
    data = {"results": {t: {"alias": t, "acc,none": v, "acc_stderr,none": 0.01} for t, v in tasks.items()},
            "group_subtasks": {}, "n-shot": dict.fromkeys(tasks, 0),
            "higher_is_better": {t: {"acc": True} for t in tasks},
            "n-samples": {t: {"original": 100, "effective": 100} for t in tasks},
            "config": {"model": "hf", "model_args": f"pretrained={model}", "limit": limit},
            "lm_eval_version": "0.4.8"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("old_name, new_name", [("results_z.json", "results_a.json"),
                                                ("results_a.json", "results_z.json")])
def test_a_later_write_supersedes_an_earlier_one_whatever_the_names(hub, alice, repo_name, tmp_path, old_name,
                                                                     new_name):
    """A corrected re-import replaces the old score in either naming order (rows files used to be read in file-name
    order, so a name ending in a content hash decided), and the import says what it replaced."""
    env = {"HF_TOKEN": hub.tokens["alice"]}
    repo_id = f"alice/{repo_name}"
    old = _lm_eval_file(tmp_path / "old" / old_name, {"arc_easy": 0.4352})
    new = _lm_eval_file(tmp_path / "new" / new_name, {"arc_easy": 0.99, "arc_challenge": 0.31})  # another key
    assert hubkit("import-results", str(old), "--format", "lm-eval", "--repo-id", repo_id, env=env).returncode == 0
    proc = hubkit("import-results", str(new), "--format", "lm-eval", "--repo-id", repo_id, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Replaced 1 earlier score(s)" in proc.stdout
    assert f"org-model arc_easy-0shot:acc: 43.52 (lm-eval · {old_name} · write 1) → 99" in proc.stdout
    rows = load_results(repo_id, api=alice)
    arc = rows[(rows["benchmark"] == "arc_easy") & (rows["metric"] == "acc")]
    assert list(arc["score"]) == [99.0] and list(arc["sequence"]) == [2]
    assert sorted(rows["sequence"].dropna().unique()) == [2]  # write 1's row is superseded, not kept beside it


def test_nested_lm_eval_groups_import_at_every_level(tmp_path):
    """A group of groups: a 0-shot sub-group and a 5-shot task (it used to import as one row labelled 5-shot)."""
    data = {
        "results": {"suite": {"alias": "suite", "acc,none": 0.5},
                    "suite_zero": {"alias": " - zero", "acc,none": 0.4, "acc_norm,none": 0.45},
                    "zero_a": {"alias": "  - a", "acc,none": 0.3}, "zero_b": {"alias": "  - b", "acc,none": 0.5},
                    "five": {"alias": " - five", "acc,none": 0.7}},
        "group_subtasks": {"suite": ["suite_zero", "five"], "suite_zero": ["zero_a", "zero_b"], "five": [],
                           "zero_a": [], "zero_b": []},
        "n-shot": {"zero_a": 0, "zero_b": 0, "five": 5},
        "higher_is_better": {t: {"acc": True, "acc_norm": True} for t in ("suite", "suite_zero", "zero_a", "zero_b",
                                                                         "five")},
        "n-samples": {"zero_a": {"original": 10, "effective": 10}, "zero_b": {"original": 30, "effective": 20},
                      "five": {"original": 5, "effective": 5}},
        "config": {"model": "hf", "model_args": {"pretrained": "org/nested"}}, "lm_eval_version": "0.4.8"}
    path = tmp_path / "results_nested.json"
    path.write_text(json.dumps(data))
    table = import_lm_eval([path])
    rows = table.frame.set_index(["benchmark", "metric"])
    assert set(rows.index) == {("suite_zero", "acc"), ("suite_zero", "acc_norm"), ("zero_a", "acc"),
                               ("zero_b", "acc"), ("five", "acc")}
    zero = rows.loc[("suite_zero", "acc")]
    assert (zero["n_shot"], zero["n_samples"], zero["n_total"], bool(zero["subset"])) == (0, 30, 40, True)
    assert (rows.loc[("five", "acc"), "n_shot"], rows.loc[("five", "acc"), "score"]) == (5, 70.0)
    assert table.left_out == ["results_nested.json: group suite: its members run at 0 and 5 shots; an aggregate "
                              "over mixed shot counts has no single shot count (its members are kept)"]


def _leaderboard_v2(path: Path) -> Path:
    """An Open LLM Leaderboard v2 file's shape: the `leaderboard` group over six benchmarks, four of them groups."""
    subs = {"leaderboard_bbh": (["leaderboard_bbh_boolean_expressions", "leaderboard_bbh_navigate"], 3, "acc_norm"),
            "leaderboard_gpqa": (["leaderboard_gpqa_diamond", "leaderboard_gpqa_main"], 0, "acc_norm"),
            "leaderboard_math_hard": (["leaderboard_math_algebra_hard", "leaderboard_math_geometry_hard"], 4,
                                      "exact_match"),
            "leaderboard_musr": (["leaderboard_musr_murder_mysteries", "leaderboard_musr_team_allocation"], 0,
                                 "acc_norm")}
    results, groups, shots, higher, counts = {}, {"leaderboard": [*subs, "leaderboard_ifeval", "leaderboard_mmlu_pro"]}, {}, {}, {}
    results["leaderboard"] = {"alias": "leaderboard", "acc,none": 0.3, "acc_norm,none": 0.4, "exact_match,none": 0.1}
    for group, (members, n, metric) in subs.items():
        groups[group] = members
        results[group] = {"alias": group, f"{metric},none": 0.41}
        for i, m in enumerate(members):
            results[m] = {"alias": m, f"{metric},none": 0.4 + i / 50, f"{metric}_stderr,none": 0.01}
            shots[m], higher[m], counts[m] = n, {metric: True}, {"original": 50, "effective": 50}
        higher[group] = {metric: True}
    results["leaderboard_ifeval"] = {"alias": "ifeval", "prompt_level_strict_acc,none": 0.33,
                                     "inst_level_strict_acc,none": 0.45, "prompt_level_loose_acc,none": 0.36,
                                     "inst_level_loose_acc,none": 0.48}
    results["leaderboard_mmlu_pro"] = {"alias": "mmlu_pro", "acc,none": 0.29}
    shots.update(leaderboard_ifeval=0, leaderboard_mmlu_pro=5)
    counts.update(leaderboard_ifeval={"original": 541, "effective": 541},
                  leaderboard_mmlu_pro={"original": 12032, "effective": 12032})
    higher.update(leaderboard_ifeval=dict.fromkeys(("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc"), True),
                  leaderboard_mmlu_pro={"acc": True}, leaderboard={"acc": True, "acc_norm": True, "exact_match": True})
    path.write_text(json.dumps({"results": results, "group_subtasks": groups, "n-shot": shots,
                                "higher_is_better": higher, "n-samples": counts,
                                "config": {"model": "hf", "model_args": "pretrained=org/v2-model"},
                                "lm_eval_version": "0.4.3"}))
    return path


def test_the_open_llm_leaderboard_v2_layout_keeps_its_six_benchmarks(tmp_path):
    """It used to import as one `leaderboard` row, BBH, GPQA, IFEval, MATH-hard, MMLU-Pro and MuSR gone."""
    table = import_lm_eval([_leaderboard_v2(tmp_path / "results_2024-06-01T00-00-00.json")])
    frame = table.frame
    heads = frame[frame["headline"]].set_index("benchmark")
    assert {"bbh", "gpqa", "ifeval", "math_hard", "mmlu_pro", "musr"} <= set(heads.index)
    assert heads.loc["bbh", "metric"] == "acc_norm" and heads.loc["bbh", "n_shot"] == 3
    assert (heads.loc["bbh", "n_samples"], heads.loc["bbh", "n_total"]) == (100, 100)  # its members' sum
    assert heads.loc["mmlu_pro", "n_shot"] == 5 and heads.loc["mmlu_pro", "score"] == pytest.approx(29.0)
    assert heads.loc["ifeval", "metric"] == "prompt_level_strict_acc"
    assert len(frame[frame["benchmark"] == "ifeval"]) == 4  # every metric, the headline marked
    assert "leaderboard_bbh_navigate" in set(frame["benchmark"])  # the subtasks are rows too
    assert "leaderboard" not in set(frame["benchmark"])
    assert [line for line in table.left_out if "group leaderboard:" in line] == [
        "results_2024-06-01T00-00-00.json: group leaderboard: its members run at 0 and 3 and 4 and 5 shots; an "
        "aggregate over mixed shot counts has no single shot count (its members are kept)"]


def test_acc_and_acc_norm_never_share_a_column_or_an_average(monkeypatch):

    from hubkit.space import space_module

    Board, column_label = space_module().Board, space_module().column_label

    rows = [{**_row("ours", "hellaswag", "acc_norm", 80.0, shots=10, source="hubkit"), "headline": False},
            {**_row("ours", "hellaswag", "acc", 60.0, shots=10, source="hubkit"), "headline": True},
            {**_row("study", "hellaswag", "acc", 50.0, shots=10, source="massive-sft-csv"), "headline": True},
            {**_row("ours", "mmlu", "acc", 40.0, shots=5, source="hubkit"), "headline": True},
            {**_row("study", "mmlu", "acc", 30.0, shots=5, source="massive-sft-csv"), "headline": True}]
    board = Board(rows_frame(rows))
    assert {"hellaswag-10shot", "hellaswag-10shot:acc_norm"} <= set(board.columns)
    assert "hellaswag-10shot:acc_norm" not in board.averaged
    view = board.view(shots="study", groups=["knowledge"], columns=[]).set_index("model")
    assert view.loc["ours", "average"] == 50.0 and view.loc["study", "average"] == 40.0  # acc only: (60 + 40) / 2
    for bench, shots, metric in (("hellaswag", 10, "acc_norm"), ("mt_bench", None, "judge_score"),
                                 ("arc_easy", 25, "acc"), ("gsm8k", 4, "exact_match_flexible")):
        assert column_label(bench, shots, metric) == score_column(bench, shots, metric)  # the Space names as hubkit


def test_the_study_view_never_ranks_an_incomplete_model_above_a_complete_one(monkeypatch):
    """On the study's 1,027 models: every model missing one of the view's benchmarks comes after every model that
    has them all, ranks are 1..n over the complete ones by average, and the count is shown."""

    from hubkit.space import space_module

    Board = space_module().Board

    frame = import_massive_sft_csv(CSV).frame
    board = Board(frame)
    groups, shots = [], board.default_shots  # every benchmark: some study models lack one
    view = board.view(groups=groups, shots=shots, columns=["benchmarks averaged"])
    required = view["benchmarks averaged"].max()
    complete = view["benchmarks averaged"] == required
    assert 0 < (~complete).sum() < len(view)
    assert complete.iloc[:complete.sum()].all()  # every complete model first, then the incomplete ones
    assert view["rank"].iloc[:complete.sum()].tolist() == list(
        view["average"].iloc[:complete.sum()].rank(ascending=False, method="min").astype(int))
    assert view["rank"].iloc[complete.sum():].isna().all()
    # a model with one benchmark never outranks one with all of them, however high its one score
    lone = frame[frame["run_id"] == frame["run_id"].iloc[0]].head(1).assign(
        run_id="lone-model", score=99.0, benchmark="boolq", n_shot=0, metric="acc", headline=True)
    ranked = Board(pd.concat([frame, lone])).view(groups=groups, shots=shots, columns=["benchmarks averaged"])
    assert ranked["model"].tolist().index("lone-model") >= int(complete.sum())
    assert pd.isna(ranked.set_index("model").loc["lone-model", "rank"])


def test_a_model_has_one_headline_score_per_benchmark(alice, repo_name):
    """The study's TruthfulQA (an OpenCompass score) and lm-eval's mc2 are both headlines of their sources: in their
    own columns, and refused together for one model, where an average would count TruthfulQA twice."""
    two = [{**_row("m", "truthfulqa", "opencompass_score", 6.0, file="study.csv"), "headline": True},
           {**_row("m", "truthfulqa", "mc2", 40.0, file="b.json"), "headline": True}]
    with pytest.raises(HubkitError, match=re.escape("m has two headline truthfulqa scores at 0 shots: "
                                                    "opencompass_score from lm-eval · study.csv and mc2 from lm-eval")):
        push_results(ResultsTable(rows_frame(two), "x"), f"alice/{repo_name}", "two", api=alice)


def test_cross_benchmark_means_take_one_headline_metric_per_benchmark():
    from hubkit.analysis.cells import averaged_cells, gain_cells

    rows = rows_frame([{**_row("r", "hellaswag", m, 50.0, shots=10), "base_model": "b", "base_score": 40.0,
                        "gain": g} for m, g in (("acc", 10.0), ("acc_norm", 30.0))]
                      + [{**_row("r", "mmlu", "acc", 50.0, shots=5), "base_model": "b", "base_score": 48.0,
                          "gain": 2.0}])
    kept, _ = averaged_cells(gain_cells(rows), include_failures=True)
    assert sorted(kept["column"]) == ["hellaswag-10shot", "mmlu-5shot"] and kept["gain"].mean() == 6.0


def test_an_import_cli_names_a_refused_conflict_in_one_line(hub, alice, repo_name, tmp_path):
    env = {"HF_TOKEN": hub.tokens["alice"]}
    repo_id = f"alice/{repo_name}"
    good = _lm_eval_file(tmp_path / "a" / "results_1.json", {"arc_easy": 0.5})
    assert hubkit("import-results", str(good), "--format", "lm-eval", "--repo-id", repo_id, env=env).returncode == 0
    commits = _commits(alice, repo_id)
    bad = json.loads(good.read_text())
    bad["higher_is_better"]["arc_easy"]["acc"] = False  # a direction that contradicts the catalogue
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results_2.json").write_text(json.dumps(bad))
    _assert_one_line_error(hubkit("import-results", str(tmp_path / "b" / "results_2.json"), "--format", "lm-eval",
                                  "--repo-id", repo_id, env=env),
                           "results_2.json: higher_is_better.arc_easy.acc is false, but hubkit keeps acc "
                           "higher-is-better")
    assert _commits(alice, repo_id) == commits


def test_the_same_rows_again_are_the_same_write(alice, repo_name):
    """Pushing unchanged rows again commits nothing and keeps their write number (a rerun redoes nothing); a changed
    push is a new, later write."""
    repo_id = f"alice/{repo_name}"
    table = ResultsTable(rows_frame([_row("m", "mmlu", "acc", 40.0)]), "x")
    first = push_results(table, repo_id, "k", api=alice)
    again = push_results(table, repo_id, "k", api=alice)
    assert (again.commit, again.sequence, again.replaced) == (first.commit, first.sequence, [])
    changed = push_results(ResultsTable(rows_frame([_row("m", "mmlu", "acc", 41.0)]), "x"), repo_id, "k", api=alice)
    assert changed.sequence == first.sequence + 1 and [r.text() for r in changed.replaced] == [
        "m mmlu-0shot: 40 (lm-eval · a.json · write 1) → 41"]
