"""`hubkit perplexity` against a direct loss computation, batch-size invariance, rolling windows and the cache."""

from __future__ import annotations

import json
import math

import pytest
import torch

from hubkit.analysis.perplexity import _windows, perplexity
from hubkit.data.loading import load_training_data
from hubkit.errors import HubkitError
from hubkit.eval.lm import LM

from ..test_cli import _assert_one_line_error, hubkit


def _direct(lm: LM, pairs, mode: str) -> tuple[float, int]:
    """Summed NLL and token count, one document at a time through the model's own loss."""
    from hubkit.analysis.perplexity import prefix_token

    first = prefix_token(lm.tokenizer)  # BOS, or EOS when the tokenizer has no BOS
    total, count = 0.0, 0
    for prompt, completion in pairs:
        if mode == "response":
            ctx, cont = lm._split(prompt, completion)
            ids, labels = ctx + cont, [-100] * len(ctx) + cont
        else:
            body = lm._encode(prompt + completion, special=False)
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
    assert len(pairs) == 12 and max(len(lm._encode(p + c, special=True)) for p, c in pairs) < lm.max_length
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
