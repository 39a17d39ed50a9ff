"""`hubkit/` type-checks with mypy at 0 findings, at the strictness pyproject's [tool.mypy] states."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mypy_finds_nothing(tmp_path, monkeypatch):
    from mypy import api

    monkeypatch.chdir(REPO)  # [tool.mypy] in pyproject.toml names the files and the settings
    out, err, status = api.run(["--cache-dir", str(tmp_path / "mypy-cache"), "--no-error-summary"])
    assert status == 0, out[-6000:] + err[-2000:]
