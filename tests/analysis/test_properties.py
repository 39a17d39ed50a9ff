"""Training-data properties (length, embedding similarity, n-gram overlap) and their join in `hubkit analyze`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hubkit.analysis.properties import data_properties, embed, ngram_overlap
from hubkit.analysis.study import analyze
from hubkit.importers import import_massive_sft_csv

from .test_study import _distrusted

STUDY_CSV = Path(__file__).resolve().parents[3] / "shared" / "data" / "massive_sft_results" / "evaluation_result.csv"


def test_ngram_overlap_and_embeddings():
    assert ngram_overlap(["the cat sat on the mat"], ["The cat sat on a mat"]) == pytest.approx(2 / 4)
    assert ngram_overlap([], ["a b c"]) == 0.0
    vectors = embed(["How do I sort a list in Python?", "Sorting a Python list", "The weather in Paris is mild"])
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_code_data_is_closest_to_the_code_benchmark(hub, seeded_benchmarks, seeded_training):
    table = data_properties(["lima", "code_alpaca"], ["gsm8k", "humaneval"], size=24, progress=False)
    sim = table.set_index(["dataset", "benchmark"])["embed_sim"]
    assert sim[("code_alpaca", "humaneval")] > sim[("lima", "humaneval")]
    assert sim[("code_alpaca", "humaneval")] > sim[("code_alpaca", "gsm8k")]
    lengths = table.drop_duplicates("dataset").set_index("dataset")["avg_length"]
    assert lengths["lima"] > lengths["code_alpaca"]  # LIMA's long answers


@pytest.mark.slow
def test_analyze_joins_properties_on_dataset_and_benchmark(tmp_path):
    study = import_massive_sft_csv(STUDY_CSV).frame
    main = (study["data_size"] == 1000) & (study["lr_schedule"] == "cosine") & (study["epochs"] == 10) \
        & (study["tuning"] == "full")
    ft = study[(study["dataset"] != "pretrain") & study["gain"].notna()]
    rng = np.random.default_rng(2)
    pairs = ft[["dataset", "benchmark"]].drop_duplicates()
    props = pairs.assign(embed_sim=rng.uniform(0, 1, len(pairs)))
    result = analyze(study, tmp_path, properties=props)
    got = result.tables["data_properties"].set_index(["column", "property", "method"])
    m = ft[(ft["benchmark"] == "humaneval") & (ft["n_shot"] == 0) & main.reindex(ft.index).fillna(False)
           & ~ft["dataset"].isin(["all"]) & ~ft["dataset"].str.startswith("w/o-")]  # the main grid it is run on
    distrusted = _distrusted(study)  # gains measured against a base row another base model shares: left out
    m = m[[(b, "humaneval-0shot") not in distrusted for b in m["base_model"]]]
    gains = m.groupby(["base_model", "dataset"], as_index=False)["gain"].mean().merge(
        props[props["benchmark"] == "humaneval"], on="dataset")
    assert got.loc[("humaneval-0shot", "embed_sim", "spearman"), "r"] == pytest.approx(
        gains["embed_sim"].corr(gains["gain"], method="spearman"))
    assert "perplexity" not in result.inputs  # only a (base, dataset) perplexity table goes to the leaderboard
