"""Reading results and tables for analysis, and publishing an analysis to a results dataset."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import HubkitError
from ..utils import first_line

if TYPE_CHECKING:
    import pandas as pd

    from .report import Analysis


def load_results_table(source: str) -> pd.DataFrame:
    """Results rows from the study's CSV, a results parquet, or a results dataset on the Hub.

    Raises:
        HubkitError: nothing readable under that name.
    """
    import pandas as pd

    path = Path(source)
    if path.suffix == ".csv":
        from ..importers import import_massive_sft_csv

        return import_massive_sft_csv(path).frame
    if path.suffix == ".parquet" and path.is_file():
        return pd.read_parquet(path)
    if path.exists():
        raise HubkitError(f"{source}: expected the study's CSV or a results parquet")
    from ..publish import load_results

    return load_results(source)


def read_table(path: str | Path) -> pd.DataFrame:
    """A parquet or CSV table.

    Raises:
        HubkitError: missing or unreadable.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise HubkitError(f"table not found: {path}")
    try:
        return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    except Exception as e:  # pyarrow and pandas raise several types for a malformed file
        raise HubkitError(f"{path.name}: not a readable table: {first_line(e)}") from None


def push_analysis(result: Analysis, repo_id: str, folder: str | Path, api=None) -> str:
    """Upload the analysis (tables, figures, `index.json`, `report.md`) to a results dataset's `analysis/`.

    The leaderboard reads `analysis/index.json` and its figures for the Plots tab, and
    `analysis/perplexity.parquet` (base_model, dataset, perplexity) and `analysis/layerdiff.parquet`
    (run_id, depth, rel_change) for its gain scatters. The previous analysis is replaced, not merged.
    """
    import shutil
    import tempfile

    from ..hub import get_api, hub_errors, push_folder, retrying

    api = api or get_api()
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "analysis"
        target.mkdir()
        for path in Path(folder).iterdir():
            if path.suffix in (".parquet", ".png", ".md", ".json"):
                shutil.copy2(path, target / path.name)
        for name, table in result.inputs.items():
            table.to_parquet(target / f"{name}.parquet", index=False)
        with hub_errors(f"cannot push the analysis to {repo_id}", endpoint=api.endpoint):
            return retrying(push_folder, repo_id, tmp, repo_type="dataset", commit_message="Add analysis tables",
                            delete_patterns=["analysis/*"], api=api).commit
