"""`hubkit/` type-checks with mypy at 0 findings, at the strictness pyproject's [tool.mypy] states."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mypy_finds_nothing(tmp_path):
    # in a process of its own: mypy's in-memory model of torch and transformers (millions of objects) would stay
    # in this one and slow every later test's garbage collections about tenfold
    done = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache"),
                           "--no-error-summary"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
