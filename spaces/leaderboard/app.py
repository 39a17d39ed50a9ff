"""hubkit leaderboard: browse, filter, compare and plot every result of a hubkit results dataset.

Runs as a Gradio Space as-is (`HUBKIT_RESULTS_REPO` or `settings.json` names the results dataset; the Hub
is `HF_ENDPOINT`, else huggingface.co), or locally with `hubkit leaderboard serve`.
"""

from __future__ import annotations

import importlib
import os
import time
from types import SimpleNamespace

import gradio as gr
import pandas as pd

# the Space's data side: imported by hubkit (`hubkit.space.space_module`) under a private package name, or run as a
# Space (`python app.py` in this folder)
lb = importlib.import_module(".board", __package__) if __package__ else importlib.import_module("board")

ABOUT = """
## About

Each row is one supervised fine-tuning (SFT) run — a base model trained on one dataset, with a data size,
full-parameter or LoRA tuning, a number of epochs and a learning-rate schedule — or a base model itself
(`pretrain`). Columns are benchmarks, named `<benchmark>-<shots>shot`.

**Scores** are on each benchmark's own scale: percent (0–100) for most, grades from 1 to 10 for MT-Bench
(an LLM judge), raw numbers for imported metrics such as perplexity (lower is better). A judged score
(MT-Bench, AlpacaEval 2) names its judge in the model's details: grades from different judges do not compare. **Gains** are a model's
score minus its base model's score on the same benchmark, shot count and samples: the quantity the study's
analyses explain. Switch between them with *Show*.

**Reading the table.** It opens on rank, model, *average* and every benchmark, at one shot setting; *Filters,
benchmarks, shots and columns* (folded under the search) narrows the models, picks benchmark groups, the shot setting
and more columns (base model, training data, full/LoRA, epochs, data size, schedule, samples, repo, the reproduce
command). *Shots* picks one shot setting, so that each benchmark has one score: *0-shot*, or *the study's shot counts*
(GSM8K and MBPP 4, MMLU and BoolQ 5, HellaSwag 10, NQ-open 1, the rest 0: what `hubkit eval` runs by default). It
opens on the setting with more full-benchmark scores (the study's on a tie). *More columns → other shot counts* shows
a benchmark's scores at the other shot counts too; they are shown, never averaged. It shows one page of 50 models at a
time; the sort box orders every model that matches the search and filters (not just the page in view), missing
values last, and the column it sorts by sits next to the model. A cut model id shows whole on hover. Click a row to
see that model's details — each score with its scale, sample count, shots, harness, source and revision, its repo,
and its training loss — and to add it to *Compare*, which overlays the loss curves of the models it holds.

**How the average is built.** *average (N)* is the mean of N benchmarks: the view's **complete benchmarks**. Of the
benchmarks shown, each counted once at the chosen shot setting (NQ-open at four shot counts is one benchmark, not
four) and by one metric, its headline (a column named `benchmark-Nshot:metric` holds another metric, such as
HellaSwag's `acc_norm`: shown, never averaged), that are on the percent scale and higher-is-better, and — while
*Average full-benchmark scores only* is ticked, as it is by default — scored on the **whole** benchmark, they are the
largest set that the matching models hold together: taken most-held first, the set whose size times the number of
models holding all of it is largest. So the study's 1,027 models are ranked on the 12 benchmarks that 1,003 of them
have, not on LongBench v2, which 33 have. MT-Bench grades, perplexities, and scores measured on a subset of a
benchmark (`hubkit eval --limit`, the `quick` and `tiny` suites) or with an unknown sample count are shown but never
averaged, so a model scored on 8 questions is never ranked beside one scored on 14,042. **Like with like:** a model
missing one of the N is *incomplete*: it is listed after every complete model and has no *rank*, whatever its
average. The line under the table names the N benchmarks; *benchmarks averaged* (a column to add) says how many
scores a model's average rests on; *samples* says how its scores were measured: `full`, `subset (n=…)` with the
smallest subset, or `unknown`. Each score's sample count, shots, harness and source are in the results dataset
(`n_samples`, `n_total`, `subset`, `n_shot`, `harness`, `source`).

Rows marked *no repo (imported)* come from imported results (the study's released CSV) and have no model
repository; every other row links to its model repo, whose card holds the full configuration, and shows
the command that reproduces it.

| benchmark | group | metric | scale | the study's shots |
| --- | --- | --- | --- | --- |
""" + "\n".join(f"| {b['title']} | {b['group']} | {b['metric']} | {lb.SCALE_TITLES.get(b.get('scale'), b.get('scale'))} | "
                f"{'none (judged)' if b.get('n_shot') is None else b['n_shot']} |" for b in lb.BENCHMARKS.values())


#: The rank and model columns stay in view while the table scrolls sideways; rows are compact (16 in the first
#: screen at 1280×800); the table's own per-page sort and filter menu is hidden (passed to `launch(css=...)`).
CSS = """
#table .first-column {
    position: sticky !important; left: 0; z-index: 3; background: var(--background-fill-primary);
    box-shadow: 1px 0 0 var(--border-color-primary);
}
#table th.first-column { z-index: 4; }
/* the model column (after the rank) stays in view too: sticky right of the rank column's fixed width */
#table .virtual-row .body-cell:nth-child(2), #table th.header-cell:nth-child(2) {
    position: sticky !important; left: var(--rank-width); z-index: 3; background: var(--background-fill-primary);
    box-shadow: 1px 0 0 var(--border-color-primary);
}
#table th.header-cell:nth-child(2) { z-index: 4; }
#table { --rank-width: 52px; }
#table .virtual-row { min-height: 0 !important; }
#table .body-cell .cell-wrap { min-height: 0 !important; padding: 4px 8px !important; }
#table .body-cell .cell-wrap > span { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
/* the cell menu sorts and filters only the page in view: sorting is the server's, over every model */
#table .cell-menu-button { display: none !important; }
#count, #page-info { align-self: center; }
/* updates of the page show no progress: their status tracker (a "0.1s" timer, at opacity 0) is not laid out */
#count .wrap.hide, #page-info .wrap.hide, #page .wrap.hide, #table .wrap.hide { display: none !important; }
#count { flex-grow: 0 !important; min-width: 110px !important; font-weight: 600; }
#page-info { font-size: var(--text-sm); color: var(--body-text-color-subdued); }
#title h2 { margin: 0 !important; font-size: var(--text-lg) !important; }
/* headers wrap (`humaneval-` over `0shot`), so that a score column is as wide as its numbers */
#table th.header-cell .cell-wrap span, #table th.header-cell .header-text {
    white-space: normal !important; overflow-wrap: anywhere; line-height: 1.2;
    display: -webkit-box; -webkit-box-orient: vertical; -webkit-line-clamp: 2; overflow: hidden;
}
"""

#: A cell or header shows its whole text on hover (a long model id ends in "…"; its title carries all of it).
#: Set from the cell's rendered text when the pointer enters it: the text is the browser's own, inert as a title.
HEAD = """<script>
document.addEventListener("mouseover", (event) => {
  const cell = event.target instanceof Element ? event.target.closest("#table .body-cell, #table th") : null;
  if (cell) cell.title = cell.innerText.trim();
});
</script>"""


def build(board: lb.Board, source: str) -> gr.Blocks:
    """The app for one loaded results table.

    Every update of the table sends one page (`PAGE_SIZE` rows), sorted on the server over every matching model;
    clicking a row shows that model's details, from which it can be added to Compare.
    """
    # Only the component types the table needs are on the page (each type is scripts the browser loads before
    # the first row): choices are dropdowns, the page number a textbox, no state components.
    with gr.Blocks(title="hubkit leaderboard") as demo:
        gr.Markdown(f"## hubkit leaderboard · {len(board.meta):,} models · {len(board.columns)} benchmark columns · "
                    f"results from `{source}`", elem_id="title")
        if board.checks:
            gr.Markdown(board.checks_note(), elem_id="data-checks")
        with gr.Tab("Leaderboard", id="table"):
            ui = _table_tab(board)
        with gr.Tab("Compare", id="compare"):
            gr.Markdown("Add models from the table (click a row, then *Add this model to Compare*).")
            ui.picked = gr.Dropdown([], value=[], multiselect=True, label="Models to compare", elem_id="compare-models")
            ui.compare_value = gr.Dropdown(["score", "gain"], value="score", label="Show", elem_id="compare-value")
            ui.compared = gr.Dataframe(interactive=False, elem_id="compared")
            ui.compared_loss = gr.Plot(label="Training loss of the compared models", visible=False,
                                       elem_id="compare-loss")
        with gr.Tab("Plots", id="plots") as plots_tab:
            plots = _plots_tab(board)
            plots.tab = plots_tab
        with gr.Tab("About", id="about"):
            gr.Markdown(ABOUT)
        _wire_table(board, ui)
        _wire_plots(board, plots)
    return demo


def _table_tab(board: lb.Board) -> SimpleNamespace:
    """The Leaderboard tab's controls, first page and details panel (returned by name, for `_wire_table`).

    The first screen is the table: one row of search and sort above it, the other controls folded away, and the
    table opening on rank, model, average and every benchmark at the board's default shot setting."""
    ui = SimpleNamespace()
    opening: list[str] = []  # every benchmark group
    first = board.page(groups=opening, shots=board.default_shots)  # in the page itself: no round trip first
    with gr.Row(equal_height=True):
        ui.count = gr.Markdown(f"{first.total:,} models", elem_id="count")
        ui.search = gr.Textbox(show_label=False, placeholder="Search models: model, training data, base model …",
                               elem_id="search", scale=4, container=False)
        ui.sort = gr.Dropdown(board.sort_choices(), value="average", show_label=False, elem_id="sort", scale=2,
                              container=False)
        ui.descending = gr.Checkbox(True, label="Highest first", elem_id="descending", scale=1, container=False)
    with gr.Accordion("Filters, benchmarks, shots and columns", open=False, elem_id="options"):
        with gr.Row():
            ui.filters = [gr.Dropdown(board.choices(axis), multiselect=True, label=lb.AXIS_TITLES[axis],
                                      elem_id=f"filter-{axis}") for axis in lb.AXES]
        with gr.Row():
            ui.value = gr.Dropdown(["score", "gain"], value="score", label="Show", elem_id="value", scale=1)
            ui.groups = gr.Dropdown([g for g in lb.GROUPS if any(board.column_group[c] == g for c in board.columns)],
                                    value=opening, multiselect=True, label="Benchmarks (none: every group)",
                                    elem_id="groups", scale=2)
            ui.shots = gr.Dropdown([(title, key) for key, title in lb.SHOT_SETTINGS.items()],
                                   value=board.default_shots, label="Shots (one score per benchmark)", elem_id="shots",
                                   scale=1)
            ui.columns = gr.Dropdown(lb.OPTIONAL_COLUMNS, value=lb.DEFAULT_COLUMNS, multiselect=True,
                                     label="More columns", elem_id="columns", scale=3)
            ui.full_only = gr.Checkbox(True, label="Average full-benchmark scores only (subset scores are "
                                       "shown, not ranked)", elem_id="full-only", scale=2)
    ui.table = gr.Dataframe(interactive=False, wrap=False, elem_id="table", show_search="none", show_label=False,
                            pinned_columns=2, max_height=TABLE_HEIGHT, buttons=[],
                            **_table_settings(first))
    with gr.Row(equal_height=True, elem_id="pager"):
        ui.where = gr.Markdown(_page_info(first, "average", True, True, opening, board.default_shots),
                               elem_id="page-info")
        ui.prev = gr.Button("◀", elem_id="prev", size="sm", scale=0, min_width=36)
        ui.number = gr.Textbox("1", show_label=False, elem_id="page", scale=0, min_width=60, max_lines=1,
                               container=False)
        ui.after = gr.Button("▶", elem_id="next", size="sm", scale=0, min_width=36)
    ui.chosen = gr.Textbox("", visible=False, elem_id="chosen")  # the run id of the row clicked last
    ui.add = gr.Button("Add this model to Compare", elem_id="add-compare", size="sm")
    ui.details = gr.Markdown("Click a row of the table to see that model here.", elem_id="details")
    ui.loss = gr.Plot(label="Training loss", visible=False, elem_id="details-loss")
    ui.profile = gr.Plot(label="Weight change by depth", visible=False, elem_id="details-profile")
    with gr.Row():
        ui.export = gr.Button("Export CSV (every matching model)", elem_id="export")
        ui.exported = gr.DownloadButton("Download the CSV", visible=False, elem_id="exported")
    return ui


def _plots_tab(board: lb.Board) -> SimpleNamespace:
    """The Plots tab: the study's analyses, one base model's heatmap and curves, the scatters and the model map."""
    ui = SimpleNamespace()
    default_base, default_bench = board.plot_defaults()
    if board.analyses:
        gr.Markdown("### The study's analyses\nComputed by `hubkit analyze` on stated conditions and pushed "
                    "to the results dataset's `analysis/`; each says what it rests on.")
        titles = board.analysis_titles()
        ui.study_pick = gr.Dropdown(titles, value=titles[0], label="Analysis", elem_id="analysis-pick")
        ui.study_about = gr.Markdown(elem_id="analysis-about")
        ui.study_figures = gr.Gallery(label="Figures", columns=1, height="auto", elem_id="analysis-figures",
                                      allow_preview=True)
    gr.Markdown("### Explore one base model\nThe heatmap pools every run of the chosen base model (its title "
                "says over what); the curves hold the data size and schedule fixed, one line per dataset.")
    ui.base = gr.Dropdown(board.choices("base_model"), value=default_base, label="Base model", elem_id="plot-base")
    ui.heat = gr.Plot(label="Synergy: mean gain, training data × benchmark", elem_id="plot-heat")
    sizes, schedules = board.curve_choices(default_base, default_bench) if default_base else ([], [])
    size0, schedule0 = board.curve_condition(default_base, default_bench) if default_base else (None, None)
    with gr.Row():
        ui.bench = gr.Dropdown(board.columns, value=default_bench, label="Benchmark", elem_id="plot-bench")
        ui.curve_size = gr.Dropdown(sizes, value=size0, label="Data size", elem_id="plot-size")
        ui.curve_schedule = gr.Dropdown(schedules, value=schedule0, label="Schedule", elem_id="plot-schedule")
    ui.curve = gr.Plot(label="Score vs epochs", elem_id="plot-curve")
    ui.ppl_plot = gr.Plot(label="Gain vs training-data perplexity under the base", visible="perplexity" in board.analysis)
    ui.layer_plot = gr.Plot(label="Gain vs mid-layer weight change", visible="layerdiff" in board.analysis)
    if "loglik_map" in board.analysis:
        gr.Markdown("### Model map\nEach model by its log-likelihoods on a fixed probe set of benchmark "
                    "questions (`hubkit analyze --loglik`): models that believe alike sit together.")
        ui.map_colour = gr.Dropdown(list(lb.MAP_COLOURS), value="family", label="Colour by", elem_id="map-colour")
        ui.model_map = gr.Plot(label="Model map", elem_id="model-map")
    return ui


def _wire_table(board: lb.Board, ui: SimpleNamespace) -> None:
    """The Leaderboard and Compare tabs' listeners: pages, row details, Compare, CSV export."""

    def query(text, values, chosen_groups, setting, full, order, high, extra, *axis_values) -> dict:
        return {"search": text, "filters": dict(zip(lb.AXES, axis_values)), "groups": chosen_groups, "value": values,
                "shots": setting if setting in lb.SHOT_SETTINGS else board.default_shots, "full_only": full,
                "sort": order or "average", "descending": bool(high), "columns": extra or []}

    def show(page_number, *args):
        q = query(*args)
        page = board.page(number=_page_number(page_number), **q)
        lb.trim_heap()  # the query's temporaries go back to the system, not into the server's resident size
        return (gr.Dataframe(**_table_settings(page)), f"{page.total:,} models",
                _page_info(page, q["sort"], q["descending"], q["full_only"], q["groups"], q["shots"]),
                str(page.number))

    inputs = [ui.search, ui.value, ui.groups, ui.shots, ui.full_only, ui.sort, ui.descending, ui.columns, *ui.filters]
    outputs = [ui.table, ui.count, ui.where, ui.number]
    # a new view starts at page 1 and hides a CSV prepared from the previous one (one listener for every control)
    _on([component.change for component in inputs], lambda *a: (*show(1, *a), gr.DownloadButton(visible=False)),
        inputs, [*outputs, ui.exported], show_progress="hidden")
    _on(ui.number.submit, show, [ui.number, *inputs], outputs, show_progress="hidden")
    _on(ui.prev.click, lambda n, *a: show(_page_number(n) - 1, *a), [ui.number, *inputs], outputs,
        show_progress="hidden")
    _on(ui.after.click, lambda n, *a: show(_page_number(n) + 1, *a), [ui.number, *inputs], outputs,
        show_progress="hidden")

    def pick(evt: gr.SelectData):
        # the model column holds the run id; one the board does not know shows as not found
        row = evt.row_value if isinstance(evt.row_value, list) else []
        model = row[1] if len(row) > 1 else None  # (rank, model, …)
        run_id = model if isinstance(model, str) and model in board.meta.index else ""
        figure = board.layer_profile(run_id) if run_id else None
        loss = board.loss_curves([run_id]) if run_id else None
        text = board.details(run_id, card_summary=board.card_summary(run_id)) if run_id else board.details("")
        return (text, gr.update(value=loss, visible=loss is not None), gr.update(value=figure, visible=figure is not None),
                run_id)

    _on(ui.table.select, pick, None, [ui.details, ui.loss, ui.profile, ui.chosen], show_progress="hidden")

    def add_to_compare(run_id: str, current: list[str] | None):
        # both come from the browser: only models of the board are kept
        ids = [r for r in dict.fromkeys([*(current or []), run_id]) if isinstance(r, str) and r in board.meta.index]
        return gr.update(choices=ids, value=ids)

    _on(ui.add.click, add_to_compare, [ui.chosen, ui.picked], ui.picked)

    def export_view(*args):
        view = board.view(**{**query(*args), "columns": None})
        return gr.DownloadButton(f"Download the CSV ({len(view):,} models)", value=board.export(view), visible=True)

    _on(ui.export.click, export_view, inputs, ui.exported)
    _on([ui.picked.change, ui.compare_value.change], lambda ids, shown: board.compare(ids or [], shown),
        [ui.picked, ui.compare_value], ui.compared)

    def overlay(ids: list[str] | None):
        figure = board.loss_curves([r for r in ids or [] if isinstance(r, str) and r in board.meta.index])
        return gr.update(value=figure, visible=figure is not None)

    _on(ui.picked.change, overlay, ui.picked, ui.compared_loss)


def _wire_plots(board: lb.Board, ui: SimpleNamespace) -> None:
    """The Plots tab's listeners: drawn when the tab opens (the table comes first), then on change."""

    def choose_base(name):
        column = board.curve_column(name) if name else None
        return (board.heatmap(name), *_curve_controls(board, name, column))

    def choose_bench(name, column):
        return _curve_controls(board, name, column)[1:]

    _on(ui.base.input, choose_base, ui.base, [ui.heat, ui.bench, ui.curve_size, ui.curve_schedule, ui.curve])
    _on(ui.bench.input, choose_bench, [ui.base, ui.bench], [ui.curve_size, ui.curve_schedule, ui.curve])
    _on(ui.tab.select, board.heatmap, ui.base, ui.heat)
    _on([ui.curve_size.input, ui.curve_schedule.input, ui.tab.select], board.epoch_curves,
        [ui.base, ui.bench, ui.curve_size, ui.curve_schedule], ui.curve)
    if board.analyses:
        _on([ui.study_pick.input, ui.tab.select], board.analysis_view, ui.study_pick,
            [ui.study_figures, ui.study_about])
    if "loglik_map" in board.analysis:
        _on([ui.map_colour.change, ui.tab.select], board.model_map, ui.map_colour, ui.model_map)
    if "perplexity" in board.analysis:
        ppl = lambda c: board.scatter(board.gain_vs_perplexity(c), "perplexity", f"{c}: gain vs perplexity")  # noqa: E731
        _on([ui.bench.change, ui.tab.select], ppl, ui.bench, ui.ppl_plot)
    if "layerdiff" in board.analysis:
        layer = lambda c: board.scatter(board.gain_vs_layer_change(c), "rel_change",  # noqa: E731
                                        f"{c}: gain vs mid-layer change")
        _on([ui.bench.change, ui.tab.select], layer, ui.bench, ui.layer_plot)


def _on(triggers, fn, inputs, outputs, **kwargs) -> None:
    """Every listener of the page: each serves the page only, so none is a public API endpoint (the results
    dataset is the data's API) and the page carries no API docs for them (260 KB of its HTML at 10,000 models)."""
    gr.on(triggers, fn, inputs, outputs, api_visibility="private", **kwargs)


def _curve_controls(board: lb.Board, base: str | None, column: str | None):
    """The benchmark, data size and schedule controls for a base model and column, and the curves they give."""
    if not base or not column:
        return gr.update(value=column), gr.update(choices=[], value=None), gr.update(choices=[], value=None), None
    sizes, schedules = board.curve_choices(base, column)
    size, schedule = board.curve_condition(base, column)
    return (gr.update(value=column), gr.update(choices=sizes, value=size), gr.update(choices=schedules, value=schedule),
            board.epoch_curves(base, column, size, schedule))


#: Widths of the table's descriptive columns: the model column fits the study's longest ids (a longer one ends in
#: "…" and shows whole on hover), the scores share out the rest.
WIDTHS = {"rank": "52px", "model": "400px", "base model": "150px", "training data": "125px", "full/LoRA": "85px",
          "epochs": "65px", "average": "92px", "samples": "100px", "data size": "90px", "schedule": "100px",
          "benchmarks averaged": "95px"}
SCORE_WIDTH = "96px"  # a benchmark's column: its header wraps
TABLE_HEIGHT = 520  # px: with the compact rows of `CSS`, 15 rows and the header in the first screen at 1280×800


def _table_settings(page) -> dict:
    """How the Dataframe shows a page: only the repo column renders Markdown (links); fixed widths for the
    descriptive columns (`WIDTHS`); the average's header says how many benchmarks it takes."""
    view = page.frame.rename(columns={"average": f"average ({page.required})"})
    types = ["markdown" if c == "repo" else "number" if pd.api.types.is_numeric_dtype(view[c]) else "str"
             for c in view.columns]
    widths = [WIDTHS.get(c, WIDTHS["average"] if c.startswith("average") else SCORE_WIDTH) for c in view.columns]
    return {"value": view, "datatype": types, "column_widths": widths}


def _page_number(text: str | float | None) -> int:
    """The page a user typed: anything that is not a whole number is page 1 (the board clips to the last)."""
    try:
        return max(1, int(float(str(text).strip())))
    except (TypeError, ValueError, OverflowError):
        return 1


def _page_info(page, sort: str | None, descending: bool, full_only: bool, groups: list[str] | None,
               shots: str) -> str:
    """One line under the search: the page, the order, and what the average takes (its benchmarks by name)."""
    shown = ", ".join(groups) + " benchmarks" if groups else "every benchmark"
    averaged = ", ".join(page.averaged) or "none"
    unranked = page.total - page.complete
    return (f"page {page.number:,} of {page.pages:,} · sorted by {sort or 'average'} "
            f"({'highest' if descending else 'lowest'} first) over every match · {shown} at "
            f"{lb.SHOT_SETTINGS[shots]} · average ({page.required}): the mean of the "
            f"{'full-benchmark ' if full_only else ''}percent-scale scores of {averaged}"
            + (f" · {unranked:,} models lack one of them: listed last, unranked" if unranked else ""))


def main() -> gr.Blocks:
    config = lb.settings()
    repo = config.get("results_repo")
    if not repo:
        raise SystemExit("set HUBKIT_RESULTS_REPO (or settings.json) to the results dataset to show")
    started = time.perf_counter()
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    board = lb.Board(lb.load_results(repo), endpoint=endpoint, analysis=lb.load_analysis(repo),
                     analyses=lb.load_study_analyses(repo), checks=lb.load_data_checks(repo))
    print(f"loaded {len(board.meta):,} models from {repo} in {time.perf_counter() - started:.2f} s", flush=True)
    return build(board, repo)


demo = main() if __name__ == "__main__" or os.environ.get("SYSTEM") == "spaces" else None

if __name__ == "__main__":
    demo.launch(css=CSS, head=HEAD, server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
