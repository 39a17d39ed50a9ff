"""`hubkit layerdiff` against an independent numpy computation, locally and through Range reads on the Hub."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from hubkit.analysis.layerdiff import by_layer, layer_diff, module_type
from hubkit.config import RunSpec
from hubkit.errors import HubkitError
from hubkit.hub import push_folder
from hubkit.train import train

from ..test_cli import _assert_one_line_error, hubkit


@pytest.fixture(scope="module")
def tuned(hub, seeded, tiny_base, tmp_path_factory):
    out = tmp_path_factory.mktemp("ld")
    common = {"model": tiny_base, "dataset": "lima", "data_size": 16, "epochs": 1, "batch_size": 8, "max_length": 128,
                  "learning_rate": 1e-2, "output_dir": str(out)}
    full = train(RunSpec(**common), progress=False)
    lora = train(RunSpec(**common, tuning="lora", lora_r=4, lora_alpha=8), progress=False)
    alice = hub.api("alice")
    for name, run in (("ld-full", full), ("ld-lora", lora)):
        alice.create_repo(f"alice/{name}", exist_ok=True)
        push_folder(f"alice/{name}", run.model_dir, commit_message="weights", api=alice)
    return {"full": full.model_dir, "lora": lora.model_dir}


def _expected_full(base_dir, tuned_dir):
    base, other = load_file(str(base_dir / "model.safetensors")), load_file(str(tuned_dir / "model.safetensors"))
    out = {}
    for name, w in base.items():
        w, v = w.astype(np.float64), other[name].astype(np.float64)
        out[name] = (np.linalg.norm(v - w) / np.linalg.norm(w),
                     float(np.sum(w * v) / (np.linalg.norm(w) * np.linalg.norm(v))))
    return out


def test_full_fine_tune_matches_numpy_locally_and_remotely(tiny_model, tiny_base, tuned):
    local = layer_diff(str(tiny_model), [str(tuned["full"])], progress=False)
    expected = _expected_full(tiny_model, tuned["full"])
    assert set(local["tensor"]) == set(expected)
    for row in local.itertuples():
        assert row.rel_change == pytest.approx(expected[row.tensor][0], rel=1e-9, abs=1e-12)
        assert row.cosine == pytest.approx(expected[row.tensor][1], rel=1e-9)
    remote = layer_diff(tiny_base, ["alice/ld-full"], progress=False)  # Range reads against the local Hub
    assert remote.drop(columns="model").equals(local.drop(columns="model"))
    assert local["rel_change"].max() > 0
    depths = sorted(local["depth"].dropna().unique())
    assert depths[0] == 0.0 and depths[-1] == 1.0
    assert {"attention.q", "attention.k", "attention.v", "attention.o", "mlp.gate", "mlp.up", "mlp.down", "norm",
            "embedding"} <= set(local["module"])
    layers = by_layer(local)
    first = local[local["layer"] == 0]
    assert layers.loc[layers["layer"] == 0, "rel_change"].iloc[0] == pytest.approx(
        np.sqrt((first["delta_norm"] ** 2).sum() / (first["base_norm"] ** 2).sum()))


def test_lora_adapter_is_diffed_without_merging_and_matches_the_merged_weights(tiny_model, tiny_base, tuned):
    table = layer_diff(str(tiny_model), [str(tuned["lora"])], progress=False)
    adapter = load_file(str(tuned["lora"] / "adapter_model.safetensors"))
    config = json.loads((tuned["lora"] / "adapter_config.json").read_text())
    scale = config["lora_alpha"] / config["r"]
    base = load_file(str(tiny_model / "model.safetensors"))
    checked = 0
    for row in table.itertuples():
        stem = "base_model.model." + row.tensor[: -len(".weight")]
        a, b = adapter.get(f"{stem}.lora_A.weight"), adapter.get(f"{stem}.lora_B.weight")
        w = base[row.tensor].astype(np.float64)
        if a is None:
            assert row.rel_change == 0.0
            continue
        merged = w + scale * b.astype(np.float64) @ a.astype(np.float64)
        assert row.rel_change == pytest.approx(np.linalg.norm(merged - w) / np.linalg.norm(w), rel=1e-9)
        assert row.cosine == pytest.approx(np.sum(w * merged) / (np.linalg.norm(w) * np.linalg.norm(merged)), rel=1e-9)
        checked += 1
    assert checked >= 8 and table["rel_change"].max() > 0
    remote = layer_diff(tiny_base, ["alice/ld-lora"], progress=False)
    assert remote.drop(columns="model").equals(table.drop(columns="model"))


def test_bad_inputs_name_the_tensor_or_file(tiny_model, tuned, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tuned["full"], other)
    weights = load_file(str(other / "model.safetensors"))
    dropped = sorted(weights)[0]
    save_file({k: v for k, v in weights.items() if k != dropped}, str(other / "model.safetensors"))
    with pytest.raises(HubkitError, match=f"lacks tensor {dropped}"):
        layer_diff(str(tiny_model), [str(other)], progress=False)
    reshaped = {k: (v[:, :-1] if v.ndim == 2 and k == "model.layers.0.mlp.up_proj.weight" else v)
                for k, v in weights.items()}
    save_file(reshaped, str(other / "model.safetensors"))
    with pytest.raises(HubkitError, match="tensor model.layers.0.mlp.up_proj.weight has shape"):
        layer_diff(str(tiny_model), [str(other)], progress=False)
    (other / "model.safetensors").write_bytes(b"\xff" * 8 + b"{not json")
    _assert_one_line_error(hubkit("layerdiff", "--base", str(tiny_model), str(other), "--output", str(tmp_path / "o")),
                           "corrupted safetensors header")


def test_cli_writes_a_tidy_parquet_and_a_plot(tiny_model, tuned, tmp_path):
    import pandas as pd

    out = tmp_path / "diff"
    proc = hubkit("layerdiff", "--base", str(tiny_model), str(tuned["full"]), str(tuned["lora"]), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    table = pd.read_parquet(out / "layerdiff.parquet")
    assert table["model"].nunique() == 2 and (out / "layerdiff.png").stat().st_size > 1000
    assert set(pd.read_parquet(out / "layerdiff_layers.parquet").columns) >= {"model", "layer", "depth", "rel_change"}
    assert module_type("model.layers.2.self_attn.o_proj.weight") == "attention.o"
