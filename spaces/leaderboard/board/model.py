"""The leaderboard's data model: one row per model, one column per benchmark; ranking, pages, details, compare and
export. Figures are `plots.Board`, built on this."""

from __future__ import annotations

import functools
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .schema import (
    AXES,
    AXIS_TITLES,
    BENCHMARKS,
    DEFAULT_COLUMNS,
    GROUPS,
    MID_DEPTH,
    OPTIONAL_COLUMNS,
    PAGE_SIZE,
    REPO_ID,
    SCALE_TITLES,
    SHOT_SETTINGS,
    TITLE_AXES,
    _as_text,
    _column_labels,
    _complete_block,
    _group,
    _md,
    _natural,
    _number,
    _order,
    _release_free_memory,
    _samples,
    _setting,
    _shell,
    _summary,
    _text_category,
    complete,
)


@dataclass
class BoardData:
    """A results table as the leaderboard shows it: one row per model, one column per benchmark."""

    long: pd.DataFrame
    endpoint: str = "https://huggingface.co"
    analysis: dict[str, pd.DataFrame] = field(default_factory=dict)
    analyses: list[dict[str, Any]] = field(default_factory=list)  # `load_study_analyses`
    checks: list[dict[str, Any]] = field(default_factory=list)  # `load_data_checks`

    def __post_init__(self) -> None:
        long = complete(self.long)
        long["column"] = _column_labels(long)
        if long["run_id"].isna().any():
            long = long[long["run_id"].notna()]
        self.long = long
        # one score per model and column (the first row kept, as publishing deduplicated them), few columns
        first = long.loc[~long.duplicated(["run_id", "column"]).to_numpy(),
                         ["run_id", "column", "benchmark", "n_shot", "headline", "scale", "higher_is_better", "score",
                          "gain", "subset", "n_samples"]]
        kind = first.drop_duplicates("column").assign(column=lambda f: f["column"].astype(str)).set_index("column")
        self.column_group = {c: _group(str(b)) for c, b in kind["benchmark"].items()}
        self.column_shots = shots = {c: (None if pd.isna(n) else int(n)) for c, n in kind["n_shot"].items()}
        # by group, then benchmark, then shot count (NQ-open's 5-shot before its 25-shot)
        self.columns = sorted(kind.index, key=lambda c: (GROUPS.index(self.column_group[c]),
                                                         str(kind.loc[c, "benchmark"]),
                                                         -1 if shots[c] is None else shots[c], c))
        order = self.columns
        meta = long.drop_duplicates("run_id")[["run_id", "model_id", "has_repo", *AXES, "source"]]
        meta = meta.set_index(pd.Index(meta["run_id"].astype(str), name="run_id")).drop(columns="run_id")
        self.meta = meta
        # the score matrices, filled by position from the categorical codes (no per-row strings)
        runs = first["run_id"].cat
        run_pos = meta.index.get_indexer(runs.categories.astype(str))[runs.codes.to_numpy()]
        where = {c: i for i, c in enumerate(order)}
        columns = first["column"].cat
        col_pos = np.array([where[str(c)] for c in columns.categories], dtype="int64")[columns.codes.to_numpy()]

        def matrix(values: np.ndarray) -> pd.DataFrame:
            out = np.full((len(meta), len(order)), np.nan)
            out[run_pos, col_pos] = values
            return pd.DataFrame(out, index=meta.index, columns=order)

        self.scores = matrix(first["score"].to_numpy(dtype="float64", na_value=np.nan))
        self.gains = matrix(first["gain"].to_numpy(dtype="float64", na_value=np.nan))
        # how each score was measured: a full-benchmark score (1), a subset (0) or unknown (NaN)
        subset = first["subset"].astype("boolean")
        self.full = matrix(np.where(subset.isna().to_numpy(), np.nan,
                                    np.where(subset.to_numpy(dtype=bool, na_value=False), 0.0, 1.0)))
        # whether a score is its source's headline for the benchmark (the registry's metric, or a one-metric source's)
        self.head = matrix(first["headline"].to_numpy(dtype="float64"))
        self.column_scale = kind["scale"].astype(str).to_dict()
        # one metric per benchmark enters an average: a headline score, on the percent scale, higher is better
        heads = first.groupby("column", observed=True)["headline"].any()
        self.averaged = [c for c in order if self.column_scale.get(c) == "percent"
                         and bool(kind.loc[c, "higher_is_better"]) and bool(heads.get(c, False))]
        self._averaged = set(self.averaged)
        self._column_at = {c: i for i, c in enumerate(order)}
        # each shot setting's columns: a column without a shot count is in both
        study = {c: BENCHMARKS.get(str(b), {}).get("n_shot") or 0 for c, b in kind["benchmark"].items()}
        self.shot_columns = {"0-shot": [c for c in order if shots[c] in (None, 0)],
                             "study": [c for c in order if shots[c] in (None, study[c])]}
        cells = self._full_cells()
        self.default_shots = max(SHOT_SETTINGS, key=lambda k: (int(cells.reindex(self.shot_columns[k]).sum()),
                                                               k == "study"))
        self._samples = pd.Series(self._samples_text(first, run_pos, meta.index), index=meta.index)
        # per-model text: categoricals (few distinct values); repo links and commands are made per page
        self._axis_text = pd.DataFrame({a: _text_category(meta[a]) for a in AXES}, index=meta.index)
        # what sorting by an axis compares: numbers for data size and epochs, text for the rest
        self._axis_key = pd.DataFrame({a: pd.to_numeric(meta[a], errors="coerce") if a in ("data_size", "epochs")
                                       else self._axis_text[a] for a in AXES}, index=meta.index)
        self._model_ids = _text_category(meta["model_id"])
        self._cards: dict[str, str | None] = {}
        self._curves: dict[str, pd.DataFrame | None] = {}
        _release_free_memory()

    @staticmethod
    def _samples_text(first: pd.DataFrame, run_pos: np.ndarray, index: pd.Index) -> pd.Categorical:
        """Per model: `full`, `subset (n=8)` (the smallest subset it was scored on), `mixed` or `unknown`;
        counted with one pass over the scores by model position (`run_pos`), text made once per distinct value."""
        subset = first["subset"].astype("boolean")
        unknown = subset.isna().to_numpy()
        sub = subset.to_numpy(dtype=bool, na_value=False)
        n_models = len(index)
        count = lambda mask: np.bincount(run_pos[mask], minlength=n_models)  # noqa: E731
        n_sub, n_unknown, n_full = count(sub), count(unknown), count(~sub & ~unknown)
        n = np.full(n_models, np.inf)
        sizes = first["n_samples"].to_numpy(dtype="float64", na_value=np.nan)
        sized = sub & ~np.isnan(sizes)
        np.minimum.at(n, run_pos[sized], sizes[sized])
        has_sub = n_sub > 0
        label = np.where(n_full + n_sub + n_unknown == 0, -3, np.where(
            has_sub, np.where(np.isfinite(n), n, -1), np.where((n_full > 0) & (n_unknown == 0), -2, -3)))
        plus = has_sub & (n_full > 0)
        key = pd.Series(label * 2 + plus)  # one text per distinct (kind, smallest n, with full) pair
        codes, uniques = pd.factorize(key)
        texts = []
        for k in uniques:
            value, with_full = divmod(int(k), 2)
            text = {-3: "unknown", -2: "full", -1: "subset"}.get(value, f"subset (n={value})")
            texts.append(text + (" + full" if with_full else ""))
        return pd.Categorical.from_codes(codes, categories=pd.Index(texts).unique()) if len(set(texts)) == len(texts) \
            else pd.Categorical(np.array(texts, dtype=object)[codes])

    @functools.cached_property
    def _search(self) -> pd.Series:
        """Per model, the lower-case text a search matches: run id, model id and every axis (made on first search)."""
        search = self.meta.index.to_series().astype(str) + " " + self._model_ids.astype(object)
        for axis in AXES:
            search = search + " " + self._axis_text[axis].astype(object)
        return search.str.lower()

    @functools.cached_property
    def _linked(self) -> pd.Series:
        """Per model, whether it links to a repo: published, with a repo id for a name (checked once per name)."""
        ids = self._model_ids.cat
        valid = np.array([bool(REPO_ID.fullmatch(str(c))) for c in ids.categories] + [False])
        return self.meta["has_repo"].astype(bool) & pd.Series(valid[ids.codes.to_numpy()], index=self.meta.index)

    # -- choices for the filters -------------------------------------------------------------------------

    def choices(self, axis: str) -> list[str]:
        return _natural(v for v in self._axis_text[axis].unique() if v)

    # -- the table -------------------------------------------------------------------------------------------

    def select(self, search: str = "", filters: dict[str, list[str]] | None = None) -> pd.Index:
        """The run ids that match the search text (every word) and the filters (any listed value per axis)."""
        return self.meta.index[self._positions(search, filters)]

    def _positions(self, search: str = "", filters: dict[str, list[str]] | None = None) -> np.ndarray:
        """`select`'s models as row positions (of `meta` and of every score matrix, which share its order)."""
        mask = np.ones(len(self.meta), dtype=bool)
        for axis, values in (filters or {}).items():
            if values:
                mask &= self._axis_text[axis].isin([str(v) for v in values]).to_numpy()
        for word in (search or "").lower().split():
            mask &= self._search.str.contains(word, regex=False).to_numpy(dtype=bool)
        return np.flatnonzero(mask)

    def _take(self, matrix: pd.DataFrame, rows: np.ndarray, ids: pd.Index, columns: list[str]) -> pd.DataFrame:
        """`matrix.loc[ids, columns]` by position (label lookups of 100,000 ids cost tens of milliseconds)."""
        at = self._column_at
        values = matrix.to_numpy()[np.ix_(rows, [at[c] for c in columns])]
        return pd.DataFrame(values, index=ids, columns=columns)

    def benchmark_columns(self, groups: list[str] | None = None, shots: str | None = None) -> list[str]:
        """The benchmark columns of `groups` (None or empty: every group) at a shot setting (`SHOT_SETTINGS`; None:
        every shot count)."""
        keep = set(self.shot_columns[_setting(shots)]) if shots else None
        return [c for c in self.columns
                if (not groups or self.column_group[c] in groups) and (keep is None or c in keep)]

    def _full_cells(self) -> pd.Series:
        """Per averaged column: how many full-benchmark headline scores it holds."""
        cols = self.averaged
        return (self.full[cols].eq(1.0) & self.head[cols].eq(1.0) & self.scores[cols].notna()).sum(axis=0)

    def _ranked(self, search: str = "", filters: dict[str, list[str]] | None = None,
                groups: list[str] | None = None, value: str = "score", full_only: bool = True,
                sort: str = "average", descending: bool = True, shots: str | None = None,
                other_shots: bool = False) -> Ranked:
        """Every matching model, sorted over all of them (not one page): ids, columns, numbers, averages. The
        average takes the shown groups' columns at one shot setting, whatever else is shown."""
        rows = self._positions(search, filters)
        ids = self.meta.index[rows]
        setting = self.benchmark_columns(groups, shots or self.default_shots)
        cols = self.benchmark_columns(groups) if other_shots else setting
        if sort in self.columns and sort not in cols:  # sorted by a benchmark not shown: it is shown too
            cols = cols + [sort]
        numbers = self._take(self.gains if value == "gain" else self.scores, rows, ids, cols)
        averaged = numbers[[c for c in setting if c in self._averaged]]
        averaged = averaged.where(self._take(self.head, rows, ids, list(averaged.columns)) == 1.0)
        if full_only:
            averaged = averaged.where(self._take(self.full, rows, ids, list(averaged.columns)) == 1.0)
        present = averaged.notna()
        # the view's benchmarks: the largest block of averaged columns × models with no gap (`_complete_block`); a
        # model missing one of them is incomplete, ranked after every complete model and given no rank
        required = _complete_block(present)
        averaged, present = averaged.loc[:, required], present.loc[:, required]
        average = averaged.mean(axis=1, skipna=True).round(2)
        counted = present.sum(axis=1).astype(int)
        complete = present.all(axis=1) & (present.shape[1] > 0)
        rank = average.where(complete).rank(ascending=False, method="min")
        incomplete = None
        if sort in cols:
            key = numbers[sort]
        elif sort == "benchmarks averaged":
            key = counted
        elif sort in TITLE_AXES:
            key = self._axis_key[TITLE_AXES[sort]].iloc[rows]
        elif sort == "model":
            key = pd.Series(ids.astype(str).str.lower(), index=ids)
        else:
            key, incomplete = average, ~complete  # ranked: complete models first, whichever the direction
        order = _order(key, descending, incomplete)  # only positions: a page takes its rows, nothing else is reordered
        return Ranked(ids[order], order, cols, numbers, average, counted, rank, int(present.shape[1]), required,
                      sort)

    def _frame(self, ranked: Ranked, start: int = 0, stop: int | None = None,
               columns: list[str] | None = None) -> pd.DataFrame:
        """The rows `start:stop` of a ranking as the table shows them; `columns` picks the optional columns
        (`OPTIONAL_COLUMNS`; None: every one)."""
        ids, rows = ranked.ids[start:stop], ranked.order[start:stop]
        shown = [c for c in (OPTIONAL_COLUMNS if columns is None else columns) if c != "other shot counts"]
        optional: dict[str, Any] = {}
        for title in [ranked.sort, *shown]:  # the sorted column is shown, whether picked or not
            if title in TITLE_AXES:
                optional[title] = self._axis_text.loc[ids, TITLE_AXES[title]].astype(object)
            elif title == "repo":
                optional[title] = self._repos(ids)
            elif title == "benchmarks averaged":
                optional[title] = ranked.counted.iloc[rows]
            elif title == "samples":
                optional[title] = self._samples.loc[ids].astype(object)
            elif title == "reproduce":
                optional[title] = self._commands(ids)
        out = pd.DataFrame({"rank": ranked.rank.iloc[rows].astype("Int64"), "model": ids.astype(str)}, index=ids)
        numbers = ranked.numbers.iloc[rows].round(2)
        lead = ranked.sort if ranked.sort in optional or ranked.sort in numbers.columns else None
        if lead is not None:  # next to the model: rows ordered by a value always in view
            out[lead] = optional.pop(lead) if lead in optional else numbers.pop(lead)
        out["average"] = ranked.average.iloc[rows]
        out = pd.concat([out, numbers, pd.DataFrame(optional, index=ids)], axis=1)
        return out.reset_index(drop=True)

    def view(self, search: str = "", filters: dict[str, list[str]] | None = None, groups: list[str] | None = None,
             value: str = "score", full_only: bool = True, sort: str = "average", descending: bool = True,
             columns: list[str] | None = None, shots: str | None = None) -> pd.DataFrame:
        """Every matching model as a table (what the CSV export holds): identity, axes, average and benchmark
        columns (scores or gains), sorted by `sort` (best average first by default; missing values last).

        The average (what the table is ranked by) takes each benchmark once, at one shot setting (`shots`, a key
        of `SHOT_SETTINGS`; default `default_shots`); only percent-scale, higher-is-better benchmarks (never
        MT-Bench's 1–10 grades or a perplexity); and, with `full_only` (the default), only scores measured on
        the whole benchmark: a score on a subset, or one whose sample count is unknown, is shown but not
        averaged. Scores at other shot counts are shown with `other shot counts` among `columns` (None: every
        optional column), never averaged. One metric per benchmark is averaged, its headline (`acc_norm` beside a
        headline `acc` is shown in its own column, never averaged with it). A model that lacks one of the view's
        benchmarks (those of its averaged columns that some matching model has) is incomplete: it is ranked after
        every complete model and has no `rank`; `benchmarks averaged` says how many scores each average rests on;
        `samples` says how the model's scores were measured.

        Example:
            >>> board.view(groups=["knowledge"], shots="0-shot", columns=[]).columns[-3:].tolist()
            ['mmlu-0shot', 'nq_open-0shot', 'truthfulqa-0shot']
        """
        other = columns is None or "other shot counts" in columns
        return self._frame(self._ranked(search, filters, groups, value, full_only, sort, descending, shots, other),
                           columns=columns)

    def page(self, search: str = "", filters: dict[str, list[str]] | None = None, groups: list[str] | None = None,
             value: str = "score", full_only: bool = True, sort: str = "average", descending: bool = True,
             number: int = 1, size: int = PAGE_SIZE, columns: list[str] | None = None,
             shots: str | None = None) -> Page:
        """One page of the table, sorted over every matching model: what each update of the page sends.

        Args:
            number: the page, from 1 (clipped to the last page).
            size: rows per page.
            columns: optional columns to show (default `DEFAULT_COLUMNS`).
            shots: the shot setting shown and averaged (see `view`).
        """
        columns = DEFAULT_COLUMNS if columns is None else columns
        ranked = self._ranked(search, filters, groups, value, full_only, sort, descending, shots,
                              "other shot counts" in columns)
        total = len(ranked.ids)
        pages = max(1, -(-total // size))
        number = min(max(1, int(number or 1)), pages)
        start = (number - 1) * size
        frame = self._frame(ranked, start, start + size, columns)
        return Page(frame, total, number, pages, list(ranked.ids[start:start + size].astype(str)), ranked.required,
                    int(ranked.rank.notna().sum()), ranked.averaged)

    def sort_choices(self) -> list[str]:
        """What the table can be sorted by: the average, the model, the axes, then every benchmark column."""
        return ["average", "benchmarks averaged", "model", *TITLE_AXES, *self.columns]  # "average" is the rank

    def command(self, run_id: str) -> str:
        """The command that reproduces a model: its published config, or the run spec from its axes."""
        return str(self._commands(pd.Index([run_id])).iloc[0])

    def _repos(self, ids: pd.Index) -> pd.Series:
        """The repo column of these models: a link built only from a valid repo id, else `no repo (imported)`."""
        model_ids = self._model_ids.loc[ids].astype(object)
        return ("[" + model_ids + "](" + self.endpoint.rstrip("/") + "/" + model_ids + ")").where(
            self._linked.loc[ids], "no repo (imported)")

    def _commands(self, ids: pd.Index) -> pd.Series:
        """What reproduces each model: its published config, or (imported rows) the run spec from its axes."""
        command = pd.Series("hubkit train", index=ids, dtype=object)
        for axis, key in (("base_model", "model"), ("dataset", "dataset"), ("data_size", "data_size"),
                          ("tuning", "tuning"), ("epochs", "epochs"), ("lr_schedule", "lr_schedule")):
            text = self._axis_text.loc[ids, axis].astype(object)
            command = command + (" " + key + "=" + text.map(_shell)).where(text != "", "")
        axes = self._axis_text.loc[ids]
        base = (axes["dataset"].astype(object) == "pretrain") | (axes["tuning"].astype(object) == "base")
        published = "hf download " + self._model_ids.loc[ids].astype(object) + " hubkit_config.yaml && hubkit train hubkit_config.yaml"
        return published.where(self._linked.loc[ids], command.where(~base, ""))

    # -- one model's details -----------------------------------------------------------------------------------

    def details(self, run_id: str, card_summary: str | None = None) -> str:
        """Everything the results say about one model, as Markdown: identity and repo link, its axes, each score
        with its scale, samples, shots, harness, source and revision, its layer change and training-data
        perplexity when the analyses hold them, and the command that reproduces it. Text from the results is
        escaped: it renders as itself, never as markup."""
        if run_id not in self.meta.index:
            return "Click a row of the table to see that model here."
        meta = self.meta.loc[run_id]
        model_id = _as_text(meta["model_id"])
        lines = [f"### {_md(run_id)}", ""]
        if bool(meta["has_repo"]) and REPO_ID.match(model_id):
            lines.append(f"Model repo: [{_md(model_id)}]({self.endpoint.rstrip('/')}/{model_id})")
        else:
            lines.append("No model repo: imported results (" + _md(_as_text(meta["source"]) or "unknown source") + ")")
        if card_summary:
            lines += ["", "> " + _md(card_summary)]
        lines += ["", "| " + " | ".join(AXIS_TITLES[a] for a in AXES) + " |", "|" + " --- |" * len(AXES),
                  "| " + " | ".join(_md(self._axis_text.loc[run_id, a]) or "—" for a in AXES) + " |", ""]
        rows = self.long[self.long["run_id"] == run_id].drop_duplicates(["column"])
        rows = rows.assign(column=rows["column"].astype(str)).set_index("column")
        rows = rows.reindex([c for c in self.columns if c in set(rows.index)])
        lines += ["| benchmark | score | base | gain | scale | samples | shots | harness | source | revision |",
                  "| --- | ---: | ---: | ---: | --- | --- | ---: | --- | --- | --- |"]
        for column, r in rows.iterrows():
            lines.append("| " + " | ".join([
                _md(column), _number(r["score"]), _number(r["base_score"]), _number(r["gain"], signed=True),
                _md(SCALE_TITLES.get(r["scale"], _as_text(r["scale"]))) + ("" if bool(r["higher_is_better"]) else
                                                                            ", lower is better"),
                _md(_samples(r)), _as_text(r["n_shot"]) or "—",
                _md(" ".join(x for x in (_as_text(r["harness"]), _as_text(r["harness_version"])) if x)
                    + (f"; judged by {_as_text(r['judge'])}" if _as_text(r["judge"]) else "")) or "—",
                _md(" · ".join(x for x in (_as_text(r["source"]), _as_text(r["source_file"])) if x)) or "—",
                _md(_as_text(r["model_revision"])[:12]) or "—"]) + " |")
        extra = self._check_notes(run_id) + self._analysis_notes(run_id)
        if extra:
            lines += [""] + extra
        command = self.command(run_id)
        if command:  # a fence longer than any run of backticks in it, so that nothing can close it early
            fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", command)), default=0))
            lines += ["", "Reproduce:", "", fence + "bash", command, fence]
        return "\n".join(lines)

    def card_summary(self, run_id: str, token: str | bool | None = None) -> str | None:
        """The first paragraph of the model card (its summary), read from the Hub when the model has a repo;
        None without a repo, a card or access. Cached per model."""
        if run_id not in self.meta.index or not bool(self._linked.loc[run_id]):
            return None
        if run_id not in self._cards:
            from huggingface_hub import hf_hub_download
            from huggingface_hub.errors import HfHubHTTPError

            try:
                path = hf_hub_download(str(self._model_ids.loc[run_id]), "README.md", endpoint=self.endpoint,
                                       token=token, etag_timeout=5)
                self._cards[run_id] = _summary(Path(path).read_text(encoding="utf-8", errors="replace"))
            except (HfHubHTTPError, OSError, ValueError):
                self._cards[run_id] = None
        return self._cards[run_id]

    def _analysis_notes(self, run_id: str) -> list[str]:
        notes = []
        diff = self.analysis.get("layerdiff")
        if diff is not None and run_id in set(diff["run_id"]):
            mine = diff[diff["run_id"] == run_id]
            mid = mine[(mine["depth"] >= MID_DEPTH[0]) & (mine["depth"] <= MID_DEPTH[1])]["rel_change"].mean()
            notes.append(f"- Mid-layer weight change ‖ΔW‖/‖W‖ (mean over layers at depth 1/3–2/3): {mid:.4g}")
        ppl = self.analysis.get("perplexity")
        if ppl is not None:
            meta = self.meta.loc[run_id]
            hit = ppl[(ppl["base_model"].map(_as_text) == _as_text(meta["base_model"]))
                      & (ppl["dataset"].map(_as_text) == _as_text(meta["dataset"]))]
            if len(hit):
                notes.append(f"- Training-data perplexity under the base model: {float(hit['perplexity'].iloc[0]):.4g}")
        return notes

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

    def checks_note(self) -> str:
        """The data checks' findings as a Markdown warning (empty when there are none): every gain they left out of
        the analyses is still shown in the table, so the reader is told which ones not to trust."""
        if not self.checks:
            return ""
        lines = ["**Data checks** (`hubkit analyze`): some gains in this table rest on a doubtful base row; the "
                 "analyses leave them out."]
        lines += [f"- {_md(c['check'].replace('-', ' '))}: {_md(c['subject'])}: {_md(c['detail'])}; {_md(c['excluded'])}"
                  for c in self.checks]
        return "\n".join(lines)

    def _check_notes(self, run_id: str) -> list[str]:
        base = _as_text(self.meta.loc[run_id, "base_model"]) if "base_model" in self.meta.columns else ""
        hits = [c for c in self.checks if base and (base in c["subject"].split(" and ") or c["subject"] == run_id)]
        return [f"**Data check:** {_md(c['detail'])}; {_md(c['excluded'])}"
                + (f" (columns: {_md(', '.join(c['columns']))})" if c["columns"] else "") for c in hits]

    def export(self, table: pd.DataFrame) -> str:
        """The table as a CSV file (what the export button serves); returns its path."""
        folder = Path(tempfile.mkdtemp(prefix="leaderboard-"))
        path = folder / "leaderboard.csv"
        table.to_csv(path, index=False)
        return str(path)


@dataclass
class Ranked:
    """Every matching model: `ids` in table order, and `order`, their positions in the (unsorted) numbers,
    averages and counts the table shows."""

    ids: pd.Index
    order: np.ndarray
    columns: list[str]
    numbers: pd.DataFrame
    average: pd.Series
    counted: pd.Series
    rank: pd.Series  # by average among the complete models (incomplete ones have none)
    required: int = 0  # the view's benchmarks: what a complete model has
    averaged: list[str] = field(default_factory=list)  # their columns
    sort: str = "average"


@dataclass
class Page:
    """One page of the table: its rows, the run ids behind them, and where it stands among all matches."""

    frame: pd.DataFrame
    total: int
    number: int
    pages: int
    run_ids: list[str]
    required: int = 0  # the view's benchmarks, which a complete model has
    complete: int = 0  # how many of the matching models are complete (ranked)
    averaged: list[str] = field(default_factory=list)  # the view's benchmarks: the columns the average takes
