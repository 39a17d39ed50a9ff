"""The store's root folder: its layout, permissions, locks, atomic writes and change generations."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("hubkit.hub.server")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _writes(method):
    """A `Store` method that adds objects or moves refs: it runs holding `Store.writing()` (see `Store.gc`)."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self.writing():
            return method(self, *args, **kwargs)
    return wrapper


class StoreBase:
    """The root folder of a store (see `Store` for the layout and arguments)."""

    def __init__(self, root: Path, owner: bool = False) -> None:
        self.root = Path(root)
        self.blobs = self.root / "objects" / "blobs"
        self.commits = self.root / "objects" / "commits"
        self.repos_dir = self.root / "repos"
        self.tmp = self.root / "tmp"
        for d in (self.blobs, self.commits, self.repos_dir, self.tmp, self.root / "collections"):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._locks: dict[str, threading.RLock] = {}
        self._locks_guard = threading.Lock()
        if owner:
            self._clean_tmp()
            self._make_private()

    def _make_private(self) -> None:
        """Folders 0700 and files 0600 (a store written by an older hubkit was world-readable); once per store."""
        marker = self.root / ".private-v1"
        os.chmod(self.root, 0o700)
        if marker.exists():
            return
        for folder, dirs, files in os.walk(self.root):
            for d in dirs:
                os.chmod(os.path.join(folder, d), 0o700)
            for f in files:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(folder, f), 0o600)
        marker.touch(mode=0o600)

    @contextlib.contextmanager
    def writing(self):
        """Held (shared) by every write that adds objects or moves refs; `gc` holds it exclusively."""
        with open(self.root / "gc.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _clean_tmp(self) -> None:
        """Partial writes from a crashed process are debris: drop the old ones at start-up."""
        cutoff = time.time() - 60
        for p in self.tmp.iterdir():
            try:
                if p.stat().st_mtime < cutoff:
                    p.unlink()
            except OSError:
                pass

    # ---- locking ------------------------------------------------------------------------------------------
    def lock(self, key: str) -> threading.RLock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.RLock())

    # ---- temp files and atomic writes ---------------------------------------------------------------------
    def tmp_path(self, suffix: str = "") -> Path:
        return self.tmp / f"{os.getpid()}-{secrets.token_hex(8)}{suffix}"

    def write_json_atomic(self, path: Path, data: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp_path(".json")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, separators=(",", ":"), sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)

    def generation_file(self, repo_type: str) -> Path:
        return self.root / f"generation-{repo_type}"

    def bump_generation(self, repo_type: str) -> None:
        """Say that some repo of `repo_type` changed (created, committed to, deleted, its settings): whoever
        keeps a listing index (`listing.ListingIndex`, in this or another process) looks again."""
        tmp = self.tmp_path(".gen")
        tmp.write_text(secrets.token_hex(8))
        os.replace(tmp, self.generation_file(repo_type))

    def generation(self, repo_type: str) -> str:
        try:
            return self.generation_file(repo_type).read_text()
        except OSError:
            return ""
