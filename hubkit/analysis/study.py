"""`hubkit analyze`: the study's analyses, condition by condition, over a results table.

Every analysis runs on an explicit `Condition` (see `conditions.py`): by default the study's main grid —
1,000 examples, cosine schedule, epoch 10, full-parameter, the single training sets, full-benchmark scores.
Comparisons free the axis they compare along and pair runs that agree on every other axis; their intervals
come from a bootstrap over training runs. Each table, plot and paragraph of `report.md` states its
condition, how many observations it rests on and what was left out for missing values. The report follows
the paper's order:

- **RQ1** training data × benchmark synergy (per base model, sign agreement across models), per-model
  dataset rankings, correlation of gain patterns between benchmarks and between models, PCA of the patterns;
- **RQ2** gains vs training-data properties (perplexity under the base model, length, similarity);
- **RQ3** weight change by normalised depth vs gain;
- **training factors** LoRA vs full, 1k vs 20k examples, epochs, leave-one-out sets;
- **cross-lingual transfer** MMLU vs JMMLU vs CMMLU by the base model's language.

Base-model **format failures** — a base scoring near 0 on a few-shot benchmark (BoolQ 5-shot bases score
0–2: they do not answer in the expected format, so any fine-tune "gains" 60 points) — are flagged and kept
out of synergy rankings and cross-benchmark means unless `include_format_failures` is set. A cross-benchmark
mean counts each benchmark once, at one shot count (the study scored NQ-open at four).

Outputs: a parquet per table (each with its `condition`), PNG figures, `index.json` (each analysis: title,
condition, n, what was dropped, its tables and figures) and `report.md`, in one folder; `push_analysis`
uploads them to a results dataset's `analysis/`, where the leaderboard's Plots tab shows them.

Example:
    >>> report = analyze(load_results_table("evaluation_result.csv"), output_dir="analysis")
    >>> report.tables["lora_vs_full"].head()
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import HubkitError
from ..utils import did_you_mean, first_line
from . import figures
from .cells import averaged_cells, complete_patterns, failure_note, gain_cells, kept_columns, mean_gain
from .conditions import (
    ANY,
    DATASET_KINDS,
    LINEAGE,
    MAIN_GRID,
    MATCH,
    Condition,
    dataset_kind,
    lineage_keys,
    paired,
    split_names,
    summarize_pairs,
)
from .stats import BOOTSTRAP, MIN_CLUSTERS, adjust, bootstrap_corr, cluster_bootstrap_mean, rowwise_pearson, significant

if TYPE_CHECKING:
    import pandas as pd

CROSS_LINGUAL = ("mmlu", "jmmlu", "cmmlu")
_SCALE_ORDER = {"percent": 0, "1-10": 1, "raw": 2}
NOT_PROPERTIES = {"documents", "tokens", "bytes", "seconds", "nll"}  # counts a perplexity table carries beside it

# Each analysis's own default condition; `where` overrides apply to all of them, and each then frees the
# axis it compares along.
DEFAULTS: dict[str, Condition] = {
    "synergy": MAIN_GRID, "dataset_ranking": MAIN_GRID, "gain_correlation": MAIN_GRID, "pca": MAIN_GRID,
    "data_properties": MAIN_GRID, "layer_correlation": MAIN_GRID, "lora_vs_full": MAIN_GRID,
    # 20,000-example runs exist with a constant schedule, full-parameter, at every epoch (paired epoch by epoch)
    "data_size": Condition(data_size=None, lr_schedule="constant", epochs=None),
    # the epoch series: 1,000 examples, constant schedule, full-parameter, epochs 1–10
    "epochs": Condition(lr_schedule="constant", epochs=None),
    "leave_one_out": Condition(data_size=None, datasets=ANY),
    "cross_lingual": MAIN_GRID,
}
TITLES = {  # name → (title, part of the report, unit of n)
    "synergy": ("Training data × benchmark synergy", "RQ1", "runs"),
    "dataset_ranking": ("Best, second and worst training data per base model", "RQ1", "runs"),
    "gain_correlation": ("Correlation of gain patterns between benchmarks and between models", "RQ1", "runs"),
    "pca": ("Principal components of gain patterns", "RQ1", "runs"),
    "data_properties": ("Gains vs training-data properties", "RQ2", "base model × training data pairs"),
    "layer_correlation": ("Weight change by depth vs gain", "RQ3", "runs"),
    "lora_vs_full": ("LoRA vs full-parameter tuning", "training factors", "paired training runs"),
    "data_size": ("Larger vs smaller training sets", "training factors", "paired training runs"),
    "epochs": ("Gain by epoch", "training factors", "training runs"),
    "leave_one_out": ("Leave one training set out", "training factors", "leave-one-out runs"),
    "cross_lingual": ("Cross-lingual transfer: MMLU vs JMMLU vs CMMLU", "cross-lingual", "runs"),
}
EVERY_RUN = Condition(data_size=None, lr_schedule=None, epochs=None, tuning=None, datasets=ANY, samples=ANY)
CONTRAST = {"lora_vs_full": "tuning", "data_size": "data_size", "epochs": "epochs", "leave_one_out": "dataset"}


@dataclass
class Section:
    """One analysis as the report, the index and the leaderboard present it."""

    name: str
    title: str
    part: str
    condition: Condition
    n: int
    unit: str
    dropped: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    finding: str = ""
    compared: str = ""  # the axis a paired comparison runs along
    method: str = ""  # how the numbers were made, when the condition alone does not say
    lines: list[str] = field(default_factory=list)  # the report's table for this section (Markdown)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "part": self.part, "condition": self.condition.text(),
                "condition_values": self.condition.to_json(), "compared": self.compared,
                "pooled": self.pooled(), "n": self.n,
                "unit": self.unit, "dropped": self.dropped, "method": self.method, "finding": self.finding,
                "tables": [f"{t}.parquet" for t in self.tables], "figures": [p.name for p in self.figures]}

    def pooled(self) -> list[str]:
        """The open axes other than the compared one (a paired comparison matches them pair by pair)."""
        compared = self.compared.split(", ")
        return [a for a in self.condition.pooled() if a not in compared]


def _section(name: str, condition: Condition, n: int, dropped: list[str], tables: dict | None = None,
             title: str | None = None, **more: Any) -> Section:
    """A `Section` with its title, part and unit from `TITLES`."""
    default_title, part, unit = TITLES[name]
    return Section(name, title or default_title, part, condition, n, unit, dropped, tables or {}, **more)


@dataclass
class Analysis:
    """The sections, their tables (name → DataFrame), the plots written, and the report's path."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    plots: list[Path] = field(default_factory=list)
    inputs: dict[str, pd.DataFrame] = field(default_factory=dict)  # the joined inputs, as the leaderboard reads them
    sections: list[Section] = field(default_factory=list)
    report: Path | None = None
    checks: list = field(default_factory=list)  # `datachecks.DataIssue`: what the data checks found and left out
    not_run: list[dict[str, str]] = field(default_factory=list)  # the paper's analyses these inputs could not run


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


def _md(value: Any) -> str:
    """A value safe inside a Markdown table cell: escaped HTML, no pipes, no line breaks."""
    return html.escape(str(value), quote=False).replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def _ci(low: float, high: float, digits: int = 2) -> str:
    return "—" if np.isnan(low) else f"[{low:+.{digits}f}, {high:+.{digits}f}]"


def _p(p: float) -> str:
    return "—" if np.isnan(p) else f"{p:.3f}" if p >= 0.001 else "<0.001"


def _sure(sure: pd.DataFrame, total: int, what: str) -> str:
    """How many of `total` rows hold after the correction (`stats.significant`)."""
    return (f"{len(sure)} of {total} {what} have a 95 % interval excluding 0 and a Holm-adjusted p under 0.05"
            + (" (none is claimed as a finding)." if sure.empty else "."))


# What each kind of interval resamples (the unit that varies for the question asked), as the report states it.
_RESAMPLED = {
    "runs": (f"95 % intervals and p-values from a cluster bootstrap over training runs ({BOOTSTRAP} resamples; a run's "
             "epochs are one cluster); beside them, the interval over base models (does it hold for other bases?). "
             "p-values are two-sided and Holm-adjusted within this analysis (BH q-values in the table)."),
    "pairs": (f"95 % intervals and p-values from a bootstrap over (base model, training data) pairs ({BOOTSTRAP} "
              "resamples); two-sided p-values, Holm-adjusted within this analysis (BH q-values in the table)."),
    "runs-corr": (f"95 % intervals and p-values from a bootstrap over training runs ({BOOTSTRAP} resamples); two-sided "
                  "p-values, Holm-adjusted per method within this analysis (BH q-values in the table)."),
    "bases": (f"95 % intervals and p-values from a cluster bootstrap over base models ({BOOTSTRAP} resamples): the "
              "claim is about base models of a language, so a resample draws base models with all their runs. "
              f"With fewer than {MIN_CLUSTERS} base models in a language there is no interval and no p-value (the "
              "mean is descriptive). Two-sided p-values, Holm-adjusted within this analysis (BH q-values in the "
              "table)."),
}


# -- RQ1 -------------------------------------------------------------------------------------------------

def synergy(cells: pd.DataFrame, condition: Condition = MAIN_GRID, include_failures: bool = False,
            out: Path | None = None) -> Section:
    """Per base model, the gain per training dataset × benchmark; per cell, the sign agreement across models."""
    grid = cells.groupby(["base_model", "dataset", "column", "scale"], as_index=False).agg(
        gain=("gain", "mean"), runs=("run_id", "nunique"), format_failure=("format_failure", "any"))
    use = grid if include_failures else grid[~grid["format_failure"]]
    signs = use.assign(positive=use["gain"] > 0)
    agree = signs.groupby(["dataset", "column", "scale"]).agg(
        bases=("gain", "size"), positive=("positive", "sum"), mean_gain=("gain", "mean")).reset_index()
    agree["agreement"] = np.maximum(agree["positive"], agree["bases"] - agree["positive"]) / agree["bases"]
    failures = cells[cells["format_failure"]].drop_duplicates(["base_model", "column"])[
        ["base_model", "column", "base_score"]]
    section = _section("synergy", condition, int(cells["run_id"].nunique()), failure_note(cells, include_failures),
                      {"synergy": grid, "agreement": agree, "format_failures": failures})
    if pooled := condition.pooled():
        section.dropped.append(f"each cell averages over {', '.join(pooled)} (pooled by the condition)")
    top = agree[(agree["bases"] >= 2) & (agree["scale"] == "percent")].sort_values(
        ["agreement", "mean_gain"], ascending=False).head(10)
    section.lines = ["| training data | benchmark | bases | agreement | mean gain |", "| --- | --- | --- | --- | --- |"]
    section.lines += [f"| {_md(r.dataset)} | {_md(r.column)} | {r.bases} | {r.agreement:.0%} | {r.mean_gain:+.2f} |"
                      for r in top.itertuples()]
    if not top.empty:
        best = agree[(agree["bases"] >= 2) & (agree["scale"] == "percent")].sort_values("mean_gain").iloc[-1]
        section.finding = (f"The largest mean gain on a percent-scale benchmark is {_md(best['dataset'])} on "
                           f"{_md(best['column'])} ({best['mean_gain']:+.1f} points, {best['positive']} of "
                           f"{best['bases']} base models gain).")
    if out is not None:
        for scale, part in sorted(grid.groupby("scale"), key=lambda kv: _SCALE_ORDER.get(kv[0], 9)):
            panels = [(base, m.pivot(index="dataset", columns="column", values="gain"))
                      for base, m in part.groupby("base_model")]
            if not include_failures:
                panels = [(b, m.mask(_failure_mask(m, part[part["base_model"] == b]))) for b, m in panels]
            name = "synergy.png" if scale == "percent" else f"synergy-{scale}.png"
            path = figures.heatmap_panels(
                panels, out / name, f"gain ({figures.UNITS.get(scale, scale)})",
                f"Gain over the base model per training data (rows) and benchmark (columns), {scale} scale. "
                f"Condition: {condition.text()}; n = {section.n} runs. Grey: not scored"
                + ("" if include_failures else " or a base-model format failure") + ".")
            if path:
                section.figures.append(path)
    return section


def _failure_mask(matrix: pd.DataFrame, part: pd.DataFrame):
    failed = set(part[part["format_failure"]]["column"])
    return matrix.apply(lambda col: col.map(lambda _: col.name in failed))


def dataset_ranking(cells: pd.DataFrame, condition: Condition = MAIN_GRID,
                    include_failures: bool = False, out: Path | None = None) -> Section:
    """Per base model, the training datasets ranked by mean gain (over that model's common benchmarks)."""
    import pandas as pd

    runs, notes = mean_gain(cells, within=["base_model"], include_failures=include_failures)
    per = runs.groupby(["base_model", "dataset"], as_index=False).agg(mean_gain=("mean_gain", "mean"),
                                                                      benchmarks=("benchmarks", "first"))
    per["rank"] = per.groupby("base_model")["mean_gain"].rank(ascending=False, method="first").astype(int)
    rows = []
    for base, part in per.sort_values("rank").groupby("base_model"):
        order = part.sort_values("rank")
        rows.append({"base_model": base, "datasets": len(order), "benchmarks": int(order["benchmarks"].iloc[0]),
                     "best": order["dataset"].iloc[0], "best_gain": order["mean_gain"].iloc[0],
                     "second": order["dataset"].iloc[1] if len(order) > 1 else None,
                     "second_gain": order["mean_gain"].iloc[1] if len(order) > 1 else np.nan,
                     "worst": order["dataset"].iloc[-1], "worst_gain": order["mean_gain"].iloc[-1]})
    ranking = pd.DataFrame(rows, columns=["base_model", "datasets", "benchmarks", "best", "best_gain", "second",
                                          "second_gain", "worst", "worst_gain"])
    section = _section("dataset_ranking", condition, len(runs), notes + failure_note(cells, include_failures),
                      {"dataset_gains": per, "dataset_ranking": ranking})
    section.lines = ["| base model | best | 2nd | worst | benchmarks |", "| --- | --- | --- | --- | --- |"]
    section.lines += [f"| {_md(r.base_model)} | {_md(r.best)} ({r.best_gain:+.1f}) | {_md(r.second)} "
                      f"({r.second_gain:+.1f}) | {_md(r.worst)} ({r.worst_gain:+.1f}) | {r.benchmarks} |"
                      for r in ranking.itertuples()]
    if not ranking.empty:
        top = ranking["best"].value_counts()
        section.finding = (f"{_md(top.index[0])} is the best training data for {top.iloc[0]} of {len(ranking)} base "
                           f"models; the worst is most often {_md(ranking['worst'].value_counts().index[0])}.")
    if out is not None and (path := figures.ranked_heatmap(
            per.pivot(index="base_model", columns="dataset", values="mean_gain"),
            per.pivot(index="base_model", columns="dataset", values="rank"), out / "dataset_ranking.png",
            "mean gain (points)", "Mean gain per base model and training data (numbers: rank within the model)",
            f"Mean over each base model's common percent-scale benchmarks. Condition: {condition.text()}; "
            f"n = {len(runs)} runs.")):
        section.figures.append(path)
    return section


def _pairwise(wide: pd.DataFrame, a: str, b: str, min_periods: int = 3) -> pd.DataFrame:
    """Pearson `r` and Spearman `rho` of every pair of `wide`'s columns over the rows both have (long form)."""
    import pandas as pd
    from scipy.stats import rankdata

    out = []
    values = wide.to_numpy(float)
    for i, ci in enumerate(wide.columns):
        for j, cj in enumerate(wide.columns):
            both = ~(np.isnan(values[:, i]) | np.isnan(values[:, j]))
            x, y = values[both, i], values[both, j]
            enough = both.sum() >= min_periods
            out.append({a: ci, b: cj, "n": int(both.sum()), "r": float(rowwise_pearson(x, y)) if enough else np.nan,
                        "rho": float(rowwise_pearson(rankdata(x), rankdata(y))) if enough else np.nan})
    return pd.DataFrame(out, columns=[a, b, "n", "r", "rho"])


def gain_correlation(cells: pd.DataFrame, condition: Condition = MAIN_GRID, include_failures: bool = False,
                     out: Path | None = None) -> Section:
    """Correlation of gain patterns: benchmark × benchmark (across runs; each shot count its own column) and
    model × model (across training data × benchmark cells, percent scale, each benchmark at one shot count)."""
    use = cells if include_failures else cells[~cells["format_failure"]]
    by_run = use.pivot_table(index="run_id", columns="column", values="gain", aggfunc="mean")
    bench = _pairwise(by_run, "column_a", "column_b")
    percent, once = averaged_cells(cells, include_failures)
    by_model = percent.pivot_table(index=["dataset", "column"], columns="base_model", values="gain", aggfunc="mean")
    models = _pairwise(by_model, "model_a", "model_b")
    section = _section("gain_correlation", condition, int(by_run.shape[0]),
                       [f"between models: {n}" for n in once] + failure_note(cells, include_failures),
                       {"benchmark_correlation": bench, "model_correlation": models})
    section.method = ("Pearson r and Spearman rho; each pair of benchmarks (or models) over the runs (cells) that have "
                      "both: n per pair in the table. Descriptive: no interval, no finding of significance.")
    off = models[models["model_a"] != models["model_b"]]
    # the most similar pair of different benchmarks: two shot counts of one benchmark, MT-Bench and one of its
    # categories, AlpacaEval and its length-controlled variant are alike by construction
    benchmark = use.drop_duplicates("column").set_index("column")["benchmark"].astype(str).map(
        lambda b: next((f for f in ("mt_bench", "alpaca_eval") if b.startswith(f)), b))
    off_b = bench[(bench["column_a"] < bench["column_b"]).to_numpy(bool)
                  & (bench["column_a"].map(benchmark) != bench["column_b"].map(benchmark)).to_numpy(bool)]
    off_b = off_b.dropna(subset=["r"])
    if not off.empty and not off_b.empty:
        strongest = off_b.sort_values("r").iloc[-1]
        section.finding = (f"Across base models the gain patterns correlate with a median r = {off['r'].median():.2f} "
                           f"(Spearman {off['rho'].median():.2f}); the most similar benchmarks are "
                           f"{_md(strongest['column_a'])} and {_md(strongest['column_b'])} (r = {strongest['r']:.2f}, "
                           f"rho = {strongest['rho']:.2f}, n = {strongest['n']}).")
        section.lines = ["| model | median r with the others | median rho |", "| --- | --- | --- |"]
        medians = off.groupby("model_a")[["r", "rho"]].median()
        section.lines += [f"| {_md(m)} | {row.r:.2f} | {row.rho:.2f} |" for m, row in medians.iterrows()]
    if out is not None:
        for name, table, a, b, title in (("benchmark_correlation", bench, "column_a", "column_b", "benchmarks"),
                                         ("model_correlation", models, "model_a", "model_b", "base models")):
            matrix = table.pivot(index=a, columns=b, values="r")
            path = figures.heatmap_panels([(f"gain-pattern correlation between {title}", matrix)],
                                          out / f"{name}.png", "Pearson r", f"Condition: {condition.text()}; "
                                          f"n = {section.n} runs; each cell over the observations both share.",
                                          bound=1.0, cols=1)
            if path:
                section.figures.append(path)
    return section


def pca(cells: pd.DataFrame, condition: Condition = MAIN_GRID, include_failures: bool = False,
        out: Path | None = None) -> Section:
    """PCA of the runs' gain patterns (percent-scale benchmarks, each at one shot count, centred): how many
    components explain them."""
    import pandas as pd

    percent, once = averaged_cells(cells, include_failures)
    wide = percent.pivot_table(index="run_id", columns="column", values="gain", aggfunc="mean")
    wide, dropped = complete_patterns(wide) if not wide.empty else (wide, [])
    section = _section("pca", condition, len(wide), once + dropped + failure_note(cells, include_failures))
    if len(wide) < 3 or wide.shape[1] < 2:
        section.finding = "Too few complete gain patterns for a PCA under this condition."
        section.tables = {"pca": pd.DataFrame(columns=["component", "explained", "cumulative"])}
        return section
    x = wide.to_numpy(float)
    x = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    explained = s ** 2 / (s ** 2).sum()
    comps = [f"PC{i + 1}" for i in range(len(s))]
    table = pd.DataFrame({"component": comps, "explained": explained, "cumulative": np.cumsum(explained)})
    loadings = pd.DataFrame(vt.T, index=wide.columns, columns=comps).reset_index()
    scores = pd.DataFrame(x @ vt.T, index=wide.index, columns=comps).reset_index()
    scores = scores.join(cells.drop_duplicates("run_id").set_index("run_id")[["base_model", "dataset"]], on="run_id")
    section.tables = {"pca": table, "pca_loadings": loadings, "pca_scores": scores[["run_id", "base_model", "dataset",
                                                                                     *comps[:3]]]}
    k90 = int(np.searchsorted(np.cumsum(explained), 0.9) + 1)
    section.finding = (f"{k90} of {len(s)} components explain 90 % of the variance of {len(wide)} gain patterns over "
                       f"{wide.shape[1]} benchmarks (PC1 alone {explained[0]:.0%}).")
    section.lines = ["| component | explained | cumulative |", "| --- | --- | --- |"]
    section.lines += [f"| {r.component} | {r.explained:.1%} | {r.cumulative:.1%} |" for r in table.head(8).itertuples()]
    if out is not None and (path := figures.pca_figure(table.head(12), scores, out / "pca.png",
                                                       f"PCA of centred gain patterns ({wide.shape[1]} percent-scale "
                                                       f"benchmarks). Condition: {condition.text()}; n = {len(wide)} runs.")):
        section.figures.append(path)
    return section


# -- RQ2 and RQ3 -----------------------------------------------------------------------------------------

def data_properties(cells: pd.DataFrame, properties: pd.DataFrame, condition: Condition = MAIN_GRID,
                    include_failures: bool = False, out: Path | None = None) -> Section:
    """Per benchmark column and property: Pearson and Spearman of gains vs the property, with bootstrap CIs.

    `properties` is keyed by `dataset` plus `base_model` (perplexity under each base) and/or `benchmark`
    (similarity of the data to each benchmark); gains are averaged over the rows that share those keys.
    """
    import pandas as pd

    keys = [k for k in ("base_model", "dataset", "benchmark") if k in properties.columns]
    use = cells if include_failures else cells[~cells["format_failure"]]
    gains = use.groupby(["base_model", "dataset", "benchmark", "column"], as_index=False)["gain"].mean()
    numeric = [c for c in properties.columns if c not in keys and c not in NOT_PROPERTIES
               and pd.api.types.is_numeric_dtype(properties[c])]
    joined = gains.merge(properties, on=keys)
    missing = len(gains.drop_duplicates([k for k in keys if k != "benchmark"] or ["dataset"])) - len(
        joined.drop_duplicates([k for k in keys if k != "benchmark"] or ["dataset"]))
    rows = []
    for column, part in joined.groupby("column"):
        for prop in numeric:
            for method in ("pearson", "spearman"):
                est = bootstrap_corr(part[prop].to_numpy(), part["gain"].to_numpy(), method)
                rows.append({"column": column, "property": prop, "method": method,
                             "n": int((part[prop].notna() & part["gain"].notna()).sum()),
                             "r": est.mean, "ci_low": est.ci_low, "ci_high": est.ci_high, "p": est.p})
    table = pd.DataFrame(rows, columns=["column", "property", "method", "n", "r", "ci_low", "ci_high", "p"])
    table = adjust(table)
    section = _section("data_properties", condition,
                       int(joined[["base_model", "dataset"]].drop_duplicates().shape[0]) if not joined.empty else 0,
                       failure_note(cells, include_failures),
                      {"data_properties": table})
    if missing > 0:
        section.dropped.append(f"{missing} (base model, training data) pair(s) with gains but no property row dropped")
    section.method = _RESAMPLED["pairs"]
    section.lines = ["| benchmark | property | method | n | r | 95 % CI | p (Holm) |",
                     "| --- | --- | --- | --- | --- | --- | --- |"]
    section.lines += [f"| {_md(r.column)} | {_md(r.property)} | {r.method} | {r.n} | {r.r:.3f} | "
                      f"{_ci(r.ci_low, r.ci_high, 3)} | {_p(r.p_holm)} |" for r in table.itertuples()]
    sp = table[(table["method"] == "spearman") & table["r"].notna()]
    if not sp.empty:
        mean_r = sp.groupby("property")["r"].mean().sort_values()
        sure = sp[significant(sp)]
        section.finding = "Mean Spearman r over benchmarks: " + ", ".join(
            f"{_md(p)} {r:+.2f}" for p, r in mean_r.items()) + f". {_sure(sure, len(sp), 'correlations')}"
    if out is not None and not sp.empty and (path := figures.forest(
            sp.rename(columns={"r": "mean", "n": "pairs"}), out / "data_properties.png", "Spearman r with the gain",
            "Gain vs training-data properties, per benchmark",
            f"One panel per property; n = (base model, training data) pairs per benchmark. Condition: "
            f"{condition.text()}.", panel="property", units={})):
        section.figures.append(path)
    return section


def _run_ids(rows: pd.DataFrame, models: pd.Series) -> pd.Series:
    """Layer-diff model names (Hub ids or run ids) as the results' run ids (`rows`: any rows with both)."""
    by_repo = {m: r for m, r in zip(rows["model_id"], rows["run_id"]) if isinstance(m, str) and m}
    return models.map(lambda m: by_repo.get(m, m))


def layer_correlation(cells: pd.DataFrame, layers: pd.DataFrame, condition: Condition = MAIN_GRID,
                      include_failures: bool = False, bins: int = 10, out: Path | None = None) -> Section:
    """Per depth bin, Pearson and Spearman across runs of the layer's weight change vs the run's mean gain."""
    import pandas as pd

    runs, notes = mean_gain(cells, include_failures=include_failures)
    layers = layers.copy()
    layers["run_id"] = _run_ids(cells, layers["model"])
    layers["bin"] = np.minimum((layers["depth"] * bins).astype(int), bins - 1)
    per = layers.groupby(["run_id", "bin"], as_index=False)["rel_change"].mean()
    joined = per.merge(runs[["run_id", "mean_gain"]], on="run_id")
    rows = []
    for b, part in joined.groupby("bin"):
        for method in ("pearson", "spearman"):
            est = bootstrap_corr(part["rel_change"].to_numpy(), part["mean_gain"].to_numpy(), method)
            rows.append({"depth": (b + 0.5) / bins, "method": method, "models": len(part), "r": est.mean,
                         "ci_low": est.ci_low, "ci_high": est.ci_high, "p": est.p})
    table = pd.DataFrame(rows, columns=["depth", "method", "models", "r", "ci_low", "ci_high", "p"])
    table = pd.concat([adjust(part) for _, part in table.groupby("method", sort=False)] or [adjust(table)],
                      ignore_index=True)
    n = int(joined["run_id"].nunique())
    section = _section("layer_correlation", condition, n, notes + failure_note(cells, include_failures), {"layer_correlation": table})
    unmatched = set(layers["run_id"]) - set(joined["run_id"])
    if unmatched:
        section.dropped.append(f"{len(unmatched)} layer-diff model(s) outside the condition or without a mean gain")
    section.method = _RESAMPLED["runs-corr"]
    section.lines = ["| depth | method | models | r | 95 % CI | p (Holm) |", "| --- | --- | --- | --- | --- | --- |"]
    section.lines += [f"| {r.depth:.2f} | {r.method} | {r.models} | {r.r:.3f} | {_ci(r.ci_low, r.ci_high, 3)} | "
                      f"{_p(r.p_holm)} |" for r in table.itertuples()]
    pearson = table[(table["method"] == "pearson") & table["r"].notna()].reset_index(drop=True)
    if not pearson.empty:
        sure = pearson[significant(pearson)]
        if sure.empty:
            section.finding = (f"No depth's correlation with the gain is distinguishable from 0 (every 95 % interval "
                               f"contains 0 or Holm-adjusted p ≥ 0.05; n = {n}): no peak is claimed.")
        else:
            peak = sure.loc[sure["r"].idxmax()]
            section.finding = (f"The correlation peaks at depth {peak['depth']:.2f} (Pearson r = {peak['r']:.2f}, "
                               f"95 % CI {_ci(peak['ci_low'], peak['ci_high'])}, Holm p = {_p(peak['p_holm'])}, "
                               f"n = {n}).")
    if out is not None and (path := figures.depth_curve(table, out / "layer_correlation.png",
                                                        f"Condition: {condition.text()}; n = {n} runs; mean gain over "
                                                        "percent-scale benchmarks.")):
        section.figures.append(path)
    return section


# -- training factors ------------------------------------------------------------------------------------

def _paired_section(name: str, title: str, cells: pd.DataFrame, condition: Condition, axis: str, a: Any, b: Any,
                    match: list[str], clusters: list[str], include_failures: bool, label: str, out: Path | None,
                    key: Any = None, by_extra: list[str] | None = None) -> Section:
    use = cells if include_failures else cells[~cells["format_failure"]]
    pairs = paired(use, axis, a, b, match, key=key)
    pairs = pairs.merge(use.drop_duplicates("column")[["column", "scale"]], on="column", how="left")
    summary = adjust(summarize_pairs(pairs, clusters, ["column", "scale"]))
    tables = {name: summary, f"{name}_pairs": pairs}
    if by_extra:
        tables[f"{name}_by_{by_extra[0]}"] = adjust(summarize_pairs(pairs, clusters, [*by_extra, "column", "scale"]))
    runs = len(set(lineage_keys(pairs, clusters))) if not pairs.empty else 0
    section = _section(name, condition, runs, failure_note(cells, include_failures), tables, compared=axis,
                       title=title)
    section.method = (f"Runs are paired when equal on {', '.join(k for k in match if k != axis)} (runs without a "
                      f"counterpart are not used). {_RESAMPLED['runs']}")
    section.lines = ["| benchmark | pairs | runs | mean difference | 95 % CI (runs) | p (Holm) | 95 % CI (base models) |",
                     "| --- | --- | --- | --- | --- | --- | --- |"]
    section.lines += [f"| {_md(r.column)} | {r.pairs} | {r.runs} | {r.mean:+.2f} | {_ci(r.ci_low, r.ci_high)} | "
                      f"{_p(r.p_holm)} | {_ci(r.ci_low_bases, r.ci_high_bases)} |" for r in summary.itertuples()]
    percent = summary[summary["scale"] == "percent"]
    if not percent.empty:
        up = int((percent["mean"] > 0).sum())
        sure = percent[significant(percent)]
        bases = sure[(sure["ci_low_bases"] > 0) | (sure["ci_high_bases"] < 0)]
        section.finding = (f"{label} is positive on {up} of {len(percent)} percent-scale benchmarks; it differs from 0 "
                           f"(interval over runs excludes 0, Holm p < 0.05) on {len(sure)}"
                           + (f" ({', '.join(_md(c) for c in sure['column'])})" if 0 < len(sure) <= 8 else "")
                           + f", and {len(bases)} of those also when base models are resampled.")
    if out is not None and (path := figures.forest(summary, out / f"{name}.png", label, title,
                                                   f"Condition: {condition.text()}; n = {runs} paired training runs.")):
        section.figures.append(path)
    return section


def lora_vs_full(cells: pd.DataFrame, condition: Condition, include_failures: bool = False,
                 out: Path | None = None) -> Section:
    """LoRA − full-parameter gain on runs equal on every other axis."""
    return _paired_section("lora_vs_full", "LoRA vs full-parameter tuning", cells, condition, "tuning", "full", "lora",
                           MATCH, ["base_model", "dataset", "data_size", "lr_schedule"], include_failures,
                           "LoRA − full", out)


def data_size(cells: pd.DataFrame, condition: Condition, include_failures: bool = False,
              sizes: tuple[int, int] = (1000, 20000), out: Path | None = None) -> Section:
    """Gain with the larger training set minus gain with the smaller, paired at equal epochs."""
    present = sorted(int(s) for s in cells["data_size"].dropna().unique())
    if not set(sizes) <= set(present) and len(present) >= 2:
        sizes = (present[0], present[-1])
    a, b = sizes
    return _paired_section("data_size", f"{b:,} vs {a:,} training examples", cells, condition, "data_size", a, b, MATCH,
                           ["base_model", "dataset", "tuning", "lr_schedule"], include_failures,
                           f"{b:,} − {a:,} examples", out, by_extra=["epochs"])


def epochs(cells: pd.DataFrame, condition: Condition, include_failures: bool = False,
           out: Path | None = None) -> Section:
    """Per base model and training data, the mean gain at each epoch; each epoch against the last."""
    import pandas as pd

    runs, notes = mean_gain(cells, within=["base_model"], include_failures=include_failures)
    lineage = list(LINEAGE)
    curves = runs[[*lineage, "epochs", "mean_gain", "benchmarks", "run_id"]].copy()
    section = _section("epochs", condition, 0, notes + failure_note(cells, include_failures), {"epochs": curves}, compared="epochs")
    if curves.empty:
        section.finding = "No epoch series under this condition."
        return section
    curves["lineage"] = lineage_keys(curves, lineage)
    last = int(curves["epochs"].max())  # every run is compared with the grid's last epoch, never its own last
    final = curves[curves["epochs"] == last][["lineage", "mean_gain"]].rename(columns={"mean_gain": "last_gain"})
    without = set(curves["lineage"]) - set(final["lineage"])
    if without:
        section.dropped.append(f"{len(without)} training run(s) not evaluated at epoch {last}: not compared with it")
    diffs = curves.merge(final, on="lineage")
    diffs = diffs[diffs["epochs"] < last]
    diffs["diff"] = diffs["mean_gain"] - diffs["last_gain"]
    rows = []
    for e, part in diffs.groupby("epochs"):
        est = cluster_bootstrap_mean(part["diff"].to_numpy(float), part["lineage"].to_numpy())
        bases = cluster_bootstrap_mean(part["diff"].to_numpy(float), part["base_model"].to_numpy())
        rows.append({"epochs": int(e), "runs": len(part), "mean": est.mean,
                     "better_than_last": float((part["diff"] > 0).mean()), "ci_low": est.ci_low,
                     "ci_high": est.ci_high, "p": est.p, "ci_low_bases": bases.ci_low, "ci_high_bases": bases.ci_high})
    vs_last = adjust(pd.DataFrame(rows, columns=["epochs", "runs", "mean", "better_than_last", "ci_low", "ci_high",
                                                 "p", "ci_low_bases", "ci_high_bases"]))
    vs_last["last_epoch"] = last
    best = curves.loc[curves.groupby("lineage")["mean_gain"].idxmax()][[*lineage, "epochs", "mean_gain"]]
    series = curves.groupby("lineage")["epochs"].nunique()
    single = int((series < 2).sum())
    if single:
        section.dropped.append(f"{single} training run(s) evaluated at one epoch only: no curve")
    section.n = int((series >= 2).sum())
    section.tables.update({"epochs_vs_last": vs_last, "best_epoch": best.rename(columns={"epochs": "best_epoch"})})
    section.method = _RESAMPLED["runs"]
    section.lines = [f"| epoch | runs | gain − gain at epoch {last} | 95 % CI (runs) | p (Holm) | 95 % CI (base models) "
                     f"| share better than epoch {last} |", "| --- | --- | --- | --- | --- | --- | --- |"]
    section.lines += [f"| {r.epochs} | {r.runs} | {r.mean:+.2f} | {_ci(r.ci_low, r.ci_high)} | {_p(r.p_holm)} | "
                      f"{_ci(r.ci_low_bases, r.ci_high_bases)} | {r.better_than_last:.0%} |" for r in vs_last.itertuples()]
    if section.n:
        early = int((best.assign(lineage=lineage_keys(best, lineage))
                     .set_index("lineage").loc[series[series >= 2].index]["epochs"] <= 3).sum())
        section.finding = (f"For {early} of {section.n} training runs the best epoch is 1–3 "
                           f"(mean gain over each base model's common percent-scale benchmarks). "
                           + _sure(vs_last[significant(vs_last)], len(vs_last), f"differences from epoch {last}"))
    if out is not None and (path := figures.facet_lines(
            curves, "base_model", "dataset", "epochs", "mean_gain", out / "epochs.png", "mean gain (points)",
            "Mean gain by epoch, one panel per base model",
            f"Mean over each base model's common percent-scale benchmarks; one line per training run. "
            f"Condition: {condition.text()}; n = {section.n} training runs.")):
        section.figures.append(path)
    return section


def leave_one_out(cells: pd.DataFrame, condition: Condition, include_failures: bool = False,
                  out: Path | None = None) -> Section:
    """Gain without one training set (`w/o-X`) minus gain with all sets merged: what X contributed."""

    use = cells if include_failures else cells[~cells["format_failure"]]
    use = use[use["dataset"].map(dataset_kind).isin(["all", "leave-one-out"]).to_numpy(bool)]
    cells = cells[cells["dataset"].map(dataset_kind).isin(["all", "leave-one-out"]).to_numpy(bool)]
    match = ["base_model", "tuning", "epochs", "lr_schedule"]
    pairs = paired(use, "dataset", "all", "leave-one-out", match + ["dataset"], key=dataset_kind)
    pairs = pairs.merge(use.drop_duplicates("column")[["column", "scale"]], on="column", how="left")
    pairs["removed"] = pairs["dataset_b"].astype(str).str.removeprefix("w/o-")
    table = pairs.rename(columns={"a": "all", "b": "without", "diff": "effect"})[
        ["removed", *match, "column", "scale", "all", "without", "effect"]]
    section = _section("leave_one_out", condition,
                       int(table[["removed", *match]].drop_duplicates().shape[0]) if not table.empty else 0,
                       failure_note(cells, include_failures), {"leave_one_out": table},
                      compared="dataset, data_size")
    section.method = ("Effect = gain without X − gain with all sets merged, paired on base model, tuning, epoch and "
                      "schedule (9,000 vs 10,000 examples in the study).")
    if table.empty:
        section.finding = "No leave-one-out runs under this condition."
        return section
    once, notes = averaged_cells(use, include_failures)  # a mean over benchmarks: each benchmark at one shot count
    section.dropped += notes
    percent = table[table["column"].isin(set(once["column"])).to_numpy(bool)]
    bases = sorted(map(str, table["base_model"].unique()))
    rests = f"{len(bases)} base model{'s' if len(bases) > 1 else ''} ({', '.join(bases)})"
    if percent.empty:
        section.finding = f"No percent-scale benchmark to average over; the effects per benchmark rest on {rests}."
        return section
    per = percent.groupby("removed")["effect"].mean().sort_values()
    section.lines = [f"| removed set | mean effect ({percent['column'].nunique()} percent-scale benchmarks, one shot "
                     "count each) | most affected benchmark |", "| --- | --- | --- |"]
    for removed, effect in per.items():
        part = percent[percent["removed"] == removed]
        worst = part.loc[part["effect"].idxmin()]
        section.lines.append(f"| {_md(removed)} | {effect:+.2f} | {_md(worst['column'])} ({worst['effect']:+.1f}) |")
    section.finding = (f"Removing {_md(per.index[0])} costs the most ({per.iloc[0]:+.2f} points on average over "
                       f"{percent['column'].nunique()} benchmarks); removing {_md(per.index[-1])} helps the most "
                       f"({per.iloc[-1]:+.2f}). One leave-one-out run per set and base model: no interval; this rests on "
                       f"{rests} alone.")
    if out is not None:
        panels = []
        for scale, part in sorted(table.groupby("scale"), key=lambda kv: _SCALE_ORDER.get(kv[0], 9)):
            m = part.groupby(["removed", "column"])["effect"].mean().unstack()
            panels.append((scale, m))
        for scale, m in panels:
            path = figures.heatmap_panels([(f"without X − all ({scale})", m)],
                                          out / ("leave_one_out.png" if scale == "percent" else f"leave_one_out-{scale}.png"),
                                          f"effect ({figures.UNITS.get(scale, scale)})",
                                          f"Rows: the set left out. Base model{'s' if len(bases) > 1 else ''}: "
                                          f"{', '.join(bases)} only. Condition: {condition.text()}; "
                                          f"n = {section.n} runs.",
                                          cols=1)
            if path:
                section.figures.append(path)
    return section


def cross_lingual(cells: pd.DataFrame, condition: Condition = MAIN_GRID, include_failures: bool = False,
                  out: Path | None = None) -> Section:
    """MMLU, JMMLU and CMMLU gains by the base model's pretraining language, and how they go together.

    The claim is about languages, which vary only across base models: intervals and p-values resample base models
    (with all their runs), not runs."""
    import pandas as pd

    from ..importers import STUDY_BASE_LANGUAGES

    use = cells if include_failures else cells[~cells["format_failure"]]
    part = use[use["benchmark"].isin(CROSS_LINGUAL).to_numpy(bool)].copy()
    part["language"] = part["base_model"].map(lambda b: STUDY_BASE_LANGUAGES.get(str(b)))
    unknown = sorted(part[part["language"].isna()]["base_model"].astype(str).unique())
    part = part[part["language"].notna()]
    rows = []
    for (language, column), group in part.groupby(["language", "column"]):
        est = cluster_bootstrap_mean(group["gain"].to_numpy(float), group["base_model"].to_numpy())
        rows.append({"language": language, "column": column, "bases": group["base_model"].nunique(),
                     "runs": len(group), "mean": est.mean, "ci_low": est.ci_low, "ci_high": est.ci_high, "p": est.p})
    table = adjust(pd.DataFrame(rows, columns=["language", "column", "bases", "runs", "mean", "ci_low", "ci_high", "p"]))
    wide = part.pivot_table(index=["run_id", "language", "base_model"], columns="column", values="gain").reset_index()
    transfer = []
    source = next((c for c in ("mmlu-0shot", "mmlu-5shot") if c in wide.columns), None)
    for language, group in wide.groupby("language"):
        for target in [c for c in wide.columns if str(c).startswith(("jmmlu", "cmmlu"))]:
            if source is None:
                continue
            for method in ("pearson", "spearman"):
                est = bootstrap_corr(group[source].to_numpy(float), group[target].to_numpy(float), method,
                                     clusters=group["base_model"].to_numpy())
                transfer.append({"language": language, "source": source, "target": target, "method": method,
                                 "n": int((group[source].notna() & group[target].notna()).sum()),
                                 "bases": int(group["base_model"].nunique()), "r": est.mean, "ci_low": est.ci_low,
                                 "ci_high": est.ci_high, "p": est.p})
    transfer = pd.DataFrame(transfer, columns=["language", "source", "target", "method", "n", "bases", "r", "ci_low",
                                               "ci_high", "p"])
    transfer = pd.concat([adjust(t) for _, t in transfer.groupby("method", sort=False)] or [adjust(transfer)],
                         ignore_index=True)
    section = _section("cross_lingual", condition, int(part["run_id"].nunique()), failure_note(cells, include_failures),
                       {"cross_lingual": table, "cross_lingual_transfer": transfer})
    section.method = _RESAMPLED["bases"]
    if unknown:
        section.dropped.append(f"base models of unknown pretraining language left out: {', '.join(unknown)}")
    section.lines = ["| language | benchmark | bases | runs | mean gain | 95 % CI (base models) | p (Holm) |",
                     "| --- | --- | --- | --- | --- | --- | --- |"]
    section.lines += [f"| {_md(r.language)} | {_md(r.column)} | {r.bases} | {r.runs} | {r.mean:+.2f} | "
                      f"{_ci(r.ci_low, r.ci_high)} | {_p(r.p_holm)} |" for r in table.itertuples()]
    pearson = transfer[transfer["method"] == "pearson"]
    if not pearson.empty:
        section.finding = "Correlation of MMLU gains with the other languages' across runs: " + "; ".join(
            f"{_md(r.language)} {_md(r.target)} r = {r.r:.2f}" + (f" {_ci(r.ci_low, r.ci_high)}" if r.bases >= MIN_CLUSTERS
                                                                    else "") + f" (n = {r.n} runs of {r.bases} bases)"
            for r in pearson.itertuples()) + ". " + _sure(table[significant(table)], len(table),
                                                                            "mean gains")
    if out is not None and (path := figures.grouped_bars(
            table, "language", "column", out / "cross_lingual.png", "mean gain (points)",
            "MMLU / JMMLU / CMMLU gains by the base model's language",
            f"Condition: {condition.text()}; n = {section.n} runs; 95 % bootstrap intervals over base models.")):
        section.figures.append(path)
    return section


# -- the whole analysis ----------------------------------------------------------------------------------

def conditions(where: dict[str, Any] | None = None) -> dict[str, Condition]:
    """Each analysis's condition: its default with `where` applied, and its compared axis left open."""
    out = {}
    for name, default in DEFAULTS.items():
        condition = default.replace(**(where or {}))
        if name in CONTRAST:
            condition = condition.free(CONTRAST[name])
        if name == "leave_one_out":
            condition = condition.free("data_size")
        out[name] = condition
    return out


def analyze(frame: pd.DataFrame, output_dir: str | Path, properties: pd.DataFrame | None = None,
            layers: pd.DataFrame | None = None, where: dict[str, Any] | None = None,
            include_format_failures: bool = False, progress: bool = False) -> Analysis:
    """Run every analysis the given tables allow, each on its condition; write tables, figures, `index.json`
    and `report.md` to `output_dir`.

    Args:
        frame: results rows (with gains).
        output_dir: where the outputs go.
        properties: per (base_model, dataset) data properties, e.g. `perplexity` (from `hubkit perplexity`).
        layers: per-layer weight changes (`hubkit layerdiff`'s `layerdiff_layers.parquet`).
        where: overrides of every analysis's condition (`parse_where`), e.g. `{"tuning": "lora"}`.
        include_format_failures: keep base-model format failures in rankings and means.
        progress: show a progress bar over the analyses.

    Raises:
        HubkitError: results without gains, or tables without the columns they need.

    Example:
        >>> result = analyze(frame, "analysis", where={"tuning": "lora"})
        >>> [s.condition.text() for s in result.sections][:1]
        ['data size 1,000 · cosine schedule · epoch 10 · LoRA · single training sets · full-benchmark scores']
    """
    from ..datachecks import apply_checks, numeric
    from ..importers import STUDY_COPIED_BASES
    from ..results import normalize

    frame = normalize(numeric(frame))  # older results tables get each benchmark's declared scale
    if frame.empty or frame["gain"].notna().sum() == 0:
        raise HubkitError("analyze: the results hold no gains (no base-model rows to compare with)")
    _check_where(frame, where or {})
    frame, issues = apply_checks(frame, STUDY_COPIED_BASES)
    for name, table, needed in (("properties", properties, ["dataset"]),
                                ("layers", layers, ["model", "depth", "rel_change"])):
        if table is not None:
            missing = [c for c in needed if c not in table.columns]
            if missing:
                raise HubkitError(f"analyze: the {name} table lacks column {missing[0]!r}")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*"):  # a previous analysis's figures and tables would be pushed with this one
        if old.suffix in (".png", ".parquet") or old.name in ("index.json", "report.md"):
            old.unlink()
    conds = conditions(where)
    # one shot count per benchmark, decided over every fine-tuned run before any condition filters them
    kept = kept_columns(gain_cells(EVERY_RUN.select(frame), {}))
    cells = {name: gain_cells(c.select(frame), kept) for name, c in conds.items()}
    fails = include_format_failures
    result = Analysis()
    steps = [
        ("synergy", lambda: synergy(cells["synergy"], conds["synergy"], fails, out)),
        ("dataset_ranking", lambda: dataset_ranking(cells["dataset_ranking"], conds["dataset_ranking"], fails, out)),
        ("gain_correlation", lambda: gain_correlation(cells["gain_correlation"], conds["gain_correlation"], fails, out)),
        ("pca", lambda: pca(cells["pca"], conds["pca"], fails, out)),
    ]
    if properties is not None:
        steps.append(("data_properties", lambda: data_properties(cells["data_properties"], properties,
                                                                 conds["data_properties"], fails, out)))
        if {"perplexity", "base_model"} <= set(properties.columns):
            result.inputs["perplexity"] = properties[["base_model", "dataset", "perplexity"]]
    if layers is not None:
        steps.append(("layer_correlation", lambda: layer_correlation(cells["layer_correlation"], layers,
                                                                     conds["layer_correlation"], fails, out=out)))
        result.inputs["layerdiff"] = layers.assign(run_id=_run_ids(frame, layers["model"]))[
            ["run_id", "depth", "rel_change"]]
    steps += [
        ("lora_vs_full", lambda: lora_vs_full(cells["lora_vs_full"], conds["lora_vs_full"], fails, out)),
        ("data_size", lambda: data_size(cells["data_size"], conds["data_size"], fails, out=out)),
        ("epochs", lambda: epochs(cells["epochs"], conds["epochs"], fails, out)),
        ("leave_one_out", lambda: leave_one_out(cells["leave_one_out"], conds["leave_one_out"], fails, out)),
        ("cross_lingual", lambda: cross_lingual(cells["cross_lingual"], conds["cross_lingual"], fails, out)),
    ]
    from tqdm.auto import tqdm

    sections = []
    for name, step in tqdm(steps, desc="analyses", unit="analysis", disable=not progress):
        if cells[name].empty:  # nothing under this condition: say so rather than fail or show an empty plot
            sections.append(_section(name, conds[name], 0, [], compared=CONTRAST.get(name, ""),
                                     finding="No results under this condition."))
        else:
            sections.append(step())
    result.sections = sections
    for section in sections:
        for name, table in section.tables.items():
            result.tables[name] = table
            table.assign(condition=section.condition.text()).to_parquet(out / f"{name}.parquet", index=False)
        result.plots += section.figures
    not_run = [{"name": name, "title": TITLES[name][0], "part": TITLES[name][1], "needs": needs, "command": command}
                for name, needs, command in NOT_RUN if name not in {s.name for s in sections}]
    result.checks, result.not_run = issues, not_run
    (out / "index.json").write_text(json.dumps({"analyses": [s.to_json() for s in sections],
                                                "checks": [i.to_json() for i in issues], "not_run": not_run,
                                                "shots": kept}, indent=2), encoding="utf-8")
    result.report = out / "report.md"
    result.report.write_text(_report(frame, sections, issues, not_run), encoding="utf-8")
    return result


#: The paper's analyses that need more than the results table: name, what it needs, the command that runs it.
NOT_RUN = [
    ("data_properties", "the training data's perplexity under each base model",
     "hubkit perplexity -m BASE --data DATA -t ppl.parquet (per base model and training set), then "
     "hubkit analyze --results RESULTS --perplexity ppl.parquet"),
    ("layer_correlation", "the fine-tuned models' weight changes by layer",
     "hubkit layerdiff --base BASE RUN … -o diff, then hubkit analyze --results RESULTS "
     "--layers diff/layerdiff_layers.parquet"),
]
EXTRA_ANALYSES = [  # model-space analyses of the paper that read models, not results
    ("Log-likelihood map of the models (models cluster by family)", "hubkit analyze --loglik -m BASE -m RUN …"),
    ("Intrinsic dimension by depth", "hubkit analyze --intrinsic-dim -m RUN … (or --layers diff/layerdiff_layers.parquet)"),
]


def _check_where(frame: pd.DataFrame, where: dict[str, Any]) -> None:
    """A one-line error for a condition value no result has (`-w tuning=qlora`), naming the values there are."""
    for key, column in (("base_models", "base_model"), ("datasets", "dataset")):
        value = where.get(key)
        if value and value not in DATASET_KINDS:
            known = set(frame[column].dropna().astype(str))
            for name in split_names(value):
                if name not in known:
                    raise HubkitError(f"analyze: no results for {column} `{name}`{did_you_mean(name, known)}")
    tuned = frame[frame["dataset"] != "pretrain"]
    for key in ("tuning", "lr_schedule", "data_size", "epochs"):
        value = where.get(key)
        if value is None or key not in where:
            continue
        present = tuned[key].dropna()
        known = sorted({str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in present})
        if str(value) not in known:
            raise HubkitError(f"analyze: no results with {key} `{value}` (the results have: {', '.join(known)})"
                              + did_you_mean(str(value), known))


def _report(frame: pd.DataFrame, sections: list[Section], issues: list | None = None,
            not_run: list[dict[str, str]] | None = None) -> str:
    models = frame[frame["dataset"] != "pretrain"]["run_id"].nunique()
    lines = ["# hubkit analysis", "",
             f"{models:,} fine-tuned models over {frame['base_model'].nunique()} base models, "
             f"{frame['benchmark'].nunique()} benchmarks. Each analysis runs on an explicit condition (a value "
             "for every axis of the grid), stated with the number of observations it rests on and what was left "
             "out; comparisons pair runs equal on every other axis. Each interval resamples the unit that varies "
             "for its question (training runs for paired run comparisons, base models for claims about base "
             "models: each section says which); p-values are Holm-adjusted within each analysis, and a finding "
             "is stated only when its interval excludes 0. A mean over benchmarks counts each benchmark once, at "
             "the study's shot count. Gains are in points on percent-scale benchmarks and in grade points for "
             "MT-Bench (1–10); the two are never averaged together.", ""]
    lines += ["## Data checks", ""]
    if issues:
        lines += ["The results were checked before any analysis; what each finding would distort is left out:", ""]
        lines += [f"- {_md(issue.text())}." for issue in issues]
    else:
        lines.append("No identical base rows, runs without a base row or out-of-range cells.")
    lines.append("")
    if not_run:
        lines += ["## Not run", "", "These analyses of the paper need more than a results table:", ""]
        lines += [f"- **{_md(n['title'])}** ({n['part']}) needs {_md(n['needs'])}: `{n['command']}`" for n in not_run]
        lines += [f"- **{title}** (models, not results): `{command}`" for title, command in EXTRA_ANALYSES]
        lines.append("")
    part = None
    titles = {"RQ1": "RQ1 — Training data × benchmark", "RQ2": "RQ2 — Data properties",
              "RQ3": "RQ3 — Layers", "training factors": "Training factors", "cross-lingual": "Cross-lingual transfer"}
    for s in sections:
        if s.part != part:
            part = s.part
            lines += [f"## {titles.get(part, part)}", ""]
        lines += [f"### {s.title}", "", f"- *Condition:* {_md(s.condition.text())}; *n* = {s.n:,} {s.unit}."]
        if s.compared:
            lines.append(f"- *Compared:* {s.compared}, pairing runs equal on every other axis"
                         + (f" (matched within pairs, then averaged: {', '.join(s.pooled())})" if s.pooled() else "")
                         + ".")
        elif s.pooled():
            lines.append(f"- *Pooled over:* {', '.join(s.pooled())}.")
        lines += [f"- *Left out:* {_md(note)}." for note in s.dropped]
        if s.method:
            lines.append(f"- *Method:* {_md(s.method)}")
        lines.append("")
        if s.finding:
            lines += [s.finding, ""]
        lines += [f"![]({p.name})" for p in s.figures]
        if s.figures:
            lines.append("")
        if len(s.lines) > 2:
            lines += s.lines + [""]
        lines.append(f"Tables: {', '.join(f'`{t}.parquet`' for t in s.tables)}.")
        lines.append("")
    return "\n".join(lines) + "\n"
