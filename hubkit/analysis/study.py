"""`hubkit analyze`: the study's analyses over a results table, joined with perplexity and layer-diff tables.

(a) **Synergy**: per base model, the mean gain per training dataset × benchmark, and per cell how many
    base models agree on the sign of the gain.
(b) **Data properties**: gain against the training data's perplexity under the base model (and any other
    numeric column of the properties table, e.g. average length), per benchmark: Pearson and Spearman
    coefficients with bootstrap 95 % confidence intervals.
(c) **Layers**: per normalised depth, the correlation across models between the layer's weight change
    (`hubkit layerdiff`) and the model's mean gain over its percent-scale benchmarks.
(d) **Training factors**: LoRA vs full on otherwise identical runs (paired), and mean gains by epochs and
    by data size.

Outputs: parquet tables, PNG plots and `report.md` in one folder. The perplexity and layer tables can be
pushed to the results dataset (`analysis/…`), where the leaderboard plots them.

Example:
    >>> report = analyze(load_results_table("evaluation_result.csv"), output_dir="analysis")
    >>> report.tables["synergy"].head()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import HubkitError

if TYPE_CHECKING:
    import pandas as pd

BOOTSTRAP = 1000
SEED = 0
MATCH = ["base_model", "dataset", "data_size", "epochs", "lr_schedule", "benchmark", "n_shot"]


@dataclass
class Analysis:
    """The tables (name → DataFrame), the plots written, and the report's path."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    plots: list[Path] = field(default_factory=list)
    inputs: dict[str, pd.DataFrame] = field(default_factory=dict)  # the joined inputs, as the leaderboard reads them
    report: Path | None = None


def load_results_table(source: str) -> pd.DataFrame:
    """Results rows from the study's CSV, a results parquet, or a results dataset on the Hub.

    Raises:
        HubkitError: nothing readable under that name.
    """
    import pandas as pd

    path = Path(source)
    if path.suffix == ".csv":
        from ..results import import_massive_sft_csv

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
        raise HubkitError(f"{path.name}: not a readable table: {str(e).splitlines()[0]}") from None


def push_analysis(result: Analysis, repo_id: str, folder: str | Path, api=None) -> str:
    """Upload the analysis tables and report to a results dataset under `analysis/` (one commit).

    The leaderboard reads `analysis/perplexity.parquet` (base_model, dataset, perplexity) and
    `analysis/layerdiff.parquet` (run_id, depth, rel_change) from there.
    """
    import shutil
    import tempfile

    from huggingface_hub.errors import HfHubHTTPError

    from ..hub import get_api, push_folder

    api = api or get_api()
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "analysis"
        target.mkdir()
        for path in Path(folder).iterdir():
            if path.suffix in (".parquet", ".png", ".md"):
                shutil.copy2(path, target / path.name)
        for name, table in result.inputs.items():
            table.to_parquet(target / f"{name}.parquet", index=False)
        try:
            return push_folder(repo_id, tmp, repo_type="dataset", commit_message="Add analysis tables",
                               api=api).commit
        except HfHubHTTPError as e:
            raise HubkitError(f"cannot push the analysis to {repo_id}: {str(e).splitlines()[0]}") from None


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    denom = np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (x * y).sum(axis=-1) / denom, np.nan)


def bootstrap_corr(x: np.ndarray, y: np.ndarray, method: str, n: int = BOOTSTRAP, seed: int = SEED):
    """A correlation (`pearson` or `spearman`) and its bootstrap 95 % interval (percentile method, seeded)."""
    from scipy.stats import rankdata

    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan"), float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, len(x), (n, len(x)))
    xs, ys = x[idx], y[idx]
    if method == "spearman":
        x, y = rankdata(x), rankdata(y)
        xs, ys = rankdata(xs, axis=1), rankdata(ys, axis=1)
    value = float(_rowwise_pearson(x, y))
    samples = _rowwise_pearson(xs, ys)
    samples = samples[~np.isnan(samples)]
    if not len(samples):
        return value, float("nan"), float("nan")
    low, high = np.percentile(samples, [2.5, 97.5])
    return value, float(low), float(high)


def _gain_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The fine-tuned models' rows that have a gain, with their `<benchmark>-<n>shot` column name."""
    from ..results import bench_column

    rows = frame[(frame["dataset"] != "pretrain") & frame["gain"].notna()].copy()
    rows["column"] = [bench_column(b, n) for b, n in zip(rows["benchmark"], rows["n_shot"])]
    return rows


def _percent_gains(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows whose gains may be averaged across benchmarks: percent scale, higher is better (MT-Bench's 1–10
    grades and raw metrics such as perplexity stay out of every cross-benchmark mean)."""
    return frame[(frame["scale"] == "percent") & frame["higher_is_better"].astype(bool) & frame["gain"].notna()]


def synergy(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(a): mean gain per base × dataset × benchmark column; and per dataset × column, sign agreement across bases."""
    rows = _gain_rows(frame)
    cells = rows.groupby(["base_model", "dataset", "column", "scale"], as_index=False)["gain"].mean()
    signs = cells.assign(positive=cells["gain"] > 0)
    agree = signs.groupby(["dataset", "column", "scale"]).agg(bases=("gain", "size"), positive=("positive", "sum"),
                                                               mean_gain=("gain", "mean")).reset_index()
    agree["agreement"] = np.maximum(agree["positive"], agree["bases"] - agree["positive"]) / agree["bases"]
    return cells, agree


def data_properties(frame: pd.DataFrame, properties: pd.DataFrame) -> pd.DataFrame:
    """(b): per benchmark column and property, Pearson and Spearman of mean gains vs the property.

    `properties` is keyed by `dataset` plus `base_model` (perplexity under each base) and/or `benchmark`
    (similarity of the data to each benchmark); gains are averaged over the rows that share those keys.
    """
    import pandas as pd

    keys = [k for k in ("base_model", "dataset", "benchmark") if k in properties.columns]
    rows = _gain_rows(frame)
    gains = rows.groupby(["base_model", "dataset", "benchmark", "column"], as_index=False)["gain"].mean()
    numeric = [c for c in properties.columns if c not in keys and pd.api.types.is_numeric_dtype(properties[c])]
    joined = gains.merge(properties, on=keys)
    out = []
    for column, part in joined.groupby("column"):
        for prop in numeric:
            for method in ("pearson", "spearman"):
                value, low, high = bootstrap_corr(part[prop].to_numpy(), part["gain"].to_numpy(), method)
                out.append({"column": column, "property": prop, "method": method, "n": int(part[prop].notna().sum()),
                            "r": value, "ci_low": low, "ci_high": high})
    return pd.DataFrame(out, columns=["column", "property", "method", "n", "r", "ci_low", "ci_high"])


def _run_ids(frame: pd.DataFrame, models: pd.Series) -> pd.Series:
    """Layer-diff model names (Hub ids or run ids) as the results' run ids."""
    by_repo = {m: r for m, r in zip(frame["model_id"], frame["run_id"]) if isinstance(m, str) and m}
    return models.map(lambda m: by_repo.get(m, m))


def layer_correlation(frame: pd.DataFrame, layers: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    """(c): per depth bin, Pearson and Spearman across models of the layer's weight change vs the mean gain
    (over the model's percent-scale benchmarks)."""
    import pandas as pd

    gains = _percent_gains(frame).groupby("run_id")["gain"].mean()
    layers = layers.copy()
    layers["run_id"] = _run_ids(frame, layers["model"])
    layers["bin"] = np.minimum((layers["depth"] * bins).astype(int), bins - 1)
    per = layers.groupby(["run_id", "bin"], as_index=False)["rel_change"].mean()
    per = per.merge(gains.rename("gain").reset_index(), on="run_id")
    out = []
    for b, part in per.groupby("bin"):
        for method in ("pearson", "spearman"):
            value, low, high = bootstrap_corr(part["rel_change"].to_numpy(), part["gain"].to_numpy(), method)
            out.append({"depth": (b + 0.5) / bins, "method": method, "models": len(part), "r": value,
                        "ci_low": low, "ci_high": high})
    return pd.DataFrame(out, columns=["depth", "method", "models", "r", "ci_low", "ci_high"])


def training_factors(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """(d): paired LoRA − full gains per benchmark column, and mean gains by epochs and by data size."""
    rows = _gain_rows(frame)
    keys = ["base_model", "dataset", "data_size", "epochs", "lr_schedule", "column"]
    full = rows[rows["tuning"] == "full"].groupby(keys, dropna=False)["gain"].mean()
    lora = rows[rows["tuning"] == "lora"].groupby(keys, dropna=False)["gain"].mean()
    paired = (lora - full).dropna().rename("lora_minus_full").reset_index()
    lora_vs_full = paired.groupby("column").agg(pairs=("lora_minus_full", "size"),
                                                mean=("lora_minus_full", "mean")).reset_index()
    cis = []
    for _column, part in paired.groupby("column"):
        values = part["lora_minus_full"].to_numpy()
        idx = np.random.default_rng(SEED).integers(0, len(values), (BOOTSTRAP, len(values)))
        cis.append(np.percentile(values[idx].mean(axis=1), [2.5, 97.5]))
    lora_vs_full["ci_low"] = [c[0] for c in cis]
    lora_vs_full["ci_high"] = [c[1] for c in cis]
    epochs = rows.groupby(["tuning", "epochs", "column"], as_index=False)["gain"].mean()
    sizes = rows.groupby(["tuning", "data_size", "column"], as_index=False)["gain"].mean()
    return {"lora_vs_full": lora_vs_full, "epochs": epochs, "data_size": sizes}


def _heatmaps(plt, cells: pd.DataFrame, path: Path, scale: str) -> bool:
    """Per base model, the synergy matrix of one metric scale, with a shared colour bar centred at 0."""
    bases = sorted(cells["base_model"].unique())[:12]
    if not bases:
        return False
    cols = min(3, len(bases))
    rows = (len(bases) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4 * rows), squeeze=False)
    bound = float(cells["gain"].abs().quantile(0.95)) or 1.0
    image = None
    for ax, base in zip(axes.flat, bases):
        m = cells[cells["base_model"] == base].pivot(index="dataset", columns="column", values="gain")
        image = ax.imshow(m.to_numpy(float), cmap="RdBu", vmin=-bound, vmax=bound, aspect="auto")
        ax.set_title(str(base), fontsize=9)
        ax.set_xticks(range(len(m.columns)), list(m.columns), rotation=70, fontsize=6)
        ax.set_yticks(range(len(m.index)), list(m.index), fontsize=6)
    for ax in list(axes.flat)[len(bases):]:
        ax.axis("off")
    unit = {"percent": "points", "1-10": "grade points (1–10 scale)"}.get(scale, scale)
    fig.colorbar(image, ax=list(axes.flat), shrink=0.6, label=f"mean gain ({unit})")
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return True


def _plots(tables: dict[str, pd.DataFrame], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    cells = tables["synergy"]
    for scale, part in cells.groupby("scale"):  # one colour scale per metric scale: never points next to grades
        path = out / ("synergy.png" if scale == "percent" else f"synergy-{scale}.png")
        if _heatmaps(plt, part, path, scale):
            written.append(path)
    if "layer_correlation" in tables and not tables["layer_correlation"].empty:
        t = tables["layer_correlation"]
        fig, ax = plt.subplots(figsize=(6, 4))
        for method, part in t.groupby("method"):
            ax.plot(part["depth"], part["r"], marker="o", label=method)
            ax.fill_between(part["depth"], part["ci_low"], part["ci_high"], alpha=0.15)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel("normalised layer depth")
        ax.set_ylabel("correlation: weight change vs gain")
        ax.legend()
        fig.tight_layout()
        written.append(out / "layer_correlation.png")
        fig.savefig(written[-1], metadata={"Software": None})
        plt.close(fig)
    return written


def analyze(frame: pd.DataFrame, output_dir: str | Path, properties: pd.DataFrame | None = None,
            layers: pd.DataFrame | None = None) -> Analysis:
    """Run the analyses that the given tables allow; write tables, plots and `report.md` to `output_dir`.

    Args:
        frame: results rows (with gains).
        output_dir: where the outputs go.
        properties: per (base_model, dataset) data properties, e.g. `perplexity` (from `hubkit perplexity`).
        layers: per-layer weight changes (`hubkit layerdiff`'s `layerdiff_layers.parquet`).

    Raises:
        HubkitError: results without gains, or tables without the columns they need.
    """
    from ..results import normalize

    frame = normalize(frame)  # older results tables get each benchmark's declared scale
    if frame.empty or frame["gain"].notna().sum() == 0:
        raise HubkitError("analyze: the results hold no gains (no base-model rows to compare with)")
    for name, table, needed in (("properties", properties, ["dataset"]),
                                ("layers", layers, ["model", "depth", "rel_change"])):
        if table is not None:
            missing = [c for c in needed if c not in table.columns]
            if missing:
                raise HubkitError(f"analyze: the {name} table lacks column {missing[0]!r}")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = Analysis()
    cells, agree = synergy(frame)
    result.tables.update({"synergy": cells, "agreement": agree, **training_factors(frame)})
    if properties is not None:
        result.tables["data_properties"] = data_properties(frame, properties)
        if {"perplexity", "base_model"} <= set(properties.columns):
            result.inputs["perplexity"] = properties[["base_model", "dataset", "perplexity"]]
    if layers is not None:
        result.tables["layer_correlation"] = layer_correlation(frame, layers)
        result.inputs["layerdiff"] = layers.assign(run_id=_run_ids(frame, layers["model"]))[
            ["run_id", "depth", "rel_change"]]
    for name, table in result.tables.items():
        table.to_parquet(out / f"{name}.parquet", index=False)
    result.plots = _plots(result.tables, out)
    result.report = out / "report.md"
    result.report.write_text(_report(frame, result), encoding="utf-8")
    return result


def _report(frame: pd.DataFrame, result: Analysis) -> str:
    t = result.tables
    models = frame[frame["dataset"] != "pretrain"]["run_id"].nunique()
    lines = ["# hubkit analysis", "",
             f"{models:,} fine-tuned models over {frame['base_model'].nunique()} base models, "
             f"{frame['benchmark'].nunique()} benchmarks.", "", "## (a) Training data × benchmark synergy", ""]
    agree = t["agreement"].sort_values("mean_gain", ascending=False)
    lines += ["Cells where the base models agree most on the sign of the gain (percent-scale benchmarks; mean gain "
              "in points; MT-Bench's 1–10 grades are in `agreement.parquet` and `synergy-1-10.png`):", "",
              "| training data | benchmark | bases | agreement | mean gain |", "| --- | --- | --- | --- | --- |"]
    top = agree[(agree["bases"] >= 2) & (agree["scale"] == "percent")].sort_values(
        ["agreement", "mean_gain"], ascending=False).head(10)
    lines += [f"| {r.dataset} | {r.column} | {r.bases} | {r.agreement:.0%} | {r.mean_gain:+.2f} |"
              for r in top.itertuples()]
    lines += ["", "## (d) Training factors", "", "LoRA − full on otherwise identical runs:", "",
              "| benchmark | pairs | mean | 95 % CI |", "| --- | --- | --- | --- |"]
    lines += [f"| {r.column} | {r.pairs} | {r.mean:+.2f} | [{r.ci_low:+.2f}, {r.ci_high:+.2f}] |"
              for r in t["lora_vs_full"].itertuples()]
    if "data_properties" in t:
        lines += ["", "## (b) Gains vs training-data properties", "",
                  "| benchmark | property | method | n | r | 95 % CI |", "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {r.column} | {r.property} | {r.method} | {r.n} | {r.r:.3f} | [{r.ci_low:.3f}, {r.ci_high:.3f}] |"
                  for r in t["data_properties"].itertuples()]
    if "layer_correlation" in t:
        lines += ["", "## (c) Weight change by depth vs gain", "", "![](layer_correlation.png)", "",
                  "| depth | method | models | r | 95 % CI |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r.depth:.2f} | {r.method} | {r.models} | {r.r:.3f} | [{r.ci_low:.3f}, {r.ci_high:.3f}] |"
                  for r in t["layer_correlation"].itertuples()]
    heatmaps = [p.name for p in result.plots if p.name.startswith("synergy")]
    if heatmaps:
        lines += ["", "## Synergy heatmaps", "", "One colour scale per metric scale: gains in percentage points, and "
                  "MT-Bench's grade points (1–10) apart.", ""] + [f"![]({name})" for name in heatmaps]
    return "\n".join(lines) + "\n"
