"""Models hubkit makes itself: a tiny random Llama with a real tokenizer, for tests, benchmarks and demos.

The tokenizer is a byte-level BPE trained in-process (so it encodes any text), with a ChatML chat
template whose end-of-turn token is also the EOS, as TRL expects for conversational data.

Example:
    >>> from hubkit.models import build_tiny_model
    >>> build_tiny_model("tiny-llama", texts=["Hello world."] * 10)
    226432
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

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
