"""The analyses' figures: diverging heatmaps centred at 0 with a colour bar, forest plots of paired
differences, faceted curves with a distinct colour and marker per series and the legend outside the data.

Every figure says its condition and n in its title or caption; one figure never mixes metric scales on one
colour or value axis.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

UNITS = {"percent": "points", "1-10": "grade points (1–10 scale)", "raw": "raw units"}
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.savefig(path, metadata={"Software": None}, bbox_inches="tight", dpi=90)
    _plt().close(fig)
    return path


def _caption(fig, text: str) -> None:
    """The caption, under everything already drawn (rotated tick labels and axis labels reach below the axes)."""
    renderer = fig.canvas.get_renderer()
    bottom = fig.get_tightbbox(renderer).y0 * fig.dpi / fig.bbox.height  # inches → figure fraction
    fig.text(0.01, min(bottom, 0.0) - 0.01, "\n".join(textwrap.wrap(text, 160)), fontsize=7, va="top", ha="left",
             color="#333")


def _name(text) -> str:
    return text.get_text().strip().splitlines()[0][:60]


def _crowded(axis, labels: list, angle: float, renderer) -> list[tuple[str, str]]:
    """Neighbouring rotated tick labels that touch: the ticks' spacing across the text's direction is under a
    line of text."""
    import math

    from matplotlib.axis import XAxis

    anchors = [t.get_transform().transform(t.get_position()) for t in labels]  # where each label's tick is
    centres = [p[0] if isinstance(axis, XAxis) else p[1] for p in anchors]
    height = labels[0].get_fontsize() * labels[0].figure.dpi / 72
    out = []
    for (a, ca), (b, cb) in zip(zip(labels, centres), zip(labels[1:], centres[1:])):
        if abs(cb - ca) * math.sin(math.radians(angle)) < height * 0.9:
            out.append((_name(a), _name(b)))
    return out


def _outline(text, box, renderer) -> np.ndarray:
    """The four corners of a text as drawn: its box, or for rotated text the rotated rectangle inside it."""
    import math

    angle = text.get_rotation() % 180
    if angle in (0, 90) or "\n" in text.get_text():
        return np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]])
    w, h, _ = renderer.get_text_width_height_descent(text.get_text(), text.get_fontproperties(), ismath=False)
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    x0, y0 = box.x0, box.y0
    return np.array([[x0 + h * s, y0], [x0 + h * s + w * c, y0 + w * s], [x0 + w * c, y0 + w * s + h * c],
                     [x0, y0 + h * c]])


def _intersect(a: np.ndarray, b: np.ndarray, tolerance: float = 1.0) -> bool:
    """Whether two convex quadrilaterals overlap by more than `tolerance` pixels (separating-axis test)."""
    for poly in (a, b):
        for i in range(4):
            edge = poly[(i + 1) % 4] - poly[i]
            normal = np.array([-edge[1], edge[0]])
            norm = np.hypot(*normal)
            if norm == 0:
                continue
            normal /= norm
            pa, pb = a @ normal, b @ normal
            if min(pa.max(), pb.max()) - max(pa.min(), pb.min()) <= tolerance:
                return False
    return True


def _shown_ticklabels(axis) -> list:
    """The tick labels a draw shows: visible, at a tick inside the view (matplotlib keeps labels for ticks just
    beyond the limits, undrawn)."""
    from matplotlib.axis import XAxis

    low, high = sorted(axis.get_view_interval())
    span = (high - low) * 1e-9
    at = 0 if isinstance(axis, XAxis) else 1
    return [t for t in axis.get_ticklabels() if t.get_visible() and low - span <= t.get_position()[at] <= high + span]


def _drawn_texts(fig) -> list:
    """The texts a draw of `fig` shows: its own texts and legends; per panel its titles, and when its axes are on,
    the visible tick labels, axis labels and legend (not the numbers inside heatmap cells)."""
    texts = list(fig.texts) + ([fig._suptitle] if fig._suptitle is not None else [])
    legends = list(fig.legends)
    for ax in fig.axes:
        texts += [ax.title, ax._left_title, ax._right_title]
        if ax.axison:
            for axis in (ax.xaxis, ax.yaxis):
                texts += _shown_ticklabels(axis)
                texts += [axis.label, axis.get_offset_text()]
        if ax.get_legend() is not None:
            legends.append(ax.get_legend())
    for legend in legends:
        texts += [*legend.get_texts(), legend.get_title()]
    unique = {id(t): t for t in texts}
    return [t for t in unique.values() if t.get_visible() and t.get_text().strip()]


def text_overlaps(fig) -> list[tuple[str, str]]:
    """Pairs of visible texts of `fig` whose drawn boxes intersect (titles, captions, axis and tick labels,
    legends, colour-bar labels; not the numbers written inside heatmap cells, which sit in their cells).

    Example:
        >>> fig = heatmap_figure([("a", matrix)], "gain", "caption")     # doctest: +SKIP
        >>> text_overlaps(fig)                                          # doctest: +SKIP
        []
    """
    fig.canvas.draw()  # positions (legends, tick labels) are settled by a draw
    renderer = fig.canvas.get_renderer()
    out: list[tuple[str, str]] = []
    boxes = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = [t for t in _shown_ticklabels(axis) if t.get_text().strip()]
            angle = abs(labels[0].get_rotation()) % 180 if labels else 0
            if labels and angle not in (0, 90):
                out += _crowded(axis, labels, angle, renderer)
    for artist in _drawn_texts(fig):
        box = artist.get_window_extent(renderer)
        if box.width > 0 and box.height > 0:
            boxes.append((artist, _outline(artist, box, renderer)))
    for i, (a, poly_a) in enumerate(boxes):
        for b, poly_b in boxes[i + 1:]:
            if _intersect(poly_a, poly_b):
                out.append((_name(a), _name(b)))
    return out


def _bound(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    return float(np.quantile(finite, 0.98)) if finite.size and np.quantile(finite, 0.98) > 0 else 1.0


def aligned(panels: list[tuple[str, pd.DataFrame]]) -> list[tuple[str, pd.DataFrame]]:
    """The non-empty matrices reindexed to the same rows and columns (the union, in first-seen order)."""
    panels = [(t, m) for t, m in panels if not m.empty]
    rows_order: list = []
    cols_order: list = []
    for _, m in panels:
        rows_order += [r for r in m.index if r not in rows_order]
        cols_order += [c for c in m.columns if c not in cols_order]
    return [(t, m.reindex(index=rows_order, columns=cols_order)) for t, m in panels]


def heatmap_panels(panels: list[tuple[str, pd.DataFrame]], path: Path, label: str, caption: str,
                   bound: float | None = None, cols: int = 3) -> Path | None:
    """Panels of matrices on one diverging colour scale centred at 0, with one colour bar, saved to `path`.

    Every panel is reindexed to the same rows and columns (`aligned`), so a cell sits at the same place in
    every panel; missing cells are grey.
    """
    fig = heatmap_figure(panels, label, caption, bound, cols)
    return None if fig is None else _save(fig, path)


def heatmap_figure(panels: list[tuple[str, pd.DataFrame]], label: str, caption: str, bound: float | None = None,
                   cols: int = 3):
    """The figure of `heatmap_panels` (None when every matrix is empty)."""
    matrices = aligned(panels)
    if not matrices:
        return None
    plt = _plt()
    rows_order, cols_order = list(matrices[0][1].index), list(matrices[0][1].columns)
    values = np.concatenate([m.to_numpy(float).ravel() for _, m in matrices])
    bound = bound or _bound(values)
    cols = min(cols, len(matrices))
    nrows = (len(matrices) + cols - 1) // cols
    width = max(4.0, 0.28 * len(cols_order) + 2.0)
    height = max(2.5, 0.28 * len(rows_order) + 1.6)
    fig, axes = plt.subplots(nrows, cols, figsize=(width * cols + 1.2, height * nrows), squeeze=False)
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="#d9d9d9")
    image = None
    for i, (ax, (title, m)) in enumerate(zip(axes.flat, matrices)):
        image = ax.imshow(np.ma.masked_invalid(m.to_numpy(float)), cmap=cmap, vmin=-bound, vmax=bound, aspect="auto")
        ax.set_title(str(title), fontsize=9)
        bottom = i + cols >= len(matrices)  # tick labels on the outer panels only: the cells line up below
        ax.set_xticks(range(len(cols_order)), [str(c) for c in cols_order] if bottom else [], rotation=70,
                      ha="right", fontsize=6)
        ax.set_yticks(range(len(rows_order)), [str(r) for r in rows_order] if i % cols == 0 else [], fontsize=6)
    for ax in list(axes.flat)[len(matrices):]:
        ax.axis("off")
    fig.colorbar(image, ax=list(axes.flat), shrink=0.7, label=label)
    _caption(fig, caption)
    return fig


def forest(table: pd.DataFrame, path: Path, xlabel: str, title: str, caption: str, panel: str = "scale",
           units: dict[str, str] | None = None) -> Path | None:
    """Mean (or r) with its 95 % interval per benchmark column; one panel per value of `panel` (by default
    the metric scale, so points and grade points never share an axis)."""
    if table.empty:
        return None
    plt = _plt()
    units = UNITS if units is None else units
    present = list(dict.fromkeys(table[panel]))
    scales = [s for s in ("percent", "1-10", "raw") if s in present] + [s for s in present
                                                                        if s not in ("percent", "1-10", "raw")]
    heights = [max(1.5, 0.22 * (table[panel] == s).sum() + 0.8) for s in scales]
    fig, axes = plt.subplots(len(scales), 1, figsize=(7, sum(heights) + 0.8), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, scale in zip(axes[:, 0], scales):
        part = table[table[panel] == scale].sort_values("mean")
        y = np.arange(len(part))
        excludes = (part["ci_low"] > 0) | (part["ci_high"] < 0)
        colours = np.where(excludes, "#b2182b", "#4d4d4d")
        for yi, low, high, colour in zip(y, part["ci_low"], part["ci_high"], colours):
            ax.plot([low, high], [yi, yi], color=colour, lw=1.2)
        ax.scatter(part["mean"], y, c=colours, s=18, zorder=3)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_yticks(y, [f"{c} (n={n})" for c, n in zip(part["column"], part["pairs"])], fontsize=7)
        ax.set_xlabel(f"{xlabel} ({units.get(scale, scale)})", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_title(title, fontsize=10)
    _caption(fig, caption + " Red: the 95 % interval excludes 0.")
    return _save(fig, path)


def ranked_heatmap(matrix: pd.DataFrame, ranks: pd.DataFrame, path: Path, label: str, title: str,
                   caption: str) -> Path | None:
    """Rows × columns of values on a diverging scale centred at 0, each cell annotated with its rank."""
    if matrix.empty:
        return None
    plt = _plt()
    values = matrix.to_numpy(float)
    bound = _bound(values)
    fig, ax = plt.subplots(figsize=(0.75 * matrix.shape[1] + 3.5, 0.42 * matrix.shape[0] + 2))
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="#d9d9d9")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-bound, vmax=bound, aspect="auto")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            rank = ranks.iat[i, j]
            if rank == rank:  # not NaN
                ax.text(j, i, f"{int(rank)}", ha="center", va="center", fontsize=7,
                        color="white" if abs(values[i, j]) > 0.6 * bound else "black")
    ax.set_xticks(range(matrix.shape[1]), [str(c) for c in matrix.columns], rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(matrix.shape[0]), [str(r) for r in matrix.index], fontsize=7)
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.8, label=label)
    _caption(fig, caption)
    return _save(fig, path)


def facet_lines(frame: pd.DataFrame, facet: str, series: str, x: str, y: str, path: Path, ylabel: str,
                title: str, caption: str, cols: int = 3) -> Path | None:
    """One panel per `facet`, one line per `series` with its own colour and marker; the legend sits outside."""
    if frame.empty:
        return None
    plt = _plt()
    facets = sorted(frame[facet].astype(str).unique())
    names = sorted(frame[series].astype(str).unique())
    colours = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    style = {n: (colours(i % colours.N), MARKERS[i % len(MARKERS)]) for i, n in enumerate(names)}
    cols = min(cols, len(facets))
    nrows = (len(facets) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols + 2.2, 3.0 * nrows), squeeze=False, sharey=True)
    for ax, name in zip(axes.flat, facets):
        part = frame[frame[facet].astype(str) == name]
        for s, line in part.groupby(part[series].astype(str)):
            line = line.sort_values(x)
            colour, marker = style[s]
            ax.plot(line[x], line[y], color=colour, marker=marker, ms=4, lw=1.2, label=s)
        ax.axhline(0, color="grey", lw=0.6)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(x, fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize=8)
    for ax in list(axes.flat)[len(facets):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=c, marker=m, lw=1.2, label=n) for n, (c, m) in style.items()]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, title=series)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _caption(fig, caption)
    return _save(fig, path)


def pca_figure(explained: pd.DataFrame, scores: pd.DataFrame, path: Path, caption: str) -> Path | None:
    """Explained variance per component (with the cumulative share), and the patterns on PC1 × PC2."""
    if explained.empty:
        return None
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    k = np.arange(1, len(explained) + 1)
    left.bar(k, explained["explained"] * 100, color="#4393c3", label="component")
    left.plot(k, explained["cumulative"] * 100, color="#b2182b", marker="o", label="cumulative")
    left.axhline(90, color="grey", ls="--", lw=0.8)
    left.set_xlabel("principal component")
    left.set_ylabel("variance of gain patterns explained (%)")
    left.legend(fontsize=7, loc="center right")
    if {"PC1", "PC2"} <= set(scores.columns):
        names = sorted(scores["dataset"].astype(str).unique())
        colours = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
        for i, name in enumerate(names):
            part = scores[scores["dataset"].astype(str) == name]
            right.scatter(part["PC1"], part["PC2"], s=22, color=colours(i % colours.N),
                          marker=MARKERS[i % len(MARKERS)], label=name)
        right.set_xlabel(f"PC1 ({explained['explained'].iloc[0]:.0%})")
        if len(explained) > 1:
            right.set_ylabel(f"PC2 ({explained['explained'].iloc[1]:.0%})")
        right.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5), title="training data")
        right.grid(alpha=0.3)
    fig.tight_layout()
    _caption(fig, caption)
    return _save(fig, path)


def grouped_bars(table: pd.DataFrame, group: str, series: str, path: Path, ylabel: str, title: str,
                 caption: str) -> Path | None:
    """Mean with its 95 % interval, bars grouped by `group`, one colour per `series`."""
    if table.empty:
        return None
    plt = _plt()
    groups = list(dict.fromkeys(table[group].astype(str)))
    names = list(dict.fromkeys(table[series].astype(str)))
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(1.6 * len(groups) + 3, 4))
    colours = plt.get_cmap("tab10")
    for i, name in enumerate(names):
        part = table[table[series].astype(str) == name]
        part = part.set_index(part[group].astype(str)).reindex(groups)
        x = np.arange(len(groups)) + (i - (len(names) - 1) / 2) * width
        err = np.vstack([part["mean"] - part["ci_low"], part["ci_high"] - part["mean"]])
        ax.bar(x, part["mean"], width, color=colours(i % 10), label=name, yerr=np.nan_to_num(err), capsize=2)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), title=series)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    _caption(fig, caption)
    return _save(fig, path)


def depth_curve(table: pd.DataFrame, path: Path, caption: str) -> Path | None:
    """Correlation of weight change with gain per normalised depth, with bootstrap bands."""
    if table.empty:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, (method, part) in enumerate(table.groupby("method")):
        ax.plot(part["depth"], part["r"], marker=MARKERS[i], label=method)
        ax.fill_between(part["depth"], part["ci_low"], part["ci_high"], alpha=0.15)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("normalised layer depth")
    ax.set_ylabel("correlation: weight change vs mean gain")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _caption(fig, caption)
    return _save(fig, path)
