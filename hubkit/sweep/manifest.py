"""The sweep manifest: one row per run, its state, its error, its timings (SQLite, one file per sweep).

States move forward through the stages: `planned` → `training` → `trained` → `evaluating` → `evaluated`
→ `publishing` → `published`, or to `failed` (with the stage and the error). Each change is one SQLite
transaction, so a process killed at any moment leaves every row in a state it really reached. A row left
"in flight" (`training`, …) by a killed sweep is settled by `recover`: done if the stage's output exists,
back to the previous state otherwise.

Only the sweep's driver process writes the manifest; workers report back to it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    state TEXT NOT NULL,
    spec TEXT NOT NULL,
    failed_stage TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    timings TEXT NOT NULL DEFAULT '{}',
    updated_at REAL NOT NULL
)
"""


@dataclass
class ManifestRow:
    """One run of a sweep as the manifest records it."""

    run_id: str
    position: int
    state: str
    spec: dict[str, Any]
    failed_stage: str | None = None
    error: str | None = None
    attempts: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    updated_at: float = 0.0


class Manifest:
    """The manifest of one sweep, stored at `path`.

    Example:
        >>> m = Manifest("sweeps/demo/manifest.sqlite")
        >>> m.plan([("run-a", {"model": "m", "dataset": "lima"})])
        1
        >>> m.get("run-a").state
        'planned'
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _row(self, r: tuple) -> ManifestRow:
        return ManifestRow(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], json.loads(r[7]), r[8])

    def rows(self) -> list[ManifestRow]:
        cur = self._db.execute("SELECT run_id, position, state, spec, failed_stage, error, attempts, timings, "
                               "updated_at FROM runs ORDER BY position")
        return [self._row(r) for r in cur.fetchall()]

    def get(self, run_id: str) -> ManifestRow | None:
        cur = self._db.execute("SELECT run_id, position, state, spec, failed_stage, error, attempts, timings, "
                               "updated_at FROM runs WHERE run_id = ?", (run_id,))
        r = cur.fetchone()
        return self._row(r) if r else None

    def row(self, run_id: str) -> ManifestRow:
        """The row of a planned run.

        Raises:
            KeyError: the run is not in the manifest.
        """
        row = self.get(run_id)
        if row is None:
            raise KeyError(run_id)
        return row

    def plan(self, runs: Iterable[tuple[str, dict[str, Any]]]) -> int:
        """Add runs not yet in the manifest as `planned`; returns how many were added."""
        added = 0
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            (start,) = self._db.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM runs").fetchone()
            for rid, spec in runs:
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO runs (run_id, position, state, spec, updated_at) VALUES (?, ?, ?, ?, ?)",
                    (rid, start + added, "planned", json.dumps(spec, sort_keys=True), time.time()))
                added += cur.rowcount
        return added

    def set_state(self, run_id: str, state: str, *, attempt: bool = False, error: str | None = None,
                  failed_stage: str | None = None, timing: tuple[str, float] | None = None) -> None:
        """Move a run to `state` (one transaction); `attempt` counts a new try of a stage."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT timings FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise KeyError(run_id)
            timings = json.loads(row[0])
            if timing:
                timings[timing[0]] = round(timing[1], 3)
            self._db.execute(
                "UPDATE runs SET state = ?, error = ?, failed_stage = ?, attempts = attempts + ?, timings = ?, "
                "updated_at = ? WHERE run_id = ?",
                (state, error, failed_stage, 1 if attempt else 0, json.dumps(timings), time.time(), run_id))

    def counts(self) -> dict[str, int]:
        cur = self._db.execute("SELECT state, COUNT(*) FROM runs GROUP BY state")
        return dict(cur.fetchall())
