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


def recipes() -> dict[str, str]:
    """The shipped sweep recipes by name (`tiny-demo`, …), each with its header comment's first sentence.

    Example:
        >>> recipes()["tiny-demo"]
        'The smallest sweep that exercises everything'
    """
    found = {}
    for path in sorted(resource_dir("recipes").glob("*.yaml")):
        header = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("#") or not line.strip("# "):
                break
            header.append(line.strip("# "))
        text = " ".join(header)
        found[path.stem] = text.split(": ")[0].split(". ")[0].rstrip(".") if text else ""
    return found


def recipe_path(name: str | Path) -> Path:
    """A sweep file: `name` itself where that file exists, else the shipped recipe of that name (`tiny-demo` or
    `tiny-demo.yaml`). A path into a folder comes back as given, for its reader to say whether it exists.

    Raises:
        HubkitError: a bare name that is neither a file here nor a shipped recipe (the message lists them).

    Example:
        >>> recipe_path("tiny-demo").name
        'tiny-demo.yaml'
    """
    from .errors import HubkitError

    path = Path(name)
    if path.is_file() or path.parent != Path("."):
        return path
    shipped = resource_dir("recipes") / f"{path.stem if path.suffix in ('.yaml', '.yml') else path.name}.yaml"
    if shipped.is_file():
        return shipped
    raise HubkitError(f"no sweep file {name} and no shipped recipe of that name (shipped: {', '.join(recipes())}; "
                      "hubkit sweep --recipes)")
