"""Garbage collection: remove what no ref of any repo reaches, safely while the server runs."""

from __future__ import annotations

import fcntl
import shutil
import time
from pathlib import Path

from ..records import (
    REPO_TYPES,
)
from .refs import RefStore


class GcStore(RefStore):
    """Removing what nothing reaches."""

    # ---- garbage collection -------------------------------------------------------------------------------
    def gc(self, min_age: float = 3600.0, dry_run: bool = False) -> dict[str, int]:
        """Remove what no ref of any repo reaches: commits, blobs, uploads never committed, and crash debris.

        Safe while the server runs: writers hold `writing()` shared, this holds it exclusively, and nothing
        younger than `min_age` seconds is touched (an upload waiting for its commit, a write in progress).

        Returns:
            counts: `commits`, `blobs`, `uploads` (stale LFS grants), `debris` (tmp files) and `bytes` freed.
        """
        cutoff = time.time() - min_age
        report = {"commits": 0, "blobs": 0, "uploads": 0, "debris": 0, "bytes": 0}

        def old(path: Path) -> bool:
            try:
                return path.lstat().st_mtime < cutoff
            except OSError:
                return False

        def remove(path: Path, kind: str | None) -> None:
            try:
                size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() \
                    else path.stat().st_size
            except OSError:
                size = 0
            if kind:
                report[kind] += 1
            report["bytes"] += size
            if not dry_run:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)

        with open(self.root / "gc.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                commits: set[str] = set()
                blobs: set[str] = set()
                grants: list[Path] = []
                for repo_type in REPO_TYPES:
                    for repo in self.iter_repos(repo_type):
                        for sha in self.history_shas(repo):
                            if sha not in commits:
                                commits.add(sha)
                                blobs.update(e.sha256 for e in self.get_commit(sha).tree.values())
                        grant_dir = self.repo_dir(repo.type, repo.id) / "lfs"
                        if grant_dir.is_dir():
                            grants.extend(grant_dir.iterdir())
                for grant in grants:
                    if grant.name in blobs or not old(grant):
                        blobs.add(grant.name)  # committed, or an upload whose commit may still come
                    else:
                        remove(grant, "uploads")
                for path in self.commits.glob("*/*.json"):
                    if path.stem not in commits and old(path):
                        remove(path, "commits")
                        with self._commit_guard:
                            hit = self._commits.pop(path.stem, None)
                            self._metas.pop(path.stem, None)
                            self._commit_bytes -= hit[0] if hit else 0
                for path in self.blobs.glob("*/*"):
                    sha = path.name[:64]
                    if sha not in blobs and old(path):
                        remove(path, "blobs" if path.suffix != ".json" else None)  # the data, then its facts
                for path in self.tmp.iterdir():
                    if old(path):
                        remove(path, "debris")
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return report
