"""The files hubkit ships beside its code: card templates, recipes and the leaderboard Space.

In a checkout (an editable install) they are the repository's own folders — `model_cards/`,
`scripts/recipes/`, `spaces/leaderboard/` — where users edit and deploy them. In an installed wheel they are
package data, `hubkit/_shipped/<name>/` (mapped in `pyproject.toml`), found through its import spec.

Example:
    >>> resource_dir("leaderboard") / "app.py"
    PosixPath('.../spaces/leaderboard/app.py')
"""

from __future__ import annotations

from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
SHIPPED = {"model_cards": "model_cards", "recipes": "scripts/recipes", "leaderboard": "spaces/leaderboard"}


def resource_dir(name: str) -> Path:
    """The folder of one shipped resource (`model_cards`, `recipes` or `leaderboard`): the checkout's, else the
    installed package's. Where neither exists the checkout path is returned, and its users say what is missing."""
    checkout = CHECKOUT / SHIPPED[name]
    if checkout.is_dir():
        return checkout
    beside = Path(__file__).resolve().parent / "_shipped" / name  # where the wheel puts it, next to this module
    if beside.is_dir():
        return beside
    from importlib.util import find_spec

    try:  # a folder of data files: a namespace package, whose location its spec gives
        spec = find_spec(f"hubkit._shipped.{name}")
    except ModuleNotFoundError:
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    installed = Path(locations[0]) if locations else None
    return installed if installed is not None and installed.is_dir() else checkout
