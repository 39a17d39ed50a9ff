"""RQ2: gains against properties of the training data (perplexity under the base model, length, similarity)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .. import figures
from ..cells import failure_note
from ..conditions import MAIN_GRID, Condition
from ..registry import AnalysisSpec
from ..report import RESAMPLED, Section, interval, md, pvalue, sure_text
from ..stats import adjust, bootstrap_corr, significant

if TYPE_CHECKING:
    import pandas as pd

NOT_PROPERTIES = {"documents", "tokens", "bytes", "seconds", "nll"}  # counts a perplexity table carries beside it


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
    section = SPEC.section(condition,
                           int(joined[["base_model", "dataset"]].drop_duplicates().shape[0]) if not joined.empty else 0,
                           failure_note(cells, include_failures),
                           {"data_properties": table})
    if missing > 0:
        section.dropped.append(f"{missing} (base model, training data) pair(s) with gains but no property row dropped")
    section.method = RESAMPLED["pairs"]
    section.lines = ["| benchmark | property | method | n | r | 95 % CI | p (Holm) |",
                     "| --- | --- | --- | --- | --- | --- | --- |"]
    section.lines += [f"| {md(r.column)} | {md(r.property)} | {r.method} | {r.n} | {r.r:.3f} | "
                      f"{interval(r.ci_low, r.ci_high, 3)} | {pvalue(r.p_holm)} |" for r in table.itertuples()]
    sp = table[(table["method"] == "spearman") & table["r"].notna()]
    if not sp.empty:
        mean_r = sp.groupby("property")["r"].mean().sort_values()
        sure = sp[significant(sp)]
        section.finding = "Mean Spearman r over benchmarks: " + ", ".join(
            f"{md(p)} {r:+.2f}" for p, r in mean_r.items()) + f". {sure_text(sure, len(sp), 'correlations')}"
    if out is not None and not sp.empty and (path := figures.forest(
            sp.rename(columns={"r": "mean", "n": "pairs"}), out / "data_properties.png", "Spearman r with the gain",
            "Gain vs training-data properties, per benchmark",
            f"One panel per property; n = (base model, training data) pairs per benchmark. Condition: "
            f"{condition.text()}.", panel="property", units={})):
        section.figures.append(path)
    return section


SPEC = AnalysisSpec(
    name="data_properties", title="Gains vs training-data properties",
    part="RQ2", unit="base model × training data pairs", order=50,
    needs="properties", needs_text="the training data's perplexity under each base model",
    command=("hubkit perplexity -m BASE --data DATA -t ppl.parquet (per base model and training set), then "
             "hubkit analyze --results RESULTS --perplexity ppl.parquet"),
    run=lambda i: data_properties(i.cells, i.properties, i.condition, i.include_failures, i.out),
)
