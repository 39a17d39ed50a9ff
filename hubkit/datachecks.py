"""Data checks on a results table, run when results are imported and before every analysis.

A results table can be internally valid — every row passes the schema — and still mislead an analysis:

- **identical base rows**: two base models with the same score on several benchmarks cannot both be right (the
  study's CSV gives Chinese-Mistral Mistral's base row, and OLMo and LLM-jp the same score on 12 columns). Every
  fine-tune's gain on those columns is measured against a number that is not its base model's, so those gains are
  left out of every analysis, for both models — or only for the copy, when the source documents which one it is.
- **runs without a base row**: a fine-tuned run whose base model was not scored on a column has no gain there.
- **out-of-range cells**: a score outside its scale (a percentage over 100, a grade of 0): left out, and with it
  the gains measured against it.

`check_results` finds them; `apply_checks` returns the table with the distorted gains removed (set to missing;
scores are kept) and one `DataIssue` per finding, which `hubkit analyze` prints, writes to `report.md` and
`index.json` (where the leaderboard shows them), and `hubkit results import` prints. Nothing is dropped silently.

Example:
    >>> frame, issues = apply_checks(load_results_table("evaluation_result.csv"))   # doctest: +SKIP
    >>> print(issues[0].text())                                                    # doctest: +SKIP
    identical base rows: allenai/OLMo-7B-hf and llm-jp/llm-jp-3-7.2b score the same on 12 of 29 columns …
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

#: Two base rows are "identical" on a column when their scores differ by at most this many points (the study
#: writes two decimals), and the rows are flagged when that holds on at least `SAME_MIN` columns making up at
#: least `SAME_SHARE` of the columns both have. On the study's CSV, unrelated base models share at most 2.
SAME_TOLERANCE = 0.005
SAME_MIN = 3
SAME_SHARE = 0.25


@dataclass
class DataIssue:
    """One finding of the data checks.

    Attributes:
        check: `identical-base-rows`, `no-base-row` or `out-of-range`.
        subject: what it is about (base models, a run).
        detail: what was found.
        excluded: what the analyses leave out because of it.
        columns: the score columns concerned.
        rows: how many results rows lost their gain (or were dropped).
    """

    check: str
    subject: str
    detail: str
    excluded: str
    columns: list[str] = field(default_factory=list)
    rows: int = 0

    def text(self) -> str:
        return f"{self.check.replace('-', ' ')}: {self.subject}: {self.detail}; {self.excluded}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with numeric score columns, or a one-line error naming the first cell that is not a number."""
    import pandas as pd

    from .errors import HubkitError

    for name in ("score", "base_score", "gain"):
        if name in frame.columns and not pd.api.types.is_numeric_dtype(frame[name]):
            numbers = pd.to_numeric(frame[name], errors="coerce")
            bad = (numbers.isna() & frame[name].notna()).to_numpy(bool)
            if bad.any():
                i = int(bad.nonzero()[0][0])
                raise HubkitError(f"results row {i + 1} ({frame['run_id'].iloc[i]}, {frame['benchmark'].iloc[i]}): "
                                  f"{name} is {frame[name].iloc[i]!r}, not a number")
            frame = frame.assign(**{name: numbers.astype(float)})
    return frame


def _findings(frame: pd.DataFrame, known_copies: Mapping[str, str] | None) -> tuple[list[DataIssue], np.ndarray,
                                                                                     np.ndarray]:
    """The findings of a numeric frame, the rows whose gain must not be used, and the out-of-range rows."""
    import pandas as pd

    from .results import outside_range, score_columns

    known_copies = dict(known_copies or {})
    issues: list[DataIssue] = []
    columns = pd.Series(score_columns(frame), index=frame.index, dtype=object)
    keys = frame["base_model"].astype(str) + "\x1f" + columns  # a base model's score column
    base = (frame["dataset"].astype(str) == "pretrain").to_numpy(bool)
    bad = outside_range(frame) | ~np.isfinite(frame["score"].to_numpy(dtype="float64", na_value=np.nan))
    no_gain = bad.copy()

    if bad.any():
        for (model, column), part in frame[bad].assign(column=columns[bad]).groupby(["run_id", "column"], sort=True):
            issues.append(DataIssue("out-of-range", str(model), f"{column} = {part['score'].iloc[0]:g} is outside the "
                                    f"{part['scale'].iloc[0]} scale", "the cell (and any gain measured against it) "
                                    "is left out", [str(column)], len(part)))
        no_gain |= keys.isin(set(keys[bad & base])).to_numpy(bool)  # gains measured against a bad base score

    scores = frame[base & ~bad].assign(column=columns[base & ~bad]).pivot_table(
        index="base_model", columns="column", values="score", aggfunc="first")
    drop: set[str] = set()
    for a, b in itertools.combinations(sorted(scores.index), 2):
        both = scores.loc[[a, b]].dropna(axis=1)
        same = both.columns[(both.loc[a] - both.loc[b]).abs().to_numpy() <= SAME_TOLERANCE]
        if len(same) < SAME_MIN or len(same) < SAME_SHARE * both.shape[1]:
            continue
        copy = next((x for x, y in ((a, b), (b, a)) if known_copies.get(x) == y), None)
        hit = [copy] if copy else [a, b]
        these = {f"{m}\x1f{c}" for m in hit for c in same}
        drop |= these
        who = (f"{copy}'s base row is a copy of {known_copies[copy]}'s (documented by the source)" if copy else
               "which is right cannot be told from the table")
        issues.append(DataIssue(
            "identical-base-rows", f"{a} and {b}",
            f"the base models score the same on {len(same)} of the {both.shape[1]} columns both have ({who})",
            f"gains of {' and '.join(hit)} on those columns are left out of every analysis", sorted(same),
            int((~base & keys.isin(these).to_numpy(bool)).sum())))
    no_gain |= ~base & keys.isin(drop).to_numpy(bool)

    missing = ~base & ~keys.isin(set(keys[base])).to_numpy(bool)
    if missing.any():
        based = set(frame["base_model"][base])
        for model, rows in frame[missing].assign(column=columns[missing]).groupby("base_model", sort=True):
            detail = ("has no base-model row" if model not in based else
                      f"has no base score on {rows['column'].nunique()} column(s) its fine-tunes were scored on")
            issues.append(DataIssue("no-base-row", str(model), detail,
                                    f"{rows['run_id'].nunique()} run(s) have no gain there and are left out of the "
                                    "analyses of those columns", sorted(map(str, rows["column"].unique())), len(rows)))
    return issues, no_gain, bad


def check_results(frame: pd.DataFrame, known_copies: Mapping[str, str] | None = None) -> tuple[list[DataIssue], np.ndarray]:
    """The data checks' findings, and a mask of the rows whose gain the analyses must not use.

    Args:
        frame: results rows (`results.normalize`d).
        known_copies: base model → the base model whose row the source copied into it (documented quirks, e.g.
            the study's Chinese-Mistral): only the copy's gains are then left out.
    """
    issues, no_gain, _ = _findings(numeric(frame), known_copies)
    return issues, no_gain


def apply_checks(frame: pd.DataFrame, known_copies: Mapping[str, str] | None = None) -> tuple[pd.DataFrame,
                                                                                             list[DataIssue]]:
    """`frame` without the gains the checks distrust (set to missing; out-of-range rows dropped), and the findings."""
    frame = numeric(frame)
    issues, no_gain, bad = _findings(frame, known_copies)
    if not no_gain.any():
        return frame, issues
    frame = frame.copy()
    frame.loc[no_gain, ["gain"]] = np.nan
    return frame[~bad].reset_index(drop=True), issues
