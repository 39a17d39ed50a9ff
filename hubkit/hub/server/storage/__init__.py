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

from ..errors import BadRequest, EntryNotFound, PreconditionFailed, RevisionNotFound
from ..records import _HEX_PREFIX, _PR_RE, Commit, FileEntry, Operation, Repo, tree_collision, validate_path
from .base import _writes
from .gc import GcStore

__all__ = ["Store"]


class Store(GcStore):
    """All state of one local Hub, under one root folder.

    Its jobs live one per module, each layer built on the one before: `base` (the folder, locks, atomic
    writes), `objects` (blobs and commits), `repos` (repo records and collections), `refs` (revisions,
    history, LFS grants, moving refs), `gc`; this class adds the one operation that uses them all, `commit`.

    Args:
        root: folder holding blobs, commits and repos (created if missing).
        owner: whether this is the serving process, which sweeps partial writes left by a crash.

    Example:
        >>> store = Store(Path("/tmp/hub"))
        >>> store.create_repo("model", "alice/demo", private=False)
    """

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
            tree = self._apply(repo, head, operations)
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

    def _apply(self, repo: Repo, head: Commit, operations: list[Operation]) -> dict[str, FileEntry]:
        """The tree `operations` make of `head`'s (validated: paths, sources, no file/folder clash)."""
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
        return tree
