"""Users, organisations and access tokens of the local Hub.

Tokens are never stored: `users.json` keeps their SHA-256 only, and is re-read whenever it changes on disk,
so `hubkit hub add-user` and `hubkit hub revoke` take effect while the server runs. A user holds one token
per name: issuing a token under a name the user already has rotates it (the old one stops working).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .errors import Unauthorized
from .records import validate_name


@dataclass
class User:
    name: str
    orgs: list[str] = field(default_factory=list)

    def can_write(self, namespace: str) -> bool:
        return namespace == self.name or namespace in self.orgs


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Users:
    """The `users.json` registry under the Hub root."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / "users.json"
        self._mtime: int | None = None
        self._data: dict = {"users": {}, "orgs": {}}

    def _load(self) -> dict:
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            return {"users": {}, "orgs": {}}
        if mtime != self._mtime:
            self._data = json.loads(self.path.read_text())
            self._mtime = mtime
        return self._data

    @contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def add_user(self, name: str, orgs: list[str] | None = None, token_name: str = "default") -> str:
        """Create the user (or add orgs to it) and return a new write token for it.

        An existing user's token of the same `token_name` is replaced: the old token stops working.

        Example:
            >>> token = Users(Path("/tmp/hub")).add_user("alice", orgs=["acme"])
        """
        token = "hf_" + secrets.token_urlsafe(30).replace("-", "a").replace("_", "b")[:34]
        self._update(name, orgs or [], {"name": token_name, "sha256": _hash(token)})
        return token

    def join_orgs(self, name: str, orgs: list[str]) -> None:
        """Make an existing or new user a member of `orgs` (created if needed), issuing no token."""
        self._update(name, orgs, None)

    def _update(self, name: str, orgs: list[str], token: dict | None) -> None:
        validate_name(name, "user name")
        for org in orgs:
            validate_name(org, "organization name")
        with self._locked():
            data = self._load() if self.path.exists() else {"users": {}, "orgs": {}}
            data = json.loads(json.dumps(data))
            if name in data["orgs"]:
                raise ValueError(f"{name!r} is an organization, not a user")
            user = data["users"].setdefault(name, {"orgs": [], "tokens": []})
            for org in orgs:
                if org in data["users"]:
                    raise ValueError(f"{org!r} is a user, not an organization")
                members = data["orgs"].setdefault(org, {"members": []})["members"]
                if name not in members:
                    members.append(name)
                if org not in user["orgs"]:
                    user["orgs"].append(org)
            if token:
                user["tokens"] = [t for t in user["tokens"] if t.get("name") != token["name"]] + [token]
            self._save(data)

    def _save(self, data: dict) -> None:
        """Replace `users.json` atomically, private to its owner (call with the lock held)."""
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def revoke(self, name: str, token_name: str | None = None) -> int:
        """Revoke the user's tokens (all of them, or the one named `token_name`); returns how many.

        Raises:
            ValueError: no such user, or no token of that name.
        """
        with self._locked():
            data = json.loads(json.dumps(self._load() if self.path.exists() else {"users": {}, "orgs": {}}))
            user = data["users"].get(name)
            if user is None:
                raise ValueError(f"no user {name!r} on this Hub")
            keep = [t for t in user["tokens"] if token_name is not None and t.get("name") != token_name]
            revoked = len(user["tokens"]) - len(keep)
            if token_name is not None and not revoked:
                raise ValueError(f"{name!r} has no token named {token_name!r}")
            user["tokens"] = keep
            self._save(data)
            return revoked

    def authenticate(self, authorization: str | None) -> User | None:
        """The user behind an `Authorization: Bearer` header; None when anonymous.

        Raises:
            Unauthorized: a token was sent and it is not valid.
        """
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Invalid credentials in Authorization header")
        digest = _hash(token.strip())
        for name, info in self._load()["users"].items():
            if any(secrets.compare_digest(t["sha256"], digest) for t in info["tokens"]):
                return User(name=name, orgs=list(info.get("orgs", [])))
        raise Unauthorized("Invalid credentials in Authorization header")

    def exists(self, namespace: str) -> bool:
        data = self._load()
        return namespace in data["users"] or namespace in data["orgs"]

