"""`hubkit perplexity` against a direct loss computation, batch-size invariance, rolling windows and the cache."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from hubkit.analysis.perplexity import _windows, perplexity
from hubkit.data.loading import load_training_data
from hubkit.errors import HubkitError
from hubkit.eval.lm import LM

from ..test_cli import _assert_one_line_error, hubkit

STUDY_CSV = Path(__file__).resolve().parents[3] / "shared" / "data" / "massive_sft_results" / "evaluation_result.csv"


def _direct(lm: LM, pairs, mode: str) -> tuple[float, int]:
    """Summed NLL and token count, one document at a time through the model's own loss."""
    from hubkit.analysis.perplexity import prefix_token

    first = prefix_token(lm.tokenizer)  # BOS, or EOS when the tokenizer has no BOS
    total, count = 0.0, 0
    for prompt, completion in pairs:
        if mode == "response":
            ctx, cont = lm.split(prompt, completion)
            ids, labels = ctx + cont, [-100] * len(ctx) + cont
        else:
            body = lm.encode(prompt + completion, special=False)
            ids, labels = [first] + body, [-100] + body
        with torch.inference_mode():
            out = lm.model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels]))
        n = sum(1 for x in labels[1:] if x != -100)
        total += float(out.loss) * n
        count += n
    return total, count


@pytest.fixture(scope="module")
def short_lima(hub, seeded, tmp_path_factory):
    """Real LIMA examples short enough for the tiny model's context, as a local training file."""
    rows = [r for r in load_training_data("lima", size=200, seed=3).dataset
            if len(r["prompt"]) + len(r["completion"]) < 500][:12]
    path = tmp_path_factory.mktemp("ppl") / "short_lima.json"
    path.write_text(json.dumps([{"instruction": r["prompt"][len("###Question: "):-len("\n###Answer:")],
                                 "output": r["completion"][1:]} for r in rows]))
    return path


def test_perplexity_equals_a_direct_loss_computation(tiny_model, short_lima):
    lm = LM.load(str(tiny_model))
    pairs = [(r["prompt"], r["completion"]) for r in load_training_data(str(short_lima)).dataset]
    assert len(pairs) == 12 and max(len(lm.encode(p + c, special=True)) for p, c in pairs) < lm.max_length
    for mode in ("response", "full"):
        result = perplexity(str(tiny_model), str(short_lima), mode=mode, progress=False, use_cache=False)
        nll, count = _direct(lm, pairs, mode)
        assert result.tokens == count
        assert result.nll == pytest.approx(nll, rel=1e-5)
        assert result.perplexity == pytest.approx(math.exp(nll / count), rel=1e-5)
        scored = sum(len((c if mode == "response" else p + c).encode()) for p, c in pairs)
        assert result.bytes == scored and result.bits_per_byte == pytest.approx(nll / math.log(2) / scored)


def test_values_do_not_depend_on_batch_size(hub, seeded, tiny_model):
    one = perplexity(str(tiny_model), "lima", size=16, batch_size=1, max_length=256, progress=False, use_cache=False)
    many = perplexity(str(tiny_model), "lima", size=16, batch_size=16, max_length=256, progress=False,
                      use_cache=False)
    assert one.tokens == many.tokens
    assert many.nll == pytest.approx(one.nll, rel=1e-5)


def test_rolling_windows_predict_each_token_once_with_context():
    tokens = list(range(100))
    windows = _windows(tokens, 1, max_length=16, stride=8)
    predicted = [w[0][i] for w in windows for i in range(w[1], w[1] + w[2])]
    assert predicted == tokens[1:]  # every token but the first, once, in order
    assert all(len(w[0]) <= 16 for w in windows)
    assert all(w[1] >= 8 for w in windows[1:])  # later windows keep max_length - stride tokens of context
    response = _windows(tokens, 40, max_length=16, stride=8)
    assert [w[0][i] for w in response for i in range(w[1], w[1] + w[2])] == tokens[40:]


def test_long_texts_and_the_cache(hub, seeded, tiny_model):
    short = perplexity(str(tiny_model), "lima", mode="full", size=4, max_length=64, stride=32, progress=False,
                       use_cache=False)
    direct = perplexity(str(tiny_model), "lima", mode="full", size=4, max_length=4096, progress=False,
                        use_cache=False)
    assert short.tokens == direct.tokens  # windows cover every token once
    first = perplexity(str(tiny_model), "lima", size=8, progress=False)
    again = perplexity(str(tiny_model), "lima", size=8, progress=False)
    assert not first.cached and again.cached and again.perplexity == first.perplexity


@pytest.mark.slow
def test_cli_and_errors(hub, seeded, tiny_model):
    proc = hubkit("perplexity", "--model", str(tiny_model), "--data", "lima", "--size", "4", "--json",
                  "--no-progress")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["model"] == tiny_model.name and data["tokens"] > 0 and str(tiny_model.parent) not in proc.stdout
    _assert_one_line_error(hubkit("perplexity", "--model", str(tiny_model), "--data", "nope", "--size", "4"),
                           "unknown dataset 'nope'")
    _assert_one_line_error(hubkit("perplexity", "--model", str(tiny_model), "--data", "lima", "--mode", "half"),
                           "mode must be `response` or `full`")


def test_an_empty_record_is_named(hub, tiny_model, tmp_path):
    data = tmp_path / "tiny.json"
    data.write_text(json.dumps([{"instruction": "What is 2 + 2?", "output": "4"},
                                {"instruction": "Say nothing", "output": ""}]))
    with pytest.raises(HubkitError, match=r"row 1"):
        perplexity(str(tiny_model), str(data), progress=False, use_cache=False)


def test_a_text_dataset_is_scored_in_full(tiny_model, tmp_path):
    lm = LM.load(str(tiny_model))
    texts = ["The cat sat on the mat.", "def add(a, b):\n    return a + b"]
    path = tmp_path / "texts.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    result = perplexity(str(tiny_model), str(path), mode="full", progress=False, use_cache=False)
    nll, count = _direct(lm, [("", t) for t in texts], "full")
    assert result.tokens == count and result.nll == pytest.approx(nll, rel=1e-5)
    assert result.data == "texts.jsonl" and result.documents == 2


@pytest.mark.slow
def test_an_edited_file_is_scored_again_and_results_build_a_table(tiny_model, tmp_path):
    """The cache is keyed by the scored texts' content: editing a local file gives the new file's value;
    `--no-cache` scores again; `--table` builds the (base_model, dataset, perplexity) table `analyze` reads."""
    import pandas as pd

    path = tmp_path / "notes.jsonl"
    path.write_text(json.dumps({"text": "The cat sat on the mat."}) + "\n")
    first = perplexity(str(tiny_model), str(path), mode="full", progress=False)
    path.write_text(json.dumps({"text": "Colourless green ideas sleep furiously, again and again."}) + "\n")
    edited = perplexity(str(tiny_model), str(path), mode="full", progress=False)
    assert not edited.cached and edited.tokens != first.tokens and edited.data_revision != first.data_revision
    assert perplexity(str(tiny_model), str(path), mode="full", progress=False).cached
    table = tmp_path / "ppl.parquet"
    args = ["perplexity", "--model", str(tiny_model), "--mode", "full", "--table", str(table), "--no-progress"]
    proc = hubkit(*args, "--data", str(path), "--no-cache")
    assert proc.returncode == 0, proc.stderr
    assert " in " in proc.stdout and "(cached)" not in proc.stdout and "1 row(s)" in proc.stdout
    (tmp_path / "other.jsonl").write_text(json.dumps({"text": "Another text to score."}) + "\n")
    assert hubkit(*args, "--data", str(tmp_path / "other.jsonl")).returncode == 0
    again = hubkit(*args, "--data", str(path))  # the same (model, dataset, mode): its row is replaced
    assert "(cached)" in again.stdout and "2 row(s)" in again.stdout
    rows = pd.read_parquet(table)
    assert sorted(rows["dataset"]) == ["notes.jsonl", "other.jsonl"] and set(rows["base_model"]) == {tiny_model.name}
    assert rows.set_index("dataset").loc["notes.jsonl", "perplexity"] == pytest.approx(edited.perplexity)
    study = str(STUDY_CSV)
    proc = hubkit("analyze", "--results", study, "--perplexity", str(table), "-o", str(tmp_path / "a"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "Gains vs training-data properties" in proc.stdout
