"""The training-set registry against the seeded repos of a real local Hub."""

from __future__ import annotations

import json

import pytest

from hubkit.data import REGISTRY, STUDY_SETS, load_training_data
from hubkit.errors import HubkitError


def test_the_ten_study_sets_resolve_offline_to_seeded_repos(seeded_training):
    assert len(STUDY_SETS) == 10
    for name in STUDY_SETS:
        data = load_training_data(name, size=5, seed=1)
        assert len(data.dataset) == 5, name
        (source,) = data.sources
        entry = REGISTRY[name]
        assert source.repo == entry.offline.repo and source.repo.startswith("hubkit-data/")
        assert source.revision and len(source.revision) == 40  # pinned to the commit it read
        assert (source.stand_in is not None) == (entry.stand_in is not None)
        row = data.dataset[0]
        assert row["prompt"].startswith("###Question: ") and row["prompt"].endswith("\n###Answer:")
        assert row["completion"].startswith(" ") and row["completion"].strip()
    assert REGISTRY["lima"].stand_in is None and "alpaca_gpt4_demo" in REGISTRY["alpaca_cleaned"].stand_in
    assert REGISTRY["ultrachat"].public.repo == "HuggingFaceH4/ultrachat_200k"


def test_sampling_is_reproducible_from_the_seed(seeded_training):
    a = load_training_data("lima", size=20, seed=7).dataset.to_list()
    b = load_training_data("lima", size=20, seed=7).dataset.to_list()
    c = load_training_data("lima", size=20, seed=8).dataset.to_list()
    assert a == b and a != c
    # a larger sample from the same seed extends the smaller one
    assert load_training_data("lima", size=40, seed=7).dataset.to_list()[:20] == a


def test_filters_pick_rows_of_a_shared_repo(seeded_training):
    math = load_training_data("math", size=10, seed=0).dataset["prompt"]
    reasoning = load_training_data("flan_reasoning", size=10, seed=0).dataset["prompt"]
    assert not set(math) & set(reasoning)
    assert all("So the answer is" in c for c in load_training_data("math", size=10, seed=0).dataset["completion"])


def test_all_and_leave_one_out(seeded_training):
    data = load_training_data("all", size=25, seed=3)
    assert len(data.dataset) == 25
    assert [s.name for s in data.sources] == STUDY_SETS
    assert [s.rows_used for s in data.sources] == [3] * 5 + [2] * 5  # split evenly, remainder first
    wo = load_training_data("w/o-lima", size=18, seed=3)
    assert "lima" not in [s.name for s in wo.sources] and len(wo.sources) == 9 and len(wo.dataset) == 18


def test_chat_template_format_gives_conversations(seeded_training):
    data = load_training_data("ultrachat", size=4, seed=0, prompt_format="chat_template")
    row = data.dataset[0]
    assert [m["role"] for m in row["prompt"]] == ["user"] and [m["role"] for m in row["completion"]] == ["assistant"]
    lima = load_training_data("lima", size=1029, seed=0, prompt_format="chat_template").dataset
    assert max(len(p) for p in lima["prompt"]) > 1  # LIMA's multi-turn records keep their history


def test_code_alpaca_skips_its_two_empty_upstream_records(seeded_training):
    data = load_training_data("code_alpaca", size=None, seed=0)
    assert data.sources[0].rows_available == 2017 and len(data.dataset) == 2015


def test_local_files_and_their_errors(tmp_path):
    good = tmp_path / "mine.jsonl"
    good.write_text("\n".join(json.dumps({"instruction": f"q{i}", "input": "", "output": f"a{i}"}) for i in range(6)))
    assert len(load_training_data(str(good), size=4).dataset) == 4

    missing = tmp_path / "missing.jsonl"
    missing.write_text(json.dumps({"question": "q", "answer": "a"}) + "\n" + json.dumps({"question": "q2"}) + "\n")
    with pytest.raises(HubkitError, match=r"dataset 'missing.jsonl' row 1: missing value in column 'answer'"):
        load_training_data(str(missing), seed=0)

    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"instruction": "q", "output": "  "}) + "\n")
    with pytest.raises(HubkitError, match=r"dataset 'empty.jsonl' row 0: empty instruction or response"):
        load_training_data(str(empty))

    typed = tmp_path / "typed.json"
    typed.write_text(json.dumps([{"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}]}]))
    with pytest.raises(HubkitError, match=r"row 0: a message is not \{role"):
        load_training_data(str(typed))

    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"foo": 1}) + "\n")
    with pytest.raises(HubkitError, match="no known layout in columns foo"):
        load_training_data(str(odd))

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"instruction": "q", "output": \n')
    with pytest.raises(HubkitError, match="broken.jsonl: cannot be read"):
        load_training_data(str(broken))


@pytest.mark.parametrize("name, size, message", [
    ("limaa", None, "unknown dataset 'limaa'"),
    ("w/o-nothing", None, "unknown dataset 'nothing' in 'w/o-nothing'"),
    ("someone/not-there", None, "repo someone/not-there not found on the Hub"),
    ("lima", 5000, "dataset 'lima' has 1029 rows; data_size 5000 asks for more"),
    ("nope.jsonl", None, "dataset file not found: nope.jsonl"),
])
def test_unknown_and_oversized(seeded_training, name, size, message):
    with pytest.raises(HubkitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_training_data(name, size=size)
