"""Reading a results dataset from the Hub: the consolidated table (or the model cards), the analysis tables and
figures, and the data checks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from .schema import (
    _PUBLIC_IDS,
    ANALYSIS,
    BENCHMARKS,
    COLUMNS,
    CONSOLIDATED,
    TEXT,
    complete,
)


def load_results(repo_id: str, endpoint: str | None = None, token: str | bool | None = None) -> pd.DataFrame:
    """The consolidated results of a results dataset; rebuilt from model cards when the file is missing.

    Args:
        repo_id: the results dataset (`NS/NAME`).
        endpoint: the Hub (default: `HF_ENDPOINT`, else huggingface.co).
        token: a token for private repos (default: the client's).
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

    try:
        path = hf_hub_download(repo_id, CONSOLIDATED, repo_type="dataset", endpoint=endpoint, token=token)
    except (EntryNotFoundError, RepositoryNotFoundError):
        return rows_from_cards(repo_id.split("/")[0], endpoint=endpoint, token=token)
    return read_table(path)


def read_table(path: str | Path) -> pd.DataFrame:
    """A results parquet file, only the columns the leaderboard reads, text dictionary-encoded as it is read
    (categoricals: a fraction of the memory of Python strings)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    present = set(pq.read_schema(path).names)
    table = pq.read_table(path, columns=[c for c in COLUMNS if c in present],
                          read_dictionary=[c for c in TEXT if c in present])
    frame = table.to_pandas(self_destruct=True, split_blocks=True)  # Arrow's buffers freed as they convert
    del table
    pa.default_memory_pool().release_unused()
    return frame


def rows_from_cards(author: str, endpoint: str | None = None, token: str | bool | None = None) -> pd.DataFrame:
    """Results rows rebuilt from the model cards of an author's hubkit models (their `model-index`)."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=token)
    rows = []
    for info in api.list_models(author=author, filter="hubkit-sft", cardData=True):
        card = info.card_data.to_dict() if info.card_data else {}
        axes = card.get("hubkit") or {}
        for entry in card.get("model-index") or []:
            for result in entry.get("results") or []:
                dataset = result.get("dataset") or {}
                # benchmarks that share a public dataset (MT-Bench's categories, AlpacaEval's two) name themselves
                # in the config
                bench = dataset.get("config") if dataset.get("config") in BENCHMARKS else \
                    next((k for k, v in _PUBLIC_IDS.items() if v == dataset.get("type")), dataset.get("type"))
                args = dataset.get("args") or {}
                for metric in result.get("metrics") or []:
                    how = metric.get("args") or {}
                    rows.append({"model_id": info.id, "has_repo": True, "run_id": axes.get("run_id") or info.id,
                                 "base_model": card.get("base_model"), "dataset": axes.get("dataset"),
                                 "data_size": axes.get("data_size"), "tuning": axes.get("tuning"),
                                 "epochs": axes.get("epochs"), "lr_schedule": axes.get("lr_schedule"),
                                 "benchmark": bench, "n_shot": args.get("num_few_shot"), "metric": metric.get("type"),
                                 "headline": how.get("headline"), "model_revision": how.get("model_revision"),
                                 "harness": how.get("harness"), "harness_version": how.get("harness_version"),
                                 "scale": how.get("scale"), "higher_is_better": how.get("higher_is_better"),
                                 "score": metric.get("value"), "base_score": None, "gain": None,
                                 "n_samples": args.get("n_samples"), "n_total": args.get("n_total"),
                                 "subset": args.get("subset"), "source": "model card", "evaluated_at": None})
    return complete(pd.DataFrame(rows))


def load_analysis(repo_id: str, endpoint: str | None = None, token: str | bool | None = None) -> dict[str, pd.DataFrame]:
    """The analysis tables a results dataset holds (`ANALYSIS`); absent ones are left out."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

    out = {}
    for name, path in ANALYSIS.items():
        try:
            out[name] = pd.read_parquet(hf_hub_download(repo_id, path, repo_type="dataset", endpoint=endpoint,
                                                        token=token))
        except (EntryNotFoundError, RepositoryNotFoundError):
            continue
    return out


ANALYSIS_INDEX = "analysis/index.json"
_FIGURE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}\.png$")


def _analysis_index(repo_id: str, endpoint: str | None, token: str | bool | None) -> dict[str, Any]:
    """`analysis/index.json` of a results dataset (an empty mapping when there is none or it is not JSON)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

    try:
        index = json.loads(Path(hf_hub_download(repo_id, ANALYSIS_INDEX, repo_type="dataset", endpoint=endpoint,
                                                token=token)).read_text(encoding="utf-8"))
    except (EntryNotFoundError, RepositoryNotFoundError, ValueError, OSError):
        return {}
    return index if isinstance(index, dict) else {}


def load_study_analyses(repo_id: str, endpoint: str | None = None,
                        token: str | bool | None = None) -> list[dict[str, Any]]:
    """The analyses `hubkit analyze --push` wrote (`analysis/index.json`), each with its figures downloaded.

    Each entry has `title`, `part`, `condition`, `n`, `unit`, `dropped`, `method`, `finding` and
    `figure_paths` (local files). Figure names that are not plain `*.png` names are ignored.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    index = _analysis_index(repo_id, endpoint, token)
    entries = index.get("analyses")
    out = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("title"), str):
            continue
        paths = []
        for name in entry.get("figures") or []:
            if isinstance(name, str) and _FIGURE.match(name):
                try:
                    paths.append(hf_hub_download(repo_id, f"analysis/{name}", repo_type="dataset", endpoint=endpoint,
                                                 token=token))
                except EntryNotFoundError:
                    continue
        out.append({**entry, "figure_paths": paths})
    return out


_CHECK_FIELDS = ("check", "subject", "detail", "excluded")


def load_data_checks(repo_id: str, endpoint: str | None = None, token: str | bool | None = None) -> list[dict[str, Any]]:
    """What the data checks of `hubkit analyze` found in these results (`checks` in `analysis/index.json`): identical
    base rows, runs without a base row, out-of-range cells, each with `check`, `subject`, `detail`, `excluded` and
    the score `columns` concerned. Entries that are not of that shape are ignored."""
    checks = _analysis_index(repo_id, endpoint, token).get("checks")
    out = []
    for entry in checks if isinstance(checks, list) else []:
        if isinstance(entry, dict) and all(isinstance(entry.get(k), str) for k in _CHECK_FIELDS):
            columns = entry.get("columns")
            out.append({**{k: entry[k] for k in _CHECK_FIELDS},
                        "columns": [c for c in columns if isinstance(c, str)] if isinstance(columns, list) else []})
    return out
