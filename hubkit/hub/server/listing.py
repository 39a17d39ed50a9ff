"""Repo listings from an index: `list_models` / `list_datasets` / `list_spaces` without reading a card or a
commit per request.

`ListingIndex` keeps, per repo type, one `Entry` per repo: its record, the main commit's id and its tags (card
and files), with its first few field selections kept rendered to JSON bytes. Every write that changes a repo bumps the store's generation for its type
(`Store.bump_generation`, from whatever process wrote); a listing request reads that token (a few bytes) and
only when it changed looks at the repos again, re-reading only those whose `repo.json` changed. The filtered,
sorted rows of a query are kept too (a few recent queries, per generation), so that each page of a listing
costs its own rows, not the whole index; a page is then the join of cached byte strings.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .cardmeta import derive_tags
from .http import as_str_list, render_json
from .repo_info import repo_json

if TYPE_CHECKING:
    from .records import Repo
    from .storage import Store


RENDERED_PER_ENTRY = 4  # field selections kept rendered per repo (the client's few listing shapes)


@dataclass
class Entry:
    """One repo as listings see it: what filtering and sorting need, and each field selection's JSON once it
    was asked for (the repo-info object itself is not kept: a few hundred bytes per repo, not kilobytes)."""

    repo: Repo
    sha: str
    tags: frozenset[str]
    rendered: dict[frozenset[str], bytes] = field(default_factory=dict)

    def render(self, fields: frozenset[str], store: Store) -> bytes:
        """The repo-info object limited to `fields` (and the ids), as JSON bytes: rendered once for each of the
        first `RENDERED_PER_ENTRY` selections, every time for others (a client choosing a new `expand` per request
        cannot grow the server's memory)."""
        out = self.rendered.get(fields)
        if out is None:
            out = render_json(repo_json(self.repo, store.get_commit(self.sha), set(fields)))
            if len(self.rendered) < RENDERED_PER_ENTRY:
                self.rendered[fields] = out
        return out


class ListingIndex:
    """Per repo type, the listing entries of every repo, refreshed when the store's generation changes.

    Example:
        >>> index = ListingIndex(store)
        >>> [e.repo.id for e in index.entries("model")]
    """

    QUERIES = 64  # recent queries whose rows are kept

    def __init__(self, store: Store) -> None:
        self.store = store
        self._by_type: dict[str, tuple[str, dict[str, Entry]]] = {}
        self._queries: OrderedDict[Hashable, list[Entry]] = OrderedDict()
        self._lock = threading.Lock()

    def query(self, repo_type: str, key: Hashable, build: Callable[[list[Entry]], list[Entry]]) -> list[Entry]:
        """`build(entries)` (the rows a listing query selects, in order), computed once per `key` and generation:
        the next pages of the same listing reuse it without touching the index."""
        full_key = (repo_type, self._generation(repo_type), key)
        rows = self._queries.get(full_key)
        if rows is None:
            rows = build(self.entries(repo_type))
            with self._lock:
                self._queries[full_key] = rows
                while len(self._queries) > self.QUERIES:
                    self._queries.popitem(last=False)
        return rows

    def entries(self, repo_type: str) -> list[Entry]:
        """Every repo of `repo_type` (private ones too: the caller filters by who asks)."""
        generation = self._generation(repo_type)
        known = self._by_type.get(repo_type)
        if known is not None and known[0] == generation:
            return list(known[1].values())
        with self._lock:
            old = self._by_type.get(repo_type, ("", {}))[1]
            fresh: dict[str, Entry] = {}
            for repo in self.store.iter_repos(repo_type):
                sha = repo.branches.get("main")
                if sha is None:
                    continue
                prev = old.get(repo.id)
                if prev is not None and prev.repo is repo and prev.sha == sha:
                    fresh[repo.id] = prev  # `get_repo` returns the same object while repo.json is unchanged
                    continue
                fresh[repo.id] = _entry(self.store, repo, sha)
            self._by_type[repo_type] = (generation, fresh)
            return list(fresh.values())

    def _generation(self, repo_type: str) -> str:
        """The store's generation for `repo_type`; a store written before generations existed gets its first."""
        generation = self.store.generation(repo_type)
        if not generation:
            self.store.bump_generation(repo_type)
            generation = self.store.generation(repo_type)
        return generation


def _entry(store: Store, repo: Repo, sha: str) -> Entry:
    commit = store.get_commit(sha)
    tags = set(derive_tags(repo.type, commit.card, commit.tree))
    tags.update(as_str_list((commit.card or {}).get("tags")))
    return Entry(repo=repo, sha=sha, tags=frozenset(tags))
