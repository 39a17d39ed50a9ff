"""The leaderboard's data side: load a hubkit results dataset, then filter, compare, plot and export it.

Self-contained (pandas, huggingface_hub, matplotlib), so that the Space runs without hubkit installed.
The results schema is hubkit's (one row per model × benchmark, with the sweep axes); benchmark groups and
titles come from `benchmarks.json` beside this file, written from `hubkit.results.BENCHMARKS`.

Analysis tables, when the results dataset has them, add two plots:

| file | columns |
| --- | --- |
| `analysis/perplexity.parquet` | `base_model`, `dataset`, `perplexity` (the training data under its base model) |
| `analysis/layerdiff.parquet` | `run_id`, `depth` (normalised layer depth, 0–1), `rel_change` (‖ΔW‖/‖W‖) |
| `analysis/index.json` | the analyses of `hubkit analyze`: title, condition, n, what was left out, figures (`*.png` beside it) |

Example:
    >>> board = Board(load_results("my-org/massive-sft-results"))
    >>> board.view(filters={"tuning": ["lora"]}, groups=["math"]).shape
    (440, 12)
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent
AXES = ["base_model", "dataset", "data_size", "tuning", "epochs", "lr_schedule"]
AXIS_TITLES = {"base_model": "base model", "dataset": "training data", "data_size": "data size",
               "tuning": "full/LoRA", "epochs": "epochs", "lr_schedule": "schedule"}
CONSOLIDATED = "data/results.parquet"
ANALYSIS = {"perplexity": "analysis/perplexity.parquet", "layerdiff": "analysis/layerdiff.parquet"}
MID_DEPTH = (1 / 3, 2 / 3)
MAX_ROWS = 1000  # rows the table shows (best first); the count, filters and the CSV export cover all
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
BENCHMARKS: dict[str, dict[str, str]] = json.loads((HERE / "benchmarks.json").read_text(encoding="utf-8"))
_ORDER = ["code", "math", "knowledge", "chat", "multilingual", "long-context", "instruction"]
GROUPS = sorted({b["group"] for b in BENCHMARKS.values()} | {"other"},
                key=lambda g: _ORDER.index(g) if g in _ORDER else len(_ORDER))
# The results schema's columns the leaderboard reads, with what an older table (or a card) lacks filled in.
COLUMNS = ["model_id", "has_repo", "run_id", "model_revision", *AXES, "benchmark", "n_shot", "metric", "scale",
           "higher_is_better", "score", "base_score", "gain", "n_samples", "n_total", "subset", "harness",
           "harness_version", "source", "source_file", "evaluated_at"]
SCALE_TITLES = {"percent": "percent (0–100)", "1-10": "grade 1–10 (LLM judge)", "raw": "raw (e.g. perplexity)"}


def complete(long: pd.DataFrame) -> pd.DataFrame:
    """Every column of `COLUMNS`: a table written before `scale`/`subset` existed gets each benchmark's
    declared scale and direction, and an unknown sample count (never counted as a full-benchmark score)."""
    long = long.copy()
    for name in COLUMNS:
        if name not in long.columns:
            long[name] = None
    declared = long["benchmark"].map(lambda b: BENCHMARKS.get(b, {}))
    long["scale"] = long["scale"].where(long["scale"].notna(), declared.map(lambda b: b.get("scale", "percent")))
    long["higher_is_better"] = long["higher_is_better"].where(
        long["higher_is_better"].notna(), declared.map(lambda b: b.get("higher_is_better", True))).astype(bool)
    long["subset"] = long["subset"].astype("boolean")
    for name in ("n_samples", "n_total", "n_shot"):
        long[name] = pd.to_numeric(long[name], errors="coerce").astype("Int64")
    return long


def _group(benchmark: str) -> str:
    return BENCHMARKS.get(benchmark, {}).get("group", "other")


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
    return pd.read_parquet(path)


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
                bench = next((k for k, v in _PUBLIC_IDS.items() if v == dataset.get("type")), dataset.get("type"))
                args = dataset.get("args") or {}
                for metric in result.get("metrics") or []:
                    how = metric.get("args") or {}
                    rows.append({"model_id": info.id, "has_repo": True, "run_id": axes.get("run_id") or info.id,
                                 "base_model": card.get("base_model"), "dataset": axes.get("dataset"),
                                 "data_size": axes.get("data_size"), "tuning": axes.get("tuning"),
                                 "epochs": axes.get("epochs"), "lr_schedule": axes.get("lr_schedule"),
                                 "benchmark": bench, "n_shot": args.get("num_few_shot"), "metric": metric.get("type"),
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


def load_study_analyses(repo_id: str, endpoint: str | None = None,
                        token: str | bool | None = None) -> list[dict[str, Any]]:
    """The analyses `hubkit analyze --push` wrote (`analysis/index.json`), each with its figures downloaded.

    Each entry has `title`, `part`, `condition`, `n`, `unit`, `dropped`, `method`, `finding` and
    `figure_paths` (local files). Figure names that are not plain `*.png` names are ignored.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

    try:
        index = json.loads(Path(hf_hub_download(repo_id, ANALYSIS_INDEX, repo_type="dataset", endpoint=endpoint,
                                                token=token)).read_text(encoding="utf-8"))
    except (EntryNotFoundError, RepositoryNotFoundError, ValueError, OSError):
        return []
    entries = index.get("analyses") if isinstance(index, dict) else None
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


_PUBLIC_IDS = {name: b.get("dataset", "") for name, b in BENCHMARKS.items()}


def _as_text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA else str(value)


@dataclass
class Board:
    """A results table as the leaderboard shows it: one row per model, one column per benchmark."""

    long: pd.DataFrame
    endpoint: str = "https://huggingface.co"
    analysis: dict[str, pd.DataFrame] = field(default_factory=dict)
    analyses: list[dict[str, Any]] = field(default_factory=list)  # `load_study_analyses`

    def __post_init__(self) -> None:
        long = complete(self.long)
        shots = pd.to_numeric(long["n_shot"], errors="coerce").astype("Int64")
        long["column"] = long["benchmark"].astype(str) + ("-" + shots.astype(str) + "shot").where(shots.notna(), "")
        self.long = long
        bench_of = long.drop_duplicates("column").set_index("column")["benchmark"]
        self.column_group = {c: _group(b) for c, b in bench_of.items()}
        self.columns = sorted(bench_of.index, key=lambda c: (GROUPS.index(self.column_group[c]), c))
        order = self.columns
        meta = long.drop_duplicates("run_id").set_index("run_id")[["model_id", "has_repo", *AXES, "source"]]
        self.meta = meta
        first = long.drop_duplicates(["run_id", "column"])
        self.scores = first.pivot(index="run_id", columns="column", values="score").reindex(index=meta.index,
                                                                                            columns=order)
        self.gains = first.pivot(index="run_id", columns="column", values="gain").reindex(index=meta.index,
                                                                                         columns=order)
        # how each score was measured: a full-benchmark score (True), a subset (False) or unknown (NaN)
        full = first["subset"].map({True: 0.0, False: 1.0}).astype("float64")
        self.full = first.assign(full=full).pivot(index="run_id", columns="column", values="full").reindex(
            index=meta.index, columns=order)
        kind = first.drop_duplicates("column").set_index("column")
        self.column_scale = kind["scale"].astype(str).to_dict()
        self.averaged = [c for c in order if self.column_scale.get(c) == "percent" and bool(kind.loc[c, "higher_is_better"])]
        self._samples = self._samples_text(first, meta.index)
        self._axis_text = pd.DataFrame({a: meta[a].astype("string").fillna("").astype(object) for a in AXES},
                                       index=meta.index)
        model_ids = meta["model_id"].astype("string").fillna("").astype(object)
        search = meta.index.to_series().astype(str) + " " + model_ids
        for axis in AXES:
            search = search + " " + self._axis_text[axis]
        self._search = search.str.lower()
        # per-model text computed once: the views only pick rows
        linked = meta["has_repo"].astype(bool) & model_ids.str.fullmatch(REPO_ID.pattern.strip("^$"))
        self._repo = ("[" + model_ids + "](" + self.endpoint.rstrip("/") + "/" + model_ids + ")").where(
            linked, "no repo (imported)")
        command = pd.Series("hubkit train", index=meta.index, dtype=object)
        for axis, key in (("base_model", "model"), ("dataset", "dataset"), ("data_size", "data_size"),
                          ("tuning", "tuning"), ("epochs", "epochs"), ("lr_schedule", "lr_schedule")):
            text = self._axis_text[axis]
            quoted = text.map({v: _shell(v) for v in text.unique()})
            command = command + (" " + key + "=" + quoted).where(text != "", "")
        base = (self._axis_text["dataset"] == "pretrain") | (self._axis_text["tuning"] == "base")
        self._command = ("hf download " + model_ids + " hubkit_config.yaml && hubkit train hubkit_config.yaml") \
            .where(linked, command.where(~base, ""))

    @staticmethod
    def _samples_text(first: pd.DataFrame, index: pd.Index) -> pd.Series:
        """Per model: `full`, `subset (n=8)` (the smallest subset it was scored on), `mixed` or `unknown`."""
        subset = first["subset"].astype("boolean")
        grouped = first.assign(_sub=subset.fillna(False), _full=subset.eq(False).fillna(False),
                               _unknown=subset.isna(), _n=first["n_samples"].where(subset.fillna(False)))
        agg = grouped.groupby("run_id").agg(sub=("_sub", "sum"), full=("_full", "sum"), unknown=("_unknown", "sum"),
                                            n=("_n", "min"))
        text = pd.Series("unknown", index=agg.index, dtype=object)
        text[(agg["full"] > 0) & (agg["sub"] == 0) & (agg["unknown"] == 0)] = "full"
        has_n = agg["n"].notna()
        sub = agg["sub"] > 0
        text[sub & has_n] = "subset (n=" + agg["n"][sub & has_n].astype("Int64").astype(str) + ")"
        text[sub & ~has_n] = "subset"
        text[sub & (agg["full"] > 0)] = text[sub & (agg["full"] > 0)] + " + full"
        return text.reindex(index).fillna("unknown")

    # -- choices for the filters -------------------------------------------------------------------------

    def choices(self, axis: str) -> list[str]:
        values = [v for v in self._axis_text[axis].unique() if v]
        return sorted(values, key=lambda v: (len(v), v) if v.isdigit() else (0, v))

    # -- the table -------------------------------------------------------------------------------------------

    def select(self, search: str = "", filters: dict[str, list[str]] | None = None) -> pd.Index:
        """The run ids that match the search text (every word) and the filters (any listed value per axis)."""
        mask = pd.Series(True, index=self.meta.index)
        for axis, values in (filters or {}).items():
            if values:
                mask &= self._axis_text[axis].isin([str(v) for v in values])
        for word in (search or "").lower().split():
            mask &= self._search.str.contains(word, regex=False)
        return self.meta.index[mask.to_numpy()]

    def benchmark_columns(self, groups: list[str] | None = None) -> list[str]:
        return [c for c in self.columns if not groups or self.column_group[c] in groups]

    def view(self, search: str = "", filters: dict[str, list[str]] | None = None, groups: list[str] | None = None,
             value: str = "score", full_only: bool = True) -> pd.DataFrame:
        """The visible table: identity, axes, average and benchmark columns (scores or gains), best first.

        The average (what the table is ranked by) takes only percent-scale, higher-is-better benchmarks (never
        MT-Bench's 1–10 grades or a perplexity), and, with `full_only` (the default), only scores measured on
        the whole benchmark: a score on a subset, or one whose sample count is unknown, is shown but not
        averaged. `benchmarks averaged` says how many scores each average rests on; `samples` says how the
        model's scores were measured.
        """
        ids = self.select(search, filters)
        cols = self.benchmark_columns(groups)
        numbers = (self.gains if value == "gain" else self.scores).loc[ids, cols]
        out = pd.DataFrame({"model": ids.astype(str)}, index=ids)
        out["repo"] = self._repo.loc[ids]
        for axis in AXES:
            out[AXIS_TITLES[axis]] = self._axis_text.loc[ids, axis]
        averaged = numbers[[c for c in cols if c in self.averaged]]
        if full_only:
            averaged = averaged.where(self.full.loc[ids, averaged.columns] == 1.0)
        out["average"] = averaged.mean(axis=1, skipna=True).round(2)
        out["benchmarks averaged"] = averaged.notna().sum(axis=1).astype(int)
        out["samples"] = self._samples.loc[ids]
        out = pd.concat([out, numbers.round(2)], axis=1)
        out["reproduce"] = self._command.loc[ids]
        return out.sort_values("average", ascending=False, na_position="last").reset_index(drop=True)

    def command(self, run_id: str) -> str:
        """The command that reproduces a model: its published config, or the run spec from its axes."""
        return str(self._command.loc[run_id])

    # -- compare, plots, export ---------------------------------------------------------------------------------

    def compare(self, run_ids: list[str], value: str = "score") -> pd.DataFrame:
        """Benchmarks × selected models, with each model's difference from the first one."""
        ids = [r for r in run_ids if r in self.meta.index]
        if not ids:
            return pd.DataFrame(columns=["benchmark"])
        table = (self.gains if value == "gain" else self.scores).loc[ids].T
        table = table.dropna(how="all")
        out = pd.DataFrame({"benchmark": table.index})
        for r in ids:
            out[r] = table[r].round(2).to_numpy()
        for r in ids[1:]:
            out[f"Δ {r}"] = (table[r] - table[ids[0]]).round(2).to_numpy()
        return out

    def synergy(self, base_model: str, scale: str | None = None) -> pd.DataFrame:
        """Mean gain per training dataset × benchmark for one base model (the study's synergy matrix), over the
        benchmarks of one metric scale if `scale` is given."""
        rows = self.long[(self.long["base_model"].map(_as_text) == base_model) & self.long["gain"].notna()
                         & (self.long["dataset"] != "pretrain")]
        if scale is not None:
            rows = rows[rows["scale"] == scale]
        return rows.pivot_table(index="dataset", columns="column", values="gain", aggfunc="mean") \
            .reindex(columns=[c for c in self.columns if c in set(rows["column"])])

    def heatmap(self, base_model: str):
        """The synergy matrix as a figure: one panel and colour bar per metric scale (points apart from
        MT-Bench's 1–10 grades), diverging colours centred on 0."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        panels = [(scale, m) for scale in ("percent", "1-10", "raw")
                  if not (m := self.synergy(base_model, scale)).empty]
        if not panels:
            fig, ax = plt.subplots(figsize=(6, 3))
            ax.text(0.5, 0.5, "no gains for this base model", ha="center", va="center")
            ax.axis("off")
            return fig
        widths = [max(2.0, 0.5 * len(m.columns)) for _, m in panels]
        height = max(3, 0.4 * max(len(m) for _, m in panels) + 1.5)
        fig, axes = plt.subplots(1, len(panels), figsize=(sum(widths) + 3 * len(panels), height), squeeze=False,
                                 gridspec_kw={"width_ratios": widths})
        for ax, (scale, matrix) in zip(axes[0], panels):
            bound = float(matrix.abs().max().max()) or 1.0
            image = ax.imshow(matrix.to_numpy(dtype=float), cmap="RdBu", vmin=-bound, vmax=bound, aspect="auto")
            ax.set_xticks(range(len(matrix.columns)), list(matrix.columns), rotation=60, ha="right", fontsize=8)
            ax.set_yticks(range(len(matrix.index)), list(matrix.index), fontsize=8)
            unit = {"percent": "points", "1-10": "grade points, 1–10 scale"}.get(scale, scale)
            ax.set_title(f"mean gain over {base_model} ({unit})", fontsize=10)
            fig.colorbar(image, ax=ax, shrink=0.8)
        fig.tight_layout()
        return fig

    def epoch_curves(self, base_model: str, column: str):
        """Score against epochs, one line per training dataset (full and LoRA apart)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = self.long[(self.long["base_model"].map(_as_text) == base_model) & (self.long["column"] == column)
                         & self.long["epochs"].notna()]
        fig, ax = plt.subplots(figsize=(7, 4))
        for (dataset, tuning), part in rows.groupby(["dataset", "tuning"]):
            part = part.groupby("epochs")["score"].mean().sort_index()
            ax.plot(part.index.astype(int), part.to_numpy(), marker="o", label=f"{dataset} ({tuning})")
        ax.set_xlabel("epochs")
        ax.set_ylabel(column)
        ax.set_title(f"{column} vs epochs, base {base_model}", fontsize=10)
        if len(rows):
            ax.legend(fontsize=7, ncol=2)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig

    def analysis_titles(self) -> list[str]:
        return [a["title"] for a in self.analyses]

    def analysis_view(self, title: str | None) -> tuple[list[tuple[str, str]], str]:
        """One pushed analysis as the Plots tab shows it: its figures (path, caption) and a Markdown note that
        states its condition, n, what was left out and what it found."""
        entry = next((a for a in self.analyses if a["title"] == title), None)
        if entry is None:
            return [], ""
        def text(value: Any) -> str:  # one line of plain text: the Markdown component sanitises the rest
            return str(value).replace("\n", " ").replace("|", "\\|")

        lines = [f"**{text(entry['title'])}** ({text(entry.get('part', ''))})", "",
                 f"- *Condition:* {text(entry.get('condition', 'not stated'))}; *n* = {text(entry.get('n', '?'))} "
                 f"{text(entry.get('unit', ''))}"]
        if entry.get("compared"):
            lines.append(f"- *Compared:* {text(entry['compared'])}, pairing runs equal on every other axis")
        elif entry.get("pooled"):
            lines.append(f"- *Pooled over:* {text(', '.join(map(str, entry['pooled'])))}")
        lines += [f"- *Left out:* {text(d)}" for d in entry.get("dropped") or []]
        if entry.get("method"):
            lines.append(f"- *Method:* {text(entry['method'])}")
        if entry.get("finding"):
            lines += ["", text(entry["finding"])]
        figures = [(p, f"{text(entry['title'])}: {Path(p).name}") for p in entry.get("figure_paths") or []]
        return figures, "\n".join(lines)

    def gain_vs_perplexity(self, column: str) -> pd.DataFrame:
        """Per (base model, training data): the mean gain on `column` and the data's perplexity under the base."""
        ppl = self.analysis.get("perplexity")
        if ppl is None:
            return pd.DataFrame(columns=["base_model", "dataset", "perplexity", "gain"])
        rows = self.long[(self.long["column"] == column) & self.long["gain"].notna()]
        gains = rows.groupby(["base_model", "dataset"], as_index=False)["gain"].mean()
        return ppl[["base_model", "dataset", "perplexity"]].merge(gains, on=["base_model", "dataset"])

    def gain_vs_layer_change(self, column: str) -> pd.DataFrame:
        """Per model: its gain on `column` and its mean relative weight change in the middle layers."""
        diff = self.analysis.get("layerdiff")
        if diff is None:
            return pd.DataFrame(columns=["run_id", "rel_change", "gain"])
        mid = diff[(diff["depth"] >= MID_DEPTH[0]) & (diff["depth"] <= MID_DEPTH[1])]
        change = mid.groupby("run_id", as_index=False)["rel_change"].mean()
        gains = self.long[(self.long["column"] == column) & self.long["gain"].notna()][["run_id", "gain"]]
        return change.merge(gains.drop_duplicates("run_id"), on="run_id")

    def scatter(self, table: pd.DataFrame, x: str, title: str):
        """A gain-vs-`x` scatter with its Pearson correlation."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        ax.scatter(table[x], table["gain"], s=14, alpha=0.7)
        r = table[x].corr(table["gain"]) if len(table) > 2 else float("nan")
        ax.set_xlabel(x)
        ax.set_ylabel("gain (points)")
        ax.set_title(f"{title} (n={len(table)}, r={r:.2f})", fontsize=10)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig

    def export(self, table: pd.DataFrame) -> str:
        """The table as a CSV file (what the export button serves); returns its path."""
        folder = Path(tempfile.mkdtemp(prefix="leaderboard-"))
        path = folder / "leaderboard.csv"
        table.to_csv(path, index=False)
        return str(path)


def _shell(value: str) -> str:
    return value if re.fullmatch(r"[A-Za-z0-9_./:=+-]+", value) else "'" + value.replace("'", "'\\''") + "'"


def settings() -> dict[str, str]:
    """Where the app reads its results: `HUBKIT_RESULTS_REPO`, else `settings.json` beside the app."""
    out: dict[str, str] = {}
    path = HERE / "settings.json"
    if path.is_file():
        out.update(json.loads(path.read_text(encoding="utf-8")))
    if os.environ.get("HUBKIT_RESULTS_REPO"):
        out["results_repo"] = os.environ["HUBKIT_RESULTS_REPO"]
    return out
