"""Conditions: which results rows an analysis uses, said explicitly, and the statistics that respect them.

A study like the one hubkit reproduces crosses six axes (base model × training data × data size × full/LoRA
× epochs × learning-rate schedule), and not every axis is crossed with every other: 20,000-example runs exist
only with a constant schedule, LoRA only at 1,000 examples with cosine decay, leave-one-out sets only for one
base model. An analysis that averages over an axis it does not name mixes those sub-grids and can reverse
a finding. So every analysis runs on a `Condition`: a value (or "any") for each axis. The default is the
study's main grid: 1,000 examples, cosine schedule, epoch 10, full-parameter, the single training sets.

Comparisons along one axis (LoRA vs full, 1k vs 20k, epochs, leave-one-out) free that axis and **pair**
runs that agree on every other axis. Their confidence intervals come from a cluster bootstrap (`stats`) that
resamples training runs (lineages), not evaluated checkpoints: the ten epochs of one run are not ten
independent observations; beside it, the interval that resamples base models.

Example:
    >>> from hubkit.analysis.conditions import MAIN_GRID
    >>> MAIN_GRID.replace(tuning="lora").text()
    'data size 1,000 · cosine schedule · epoch 10 · LoRA · single training sets · full-benchmark scores'
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import HubkitError
from ..utils import did_you_mean
from .stats import cluster_bootstrap_mean

if TYPE_CHECKING:
    import pandas as pd

ANY = "any"
DATASET_KINDS = ("single", "all", "leave-one-out", ANY)
# What identifies one training run: its evaluated epochs are checkpoints of the same lineage.
LINEAGE = ["base_model", "dataset", "data_size", "tuning", "lr_schedule"]
MATCH = ["base_model", "dataset", "data_size", "tuning", "epochs", "lr_schedule"]


def dataset_kind(name: Any) -> str:
    """`single` (one training set), `all` (the sets merged), `leave-one-out` (`w/o-X`) or `base` (`pretrain`)."""
    name = str(name)
    if name == "pretrain":
        return "base"
    if name == "all":
        return "all"
    if name.startswith("w/o-"):
        return "leave-one-out"
    return "single"


@dataclass(frozen=True)
class Condition:
    """A filter on every axis of the grid; `None` means any value (and the analysis says it pooled that axis).

    Args:
        data_size: training examples.
        lr_schedule: `cosine` or `constant`.
        epochs: the evaluated epoch.
        tuning: `full` or `lora`.
        datasets: `single`, `all`, `leave-one-out`, `any`, or training-set names separated by commas.
        base_models: base-model ids separated by commas; empty for every base model.
        samples: `full` (scores on whole benchmarks only) or `any` (subset scores too: `--limit`, `tiny`).
    """

    data_size: int | None = field(default=1000, metadata={"help": "Training examples (`any`: every size)."})
    lr_schedule: str | None = field(default="cosine", metadata={"help": "Learning-rate schedule."})
    epochs: int | None = field(default=10, metadata={"help": "The evaluated epoch."})
    tuning: str | None = field(default="full", metadata={"help": "`full` or `lora`."})
    datasets: str = field(default="single", metadata={
        "help": "`single`, `all`, `leave-one-out`, `any`, or training-set names separated by commas."})
    base_models: str = field(default="", metadata={"help": "Base-model ids separated by commas (empty: all)."})
    samples: str = field(default="full", metadata={"help": "`full`: whole-benchmark scores only; `any`: subsets too."})

    def replace(self, **changes: Any) -> Condition:
        return dataclasses.replace(self, **changes)

    def free(self, axis: str) -> Condition:
        """This condition with `axis` left open: the axis an analysis compares along."""
        if axis == "dataset":
            return self.replace(datasets=ANY)
        return self.replace(**{axis: None})

    def pooled(self) -> list[str]:
        """The axes this condition leaves open (an analysis that averages over them pools those levels)."""
        out = [a for a in ("data_size", "lr_schedule", "epochs", "tuning") if getattr(self, a) is None]
        if self.datasets == ANY:
            out.append("dataset")
        return out

    def select(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The fine-tuned models' rows with a gain that this condition admits."""
        rows = frame[(frame["dataset"] != "pretrain") & frame["gain"].notna()]
        keep = np.ones(len(rows), bool)
        for axis in ("data_size", "epochs"):
            value = getattr(self, axis)
            if value is not None:
                keep &= (rows[axis] == value).fillna(False).to_numpy(bool)
        for axis in ("lr_schedule", "tuning"):
            value = getattr(self, axis)
            if value is not None:
                keep &= (rows[axis] == value).to_numpy(bool)
        kinds = rows["dataset"].map(dataset_kind)
        if self.datasets in ("single", "all", "leave-one-out"):
            keep &= (kinds == self.datasets).to_numpy(bool)
        elif self.datasets != ANY:
            keep &= rows["dataset"].isin(split_names(self.datasets)).to_numpy(bool)
        if self.base_models:
            keep &= rows["base_model"].isin(split_names(self.base_models)).to_numpy(bool)
        if self.samples == "full":
            keep &= rows["subset"].astype("boolean").eq(False).fillna(False).to_numpy(bool)
        return rows[keep]

    def text(self) -> str:
        """The condition in words, as every table, plot and report paragraph states it."""
        parts = [
            "any data size" if self.data_size is None else f"data size {self.data_size:,}",
            "any schedule" if self.lr_schedule is None else f"{self.lr_schedule} schedule",
            "any epoch" if self.epochs is None else f"epoch {self.epochs}",
            "full-parameter and LoRA" if self.tuning is None else {"full": "full-parameter", "lora": "LoRA"}.get(
                self.tuning, self.tuning),
            {"single": "single training sets", "all": "all sets merged", "leave-one-out": "leave-one-out sets",
             ANY: "any training data"}.get(self.datasets, f"training data {self.datasets}"),
        ]
        if self.base_models:
            parts.append(f"base models {self.base_models}")
        parts.append("full-benchmark scores" if self.samples == "full" else "subset scores included")
        return " · ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Condition:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


MAIN_GRID = Condition()


def split_names(text: str) -> list[str]:
    """`"a, b"` → `["a", "b"]`: the names of a `datasets` or `base_models` filter."""
    return [n.strip() for n in str(text).split(",") if n.strip()]


def parse_where(items: list[str] | None) -> dict[str, Any]:
    """`["tuning=lora", "epochs=any"]` → `{"tuning": "lora", "epochs": None}`: overrides of a condition.

    Raises:
        HubkitError: an item without `=`, an unknown key, or a value of the wrong kind.
    """
    names = [f.name for f in dataclasses.fields(Condition)]
    aliases = {"dataset": "datasets", "base_model": "base_models", "schedule": "lr_schedule", "size": "data_size"}
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise HubkitError(f"--where {item!r}: expected KEY=VALUE, e.g. tuning=lora")
        key, value = (s.strip() for s in item.split("=", 1))
        key = aliases.get(key, key)
        if key not in names:
            raise HubkitError(f"--where: unknown key `{key}`{did_you_mean(key, names)} "
                              f"(known: {', '.join(names)})")
        if key in ("data_size", "epochs"):
            if value.lower() == ANY:
                out[key] = None
                continue
            try:
                out[key] = int(float(value))
            except ValueError:
                raise HubkitError(f"--where {key}={value!r}: expected a whole number or `any`") from None
        elif key in ("lr_schedule", "tuning"):
            out[key] = None if value.lower() == ANY else value
        elif key == "samples":
            if value not in ("full", ANY):
                raise HubkitError(f"--where samples={value!r}: expected `full` or `any`")
            out[key] = value
        else:
            out[key] = value
    return out


# -- pairing ------------------------------------------------------------------------------------------

def lineage_keys(frame: pd.DataFrame, axes: list[str]) -> np.ndarray:
    """One string per row naming its cluster (the values of `axes`)."""
    if frame.empty:
        return np.array([], dtype=object)
    keys = frame[axes[0]].astype(str)
    for axis in axes[1:]:
        keys = keys + "|" + frame[axis].astype(str)
    return keys.to_numpy(dtype=object)


def paired(cells: pd.DataFrame, axis: str, a: Any, b: Any, match: list[str], value: str = "gain",
           key: Any = None) -> pd.DataFrame:
    """Pairs of cells equal on every axis of `match` but `axis` (`a` vs `b`), with `diff` = b − a.

    `cells` holds one row per run and benchmark column (`column`). `key` maps `a`/`b` to the level each
    row is compared as (e.g. `w/o-X` → `w/o`, when several levels pair with one reference).
    """
    import pandas as pd

    levels = cells[axis].map(key) if key else cells[axis]
    on = [k for k in match if k != axis] + ["column"]
    left = cells[(levels == a).to_numpy(bool)]
    right = cells[(levels == b).to_numpy(bool)]
    if left.empty or right.empty:
        return pd.DataFrame(columns=[*on, f"{axis}_a", f"{axis}_b", "a", "b", "diff"])
    keep = [*on, axis, value]
    merged = left[keep].merge(right[keep], on=on, suffixes=("_a", "_b"))
    merged = merged.rename(columns={f"{value}_a": "a", f"{value}_b": "b"})
    merged["diff"] = merged["b"] - merged["a"]
    return merged


def summarize_pairs(pairs: pd.DataFrame, clusters: list[str], by: list[str]) -> pd.DataFrame:
    """Per group of `by`: pairs, clusters, mean difference, its cluster-bootstrap 95 % interval and p-value
    resampling training runs (`clusters`), and the interval resampling base models (`ci_low_bases`,
    `ci_high_bases`: whether the difference holds for other base models, not only other runs of these)."""
    import pandas as pd

    out = []
    for group, part in pairs.groupby(by, sort=True, dropna=False):
        group = group if isinstance(group, tuple) else (group,)
        keys = lineage_keys(part, clusters)
        diff = part["diff"].to_numpy(float)
        est = cluster_bootstrap_mean(diff, keys)
        bases = cluster_bootstrap_mean(diff, part["base_model"].to_numpy()) if "base_model" in part else None
        out.append({**dict(zip(by, group)), "pairs": len(part), "runs": len(set(keys)),
                    "bases": bases.clusters if bases else 0, "mean": est.mean, "ci_low": est.ci_low,
                    "ci_high": est.ci_high, "p": est.p,
                    "ci_low_bases": bases.ci_low if bases else np.nan, "ci_high_bases": bases.ci_high if bases else np.nan})
    return pd.DataFrame(out, columns=[*by, "pairs", "runs", "bases", "mean", "ci_low", "ci_high", "p",
                                      "ci_low_bases", "ci_high_bases"])
