"""The study's analyses, one module each (see `hubkit.analysis.registry`): `specs()` lists them in report order."""

from __future__ import annotations

import functools
import importlib
import pkgutil

from ..registry import AnalysisSpec


@functools.cache
def specs() -> tuple[AnalysisSpec, ...]:
    """Every analysis module's `SPEC`, in report order (modules whose name starts with `_` are helpers).

    Raises:
        RuntimeError: two analyses declare the same name or order (a programming error, caught by the tests).
    """
    found = []
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            found.append(importlib.import_module(f"{__name__}.{module.name}").SPEC)
    for key in ("name", "order"):
        values = [getattr(s, key) for s in found]
        if len(set(values)) != len(values):
            raise RuntimeError(f"two analyses declare the same {key}: {sorted(values)}")
    return tuple(sorted(found, key=lambda s: s.order))


def by_name() -> dict[str, AnalysisSpec]:
    return {s.name: s for s in specs()}
