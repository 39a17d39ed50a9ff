"""Card metadata as the Hub reads it: the README's YAML front matter (parsed within `yamlsafe`'s limits) and the
tags derived from it (`license:…`, `dataset:…`, `base_model:…`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_FRONT_MATTER = re.compile(r"^\s*---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|$)", re.DOTALL)


def front_matter_yaml(text: str) -> str | None:
    """The YAML text between a card's leading `---` fences, or None when it has none."""
    match = _FRONT_MATTER.match(text)
    return match.group(1) if match else None


def parse_front_matter(text: str) -> dict[str, Any]:
    """The README's YAML front matter, parsed leniently (as the Hub does): errors give an empty dict.

    Raises:
        YamlLimit: metadata over the size, depth or alias-expansion limits (`yamlsafe`): refused, not stored.
    """
    import yaml

    from .yamlsafe import load

    raw = front_matter_yaml(text)
    if raw is None:
        return {}
    try:
        data = load(raw)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None and not isinstance(v, (dict, list))]
    if isinstance(value, dict):
        return []
    return [str(value)]


def derive_tags(repo_type: str, card: dict[str, Any] | None, files: Iterable[str]) -> list[str]:
    """Tags as the Hub derives them: card tags plus `key:value` tags for licence, datasets, languages, …"""
    card = card or {}
    tags: list[str] = []

    def add(t: str) -> None:
        if t and t not in tags:
            tags.append(t)

    for name in ("library_name", "pipeline_tag"):
        for v in _as_list(card.get(name)):
            add(v)
    for t in _as_list(card.get("tags")):
        add(t)
    files = list(files)
    if repo_type == "model":
        if any(f.endswith(".safetensors") for f in files):
            add("safetensors")
        if any(f.endswith(".gguf") for f in files):
            add("gguf")
        for v in _as_list(card.get("datasets")):
            add(f"dataset:{v}")
        for v in _as_list(card.get("base_model")):
            relation = card.get("base_model_relation")
            add(f"base_model:{v}")
            if isinstance(relation, str) and relation:
                add(f"base_model:{relation}:{v}")
    if repo_type == "dataset":
        for key in ("task_categories", "task_ids", "size_categories", "modality", "format"):
            for v in _as_list(card.get(key)):
                add(f"{key}:{v}")
    for v in _as_list(card.get("license")):
        add(f"license:{v}")
    for v in _as_list(card.get("language")):
        add(f"language:{v}")
    return tags

