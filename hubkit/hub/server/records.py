"""The local Hub's names and records: what a valid repo id, branch or file path is, and the dataclasses the store
keeps (file entries, commits, repos, collections, commit operations).

A path is refused, with a 400 that names the rule, when it is not valid UTF-8 (a lone surrogate), has a control
character or a backslash, an empty, `.` or `..` segment, starts with `/` or `.git/`, or is longer than
`MAX_PATH_LEN`; whether a file and a folder of the same name would coexist is checked against the whole tree
at commit time (`Store.commit`).
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .errors import BadRequest

REPO_TYPES = ("model", "dataset", "space")
PLURALS = {"model": "models", "dataset": "datasets", "space": "spaces"}
SINGULARS = {v: k for k, v in PLURALS.items()}
URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
SPACE_SDKS = ("gradio", "docker", "static", "streamlit")
RESERVED_NAMESPACES = {"api", "datasets", "spaces", "models", "docs", "settings", "collections", "lfs-upload"}

_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?$")
_BRANCH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
_PR_RE = re.compile(r"^refs/pr/(\d+)$")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX_PREFIX = re.compile(r"^[0-9a-f]{5,40}$")
MAX_PATH_LEN = 1000

# Files the Hub's default .gitattributes stores through LFS (plus anything of 10 MB or more).
LFS_SUFFIXES = (
    ".7z", ".arrow", ".bin", ".bz2", ".ckpt", ".ftz", ".gguf", ".gz", ".h5", ".joblib", ".lz4", ".mlmodel",
    ".model", ".msgpack", ".npy", ".npz", ".onnx", ".ot", ".parquet", ".pb", ".pickle", ".pkl", ".pt",
    ".pth", ".rar", ".safetensors", ".tar", ".tflite", ".tgz", ".wasm", ".xz", ".zip", ".zst", ".png",
    ".jpg", ".jpeg", ".wav", ".mp3",
)
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024



def now_iso() -> str:
    """UTC timestamp in the only format the client parses: `YYYY-MM-DDTHH:MM:SS.mmmZ`."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def is_lfs_path(path: str, size: int) -> bool:
    return size >= LFS_SIZE_THRESHOLD or path.lower().endswith(LFS_SUFFIXES)


# ----------------------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------------------
def validate_name(part: str, what: str = "repo name") -> str:
    if not isinstance(part, str) or not _NAME_RE.match(part) or ".." in part or "--" in part:
        raise BadRequest(
            f"Invalid {what} {part!r}: use letters, digits, '-', '_' and '.', at most 96 characters, "
            "no '--' or '..', not starting or ending with '-' or '.'"
        )
    if part.endswith(".git"):
        raise BadRequest(f"Invalid {what} {part!r}: must not end with '.git'")
    return part


def validate_repo_id(repo_id: str) -> tuple[str, str]:
    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise BadRequest(f"Invalid repo id {repo_id!r}: expected 'namespace/name'")
    ns, name = repo_id.split("/")
    validate_name(ns, "namespace")
    validate_name(name)
    if ns.lower() in RESERVED_NAMESPACES:
        raise BadRequest(f"Invalid namespace {ns!r}: reserved")
    return ns, name


def validate_repo_type(repo_type: str | None) -> str:
    if repo_type is not None and not isinstance(repo_type, str):
        raise BadRequest(f"Invalid repo type {repo_type!r}: expected one of {', '.join(REPO_TYPES)}")
    repo_type = repo_type or "model"
    repo_type = SINGULARS.get(repo_type, repo_type)
    if repo_type not in REPO_TYPES:
        raise BadRequest(f"Invalid repo type {repo_type!r}: expected one of {', '.join(REPO_TYPES)}")
    return repo_type


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def path_problem(path: Any) -> str | None:
    """Why `path` cannot name a file in a repo (the rule it breaks), or None when it can."""
    if not isinstance(path, str) or not path:
        return "empty"
    if len(path) > MAX_PATH_LEN:
        return f"longer than {MAX_PATH_LEN} characters"
    if not path.isascii():
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            return "not valid UTF-8 (a lone surrogate)"
    if _CONTROL.search(path):
        return "control characters are not allowed"
    if path.startswith("/") or "\\" in path:
        return "must be relative, without backslashes"
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "empty, '.' or '..' segments are not allowed"
    if parts[0] == ".git":
        return "'.git' is reserved"
    return None


def validate_path(path: Any) -> str:
    """A file path inside a repo: relative, valid UTF-8, no traversal, no control characters, bounded length.

    Raises:
        BadRequest: the path breaks one of those rules (the message names it).
    """
    problem = path_problem(path)
    if problem is not None:
        shown = repr(path[:200]) if isinstance(path, str) else repr(path)
        raise BadRequest(f"Invalid path {shown}: {problem}")
    return path


def tree_collision(tree: dict[str, Any], added: list[str]) -> str | None:
    """A path of `added` that would be both a file and a folder in `tree` (`q` beside `q/x`), or None.

    Costs one pass over the tree's folders, however many paths were added.
    """
    if not added:
        return None
    folders: set[str] = set()
    for path in tree:
        i = path.find("/")
        while i != -1:
            folders.add(path[:i])
            i = path.find("/", i + 1)
    for path in added:
        if path in folders:
            return path
        i = path.find("/")
        while i != -1:
            if path[:i] in tree:
                return path[:i]
            i = path.find("/", i + 1)
    return None


def validate_branch(name: str) -> str:
    if (
        not isinstance(name, str)
        or not _BRANCH_RE.match(name)
        or ".." in name
        or "//" in name
        or name.endswith(("/", ".lock", "."))
        or name.startswith("refs/")
        or _HEX40.match(name)
    ):
        raise BadRequest(f"Invalid branch or tag name {name!r}")
    return name


# ----------------------------------------------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------------------------------------------
class FileEntry(NamedTuple):
    """One file of a commit's tree.

    A named tuple, not a dataclass: a tuple of strings and numbers is untracked by Python's garbage collector,
    so the commit cache (hundreds of thousands of entries) adds nothing to each collection's pause.
    """

    sha256: str
    size: int
    gitoid: str
    lfs: bool

    def to_json(self) -> list:
        return [self.sha256, self.size, self.gitoid, self.lfs]

    @classmethod
    def from_json(cls, data: list) -> FileEntry:
        return cls(data[0], int(data[1]), data[2], bool(data[3]))

    @property
    def tree_oid(self) -> str:
        """The oid the Hub lists in trees: git blob sha1 of the content, or of the LFS pointer."""
        return git_blob_oid(lfs_pointer(self.sha256, self.size)) if self.lfs else self.gitoid

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.gitoid


@dataclass
class Commit:
    id: str
    parents: list[str]
    tree: dict[str, FileEntry]
    title: str
    message: str
    date: str
    author: str
    card: dict[str, Any] | None = None
    safetensors: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    origin: str = ""  # the repo that made it: "type:ns/name" and its `Repo.uid`


@dataclass(frozen=True)
class CommitMeta:
    """A commit without its tree: what history listings and revision lookups need (a few hundred bytes)."""

    id: str
    parents: list[str]
    title: str
    message: str
    date: str
    author: str
    origin: str


@dataclass
class Repo:
    type: str
    id: str
    private: bool = False
    gated: Any = False
    sdk: str | None = None
    created_at: str = field(default_factory=now_iso)
    last_modified: str = field(default_factory=now_iso)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    prs: dict[str, dict[str, Any]] = field(default_factory=dict)
    downloads: int = 0
    likes: int = 0
    uid: str = ""  # set at creation: a repo deleted and created again under the same name is another repo

    @property
    def namespace(self) -> str:
        return self.id.split("/")[0]

    @property
    def origin(self) -> str:
        """What this repo's commits record as their origin (`Commit.origin`)."""
        return f"{self.type}:{self.id}#{self.uid}"

    def to_json(self) -> dict:
        return {
            "type": self.type, "id": self.id, "private": self.private, "gated": self.gated, "sdk": self.sdk,
            "createdAt": self.created_at, "lastModified": self.last_modified, "branches": self.branches,
            "tags": self.tags, "prs": self.prs, "downloads": self.downloads, "likes": self.likes, "uid": self.uid,
        }

    @classmethod
    def from_json(cls, d: dict) -> Repo:
        return cls(
            type=d["type"], id=d["id"], private=d.get("private", False), gated=d.get("gated", False),
            sdk=d.get("sdk"), created_at=d["createdAt"], last_modified=d["lastModified"],
            branches=d.get("branches", {}), tags=d.get("tags", {}), prs=d.get("prs", {}),
            downloads=d.get("downloads", 0), likes=d.get("likes", 0), uid=d.get("uid", ""),
        )


@dataclass
class Collection:
    """A collection: an ordered list of repos (and papers or other collections) under one owner.

    `items` hold the API's item objects (`_id`, `id`, `type`, `position`, `note`) as the client reads them.
    """

    slug: str
    title: str
    owner: dict[str, str]
    description: str = ""
    private: bool = False
    theme: str = "green"
    position: int = 0
    upvotes: int = 0
    last_updated: str = field(default_factory=now_iso)
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return self.owner["name"]

    def to_json(self) -> dict:
        return {
            "slug": self.slug, "title": self.title, "owner": self.owner, "description": self.description,
            "lastUpdated": self.last_updated, "position": self.position, "private": self.private,
            "theme": self.theme, "upvotes": self.upvotes, "items": self.items,
        }

    @classmethod
    def from_json(cls, d: dict) -> Collection:
        return cls(
            slug=d["slug"], title=d["title"], owner=d["owner"], description=d.get("description") or "",
            private=bool(d.get("private")), theme=d.get("theme", "green"), position=d.get("position", 0),
            upvotes=d.get("upvotes", 0), last_updated=d.get("lastUpdated") or now_iso(), items=d.get("items", []),
        )


@dataclass
class Operation:
    """One operation of a commit, after its content is durable in the blob store."""

    kind: str  # "add", "delete_file", "delete_folder", "copy"
    path: str
    entry: FileEntry | None = None
    src_path: str | None = None
    src_revision: str | None = None


