"""Content-addressed objects: blobs (file contents, stored once) and immutable commits, with bounded caches."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..blobs import HEAD_BYTES, BlobWriter, safetensors_params
from ..cardmeta import parse_front_matter
from ..errors import (
    BadRequest,
    RevisionNotFound,
)
from ..records import (
    Commit,
    CommitMeta,
    FileEntry,
    Repo,
    git_blob_oid,
    is_lfs_path,
    now_iso,
    path_problem,
)
from ..yamlsafe import YamlLimit
from .base import StoreBase, _fsync_dir, logger

COMMIT_CACHE_BYTES = 16 * 1024 * 1024  # of commit JSON held parsed in memory (about 3x that in RSS)
META_CACHE_ENTRIES = 65_536  # commits without their trees (a few hundred bytes each)
_TREE_KEY = b',"tree":{'  # commit JSON is written with sorted keys, so the tree is its last member


class ObjectStore(StoreBase):
    """Blobs and commits: written once, never changed, shared by every repo that holds them."""

    def __init__(self, root: Path, owner: bool = False) -> None:
        super().__init__(root, owner)
        self._commits: OrderedDict[str, tuple[int, Commit]] = OrderedDict()
        self._commit_bytes = 0
        self._metas: OrderedDict[str, CommitMeta] = OrderedDict()
        self._commit_guard = threading.Lock()

    # ---- blobs --------------------------------------------------------------------------------------------
    def blob_path(self, sha256: str) -> Path:
        return self.blobs / sha256[:2] / sha256

    def blob_meta(self, sha256: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.blobs / sha256[:2] / f"{sha256}.json").read_text())
        except (OSError, ValueError):
            return None

    def has_blob(self, sha256: str, size: int | None = None) -> bool:
        meta = self.blob_meta(sha256)
        return meta is not None and self.blob_path(sha256).exists() and (size is None or meta["size"] == size)

    def put_bytes(self, data: bytes) -> tuple[str, int, str]:
        """Store `data`; returns (sha256, size, git blob oid). Identical content is stored once."""
        sha256 = hashlib.sha256(data).hexdigest()
        gitoid = git_blob_oid(data)
        if not self.has_blob(sha256, len(data)):
            tmp = self.tmp_path()
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            self.publish_blob(tmp, sha256, len(data), gitoid, data[:HEAD_BYTES])
        return sha256, len(data), gitoid

    def blob_writer(self, size: int | None = None, expected_sha256: str | None = None) -> BlobWriter:
        """A writer that streams a blob to disk, hashing as it goes (`size`: announced, or None when unknown)."""
        return BlobWriter(self, size, expected_sha256)

    def publish_blob(self, tmp: Path, sha256: str, size: int, gitoid: str, head: bytes) -> None:
        """Move a durable (fsynced) `tmp` file into place as blob `sha256`, then write its facts.

        The facts file is not fsynced: a crash may lose it, and a blob without facts counts as absent (it is
        uploaded again), never as present with wrong facts.
        """
        target = self.blob_path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        meta: dict[str, Any] = {"size": size}
        if gitoid:
            meta["gitoid"] = gitoid
        st = safetensors_params(head)
        if st is not None:
            meta["safetensors"] = st
        # Data first, then the facts: a blob counts as present only when both exist.
        os.replace(tmp, target)
        _fsync_dir(target.parent)
        self._write_meta(sha256, meta)

    def _write_meta(self, sha256: str, meta: dict[str, Any]) -> None:
        tmp = self.tmp_path(".json")
        tmp.write_text(json.dumps(meta, separators=(",", ":"), sort_keys=True))
        os.replace(tmp, self.blobs / sha256[:2] / f"{sha256}.json")

    def git_oid(self, sha256: str) -> str:
        """The git blob oid (sha1) of a stored blob: recorded at upload for inline files, computed here (one read
        of the blob) and recorded on first need for streamed ones."""
        meta = self.blob_meta(sha256) or {"size": self.blob_path(sha256).stat().st_size}
        if not meta.get("gitoid"):
            h = hashlib.sha1(b"blob %d\0" % int(meta["size"]))
            for chunk in self.read_blob(sha256):
                h.update(chunk)
            meta["gitoid"] = h.hexdigest()
            self._write_meta(sha256, meta)
        return str(meta["gitoid"])

    def read_blob(self, sha256: str, start: int = 0, end: int | None = None, chunk_size: int = 4 << 20) -> Iterator[bytes]:
        """Bytes [start, end) of a blob, in chunks."""
        with open(self.blob_path(sha256), "rb") as f:
            f.seek(start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                data = f.read(chunk_size if remaining is None else min(chunk_size, remaining))
                if not data:
                    break
                if remaining is not None:
                    remaining -= len(data)
                yield data

    def entry_for_blob(self, path: str, sha256: str, lfs: bool | None = None) -> FileEntry:
        meta = self.blob_meta(sha256)
        if meta is None or not self.blob_path(sha256).exists():
            raise BadRequest(f"Unknown LFS object {sha256} for {path!r}: upload it first")
        size = int(meta["size"])
        lfs = is_lfs_path(path, size) if lfs is None else lfs
        return FileEntry(sha256, size, meta.get("gitoid") or ("" if lfs else self.git_oid(sha256)), lfs)

    # ---- commits ------------------------------------------------------------------------------------------
    def _commit_file(self, sha: str) -> Path:
        return self.commits / sha[:2] / f"{sha}.json"

    def _recent(self, cache: OrderedDict, sha: str) -> Any:
        """`cache[sha]`, marked as the most recently used, or None."""
        with self._commit_guard:
            hit = cache.get(sha)
            if hit is not None:
                cache.move_to_end(sha)
            return hit

    def get_commit(self, sha: str) -> Commit:
        """A commit by sha, from a cache bounded by bytes (`COMMIT_CACHE_BYTES` of commit JSON): a repo with a
        long history of large trees costs bounded memory, whoever asks for it.

        Raises:
            RevisionNotFound: no commit object with that sha.
        """
        hit = self._recent(self._commits, sha)
        if hit is not None:
            return hit[1]
        try:
            raw = self._commit_file(sha).read_bytes()
            d = json.loads(raw)
        except (OSError, ValueError) as e:
            raise RevisionNotFound(f"Commit {sha} not found") from e
        commit = self._commit_from(sha, d)
        if len(raw) <= COMMIT_CACHE_BYTES // 8:
            with self._commit_guard:
                if sha not in self._commits:
                    self._commits[sha] = (len(raw), commit)
                    self._commit_bytes += len(raw)
                while self._commit_bytes > COMMIT_CACHE_BYTES and self._commits:
                    self._commit_bytes -= self._commits.popitem(last=False)[1][0]
        return commit

    def commit_meta(self, sha: str) -> CommitMeta:
        """A commit without its tree: read from the head of its JSON (the tree is its last member), never parsed
        whole, and cached by count (`META_CACHE_ENTRIES`), so walking a long history of large trees is cheap.

        Raises:
            RevisionNotFound: no commit object with that sha.
        """
        meta = self._recent(self._metas, sha)
        if meta is not None:
            return meta
        with self._commit_guard:
            full = self._commits.get(sha)
        if full is not None:
            c = full[1]
            meta = CommitMeta(c.id, c.parents, c.title, c.message, c.date, c.author, c.origin)
        else:
            try:
                raw = self._commit_file(sha).read_bytes()
                cut = raw.rfind(_TREE_KEY)
                d = json.loads(raw[:cut] + b"}" if cut != -1 else raw)
            except (OSError, ValueError) as e:
                raise RevisionNotFound(f"Commit {sha} not found") from e
            meta = CommitMeta(sha, d["parents"], d["title"], d["message"], d["date"], d["author"], _origin(d))
        with self._commit_guard:
            self._metas[sha] = meta
            while len(self._metas) > META_CACHE_ENTRIES:
                self._metas.popitem(last=False)
        return meta

    @staticmethod
    def _commit_from(sha: str, d: dict) -> Commit:
        tree = {}
        for p, e in d["tree"].items():
            # Every ASCII name was validated on its way in, by every hubkit; only others need a second look
            problem = None if p.isascii() else path_problem(p)
            if problem is None:
                tree[p] = FileEntry.from_json(e)
            else:  # stored by an older hubkit: left out of every listing and download, never a 500
                logger.warning("commit %s: skipping stored path %r (%s)", sha, p[:200], problem)
        return Commit(
            id=sha, parents=d["parents"], tree=tree, title=d["title"], message=d["message"], date=d["date"],
            author=d["author"], card=d.get("card"), safetensors=d.get("safetensors"), config=d.get("config"),
            origin=_origin(d),
        )

    def _write_commit(
        self, repo: Repo, parents: list[str], tree: dict[str, FileEntry], title: str, message: str, author: str
    ) -> Commit:


        card = None
        readme = tree.get("README.md")
        if readme is not None and readme.size < 5 * 1024 * 1024:
            try:
                card = parse_front_matter(self.blob_path(readme.sha256).read_text(encoding="utf-8", errors="replace"))
            except YamlLimit as e:
                raise BadRequest(f"README.md metadata refused: {e}") from None
        safetensors = None
        params: dict[str, int] = {}
        for p, entry in tree.items():
            if p.endswith(".safetensors"):
                for dtype, n in ((self.blob_meta(entry.sha256) or {}).get("safetensors") or {}).items():
                    params[dtype] = params.get(dtype, 0) + n
        if params:
            safetensors = {"parameters": params, "total": sum(params.values())}
        config = None
        cfg = tree.get("config.json")
        if repo.type == "model" and cfg is not None and cfg.size < 1024 * 1024:
            try:
                raw = json.loads(self.blob_path(cfg.sha256).read_bytes())
                if isinstance(raw, dict):
                    config = {k: raw[k] for k in ("architectures", "model_type") if k in raw}
            except ValueError:
                config = None
        body = {
            "parents": parents, "tree": {p: e.to_json() for p, e in sorted(tree.items())}, "title": title,
            "message": message, "date": now_iso(), "author": author, "card": card, "safetensors": safetensors,
            "config": config, "repo": f"{repo.type}:{repo.id}", "repo_uid": repo.uid, "nonce": secrets.token_hex(4),
        }
        raw = json.dumps(body, separators=(",", ":"), sort_keys=True)
        sha = hashlib.sha1(raw.encode()).hexdigest()
        path = self._commit_file(sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp_path(".json")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return self.get_commit(sha)


def _origin(d: dict) -> str:
    """The origin a commit's JSON records (`Repo.origin` of the repo that made it)."""
    return f"{d.get('repo', '')}#{d.get('repo_uid', '')}"
