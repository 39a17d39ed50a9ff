"""`hubkit layerdiff` against an independent numpy computation, locally and through Range reads on the Hub."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
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


@pytest.mark.slow
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
    # only the adapted tensors: the same rows for them, and the others never read
    everything, adapted = {}, {}
    only = layer_diff(tiny_base, ["alice/ld-lora"], progress=False, adapted_only=True, stats=adapted)
    layer_diff(tiny_base, ["alice/ld-lora"], progress=False, stats=everything)
    assert set(only["tensor"]) == {r.tensor for r in table.itertuples() if r.rel_change > 0}
    pd.testing.assert_frame_equal(only.drop(columns="model").reset_index(drop=True),
                                  table[table["tensor"].isin(only["tensor"])].drop(columns="model").reset_index(drop=True),
                                  check_dtype=False)  # `layer`: int here, float where embeddings (no layer) are in
    assert adapted["bytes_read"] < everything["bytes_read"]


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
    layers = pd.read_parquet(out / "layerdiff_layers.parquet")
    assert set(layers.columns) >= {"model", "layer", "depth", "rel_change", "cosine"}
    assert ((layers["cosine"] > 0.5) & (layers["cosine"] <= 1.0)).all()
    assert "of weights read" in proc.stdout and "cosine" in proc.stdout
    assert module_type("model.layers.2.self_attn.o_proj.weight") == "attention.o"


VARIANTS = {
    "rslora": {"r": 16, "lora_alpha": 8, "use_rslora": True, "target_modules": ["q_proj", "v_proj"]},
    "modules-to-save": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], "modules_to_save": ["lm_head"]},
    "patterns": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"], "rank_pattern": {"v_proj": 2},
                 "alpha_pattern": {"layers.1.self_attn.q_proj": 32}},
    "dora": {"r": 4, "lora_alpha": 8, "use_dora": True, "target_modules": ["q_proj", "down_proj"]},
    "embedding": {"r": 4, "lora_alpha": 8, "target_modules": ["embed_tokens", "q_proj"]},
}


@pytest.fixture(scope="module")
def variants(tiny_model, tmp_path_factory):
    """PEFT adapters of each variant over the tiny base, with every trainable tensor moved off its init."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("variants")
    torch.manual_seed(0)
    for name, config in VARIANTS.items():
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model), LoraConfig(**config))
        with torch.no_grad():
            for param in model.parameters():
                if param.requires_grad:
                    param.add_(torch.randn_like(param) * 0.05)
        model.save_pretrained(out / name)
    return out


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_peft_variants_match_the_merged_weights(tiny_model, variants, variant):
    """rsLoRA, rank/alpha patterns, modules_to_save, DoRA and embedding LoRA: each tensor's change equals PEFT's
    own merge (`merge_and_unload`), and every tensor the adapter touches is reported as changed."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = {k: v.double().numpy() for k, v in AutoModelForCausalLM.from_pretrained(tiny_model).state_dict().items()}
    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), variants / variant)
    merged = {k: v.double().numpy() for k, v in merged.merge_and_unload().state_dict().items()}
    table = layer_diff(str(tiny_model), [str(variants / variant)], progress=False)
    for row in table.itertuples():
        w, v = base[row.tensor], merged[row.tensor]
        assert row.rel_change == pytest.approx(np.linalg.norm(v - w) / np.linalg.norm(w), rel=1e-6, abs=1e-12)
        # PEFT merges in float32: agreement to its rounding
        assert row.cosine == pytest.approx(np.sum(w * v) / (np.linalg.norm(w) * np.linalg.norm(v)), rel=1e-6)
    touched = {k for k in base if not np.array_equal(base[k], merged[k])}
    assert touched and set(table.loc[table["rel_change"] > 0, "tensor"]) == touched
    del torch


def test_unsupported_adapters_are_refused_not_misreported(tiny_model, variants, tmp_path):
    for key, value in (("lora_bias", True), ("peft_type", "IA3"), ("layer_replication", [[0, 1]])):
        folder = tmp_path / key
        shutil.copytree(variants / "rslora", folder)
        config = json.loads((folder / "adapter_config.json").read_text())
        (folder / "adapter_config.json").write_text(json.dumps({**config, key: value}))
        with pytest.raises(HubkitError, match="not supported|cannot compute"):
            layer_diff(str(tiny_model), [str(folder)], progress=False)
    folder = tmp_path / "odd"
    shutil.copytree(variants / "rslora", folder)
    tensors = load_file(str(folder / "adapter_model.safetensors"))
    tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_E"] = np.ones((4, 1), np.float32)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    _assert_one_line_error(hubkit("layerdiff", "--base", str(tiny_model), str(folder), "-o", str(tmp_path / "o")),
                           "this adapter type is not supported")
