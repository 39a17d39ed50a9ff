"""The repo-info object the Hub returns for a repo (`/api/models/{id}`, listings): one renderer for both."""

from __future__ import annotations

import hashlib
from typing import Any

from .cardmeta import derive_tags
from .http import as_str_list
from .records import Commit, Repo, lfs_pointer


def repo_json(repo: Repo, commit: Commit, fields: set[str] | None = None, blobs: bool = False) -> dict:
    """A repo-info object as the Hub returns it; `fields` limits it (the `expand` parameter)."""
    card = commit.card or {}
    files = list(commit.tree)
    out: dict[str, Any] = {
        "_id": hashlib.sha1(f"{repo.type}:{repo.id}".encode()).hexdigest()[:24],
        "id": repo.id, "author": repo.namespace, "sha": commit.id, "lastModified": repo.last_modified,
        "createdAt": repo.created_at, "private": repo.private, "gated": repo.gated, "disabled": False,
        "downloads": repo.downloads, "downloadsAllTime": repo.downloads, "likes": repo.likes, "trendingScore": 0,
        "tags": derive_tags(repo.type, card, files), "cardData": card,
        "usedStorage": sum(e.size for e in commit.tree.values()),
    }
    siblings = []
    for path, e in sorted(commit.tree.items()):
        s: dict[str, Any] = {"rfilename": path}
        if blobs:
            s["size"] = e.size
            s["blobId"] = e.tree_oid
            if e.lfs:
                s["lfs"] = {"size": e.size, "sha256": e.sha256, "pointerSize": len(lfs_pointer(e.sha256, e.size))}
        siblings.append(s)
    out["siblings"] = siblings
    if repo.type == "model":
        out["modelId"] = repo.id
        out["library_name"] = card.get("library_name") if isinstance(card.get("library_name"), str) else None
        out["pipeline_tag"] = card.get("pipeline_tag") if isinstance(card.get("pipeline_tag"), str) else None
        if commit.safetensors:
            out["safetensors"] = commit.safetensors
        if commit.config:
            out["config"] = commit.config
        if isinstance(card.get("model-index"), list):
            out["model-index"] = card["model-index"]
        out["spaces"] = []
    elif repo.type == "dataset":
        out["description"] = card.get("pretty_name") if isinstance(card.get("pretty_name"), str) else None
    else:
        out["sdk"] = repo.sdk
        out["runtime"] = {"stage": "STOPPED", "hardware": {"current": None, "requested": "cpu-basic"}}
        out["models"] = list(as_str_list(card.get("models")))
        out["datasets"] = list(as_str_list(card.get("datasets")))
    if fields is not None:
        keep = fields | {"id", "_id"}
        out = {k: v for k, v in out.items() if k in keep}
    return out
