"""Crash-safe, content-addressed storage behind the local Hub.

Layout under the root folder::

    objects/blobs/ab/<sha256>          file contents, stored once however many repos hold them
    objects/blobs/ab/<sha256>.json     blob facts: size, git blob oid (once known), safetensors parameter counts
    objects/commits/ab/<sha1>.json     immutable commit objects: parents, full file tree, card data
    repos/<type>/<ns>/<name>/repo.json the only mutable record: visibility, branches, tags, PRs
    repos/<type>/<ns>/<name>/lfs/<sha256>  LFS objects uploaded to that repo (what its commits may reference)
    tmp/                               partial writes; a crash leaves debris here, never a half state
    gc.lock                            writers hold it shared, `Store.gc` exclusively

Everything is private to the serving user: folders 0700, files 0600. Blobs are shared between repos, but a
commit may reference an LFS object only if it was uploaded to that repo or is already in its history, so
knowing a private file's hash never gives access to it. `Store.gc` removes what no ref reaches any more
(commits and blobs of deleted repos and branches, uploads never committed) and crash debris.

A commit is made visible by one atomic `os.replace` of `repo.json`, after every blob and the commit object
are durable. A crash at any moment therefore leaves the repo at its previous commit. Commits to one repo
are serialised by a per-repo lock, so concurrent writers never lose each other's changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .blobs import HEAD_BYTES, BlobWriter, safetensors_params
from .cardmeta import parse_front_matter
from .errors import (
    BadRequest,
    Conflict,
    EntryNotFound,
    NotFound,
    PreconditionFailed,
    RepoNotFound,
    RevisionNotFound,
)
from .records import (
    _HEX_PREFIX,
    _PR_RE,
    LFS_SUFFIXES,
    REPO_TYPES,
    SPACE_SDKS,
    Collection,
    Commit,
    CommitMeta,
    FileEntry,
    Operation,
    Repo,
    git_blob_oid,
    is_lfs_path,
    now_iso,
    path_problem,
    tree_collision,
    validate_branch,
    validate_name,
    validate_path,
    validate_repo_id,
    validate_repo_type,
)

logger = logging.getLogger("hubkit.hub.server")

COMMIT_CACHE_BYTES = 16 * 1024 * 1024  # of commit JSON held parsed in memory (about 3x that in RSS)
META_CACHE_ENTRIES = 65_536  # commits without their trees (a few hundred bytes each)
_TREE_KEY = b',"tree":{'  # commit JSON is written with sorted keys, so the tree is its last member


# ----------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------------------
# The store
# ----------------------------------------------------------------------------------------------------------
class Store:
    """All state of one local Hub, under one root folder.

    Args:
        root: folder holding blobs, commits and repos (created if missing).
        owner: whether this is the serving process, which sweeps partial writes left by a crash.

    Example:
        >>> store = Store(Path("/tmp/hub"))
        >>> store.create_repo("model", "alice/demo", private=False)
    """

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
        self._repo_cache: dict[str, tuple[int, Repo]] = {}
        self._commits: OrderedDict[str, tuple[int, Commit]] = OrderedDict()
        self._commit_bytes = 0
        self._metas: OrderedDict[str, CommitMeta] = OrderedDict()
        self._commit_guard = threading.Lock()
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
        from .yamlsafe import YamlLimit

        card = None
        readme = tree.get("README.md")
        if readme is not None and readme.size < 5 * 1024 * 1024:
            try:
                card = parse_front_matter(self.blob_path(readme.sha256).read_text(encoding="utf-8", errors="replace"))
            except YamlLimit as e:
                raise BadRequest(f"README.md metadata refused: {e}") from None
        safetensors = None
        params: dict[str, int] = {}
        for p, e in tree.items():
            if p.endswith(".safetensors"):
                for dtype, n in ((self.blob_meta(e.sha256) or {}).get("safetensors") or {}).items():
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

    # ---- revisions ----------------------------------------------------------------------------------------
    def resolve(self, repo: Repo, revision: str) -> Commit:
        """A branch, tag, `refs/pr/N` or (unique prefix of a) commit sha → the commit.

        Raises:
            RevisionNotFound: nothing of this repo answers to `revision`.
        """
        return self.get_commit(self.resolve_sha(repo, revision))

    def resolve_sha(self, repo: Repo, revision: str) -> str:
        """The commit sha `revision` names in `repo`, without reading any tree.

        A commit sha (full, or a prefix of at least 5 hex digits) is looked up in the object store's fan-out
        folder (`objects/commits/<first 2>/`), not by walking history: it costs one folder listing at most and
        one commit head per candidate, whatever the repo's size. It names a commit only when that commit was
        made by this very repo (`Repo.origin`), so a hash from another repo, or from an earlier repo of the same
        name, is not found here.

        Raises:
            RevisionNotFound: nothing of this repo answers to `revision`.
        """
        if revision in repo.branches:
            return repo.branches[revision]
        if revision in repo.tags:
            return repo.tags[revision]["sha"]
        m = _PR_RE.match(revision)
        if m and m.group(1) in repo.prs:
            return repo.prs[m.group(1)]["head"]
        if _HEX_PREFIX.match(revision):
            if len(revision) == 40:
                candidates = [revision] if self._commit_file(revision).exists() else []
            else:
                try:
                    names = os.listdir(self.commits / revision[:2])
                except OSError:
                    names = []
                candidates = sorted({n[:40] for n in names if n.startswith(revision) and n.endswith(".json")})
            mine = []
            for sha in candidates:
                try:
                    if self.commit_meta(sha).origin == repo.origin:
                        mine.append(sha)
                except RevisionNotFound:
                    continue
            if len(mine) == 1:
                return mine[0]
        raise RevisionNotFound(f"Invalid rev id: {revision}")

    def history_shas(self, repo: Repo) -> Iterator[str]:
        """Every commit reachable from any ref of the repo (each once), walked through commit heads only."""
        seen: set[str] = set()
        stack = list(repo.branches.values()) + [t["sha"] for t in repo.tags.values()]
        stack += [pr["head"] for pr in repo.prs.values()]
        while stack:
            sha = stack.pop()
            if sha in seen:
                continue
            seen.add(sha)
            yield sha
            stack.extend(self.commit_meta(sha).parents)

    def log(self, repo: Repo, revision: str) -> Iterator[CommitMeta]:
        """First-parent history from `revision`, newest first, read lazily and without trees."""
        meta: CommitMeta | None = self.commit_meta(self.resolve_sha(repo, revision))
        while meta is not None:
            yield meta
            meta = self.commit_meta(meta.parents[0]) if meta.parents else None

    # ---- LFS objects per repo -----------------------------------------------------------------------------
    def _grant(self, repo: Repo, sha256: str) -> Path:
        return self.repo_dir(repo.type, repo.id) / "lfs" / sha256

    def grant(self, repo: Repo, sha256: str) -> None:
        """Record that `sha256` was uploaded to `repo` (its bytes were received and verified for it)."""
        path = self._grant(repo, sha256)
        path.parent.mkdir(exist_ok=True, mode=0o700)
        path.touch(mode=0o600)

    def granted(self, repo: Repo, sha256: str) -> bool:
        return bool(re.fullmatch(r"[0-9a-f]{64}", sha256)) and self._grant(repo, sha256).exists()

    def referenced(self, repo: Repo) -> set[str]:
        """Every blob any revision of `repo` holds."""
        return {e.sha256 for sha in self.history_shas(repo) for e in self.get_commit(sha).tree.values()}

    def may_reference(self, repo: Repo, sha256: str, known: set[str] | None = None) -> bool:
        """Whether a commit to `repo` may point at blob `sha256`: uploaded to this repo, or already in it."""
        if not self.has_blob(sha256):
            return False
        return self.granted(repo, sha256) or sha256 in (known if known is not None else self.referenced(repo))

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

    # ---- writing ------------------------------------------------------------------------------------------
    @_writes
    def commit(
        self,
        repo_type: str,
        repo_id: str,
        revision: str,
        operations: list[Operation],
        *,
        title: str,
        message: str = "",
        author: str,
        parent_commit: str | None = None,
        create_pr: bool = False,
    ) -> tuple[Commit, int | None]:
        """Apply `operations` atomically on top of `revision`; returns the commit and the PR number, if any.

        Raises:
            PreconditionFailed: `parent_commit` is not the head of `revision` any more.
            RevisionNotFound: the branch does not exist.
            EntryNotFound: deleting a file or folder that does not exist.
        """
        repo = self.get_repo(repo_type, repo_id)
        with self.lock(f"{repo.type}:{repo.id}"):
            repo = self.get_repo(repo_type, repo_id)  # re-read under the lock
            pr_num: int | None = None
            m = _PR_RE.match(revision)
            if m:
                if m.group(1) not in repo.prs:
                    raise RevisionNotFound(f"Invalid rev id: {revision}")
                head = self.get_commit(repo.prs[m.group(1)]["head"])
            elif revision in repo.branches:
                head = self.get_commit(repo.branches[revision])
            else:
                raise RevisionNotFound(f"Invalid rev id: {revision}")
            if parent_commit is not None:
                if not isinstance(parent_commit, str) or not _HEX_PREFIX.match(parent_commit):
                    raise BadRequest(f"Invalid parentCommit {parent_commit!r}")
                if not head.id.startswith(parent_commit):
                    raise PreconditionFailed("A commit has happened since. Please refresh and try again.")
            tree = dict(head.tree)
            for op in operations:
                validate_path(op.path.rstrip("/") if op.kind == "delete_folder" else op.path)
                if op.kind == "add":
                    assert op.entry is not None
                    tree[op.path] = op.entry
                elif op.kind == "copy":
                    src_commit = self.resolve(repo, op.src_revision) if op.src_revision else head
                    src = src_commit.tree.get(op.src_path or "")
                    if src is None:
                        raise EntryNotFound(f"Cannot copy {op.src_path!r}: no such file")
                    tree[op.path] = src
                elif op.kind == "delete_file":
                    if tree.pop(op.path, None) is None:
                        raise EntryNotFound("A file with this name doesn't exist", commit=head.id)
                elif op.kind == "delete_folder":
                    prefix = op.path.rstrip("/") + "/"
                    doomed = [p for p in tree if p.startswith(prefix)]
                    if not doomed:
                        raise EntryNotFound("A folder with this name doesn't exist", commit=head.id)
                    for p in doomed:
                        del tree[p]
                else:
                    raise BadRequest(f"Unknown operation {op.kind!r}")
            clash = tree_collision(tree, [op.path for op in operations if op.kind in ("add", "copy")])
            if clash is not None:
                raise BadRequest(f"Invalid path {clash[:200]!r}: a file and a folder cannot have the same name")
            commit = self._write_commit(repo, [head.id], tree, title, message, author)
            if create_pr:
                pr_num = max((int(k) for k in repo.prs), default=0) + 1
                repo.prs[str(pr_num)] = {
                    "head": commit.id, "base": revision, "title": title, "author": author,
                    "createdAt": commit.date, "status": "open",
                }
            elif m:
                repo.prs[m.group(1)]["head"] = commit.id
            else:
                repo.branches[revision] = commit.id
            repo.last_modified = commit.date
            self.save_repo(repo)
            return commit, pr_num

    @_writes
    def open_pr(self, repo_type: str, repo_id: str, title: str, author: str, base: str = "main") -> int:
        repo = self.get_repo(repo_type, repo_id)
        with self.lock(f"{repo.type}:{repo.id}"):
            repo = self.get_repo(repo_type, repo_id)
            head = self.resolve(repo, base)
            num = max((int(k) for k in repo.prs), default=0) + 1
            repo.prs[str(num)] = {
                "head": head.id, "base": base, "title": title, "author": author, "createdAt": now_iso(),
                "status": "open",
            }
            self.save_repo(repo)
            return num

    @_writes
    def set_ref(self, repo_type: str, repo_id: str, kind: str, name: str, target: str | None, message: str = "") -> None:
        """Create (target = a revision) or delete (target = None) a branch or tag."""
        repo = self.get_repo(repo_type, repo_id)
        with self.lock(f"{repo.type}:{repo.id}"):
            repo = self.get_repo(repo_type, repo_id)
            refs: dict = repo.branches if kind == "branch" else repo.tags
            if target is None:
                if name not in refs:
                    raise RevisionNotFound(f"Invalid rev id: {name}")
                if kind == "branch" and name == "main":
                    raise BadRequest("Cannot delete the main branch")
                del refs[name]
            else:
                validate_branch(name)
                if name in repo.branches or name in repo.tags:
                    raise Conflict(f"Reference {name} already exists")
                sha = self.resolve(repo, target).id
                refs[name] = sha if kind == "branch" else {"sha": sha, "message": message}
            self.save_repo(repo)


def _origin(d: dict) -> str:
    """The origin a commit's JSON records (`Repo.origin` of the repo that made it)."""
    return f"{d.get('repo', '')}#{d.get('repo_uid', '')}"
