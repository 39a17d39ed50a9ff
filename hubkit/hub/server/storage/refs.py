"""Revisions: resolving branches, tags, PRs and shas; history; which LFS objects a repo may reference; moving refs."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from ..errors import (
    BadRequest,
    Conflict,
    RevisionNotFound,
)
from ..records import (
    _HEX_PREFIX,
    _PR_RE,
    Commit,
    CommitMeta,
    Repo,
    now_iso,
    validate_branch,
)
from .base import _writes
from .repos import RepoStore


class RefStore(RepoStore):
    """What a revision names, the history behind it, which LFS objects a repo may point at, and moving refs."""

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
