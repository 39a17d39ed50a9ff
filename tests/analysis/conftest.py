"""The study's released results, imported once, and their default analysis, shared by the analysis tests."""

from __future__ import annotations

from pathlib import Path

import pytest

STUDY_CSV = Path(__file__).resolve().parents[3] / "shared" / "data" / "massive_sft_results" / "evaluation_result.csv"


@pytest.fixture(scope="session")
def study():
    from hubkit.importers import import_massive_sft_csv

    return import_massive_sft_csv(STUDY_CSV).frame


@pytest.fixture(scope="session")
def result(study, tmp_path_factory):
    from hubkit.analysis.study import analyze

    return analyze(study, tmp_path_factory.mktemp("analysis"))
