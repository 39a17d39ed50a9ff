"""The leaderboard's figures and analysis views: heatmaps, epoch curves, layer profiles, scatters, the model map."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .model import BoardData
from .schema import (
    AXIS_TITLES,
    MAP_COLOURS,
    MID_DEPTH,
    _as_text,
    _natural,
)

HEATMAP_LABELS = 11  # points: tick labels and colour bars (15 px at 100 dpi, shown 1:1)
HEATMAP_FONT = 9  # points: each cell's value and the caption (12.5 px)


MAX_METRICS_BYTES = 8 << 20  # a model's training_metrics.json is read only up to this size
MAX_CURVE_POINTS = 100_000


class Board(BoardData):
    """A results table as the leaderboard shows it, with its figures."""

    def training_loss(self, run_id: str, token: str | bool | None = None) -> pd.DataFrame | None:
        """The model's logged training loss (`step`, `epoch`, `loss`), from `training_metrics.json` in its repo (every
        hubkit model publishes one); None without a repo, that file, or a readable curve. Cached per model.

        The file is another user's: it is read only up to `MAX_METRICS_BYTES`, and only finite numbers are kept."""
        if run_id not in self.meta.index or not bool(self._linked.loc[run_id]):
            return None
        if run_id not in self._curves:
            self._curves[run_id] = self._read_loss(str(self._model_ids.loc[run_id]), token)
        return self._curves[run_id]

    def _read_loss(self, repo_id: str, token: str | bool | None) -> pd.DataFrame | None:
        import json
        import math

        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError

        try:
            path = Path(hf_hub_download(repo_id, "training_metrics.json", endpoint=self.endpoint, token=token,
                                        etag_timeout=5))
            if path.stat().st_size > MAX_METRICS_BYTES:
                return None
            points = json.loads(path.read_text(encoding="utf-8")).get("loss_curve")
        except (HfHubHTTPError, OSError, ValueError, AttributeError):
            return None
        rows = []
        for point in points[:MAX_CURVE_POINTS] if isinstance(points, list) else []:
            try:
                row = (float(point["step"]), float(point.get("epoch") or "nan"), float(point["loss"]))
            except (TypeError, KeyError, ValueError, AttributeError):
                continue
            if math.isfinite(row[0]) and math.isfinite(row[2]):
                rows.append(row)
        return pd.DataFrame(rows, columns=["step", "epoch", "loss"]) if rows else None

    def loss_curves(self, run_ids: list[str]):
        """The training loss of each model by epoch, overlaid (one line per model, the ids in the legend); None when
        none of them published a curve. Epochs, not steps: runs of different batch sizes and data sizes align."""
        curves = {r: c for r in run_ids if (c := self.training_loss(r)) is not None}
        if not curves:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(10, 3.6), dpi=100)
        for run_id, curve in curves.items():
            x = curve["epoch"] if curve["epoch"].notna().all() else curve["step"]
            ax.plot(x, curve["loss"], marker="o", markersize=2.5, linewidth=1.2, label=run_id[:70])
        by_epoch = all(c["epoch"].notna().all() for c in curves.values())
        ax.set_xlabel("epoch" if by_epoch else "optimiser step", fontsize=11)
        ax.set_ylabel("training loss", fontsize=11)
        ax.tick_params(labelsize=10)
        ax.set_title(f"training loss as logged by the trainer ({len(curves)} of {len(run_ids)} models published "
                     "one: training_metrics.json in each repo)", fontsize=10)
        ax.legend(fontsize=9, loc="upper right")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig

    def layer_profile(self, run_id: str):
        """The model's relative weight change by normalised depth (a figure), or None without a layer diff."""
        diff = self.analysis.get("layerdiff")
        if diff is None or run_id not in set(diff["run_id"]):
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        mine = diff[diff["run_id"] == run_id].groupby("depth")["rel_change"].mean().sort_index()
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.plot(mine.index, mine.to_numpy(), marker="o", markersize=3)
        ax.axvspan(*MID_DEPTH, color="grey", alpha=0.15, label="mid layers")
        ax.set_xlabel("normalised depth (0 = first layer, 1 = last)")
        ax.set_ylabel("‖ΔW‖ / ‖W‖")
        ax.set_title(f"weight change by depth: {run_id[:60]}", fontsize=9)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig

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
        # one panel per scale, stacked, 12 inches wide at 100 dpi: shown about 1:1 in a 1280-px page, where the
        # smallest text (a cell's value, `HEATMAP_FONT` points) is over 11 px
        rows = [len(m) for _, m in panels]
        fig, axes = plt.subplots(len(panels), 1, figsize=(12, sum(0.32 * r + 2.4 for r in rows) + 0.6), dpi=100,
                                 squeeze=False, gridspec_kw={"height_ratios": [0.32 * r + 2.4 for r in rows]})
        for ax, (scale, matrix) in zip(axes[:, 0], panels):
            values = matrix.to_numpy(dtype=float)
            bound = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
            bound = bound or 1.0
            image = ax.imshow(values, cmap="RdBu", vmin=-bound, vmax=bound, aspect="auto")
            ax.set_xticks(range(len(matrix.columns)), list(matrix.columns), rotation=40, ha="right",
                          fontsize=HEATMAP_LABELS)
            ax.set_yticks(range(len(matrix.index)), list(matrix.index), fontsize=HEATMAP_LABELS)
            digits = 0 if bound >= 10 else 1
            for (i, j), v in np.ndenumerate(values):
                if np.isfinite(v):
                    text = f"{v:+.{digits}f}"
                    ax.text(j, i, "0" if float(text) == 0 else text.replace("-", "−"), ha="center", va="center",
                            fontsize=HEATMAP_FONT, color="white" if abs(v) > 0.6 * bound else "black")
            unit = {"percent": "points", "1-10": "grade points, 1–10 scale"}.get(scale, scale)
            ax.set_title(f"mean gain over {base_model} ({unit})", fontsize=HEATMAP_LABELS + 1)
            fig.colorbar(image, ax=ax, shrink=0.8).ax.tick_params(labelsize=HEATMAP_LABELS)
        runs = self.long[(self.long["base_model"].map(_as_text) == base_model) & self.long["gain"].notna()
                         & (self.long["dataset"] != "pretrain")]
        pooled = ", ".join(f"{AXIS_TITLES[a]} {{{', '.join(_natural({_as_text(v) for v in runs[a]}))}}}"
                           for a in ("data_size", "tuning", "epochs", "lr_schedule"))
        fig.suptitle(f"each cell: the mean gain of {runs['run_id'].nunique()} runs, pooled over {pooled}",
                     fontsize=HEATMAP_FONT, wrap=True)
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_figheight()))  # the caption above the first title
        return fig

    def plot_defaults(self) -> tuple[str | None, str | None]:
        """The base model and benchmark column the Plots tab opens on: the base with the most fine-tuned runs
        that have gains, and its benchmark with the most scores at several epochs (so the plots show data)."""
        rows = self.long[self.long["gain"].notna() & (self.long["dataset"].map(_as_text) != "pretrain")]
        if rows.empty:
            rows = self.long
        if rows.empty:
            return None, None
        base = rows.groupby(rows["base_model"].map(_as_text))["run_id"].nunique().idxmax()
        return base, self.curve_column(base)

    def curve_column(self, base_model: str) -> str | None:
        """The benchmark column with the most scores of `base_model`'s runs at two or more epochs."""
        rows = self._base_rows(base_model)
        if rows.empty:
            return self.columns[0] if self.columns else None
        spread = rows.groupby("column")["epochs"].nunique()
        counts = rows.groupby("column")["score"].count().where(spread >= 2, 0)
        return str(counts.idxmax())

    def _base_rows(self, base_model: str) -> pd.DataFrame:
        return self.long[(self.long["base_model"].map(_as_text) == base_model) & self.long["epochs"].notna()
                         & self.long["score"].notna() & (self.long["dataset"].map(_as_text) != "pretrain")]

    def curve_condition(self, base_model: str, column: str) -> tuple[str | None, str | None]:
        """The (data size, schedule) with the most epoch points for a base and column: the curves' default."""
        rows = self._base_rows(base_model)
        rows = rows[rows["column"] == column]
        if rows.empty:
            return None, None
        keys = rows.assign(size=rows["data_size"].map(_as_text), schedule=rows["lr_schedule"].map(_as_text))
        best = keys.groupby(["size", "schedule"]).size().idxmax()
        return best[0], best[1]

    def curve_choices(self, base_model: str, column: str) -> tuple[list[str], list[str]]:
        rows = self._base_rows(base_model)
        rows = rows[rows["column"] == column]
        return _natural({_as_text(v) for v in rows["data_size"]}), _natural({_as_text(v) for v in rows["lr_schedule"]})

    def epoch_curves(self, base_model: str, column: str, data_size: str | None = None, schedule: str | None = None):
        """Score against epochs for one base model, benchmark, data size and schedule: one panel per tuning (full,
        LoRA), one line per training dataset with its own colour and marker, the legend outside the data. The
        title says what each point averages (runs that differ only in what the condition leaves free)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        if data_size is None or schedule is None:
            default_size, default_schedule = self.curve_condition(base_model, column)
            data_size, schedule = data_size or default_size, schedule or default_schedule
        rows = self._base_rows(base_model)
        rows = rows[(rows["column"] == column) & (rows["data_size"].map(_as_text) == (data_size or ""))
                    & (rows["lr_schedule"].map(_as_text) == (schedule or ""))]
        if rows.empty:
            fig, ax = plt.subplots(figsize=(7, 2.5))
            ax.text(0.5, 0.5, f"no runs of {base_model} with {column} at data size {data_size}, schedule {schedule}",
                    ha="center", va="center", fontsize=9)
            ax.axis("off")
            return fig
        datasets = sorted(rows["dataset"].map(_as_text).unique())
        tunings = sorted(rows["tuning"].map(_as_text).unique())
        colours = plt.get_cmap("tab20" if len(datasets) > 10 else "tab10")
        markers = "osD^v<>pPX*h"
        # constrained layout makes room in the figure for the legend beside the panels (as `gr.Plot` saves it, with
        # no `bbox_inches="tight"`, a legend outside the figure is cut off)
        fig, axes = plt.subplots(1, len(tunings), figsize=(4.5 * len(tunings) + 2.5, 4), squeeze=False, sharey=True,
                                 layout="constrained")
        per_point = rows.groupby([rows["dataset"].map(_as_text), rows["tuning"].map(_as_text), "epochs"])["run_id"].nunique()
        for ax, tuning in zip(axes[0], tunings):
            mine = rows[rows["tuning"].map(_as_text) == tuning]
            for i, dataset in enumerate(datasets):
                part = mine[mine["dataset"].map(_as_text) == dataset].groupby("epochs")["score"].mean().sort_index()
                if part.empty:
                    continue
                ax.plot(part.index.astype(int), part.to_numpy(), marker=markers[i % len(markers)],
                        color=colours(i % colours.N), label=dataset, linewidth=1.2, markersize=5)
            ax.set_title(f"{tuning}", fontsize=10)
            ax.set_xlabel("epochs")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel(f"{column} ({self.column_scale.get(column, 'score')})")
        handles, labels = [], []
        for ax in axes[0]:
            for h, label in zip(*ax.get_legend_handles_labels()):
                if label not in labels:
                    handles.append(h)
                    labels.append(label)
        fig.legend(handles, labels, loc="outside right center", fontsize=8, title="training data")
        most = int(per_point.max())
        each = "one run per point" if most == 1 else f"each point: the mean of up to {most} runs"
        fig.suptitle(f"{column} vs epochs — base {base_model}, data size {data_size}, schedule {schedule}; {each}",
                     fontsize=9)
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
        if len(table) < 3:  # no correlation to show: say so rather than draw an empty plot with r = nan
            ax.text(0.5, 0.5, f"{title}: {len(table)} point(s), too few for a correlation", ha="center",
                    va="center", fontsize=9, wrap=True)
            ax.axis("off")
            return fig
        ax.scatter(table[x], table["gain"], s=14, alpha=0.7)
        r = table[x].corr(table["gain"])
        ax.set_xlabel(x)
        ax.set_ylabel("gain (points)")
        ax.set_title(f"{title} (n={len(table)}, Pearson r={r:.2f}; one point per "
                     f"{'base model × training data, its gain the mean over their runs' if x == 'perplexity' else 'model'})",
                     fontsize=9, wrap=True)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig

    def model_map(self, colour: str = "family"):
        """The models' log-likelihood map (`hubkit analyze --loglik`), coloured by `colour` (a key of
        `MAP_COLOURS`); None when the results dataset holds no map."""
        coords = self.analysis.get("loglik_map")
        if coords is None or coords.empty:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        colour = colour if colour in MAP_COLOURS and colour in coords.columns else "family"
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        markers = "osD^vP*Xh<>"
        for k, (value, part) in enumerate(coords.groupby(coords[colour].astype(str), sort=True)):
            ax.scatter(part["x"], part["y"], s=36, marker=markers[k % len(markers)], label=str(value)[-32:])
        method = str(coords["method"].iloc[0]).upper().replace("TSNE", "t-SNE") if "method" in coords else "?"
        ax.set_title(f"{len(coords)} models by their log-likelihoods on the probe set ({method}, double-centred); "
                     f"colour: {MAP_COLOURS[colour]}", fontsize=9, wrap=True)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        fig.tight_layout()
        return fig
