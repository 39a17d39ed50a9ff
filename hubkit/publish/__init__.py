"""Publishing to the Hub: trained runs as model repos with cards (`model_repo`), and the results dataset every
score lands in (`dataset`).

Example:
    >>> from hubkit.publish import publish_run, load_results
    >>> result = publish_run("runs/tiny-llama-lima-64-full-e1-cosine-1a2b3c4d", sweep="demo")
    >>> load_results(result.results_repo)[["run_id", "benchmark", "score", "n_samples"]]
"""

from .dataset import (
    CONSOLIDATED,
    ResultsPush,
    default_results_repo,
    load_results,
    push_results,
    rows_key,
    sweep_results_repo,
)
from .model_repo import PublishResult, publish_run, repo_matches, run_evaluation, stage_card, stage_model

__all__ = [
    "CONSOLIDATED", "PublishResult", "ResultsPush", "default_results_repo", "load_results", "publish_run",
    "push_results", "repo_matches", "rows_key", "run_evaluation", "stage_card", "stage_model", "sweep_results_repo",
]
