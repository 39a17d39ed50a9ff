"""Cross-lingual transfer: MMLU, JMMLU and CMMLU gains by the base model's pretraining language."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .. import figures
from ..cells import failure_note
from ..conditions import MAIN_GRID, Condition
from ..registry import AnalysisSpec
from ..report import RESAMPLED, Section, interval, md, pvalue, sure_text
from ..stats import MIN_CLUSTERS, adjust, bootstrap_corr, cluster_bootstrap_mean, significant

if TYPE_CHECKING:
    import pandas as pd

CROSS_LINGUAL = ("mmlu", "jmmlu", "cmmlu")


def cross_lingual(cells: pd.DataFrame, condition: Condition = MAIN_GRID, include_failures: bool = False,
                  out: Path | None = None) -> Section:
    """MMLU, JMMLU and CMMLU gains by the base model's pretraining language, and how they go together.

    The claim is about languages, which vary only across base models: intervals and p-values resample base models
    (with all their runs), not runs."""
    import pandas as pd

    from ...importers import STUDY_BASE_LANGUAGES

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
    section = SPEC.section(condition, int(part["run_id"].nunique()), failure_note(cells, include_failures),
                           {"cross_lingual": table, "cross_lingual_transfer": transfer})
    section.method = RESAMPLED["bases"]
    if unknown:
        section.dropped.append(f"base models of unknown pretraining language left out: {', '.join(unknown)}")
    section.lines = ["| language | benchmark | bases | runs | mean gain | 95 % CI (base models) | p (Holm) |",
                     "| --- | --- | --- | --- | --- | --- | --- |"]
    section.lines += [f"| {md(r.language)} | {md(r.column)} | {r.bases} | {r.runs} | {r.mean:+.2f} | "
                      f"{interval(r.ci_low, r.ci_high)} | {pvalue(r.p_holm)} |" for r in table.itertuples()]
    pearson = transfer[transfer["method"] == "pearson"]
    if not pearson.empty:
        section.finding = "Correlation of MMLU gains with the other languages' across runs: " + "; ".join(
            f"{md(r.language)} {md(r.target)} r = {r.r:.2f}" + (f" {interval(r.ci_low, r.ci_high)}" if r.bases >= MIN_CLUSTERS
                                                                    else "") + f" (n = {r.n} runs of {r.bases} bases)"
            for r in pearson.itertuples()) + ". " + sure_text(table[significant(table)], len(table),
                                                                            "mean gains")
    if out is not None and (path := figures.grouped_bars(
            table, "language", "column", out / "cross_lingual.png", "mean gain (points)",
            "MMLU / JMMLU / CMMLU gains by the base model's language",
            f"Condition: {condition.text()}; n = {section.n} runs; 95 % bootstrap intervals over base models.")):
        section.figures.append(path)
    return section


SPEC = AnalysisSpec(
    name="cross_lingual", title="Cross-lingual transfer: MMLU vs JMMLU vs CMMLU",
    part="cross-lingual", unit="runs", order=110,
    run=lambda i: cross_lingual(i.cells, i.condition, i.include_failures, i.out),
)
