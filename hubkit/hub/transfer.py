"""hubkit's own upload path: one commit per folder, large files streamed from disk.

With the stock client, a local Hub keeps every file "regular" (base64 inside the commit body, which the
client builds in memory: ~1.33x the file). hubkit instead asks a local Hub for LFS mode and hands the
client open file objects, which makes it stream each large file in one PUT (the client sends file objects
through LFS, never Xet). Against the real Hub the client's default (Xet) path is used unchanged.
"""

from __future__ import annotations

import fnmatch
import logging
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .client import get_api, is_local_endpoint

if TYPE_CHECKING:
    from huggingface_hub import CommitInfo, HfApi


@dataclass
class PushResult:
    """What `push_folder` did.

    Attributes:
        commit: the new commit sha, or the unchanged head when nothing differed.
        changed: whether a commit was made.
        files: number of files that were added or changed.
    """

    commit: str
    changed: bool
    files: int


class _DropKnownWarnings(logging.Filter):
    """Client warnings that say nothing to a hubkit user: the Xet fallback for streamed files (expected on a
    local Hub) and the skipped empty commit (an unchanged push is reported by `PushResult.changed`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return "binary IO buffer is not supported by Xet" not in text and "Skipping to prevent empty commit" not in text


def _selected(path: str, allow: list[str] | None, ignore: list[str] | None) -> bool:
    if allow and not any(fnmatch.fnmatch(path, p) for p in allow):
        return False
    return not (ignore and any(fnmatch.fnmatch(path, p) for p in ignore))


def push_folder(
    repo_id: str,
    folder: str | Path,
    *,
    repo_type: str = "model",
    path_in_repo: str = "",
    commit_message: str = "Upload folder with hubkit",
    allow_patterns: list[str] | None = None,
    ignore_patterns: list[str] | None = None,
    delete_patterns: list[str] | None = None,
    parent_commit: str | None = None,
    revision: str = "main",
    api: HfApi | None = None,
) -> PushResult:
    """Upload `folder` to `repo_id` as one atomic commit.

    Args:
        repo_id: `namespace/name` of an existing repo.
        folder: local folder to upload.
        repo_type: `model`, `dataset` or `space`.
        path_in_repo: folder inside the repo to upload into.
        commit_message: commit title.
        allow_patterns: only upload matching files (fnmatch on the relative path).
        ignore_patterns: skip matching files.
        delete_patterns: delete remote files matching these (under `path_in_repo`) that the folder lacks.
        parent_commit: fail with HTTP 412 unless the branch head is still this commit.
        revision: branch to commit to.
        api: a client; defaults to `get_api()`.

    Returns:
        A `PushResult`; unchanged files are skipped by the client, and nothing changed means no commit.

    Example:
        >>> push_folder("hubkit/tiny-llama", "runs/tiny-llama", commit_message="Add run")
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    api = api or get_api()
    local = is_local_endpoint(api.endpoint)
    folder = Path(folder)
    prefix = path_in_repo.strip("/") + "/" if path_in_repo.strip("/") else ""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.relative_to(folder).parts)
    rel_paths = [p.relative_to(folder).as_posix() for p in files]
    chosen = [(p, r) for p, r in zip(files, rel_paths) if _selected(r, allow_patterns, ignore_patterns)]
    with ExitStack() as stack:
        ops: list = []
        for path, rel in chosen:
            source = stack.enter_context(open(path, "rb")) if local else str(path)
            ops.append(CommitOperationAdd(path_in_repo=prefix + rel, path_or_fileobj=source))
        if delete_patterns:
            wanted = {prefix + r for _, r in chosen}
            remote = api.list_repo_files(repo_id, repo_type=repo_type, revision=revision)
            for f in remote:
                if f.startswith(prefix) and f not in wanted and any(
                    fnmatch.fnmatch(f[len(prefix):], p) for p in delete_patterns
                ):
                    ops.append(CommitOperationDelete(path_in_repo=f))
        loggers = [logging.getLogger(f"huggingface_hub.{name}") for name in ("_commit_api", "hf_api")]
        quiet = _DropKnownWarnings()
        for logger in loggers:
            logger.addFilter(quiet)
        try:
            info: CommitInfo = api.create_commit(
                repo_id, ops, repo_type=repo_type, commit_message=commit_message, revision=revision,
                parent_commit=parent_commit,
            )
        finally:
            for logger in loggers:
                logger.removeFilter(quiet)
        changed_ops = [
            op for op in ops
            if not (isinstance(op, CommitOperationAdd) and op._remote_oid is not None and op._remote_oid == op._local_oid)
        ]
    return PushResult(commit=info.oid, changed=bool(changed_ops), files=len(changed_ops))
