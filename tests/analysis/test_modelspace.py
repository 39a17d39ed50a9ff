"""Model-space analyses: log-likelihood vectors and their map, Gride intrinsic dimension, weight-change similarity."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from hubkit.analysis import modelspace as ms
from hubkit.errors import HubkitError


def _variant(source: Path, target: Path, scale: float, seed: int, factor_of: Path | None = None) -> Path:
    """A copy of a model with its weights moved: + scale·noise, or (with `factor_of`) base + scale·(other − base)."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(source)
    gen = torch.Generator().manual_seed(seed)
    other = AutoModelForCausalLM.from_pretrained(factor_of).state_dict() if factor_of else None
    with torch.no_grad():
        for name, p in model.named_parameters():
            if other is not None:
                p.copy_(p + scale * (other[name] - p))
            else:
                p.add_(scale * p.std() * torch.randn(p.shape, generator=gen))
    model.save_pretrained(target)
    for f in source.iterdir():
        if f.name.startswith("tokenizer") or f.name in ("special_tokens_map.json", "chat_template.jinja"):
            shutil.copy2(f, target / f.name)
    return target


@pytest.fixture(scope="module")
def families(tiny_model, tmp_path_factory) -> dict[str, list[Path]]:
    """Two families of tiny models: each a random base and two fine-tune-like variants close to it."""
    from hubkit.models import build_tiny_model

    root = tmp_path_factory.mktemp("families")
    other = root / "other-base"
    build_tiny_model(other, seed=7)
    out = {}
    for name, base in (("a", tiny_model), ("b", other)):
        out[name] = [base] + [_variant(base, root / f"{name}-ft{k}", 0.05, seed=k) for k in (1, 2)]
    return out


def test_gride_recovers_a_2d_manifold_in_50d():
    """A Swiss roll (2-D) rotated into 50-D: every scale's estimate within 10 % of 2; a 5-D Gaussian: of 5."""
    rng = np.random.default_rng(0)
    n = 2000
    u = rng.uniform(0, 1, (n, 2))
    t, h = 1.5 * np.pi * (1 + 2 * u[:, 0]), 10 * u[:, 1]
    rotation, _ = np.linalg.qr(rng.normal(size=(50, 50)))
    roll = np.hstack([np.column_stack([t * np.cos(t), h, t * np.sin(t)]), np.zeros((n, 47))]) @ rotation
    scales = ms.gride_scaling(roll, max_n1=8)
    assert [s[0] for s in scales] == [1, 2, 4, 8]
    for _, d, err in scales:
        assert abs(d - 2) < 0.2 and 0 < err < 0.2
    gauss = np.hstack([rng.normal(size=(n, 5)), np.zeros((n, 45))]) @ rotation
    assert abs(ms.gride(gauss, n1=ms.GRIDE_SCALE)[0] - 5) < 0.5
    doubled = np.vstack([roll[:300], roll[:300]])  # duplicates are dropped, not zero distances
    assert abs(ms.gride(doubled, 1)[0] - 2) < 0.5
    with pytest.raises(HubkitError, match="distinct points"):
        ms.gride(roll[:5], n1=4)


def test_loglik_vector_equals_an_independent_forward_pass(hub, seeded_benchmarks, tiny_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hubkit.eval.lm import resolve_model

    probe = ms.build_probe_set(per_task=2)
    assert len(probe.probes) == 2 * len(ms.PROBE_TASKS)
    assert probe.digest == ms.build_probe_set(per_task=2).digest  # fixed: the same probes every time
    values = ms.loglik_vector(resolve_model(str(tiny_model)), probe, progress=False)
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model)
    for p, value in zip(probe.probes, values):
        # lm-eval's split: the context's tokens, then what the whole text adds (a token merged across the
        # boundary counts as the answer's)
        ctx = tok(p.context)["input_ids"]
        ids = ctx + tok(p.context + p.continuation)["input_ids"][len(ctx):]
        with torch.no_grad():
            logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
        expected = sum(float(logprobs[i - 1, ids[i]]) for i in range(len(ctx), len(ids)))
        assert value == pytest.approx(expected, abs=1e-3), p.task


@pytest.mark.slow
def test_analyze_loglik_maps_families_apart_and_pushes_to_the_leaderboard(hub, seeded_benchmarks, families, tmp_path,
                                                                           capsys, monkeypatch):
    """Six models of two random families through the CLI: the map puts each family together, the vectors and map
    go to the results dataset's `modelspace/`, and the leaderboard draws the map from there."""
    import pandas as pd

    from hubkit.cli.main import main
    from hubkit.hub.seed import find_data_dir
    from hubkit.importers import import_massive_sft_csv
    from hubkit.publish import push_results
    from hubkit.space import load_board

    alice = hub.api("alice")
    push_results(import_massive_sft_csv(find_data_dir() / "massive_sft_results" / "evaluation_result.csv"),
                 "alice/modelspace-results", "study", api=alice)
    monkeypatch.setenv("HF_TOKEN", hub.tokens["alice"])
    models = [str(p) for fam in families.values() for p in fam]
    out = tmp_path / "out"
    try:
        main(["analyze", "--loglik", *[a for m in models for a in ("-m", m)], "--per-task", "2", "--map", "tsne",
              "-o", str(out), "--push", "alice/modelspace-results", "--no-progress"])
    except SystemExit as e:
        assert not e.code, capsys.readouterr().err
    said = " ".join(capsys.readouterr().out.split())
    assert "Pushed the model-space analysis to alice/modelspace-results" in said
    coords = pd.read_parquet(out / "loglik_map.parquet")
    assert len(coords) == 6 and set(coords["method"]) == {"tsne"}
    xy = coords[["x", "y"]].to_numpy()
    group = [0, 0, 0, 1, 1, 1]
    within = max(np.linalg.norm(xy[i] - xy[j]) for i in range(6) for j in range(6) if group[i] == group[j])
    between = min(np.linalg.norm(xy[i] - xy[j]) for i in range(6) for j in range(6) if group[i] != group[j])
    assert within < between, (within, between)
    vectors = pd.read_parquet(out / "loglik_vectors.parquet")
    assert len(vectors) == 6 and vectors.shape[1] == 6 + 2 * len(ms.PROBE_TASKS)
    probe = json.loads((out / "probe.json").read_text())
    assert probe["version"] == ms.PROBE_VERSION and probe["probes"] == 2 * len(ms.PROBE_TASKS)
    assert (out / "loglik_map.png").stat().st_size > 5000
    files = set(alice.list_repo_files("alice/modelspace-results", repo_type="dataset"))
    assert {"modelspace/loglik_map.parquet", "modelspace/loglik_vectors.parquet", "modelspace/loglik_map.png"} <= files
    assert any(f.startswith("data/") for f in files)  # the results are still there

    board = load_board("alice/modelspace-results")
    assert "loglik_map" in board.analysis
    figure = board.model_map("dataset")
    assert len(figure.axes[0].collections) == 1  # local models with no recorded base: all `pretrain`
    assert "6 models" in figure.axes[0].get_title() and "t-SNE" in figure.axes[0].get_title()
    assert board.model_map("<script>") is not None  # an unknown colouring falls back to the family

    from hubkit.space import build_app, serving

    from ..conftest import _free_port, chromium_page

    with serving(build_app("alice/modelspace-results"), port=_free_port()) as url, chromium_page() as page:
        if page is None:
            pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
        page.goto(url)
        page.get_by_role("tab", name="Plots").click()
        page.locator("#model-map img").first.wait_for(timeout=60_000)
        first = page.locator("#model-map img").first.get_attribute("src")
        page.locator("#map-colour input").click()
        page.locator("#map-colour input").fill("epochs")
        page.keyboard.press("Enter")
        page.wait_for_function("(src) => document.querySelector('#model-map img')?.getAttribute('src') !== src",
                               arg=first, timeout=30_000)


def test_loglik_vectors_are_cached_per_revision(hub, seeded_benchmarks, families, monkeypatch):
    from hubkit.eval import lm as lm_module
    from hubkit.eval.lm import resolve_model

    probe = ms.build_probe_set(per_task=1)
    source = resolve_model(str(families["a"][1]))
    first = ms.loglik_vector(source, probe, progress=False)
    monkeypatch.setattr(lm_module.LM, "load", classmethod(lambda *a, **k: pytest.fail("recomputed a cached vector")))
    assert ms.loglik_vector(source, probe, progress=False) == first


def test_model_axes_come_from_the_card_on_the_hub(hub, tiny_model, repo_name):
    """A Hub model's family, data and epochs come from its card (`base_model`, `hubkit:`)."""
    from hubkit.eval.lm import resolve_model
    from hubkit.hub import push_folder

    alice = hub.api("alice")
    repo = f"alice/{repo_name}"
    alice.create_repo(repo)
    push_folder(repo, tiny_model, commit_message="weights", api=alice)
    alice.upload_file(path_or_fileobj=b"---\nbase_model: alice/tiny-base\nhubkit:\n  dataset: lima\n  epochs: 3\n"
                      b"  tuning: full\n---\n# card\n", path_in_repo="README.md", repo_id=repo)
    axes = ms.model_axes(resolve_model(repo))
    assert (axes.family, axes.dataset, axes.epochs, axes.tuning) == ("alice/tiny-base", "lima", 3, "full")
    base = ms.model_axes(resolve_model(str(tiny_model)))
    assert (base.dataset, base.tuning, base.epochs) == ("pretrain", "base", 0)


def test_analyze_intrinsic_dim_and_weight_change_similarity(hub, seeded_benchmarks, families, tmp_path, capsys):
    """Per-layer Gride IDs of a base and two fine-tunes by normalised depth; the similarity of their weight-change
    profiles, where a fine-tune moved twice as far along the same direction correlates perfectly."""
    import pandas as pd

    from hubkit.analysis.layerdiff import by_layer, layer_diff
    from hubkit.cli.main import main

    base, ft1, _ = families["a"]
    twice = _variant(base, tmp_path / "ft1-twice", 2.0, seed=0, factor_of=ft1)
    layers = by_layer(layer_diff(str(base), [str(ft1), str(twice), str(families["a"][2])], progress=False))
    layers.to_parquet(tmp_path / "layers.parquet", index=False)
    out = tmp_path / "out"
    try:
        main(["analyze", "--intrinsic-dim", "-m", str(ft1), "-m", str(twice), "--base", str(base), "--texts", "60",
              "--gride-scale", "2", "--layers", str(tmp_path / "layers.parquet"), "-o", str(out), "--no-progress"])
    except SystemExit as e:
        assert not e.code, capsys.readouterr().err
    ids = pd.read_parquet(out / "intrinsic_dim.parquet")
    assert set(ids["role"]) == {"base", "fine-tune"} and ids["model"].nunique() == 3
    head = ids[ids["headline"]]
    assert (head.groupby("model")["layer"].nunique() == head["layer"].max()).all()
    assert head["depth"].max() == 1.0 and (head["id"] > 0).all() and np.isfinite(head["id"]).all()
    assert set(ids["n1"]) >= {1, 2, 4}
    sim = pd.read_parquet(out / "weight_change_similarity.parquet")
    pair = sim[(sim["model_a"] == ft1.name) & (sim["model_b"] == twice.name)].iloc[0]
    assert pair["pearson"] == pytest.approx(1.0, abs=1e-6) and pair["cosine"] == pytest.approx(1.0, abs=1e-6)
    assert (sim[sim["model_a"] == sim["model_b"]]["pearson"] > 0.999999).all()
    assert (out / "intrinsic_dim.png").is_file() and (out / "weight_change_similarity.png").is_file()
    said = capsys.readouterr().out
    assert "intrinsic dimension (Gride n1=2)" in " ".join(said.split())


def test_model_space_errors_are_one_line(hub, seeded_benchmarks, tiny_model, tmp_path, capsys):
    from hubkit.cli.main import main

    cases = [(["analyze"], "needs --results"),
             (["analyze", "--loglik", "-m", str(tiny_model), "--per-task", "1"], "at least 2"),
             (["analyze", "--loglik", "-m", str(tiny_model), "-m", "alice/no-such-model"], "not found"),
             (["analyze", "--loglik", "-m", str(tiny_model), "-m", str(tiny_model) + "x"], "not found"),
             (["analyze", "--intrinsic-dim"], "needs --model"),
             (["analyze", "--loglik", "-m", "a", "-m", "b", "--map", "mds"], "--map"),
             (["analyze", "--intrinsic-dim", "--layers", str(tmp_path / "missing.parquet")], "missing.parquet")]
    for argv, expected in cases:
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, "-o", str(tmp_path / "o"), "--no-progress"])
        err = capsys.readouterr().err.strip().splitlines()[-1]  # after any loader's progress bars
        assert exit_info.value.code != 0 and err.startswith("Error: "), (argv, err)
        assert expected in err, (argv, err)
    assert math.isfinite(ms.double_center(np.ones((3, 4))).sum())


@pytest.mark.slow
def test_map_methods(hub, seeded_benchmarks, families):
    """`auto` is UMAP (umap-learn is installed with the test extra), PCA below 5 models; t-SNE refuses too few."""
    probe = ms.build_probe_set(per_task=1)
    models = [str(p) for fam in families.values() for p in fam]
    table = ms.loglik_vectors(models, probe, progress=False)
    coords = ms.loglik_map(table)
    assert set(coords["method"]) == {"umap"} and np.isfinite(coords[["x", "y"]].to_numpy()).all()
    few = ms.LoglikTable(table.axes[:3], table.matrix[:3], probe)
    assert set(ms.loglik_map(few)["method"]) == {"pca"}
    with pytest.raises(HubkitError, match="at least 5 models"):
        ms.loglik_map(few, "tsne")
    centred = ms.double_center(table.matrix)
    assert np.allclose(centred.mean(axis=0), 0) and np.allclose(centred.mean(axis=1), 0)
