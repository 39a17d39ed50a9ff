"""YAML for untrusted card metadata: bounded size, nesting depth, alias count and alias expansion.

`yaml.safe_load` is safe from code execution, not from denial of service: a few hundred bytes of nested
aliases (a "billion laughs") expand to a structure of any size, and a few kilobytes of nested brackets
exhaust the recursion limit. The Hub stores card metadata as JSON (in commits and every repo listing), so an
expansion would be written out in full. `load` refuses such documents before anything is built.

Example:
    >>> load("a: &x [1, 2]\\nb: *x")
    {'a': [1, 2], 'b': [1, 2]}
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 128
MAX_EXPANDED = 256 * 1024  # nodes and scalar bytes after expanding every alias


class YamlLimit(ValueError):
    """A document over one of the limits (the message names which)."""


class _Loader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise YamlLimit(f"more than {MAX_ALIASES} YAML aliases")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise YamlLimit(f"YAML nested deeper than {MAX_DEPTH} levels")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _expanded(node: yaml.Node) -> int:
    """The size of `node` once every alias is expanded (shared nodes counted once per use, computed once)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(n: yaml.Node) -> int:
        key = id(n)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise YamlLimit("a YAML alias refers to its own ancestor (a recursive structure)")
        active.add(key)
        if isinstance(n, yaml.ScalarNode):
            total = 1 + len(n.value)
        elif isinstance(n, yaml.SequenceNode):
            total = 1 + sum(size(c) for c in n.value)
        else:
            total = 1 + sum(size(k) + size(v) for k, v in n.value)
        active.discard(key)
        if total > MAX_EXPANDED:
            raise YamlLimit(f"YAML expands to more than {MAX_EXPANDED:,} nodes and characters (alias expansion)")
        sizes[key] = total
        return total

    return size(node)


def load(text: str) -> Any:
    """Parse one YAML document within the limits.

    Raises:
        YamlLimit: the text, its nesting, its aliases or their expansion is over a limit.
        yaml.YAMLError: the text is not YAML.
    """
    if len(text.encode("utf-8", errors="replace")) > MAX_BYTES:
        raise YamlLimit(f"YAML metadata larger than {MAX_BYTES // 1024} KB")
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()
