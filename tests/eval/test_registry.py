"""The benchmark registry: one record per benchmark, read by everything that names a benchmark."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hubkit import benchmarks
from hubkit.benchmarks import BENCHMARKS, CATALOGUE, markdown_table, parse_record
from hubkit.errors import HubkitError

from ..test_cli import _assert_one_line_error, hubkit

ROOT = Path(__file__).resolve().parents[2]


def _doc_record() -> str:
    """The example record of docs/benchmarks-registry.md, as written there."""
    text = (ROOT / "docs" / "benchmarks-registry.md").read_text(encoding="utf-8")
    return re.search(r"```yaml\n(.*?)```", text, re.S).group(1)


def test_every_consumer_reads_the_record():
    from hubkit.cli.eval import SUITE_HELP
    from hubkit.eval.tasks import TASKS
    from hubkit.hub.seed import SEEDS_BY_NAME
    from hubkit.space import SPACE_DIR, benchmarks_json

    for name, task in TASKS.items():
        record = BENCHMARKS[name]
        assert task.n_shot == (record.study_shots or 0) and task.repo == record.dataset["seed"]
        assert record.headline in task.metrics or task.kind == "judge", name
        assert set(task.metrics) <= set(record.metrics), name  # every metric a task reports is declared
        seed = SEEDS_BY_NAME[task.repo]
        assert seed.license == record.dataset["license"], name  # seeding takes the record's licence
        assert name in SUITE_HELP
    assert (SPACE_DIR / "benchmarks.json").read_text(encoding="utf-8") == benchmarks_json()
    page = (ROOT / "docs" / "publishing.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- benchmarks:[^\n]*-->\n(.*?)\n<!-- /benchmarks -->", page, re.S).group(1)
    assert block == markdown_table()  # the documented table is the registry's
    # the study's columns, lm-eval's names and the chance levels are the records'
    from hubkit.importers import csv_column_benchmark

    assert csv_column_benchmark("BoolQ-5shot")[0].id == "boolq" and csv_column_benchmark("nq-25shot")[1] == 25
    assert csv_column_benchmark("mtbench-writing")[0].id == "mt_bench_writing"
    assert benchmarks.by_lm_eval_name("leaderboard_mmlu_pro").id == "mmlu_pro"
    assert (BENCHMARKS["boolq"].chance, BENCHMARKS["mmlu_pro"].chance) == (50.0, 10.0)


@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(colour="red"), "x.yaml: unknown field 'colour'"),
    (lambda r: r.update(headline="f1"), "x.yaml: headline 'f1' is not one of its metrics"),
    (lambda r: r.pop("title"), "x.yaml: missing field 'title'"),
    (lambda r: r["metrics"].update(acc={"scale": "furlongs"}), "x.yaml: metric acc: scale is 'furlongs'"),
    (lambda r: r.update(group="vibes"), "x.yaml: group 'vibes' is not one of"),
    (lambda r: r.update(id="Arc Easy"), "x.yaml: id 'Arc Easy' must be lower-case"),
])
def test_malformed_records_are_refused_in_one_line(change, message):
    import yaml

    record = yaml.safe_load(_doc_record())
    change(record)
    with pytest.raises(HubkitError, match=re.escape(message)):
        parse_record(record, "x.yaml", CATALOGUE)


def test_a_record_cannot_take_another_benchmarks_name(tmp_path):
    path = tmp_path / "clash.yaml"
    path.write_text(_doc_record().replace("lm_eval: [arc_easy]", "lm_eval: [hellaswag]"))
    with pytest.raises(HubkitError, match=re.escape("clash.yaml: the lm-eval name 'hellaswag' is also hellaswag's")):
        benchmarks.add(path)
    assert "arc_easy" not in BENCHMARKS
    # through the CLI: one line, before any command runs
    _assert_one_line_error(hubkit("eval", "x", "--suite", "arc_easy", env={"HUBKIT_BENCHMARKS_PATH": str(tmp_path)}),
                           "HUBKIT_BENCHMARKS_PATH: clash.yaml: the lm-eval name 'hellaswag' is also hellaswag's")


@pytest.mark.slow
def test_a_benchmark_is_one_record_plus_its_data(hub, tiny_model, tmp_path):
    """The docs' record and a dataset repo are all it takes: `hubkit eval` lists and scores it, its results import
    with the record's headline and scale, and the leaderboard names its columns from it."""
    folder = tmp_path / "records"
    folder.mkdir()
    (folder / "arc_easy.yaml").write_text(_doc_record(), encoding="utf-8")
    questions = [{"question": f"Which of these is number {i}?", "choices": [f"number {j}" for j in range(4)],
                  "answer": i % 4} for i in range(6)]
    data = tmp_path / "data"
    data.mkdir()
    (data / "test.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions), encoding="utf-8")
    api = hub.api("hubkit")
    api.create_repo("hubkit-data/arc_easy", repo_type="dataset", exist_ok=True)
    api.upload_folder(repo_id="hubkit-data/arc_easy", folder_path=str(data), repo_type="dataset")

    env = {"HUBKIT_BENCHMARKS_PATH": str(folder)}
    assert "arc_easy" in " ".join(hubkit("eval", "--help", env=env).stdout.split())
    out = tmp_path / "out"
    proc = hubkit("eval", str(tiny_model), "--suite", "arc_easy", "--output", str(out), "--no-progress",
                  "--no-gains", env=env)
    assert proc.returncode == 0, proc.stderr
    results_file = next(out.glob("results_*.json"))
    results = json.loads(results_file.read_text())
    assert results["n-shot"]["arc_easy"] == 0 and results["configs"]["arc_easy"]["dataset_path"] == "hubkit-data/arc_easy"
    assert results["n-samples"]["arc_easy"] == {"original": 6, "effective": 6}
    # the score is what the per-sample log-likelihoods say: the right choice scored highest
    samples = [json.loads(x) for x in next(out.glob("samples_arc_easy_*.jsonl")).read_text().splitlines()]
    right = [max(range(4), key=lambda k: s["logliks"][k]) == questions[s["doc_id"]]["answer"] for s in samples]
    assert results["results"]["arc_easy"]["acc,none"] == pytest.approx(sum(right) / len(right))
    assert samples[0]["prompt"].startswith("Question: Which of these is number") and samples[0]["choices"][0] == " number 0"

    from hubkit.importers import import_lm_eval

    added = benchmarks.add(folder / "arc_easy.yaml")
    try:
        frame = import_lm_eval([results_file]).frame.set_index("metric")
        assert set(frame.index) == {"acc", "acc_norm"} and set(frame["benchmark"]) == {"arc_easy"}
        assert bool(frame.loc["acc", "headline"]) and not bool(frame.loc["acc_norm", "headline"])
        assert frame.loc["acc", "score"] == pytest.approx(100 * sum(right) / len(right))
        from hubkit.results import score_column

        assert [score_column("arc_easy", 0, m) for m in ("acc", "acc_norm")] == ["arc_easy-0shot",
                                                                                 "arc_easy-0shot:acc_norm"]
    finally:
        benchmarks.remove([b.id for b in added])
    assert "arc_easy" not in BENCHMARKS
