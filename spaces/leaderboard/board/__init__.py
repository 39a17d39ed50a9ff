"""The leaderboard's data side: load a hubkit results dataset, then filter, compare, plot and export it.

One module per job: `schema` (columns, labels, formatting), `loading` (reading from the Hub), `model` (ranking,
pages, details, compare, export) and `plots` (figures and analysis views, the full `Board`); `app.py` beside this
package lays out the page.

Self-contained (pandas, huggingface_hub, matplotlib), so that the Space runs without hubkit installed.
The results schema is hubkit's (one row per model × benchmark × metric × shots, with the sweep axes); benchmark
groups, titles and headline metrics come from `benchmarks.json` beside this file, a generated copy of hubkit's
benchmark registry (`hubkit.benchmarks`; a test keeps them equal).

A column is `<benchmark>-<n>shot`, with `:<metric>` when the metric is not the benchmark's headline (so `acc` and
`acc_norm` never share a column). The table ranks like with like: a model's average takes the view's benchmarks
(headline metrics, percent scale, higher is better, one shot setting); a model missing one of them is
*incomplete* and ranked after every complete model, without a rank.

Analysis tables, when the results dataset has them, add two plots:

| file | columns |
| --- | --- |
| `analysis/perplexity.parquet` | `base_model`, `dataset`, `perplexity` (the training data under its base model) |
| `analysis/layerdiff.parquet` | `run_id`, `depth` (normalised layer depth, 0–1), `rel_change` (‖ΔW‖/‖W‖) |
| `analysis/index.json` | the analyses of `hubkit analyze`: title, condition, n, what was left out, figures (`*.png` beside it) |
| `modelspace/loglik_map.parquet` | `model`, `family`, `dataset`, `epochs`, `tuning`, `x`, `y`, `method` (`hubkit analyze --loglik`) |

Example:
    >>> board = Board(load_results("my-org/massive-sft-results"))
    >>> board.view(filters={"tuning": ["lora"]}, groups=["math"]).shape
    (440, 12)
"""

from .loading import (
    ANALYSIS_INDEX,
    load_analysis,
    load_data_checks,
    load_results,
    load_study_analyses,
    read_table,
    rows_from_cards,
)
from .model import Page, Ranked
from .plots import Board
from .schema import (
    AXES,
    AXIS_TITLES,
    BENCHMARKS,
    COLUMNS,
    DEFAULT_COLUMNS,
    GROUPS,
    MAP_COLOURS,
    OPTIONAL_COLUMNS,
    PAGE_SIZE,
    SCALE_TITLES,
    SHOT_SETTINGS,
    column_label,
    complete,
    settings,
    trim_heap,
)

__all__ = [
    "ANALYSIS_INDEX", "AXES", "AXIS_TITLES", "BENCHMARKS", "COLUMNS", "DEFAULT_COLUMNS", "GROUPS", "MAP_COLOURS",
    "OPTIONAL_COLUMNS", "PAGE_SIZE", "SCALE_TITLES", "SHOT_SETTINGS", "Board", "Page", "Ranked", "column_label", "trim_heap",
    "complete", "load_analysis", "load_data_checks", "load_results", "load_study_analyses", "read_table",
    "rows_from_cards", "settings",
]
