"""hubkit leaderboard: browse, filter, compare and plot every result of a hubkit results dataset.

Runs as a Gradio Space as-is (`HUBKIT_RESULTS_REPO` or `settings.json` names the results dataset; the Hub
is `HF_ENDPOINT`, else huggingface.co), or locally with `hubkit leaderboard serve`.
"""

from __future__ import annotations

import os
import time

import gradio as gr
import pandas as pd

from leaderboard import (
    AXES,
    AXIS_TITLES,
    BENCHMARKS,
    GROUPS,
    MAX_ROWS,
    SCALE_TITLES,
    Board,
    load_analysis,
    load_results,
    load_study_analyses,
    settings,
)

ABOUT = """
## About

Each row is one supervised fine-tuning (SFT) run — a base model trained on one dataset, with a data size,
full-parameter or LoRA tuning, a number of epochs and a learning-rate schedule — or a base model itself
(`pretrain`). Columns are benchmarks, named `<benchmark>-<shots>shot`.

**Scores** are on each benchmark's own scale: percent (0–100) for most, grades from 1 to 10 for MT-Bench
(an LLM judge), raw numbers for imported metrics such as perplexity (lower is better). **Gains** are a model's
score minus its base model's score on the same benchmark, shot count and samples: the quantity the study's
analyses explain. Switch between them with *Show*.

**How the average is built.** The table is ranked by *average*: the mean over the shown benchmarks that are
on the percent scale and higher-is-better, and — while *Average full-benchmark scores only* is ticked, as
it is by default — that were scored on the **whole** benchmark. MT-Bench grades, perplexities, and scores
measured on a subset of a benchmark (`hubkit eval --limit`, the `quick` and `tiny` suites) or with an
unknown sample count are shown but never averaged, so a model scored on 8 questions is never ranked
beside one scored on 14,042. *benchmarks averaged* says how many scores an average rests on (averages over
different benchmark sets are not comparable either); *samples* says how a model's scores were measured:
`full`, `subset (n=…)` with the smallest subset, or `unknown`. Each score's sample count, shots, harness and
source are in the results dataset (`n_samples`, `n_total`, `subset`, `n_shot`, `harness`, `source`).

Rows marked *no repo (imported)* come from imported results (the study's released CSV) and have no model
repository; every other row links to its model repo, whose card holds the full configuration, and shows
the command that reproduces it.

| benchmark | group | metric | scale |
| --- | --- | --- | --- |
""" + "\n".join(f"| {b['title']} | {b['group']} | {b['metric']} | {SCALE_TITLES.get(b.get('scale'), b.get('scale'))} |"
                for b in BENCHMARKS.values())


def build(board: Board, source: str) -> gr.Blocks:
    """The app for one loaded results table."""
    bases = board.choices("base_model")
    with gr.Blocks(title="hubkit leaderboard") as demo:
        gr.Markdown(f"# hubkit leaderboard\n{len(board.meta):,} models · {len(board.columns)} benchmark columns · "
                    f"results from `{source}`")
        with gr.Tab("Leaderboard", id="table"):
            with gr.Row():
                search = gr.Textbox(label="Search", placeholder="model, dataset, base model …", elem_id="search")
                value = gr.Radio(["score", "gain"], value="score", label="Show", elem_id="value")
                groups = gr.CheckboxGroup([g for g in GROUPS if any(board.column_group[c] == g for c in board.columns)],
                                          label="Benchmark groups (none: all)", elem_id="groups")
                full_only = gr.Checkbox(True, label="Average full-benchmark scores only (subset scores are shown, "
                                        "not ranked)", elem_id="full-only")
            with gr.Row():
                filters = [gr.Dropdown(board.choices(axis), multiselect=True, label=AXIS_TITLES[axis],
                                       elem_id=f"filter-{axis}") for axis in AXES]
            with gr.Row():
                count = gr.Markdown(elem_id="count")
                shown = gr.Markdown(elem_id="shown")
            table = gr.Dataframe(interactive=False, wrap=False, elem_id="table", max_height=600,
                                 show_search="none", pinned_columns=1)
            with gr.Row():
                export = gr.Button("Export CSV", elem_id="export")
                exported = gr.File(label="Current view as CSV", elem_id="exported", interactive=False)
        with gr.Tab("Compare", id="compare"):
            picked = gr.Dropdown(list(board.meta.index.astype(str)), multiselect=True, label="Models to compare",
                                 elem_id="compare-models")
            compare_value = gr.Radio(["score", "gain"], value="score", label="Show", elem_id="compare-value")
            compared = gr.Dataframe(interactive=False, elem_id="compared")
        with gr.Tab("Plots", id="plots"):
            if board.analyses:
                gr.Markdown("### The study's analyses\nComputed by `hubkit analyze` on stated conditions and pushed "
                            "to the results dataset's `analysis/`; each says what it rests on.")
                titles = board.analysis_titles()
                study_pick = gr.Dropdown(titles, value=titles[0], label="Analysis", elem_id="analysis-pick")
                study_about = gr.Markdown(elem_id="analysis-about")
                study_figures = gr.Gallery(label="Figures", columns=1, height="auto", elem_id="analysis-figures",
                                           allow_preview=True)
            gr.Markdown("### Explore one base model\nEvery run of the chosen base model, whatever its data size, "
                        "schedule or epochs: the heatmap averages over them, the curves show each dataset and tuning.")
            base = gr.Dropdown(bases, value=bases[0] if bases else None, label="Base model", elem_id="plot-base")
            heat = gr.Plot(label="Synergy: mean gain, training data × benchmark")
            bench = gr.Dropdown(board.columns, value=board.columns[0] if board.columns else None, label="Benchmark",
                                elem_id="plot-bench")
            curve = gr.Plot(label="Score vs epochs")
            ppl_plot = gr.Plot(label="Gain vs training-data perplexity under the base", visible="perplexity" in board.analysis)
            layer_plot = gr.Plot(label="Gain vs mid-layer weight change", visible="layerdiff" in board.analysis)
        with gr.Tab("About", id="about"):
            gr.Markdown(ABOUT)

        def refresh(text, values, chosen_groups, full, *axis_values):
            view = board.view(text, dict(zip(AXES, axis_values)), chosen_groups, values, full_only=full)
            note = f"showing the best {MAX_ROWS:,} by average; filter, search or export for all" \
                if len(view) > MAX_ROWS else ""
            return _display(view.head(MAX_ROWS)), f"{len(view):,} models", note

        inputs = [search, value, groups, full_only, *filters]
        for component in inputs:
            component.change(refresh, inputs, [table, count, shown], show_progress="hidden")
        demo.load(refresh, inputs, [table, count, shown])
        export.click(lambda *a: board.export(board.view(a[0], dict(zip(AXES, a[4:])), a[2], a[1], full_only=a[3])),
                     inputs, exported)
        picked.change(lambda ids, shown: board.compare(ids or [], shown), [picked, compare_value], compared)
        compare_value.change(lambda ids, shown: board.compare(ids or [], shown), [picked, compare_value], compared)
        base.change(board.heatmap, base, heat)
        demo.load(board.heatmap, base, heat)
        for trigger in (base, bench):
            trigger.change(board.epoch_curves, [base, bench], curve)
        demo.load(board.epoch_curves, [base, bench], curve)
        if board.analyses:
            study_pick.change(board.analysis_view, study_pick, [study_figures, study_about])
            demo.load(board.analysis_view, study_pick, [study_figures, study_about])
        if "perplexity" in board.analysis:
            ppl = lambda c: board.scatter(board.gain_vs_perplexity(c), "perplexity", f"{c}: gain vs perplexity")  # noqa: E731
            bench.change(ppl, bench, ppl_plot)
            demo.load(ppl, bench, ppl_plot)
        if "layerdiff" in board.analysis:
            layer = lambda c: board.scatter(board.gain_vs_layer_change(c), "rel_change",  # noqa: E731
                                            f"{c}: gain vs mid-layer change")
            bench.change(layer, bench, layer_plot)
            demo.load(layer, bench, layer_plot)
    return demo


def _display(view: pd.DataFrame):
    """The view as the Dataframe component shows it: only the repo column renders Markdown (links)."""
    types = ["markdown" if c == "repo" else "number" if pd.api.types.is_numeric_dtype(view[c]) else "str"
             for c in view.columns]
    return gr.Dataframe(value=view, datatype=types)


def main() -> gr.Blocks:
    config = settings()
    repo = config.get("results_repo")
    if not repo:
        raise SystemExit("set HUBKIT_RESULTS_REPO (or settings.json) to the results dataset to show")
    started = time.perf_counter()
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    board = Board(load_results(repo), endpoint=endpoint, analysis=load_analysis(repo),
                  analyses=load_study_analyses(repo))
    print(f"loaded {len(board.meta):,} models from {repo} in {time.perf_counter() - started:.2f} s", flush=True)
    return build(board, repo)


demo = main() if __name__ == "__main__" or os.environ.get("SYSTEM") == "spaces" else None

if __name__ == "__main__":
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
