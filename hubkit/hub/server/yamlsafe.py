"""YAML for untrusted card metadata: bounded size, parse time, nesting depth, alias count and alias expansion.

`yaml.safe_load` is safe from code execution, not from denial of service: a few hundred bytes of nested
aliases (a "billion laughs") expand to a structure of any size, a few kilobytes of nested brackets exhaust the
recursion limit, and a flat megabyte takes the pure-Python parser seconds. The Hub stores card
metadata as JSON (in commits and every repo listing), so an expansion would be written out in full. `load`
refuses such documents before anything is built, with a message that names the limit hit.

Parsing uses libyaml's event parser when PyYAML has it (250 KB in 0.14 s, against 0.65 s for PyYAML's
pure-Python `SafeLoader` in the same run); the nodes are composed here, in Python, so that every limit is
checked as the document is read.

Example:
    >>> load("a: &x [1, 2]\\nb: *x")
    {'a': [1, 2], 'b': [1, 2]}
"""

from __future__ import annotations

import time
from typing import Any

import yaml
from yaml.composer import Composer

MAX_BYTES = 256 * 1024  # the metadata block of a card (the text between its `---` fences)
MAX_SECONDS = 1.0  # of parsing, whatever the text
MAX_DEPTH = 64
MAX_ALIASES = 128
MAX_EXPANDED = 256 * 1024  # nodes and scalar characters, after expanding every alias

_Parser = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlLimit(ValueError):
    """A document over one of the limits (the message names which)."""


class _Loader(_Parser):  # type: ignore[misc,valid-type]
    # Composition in Python over the (C) event stream, so that each node passes the checks below.
    get_single_node = Composer.get_single_node
    compose_document = Composer.compose_document
    compose_scalar_node = Composer.compose_scalar_node
    compose_sequence_node = Composer.compose_sequence_node
    compose_mapping_node = Composer.compose_mapping_node

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.anchors: dict = {}
        self._depth = 0
        self._aliases = 0
        self._deadline = time.monotonic() + MAX_SECONDS

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise YamlLimit(f"more than {MAX_ALIASES} YAML aliases (the limit)")
        if time.monotonic() > self._deadline:
            raise YamlLimit(f"YAML metadata took more than {MAX_SECONDS:g} s to parse (the limit)")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise YamlLimit(f"YAML nested deeper than {MAX_DEPTH} levels (the limit)")
        try:
            return Composer.compose_node(self, parent, index)
        finally:
            self._depth -= 1


def _expanded(node: yaml.Node, aliases: int) -> int:
    """The size of `node` once every alias is expanded (shared nodes counted once per use, computed once)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    why = "after alias expansion" if aliases else "in the document"

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
            raise YamlLimit(f"YAML holds more than {MAX_EXPANDED:,} nodes and characters {why} (the limit)")
        sizes[key] = total
        return total

    return size(node)


def load(text: str) -> Any:
    """Parse one YAML document within the limits.

    Raises:
        YamlLimit: the text, its parse time, its nesting, its aliases or their expansion is over a limit.
        yaml.YAMLError: the text is not YAML.
    """
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_BYTES:
        raise YamlLimit(f"YAML metadata is {size // 1024:,} KB, larger than {MAX_BYTES // 1024} KB (the limit)")
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded(node, loader._aliases)
        return loader.construct_document(node)
    finally:
        loader.dispose()
