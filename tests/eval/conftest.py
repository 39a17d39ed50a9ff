"""Fixtures of the eval tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def seeded_judged(hub):
    """MT-Bench and AlpacaEval seeded into the test Hub, once."""
    from hubkit.hub.seed import seed

    return seed(["mt_bench", "alpaca_eval"], api=hub.api("hubkit"), progress=False)
