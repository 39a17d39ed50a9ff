"""The local Hub's route table: each resource module lists its routes; `match` finds the one for a request.

A pattern is a `/`-separated list of tokens, matched against the raw path's segments (so that a `%2F` inside a
revision or a file path stays one segment, exactly as the client meant it):

| token | matches | handler argument |
| --- | --- | --- |
| `word` | that segment | — |
| `{types}` | `models`, `datasets` or `spaces` | `repo_type` (singular) |
| `{type?}` | an optional leading `datasets` / `spaces` (a model when absent) | `repo_type` |
| `{repo}` | two segments, `namespace/name` | `repo_id` |
| `{repo.git}` | `namespace/name.git` | `repo_id` (without `.git`) |
| `{rev}` | a revision: one segment, or `refs/pr/N` / `refs/convert/N` written unencoded | `revision` |
| `{name}` | one segment | `name` (any identifier in braces) |
| `{name*}` | every remaining segment, joined by `/` (possibly none) | `name` |

A pattern that ends in `{rev}` accepts (and ignores) segments after the revision, as the Hub does.

Example:
    >>> route = Route(("GET",), "api/{types}/{repo}/tree/{rev}/{path*}", tree)
    >>> route.match(["api", "models", "alice", "demo", "tree", "main", "sub", "dir"])
    {'repo_type': 'model', 'repo_id': 'alice/demo', 'revision': 'main', 'path': 'sub/dir'}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .http import split_rev
from .records import PLURALS, SINGULARS


@dataclass(frozen=True)
class Route:
    """One endpoint.

    Attributes:
        methods: HTTP methods it answers (`GET` routes answer `HEAD` only when listed).
        pattern: see the module docstring.
        handler: `handler(app, ctx, **arguments)`, returning a `Response` (or awaitable, when `streams`).
        body: bytes of JSON body read into `ctx.body` before the call; 0 reads none.
        streams: the handler is a coroutine that reads the body itself and runs on the event loop; other
            handlers run in the thread pool, so a slow disk never blocks other requests.
        fixed: constant keyword arguments for the handler (one function serving several routes).
    """

    methods: tuple[str, ...]
    pattern: str
    handler: Callable[..., Any]
    body: int = 0
    streams: bool = False
    fixed: dict[str, Any] = field(default_factory=dict)

    def match(self, parts: list[str]) -> dict[str, Any] | None:
        """The handler's arguments when `parts` (the path's segments) fit the pattern, else None.

        Raises:
            BadRequest: the path fits up to a revision that is missing (from `split_rev`).
        """
        args: dict[str, Any] = dict(self.fixed)
        tokens = self.pattern.split("/")
        i = 0
        for n, token in enumerate(tokens):
            last = n == len(tokens) - 1
            if token == "{type?}":
                if i < len(parts) and parts[i] in ("datasets", "spaces"):
                    args["repo_type"] = SINGULARS[parts[i]]
                    i += 1
                else:
                    args["repo_type"] = "model"
            elif token == "{types}":
                if i >= len(parts) or parts[i] not in PLURALS.values():
                    return None
                args["repo_type"] = SINGULARS[parts[i]]
                i += 1
            elif token in ("{repo}", "{repo.git}"):
                if i + 2 > len(parts):
                    return None
                ns, name = parts[i], parts[i + 1]
                if token == "{repo.git}":
                    if not name.endswith(".git"):
                        return None
                    name = name[:-4]
                elif name.endswith(".git"):
                    return None
                args["repo_id"] = f"{ns}/{name}"
                i += 2
            elif token == "{rev}":
                args["revision"], rest = split_rev(parts[i:])  # BadRequest when missing
                i = len(parts) - len(rest)
                if last:
                    return args
            elif token.startswith("{") and token.endswith("*}"):
                args[token[1:-2]] = "/".join(parts[i:])
                i = len(parts)
            elif token.startswith("{") and token.endswith("}"):
                if i >= len(parts):
                    return None
                args[token[1:-1]] = parts[i]
                i += 1
            else:
                if i >= len(parts) or parts[i] != token:
                    return None
                i += 1
        return args if i == len(parts) else None


def match(routes: list[Route], method: str, parts: list[str]) -> tuple[Route, dict[str, Any]] | None:
    """The first route answering `method` whose pattern fits `parts`, with the handler's arguments.

    Raises:
        BadRequest: a route fits up to a revision that the path lacks (`.../tree/`).
    """
    for route in routes:
        if method in route.methods:
            args = route.match(parts)
            if args is not None:
                return route, args
    return None
