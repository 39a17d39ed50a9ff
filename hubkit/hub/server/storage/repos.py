"""Repositories (`repo.json`, the only mutable record of each) and collections."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import (
    BadRequest,
    Conflict,
    NotFound,
    RepoNotFound,
)
from ..records import (
    LFS_SUFFIXES,
    SPACE_SDKS,
    Collection,
    FileEntry,
    Repo,
    validate_name,
    validate_repo_id,
    validate_repo_type,
)
from .base import _writes
from .objects import ObjectStore


class RepoStore(ObjectStore):
    """Repo records (visibility, branches, tags, PRs: one `repo.json` each, replaced atomically) and collections."""

    def __init__(self, root: Path, owner: bool = False) -> None:
        super().__init__(root, owner)
        self._repo_cache: dict[str, tuple[int, Repo]] = {}

    # ---- repos --------------------------------------------------------------------------------------------
    def repo_dir(self, repo_type: str, repo_id: str) -> Path:
        ns, name = validate_repo_id(repo_id)
        return self.repos_dir / repo_type / ns / name

    def get_repo(self, repo_type: str, repo_id: str) -> Repo:
        repo_type = validate_repo_type(repo_type)
        f = self.repo_dir(repo_type, repo_id) / "repo.json"
        key = f"{repo_type}:{repo_id}"
        try:
            mtime = f.stat().st_mtime_ns
        except OSError:
            self._repo_cache.pop(key, None)
            raise RepoNotFound(f"Repository {repo_id} not found") from None
        cached = self._repo_cache.get(key)
        if cached and cached[0] == mtime:
            return cached[1]
        try:
            repo = Repo.from_json(json.loads(f.read_text()))
        except (OSError, ValueError, KeyError) as e:
            raise RepoNotFound(f"Repository {repo_id} not found") from e
        self._repo_cache[key] = (mtime, repo)
        return repo

    def save_repo(self, repo: Repo) -> None:
        self.write_json_atomic(self.repo_dir(repo.type, repo.id) / "repo.json", repo.to_json())
        self._repo_cache.pop(f"{repo.type}:{repo.id}", None)
        self.bump_generation(repo.type)

    @_writes
    def create_repo(
        self, repo_type: str, repo_id: str, *, private: bool = False, sdk: str | None = None, author: str = "hub"
    ) -> Repo:
        repo_type = validate_repo_type(repo_type)
        validate_repo_id(repo_id)
        if repo_type == "space" and sdk not in SPACE_SDKS:
            raise BadRequest(f"Invalid Space sdk {sdk!r}: expected one of {', '.join(SPACE_SDKS)}")
        with self.lock("create"):
            try:
                self.get_repo(repo_type, repo_id)
                raise Conflict(f"You already created this {repo_type} repo")
            except RepoNotFound:
                pass
            repo = Repo(type=repo_type, id=repo_id, private=bool(private), sdk=sdk if repo_type == "space" else None,
                        uid=secrets.token_hex(8))
            tree: dict[str, FileEntry] = {}
            attrs = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES).encode()
            sha, size, gitoid = self.put_bytes(attrs)
            tree[".gitattributes"] = FileEntry(sha, size, gitoid, False)
            commit = self._write_commit(repo, [], tree, "initial commit", "", author)
            repo.branches = {"main": commit.id}
            repo.last_modified = commit.date
            self.save_repo(repo)
            return repo

    @_writes
    def delete_repo(self, repo_type: str, repo_id: str) -> None:
        repo = self.get_repo(repo_type, repo_id)
        with self.lock(f"{repo.type}:{repo.id}"):
            d = self.repo_dir(repo.type, repo.id)
            trash = self.tmp_path(".deleted")
            os.replace(d, trash)  # atomic disappearance; blobs stay shared with other repos
            self._repo_cache.pop(f"{repo.type}:{repo.id}", None)
            self.bump_generation(repo.type)
            shutil.rmtree(trash, ignore_errors=True)

    def update_settings(self, repo_type: str, repo_id: str, *, private: bool | None = None, gated: Any = None) -> Repo:
        repo = self.get_repo(repo_type, repo_id)
        with self.lock(f"{repo.type}:{repo.id}"):
            repo = self.get_repo(repo_type, repo_id)
            if private is not None:
                repo.private = bool(private)
            if gated is not None:
                if gated not in (False, "auto", "manual"):
                    raise BadRequest(f"Invalid gated value {gated!r}")
                repo.gated = gated
            self.save_repo(repo)
            return repo

    def iter_repos(self, repo_type: str) -> Iterator[Repo]:
        base = self.repos_dir / repo_type
        if not base.exists():
            return
        for ns_dir in base.iterdir():
            for d in ns_dir.iterdir():
                try:
                    yield self.get_repo(repo_type, f"{ns_dir.name}/{d.name}")
                except (RepoNotFound, BadRequest):
                    continue

    # ---- collections --------------------------------------------------------------------------------------
    def _collection_file(self, slug: str) -> Path:
        ns, _, rest = slug.partition("/")
        validate_name(ns, "namespace")
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", rest):
            raise BadRequest(f"Invalid collection slug {slug!r}")
        return self.root / "collections" / ns / f"{rest}.json"

    def get_collection(self, slug: str) -> Collection:
        """Raises: NotFound (no such collection), BadRequest (a malformed slug)."""
        try:
            return Collection.from_json(json.loads(self._collection_file(slug).read_text()))
        except (OSError, ValueError, KeyError):
            raise NotFound(f"Collection {slug} not found") from None

    def iter_collections(self) -> Iterator[Collection]:
        for f in sorted((self.root / "collections").glob("*/*.json")):
            try:
                yield Collection.from_json(json.loads(f.read_text()))
            except (OSError, ValueError, KeyError):
                continue

    def create_collection(self, namespace: str, owner_type: str, title: str, description: str = "",
                          private: bool = False) -> tuple[Collection, bool]:
        """A new collection, or (with False) the namespace's existing one of the same title."""
        base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:80] or "collection"
        validate_name(namespace, "namespace")
        with self.lock("collections"):
            for f in sorted((self.root / "collections" / namespace).glob(f"{base}-*.json")):
                existing = Collection.from_json(json.loads(f.read_text()))
                if existing.title == title:
                    return existing, False
            coll = Collection(slug=f"{namespace}/{base}-{secrets.token_hex(12)}", title=title,
                              owner={"name": namespace, "type": owner_type}, description=description, private=private)
            self.save_collection(coll)
            return coll, True

    def save_collection(self, coll: Collection) -> None:
        self.write_json_atomic(self._collection_file(coll.slug), coll.to_json())

    def delete_collection(self, slug: str) -> None:
        self._collection_file(slug).unlink(missing_ok=True)
