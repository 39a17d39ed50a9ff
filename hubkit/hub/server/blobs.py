"""Receiving a blob: each upload streams once to its content-addressed place.

`BlobWriter` hashes (sha256) and writes each piece as it arrives, keeps the first bytes in memory for the
safetensors header, fsyncs the data once and publishes it with one rename: no spool, no re-read. The git blob
oid (sha1 over a header that needs the size first) is not computed on the way in: most large files are LFS,
whose listings never show it, so `Store.git_oid` computes it on first need and records it.

`pump` is how an async route feeds a writer: it batches the request's chunks and hands each batch to a worker
thread while the next one is received, so hashing and disk writes never run on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import struct
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool

from .errors import BadRequest

if TYPE_CHECKING:
    from .storage.objects import ObjectStore

HEAD_BYTES = 1 << 20  # kept in memory for the safetensors header (a 7B model's is ~30 KB)
PUMP_BATCH = 1 << 20  # bytes handed to the worker thread at a time
WRITEBACK_BYTES = 16 << 20  # start writing back to disk every this many bytes, so that the final fsync is short


def _writeback_starter() -> Callable[[int, int, int], None] | None:
    """Linux's `sync_file_range(fd, offset, n, SYNC_FILE_RANGE_WRITE)`: starts writing a range to disk without
    waiting for it (the final fsync still makes the blob durable); None where it is not available."""
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]

    def start(fd: int, offset: int, n: int) -> None:
        fn(fd, offset, n, 2)  # SYNC_FILE_RANGE_WRITE; a failure only means the fsync does all the work

    return start


_START_WRITEBACK = _writeback_starter()


def safetensors_params(head: bytes) -> dict[str, int] | None:
    """Parameter counts per dtype from a safetensors header held in `head`, or None when it is not one (or
    its header is longer than `head`)."""
    if len(head) < 8:
        return None
    (n,) = struct.unpack("<Q", head[:8])
    if n > len(head) - 8:
        return None
    try:
        header = json.loads(head[8:8 + n])
    except ValueError:
        return None
    if not isinstance(header, dict):
        return None
    counts: dict[str, int] = {}
    for name, info in header.items():
        if name == "__metadata__" or not isinstance(info, dict):
            continue
        numel = 1
        for dim in info.get("shape", []):
            numel *= int(dim)
        counts[info.get("dtype", "?")] = counts.get(info.get("dtype", "?"), 0) + numel
    return counts


class BlobWriter:
    """Streams one upload into the blob store: bounded memory, one write, verified size and sha256, atomic publish.

    Args:
        store: the store.
        size: the announced size (an LFS upload), or None when it is known only at the end (inline content).
        expected_sha256: the announced sha256, checked at `finish`.

    Raises:
        BadRequest: when the byte count or the sha256 differ from what was announced.
    """

    def __init__(self, store: ObjectStore, size: int | None = None, expected_sha256: str | None = None) -> None:
        if size is not None and size < 0:
            raise BadRequest("Upload size must be given and non-negative")
        self.store, self.size, self.expected = store, size, expected_sha256
        self.sha = hashlib.sha256()
        self.head = bytearray()
        self.n = self.flushed = 0
        self.tmp = store.tmp_path()
        self.f = open(self.tmp, "wb", buffering=0)  # noqa: SIM115 (closed by finish() or abort())

    def write(self, chunk: bytes) -> None:
        self.n += len(chunk)
        if self.size is not None and self.n > self.size:
            raise BadRequest(f"Upload is larger than the announced {self.size} bytes")
        if len(self.head) < HEAD_BYTES:
            self.head += chunk[: HEAD_BYTES - len(self.head)]
        self.sha.update(chunk)
        self.f.write(chunk)
        if _START_WRITEBACK is not None and self.n - self.flushed >= WRITEBACK_BYTES:
            _START_WRITEBACK(self.f.fileno(), self.flushed, self.n - self.flushed)
            self.flushed = self.n

    def write_all(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def finish(self) -> tuple[str, int, str]:
        """Check and publish the blob; returns (sha256, size, git oid or "" when not known yet)."""
        os.fsync(self.f.fileno())
        self.f.close()
        if self.size is not None and self.n != self.size:
            raise BadRequest(f"Upload has {self.n} bytes, expected {self.size}")
        digest = self.sha.hexdigest()
        if self.expected is not None and digest != self.expected:
            raise BadRequest(f"Upload sha256 {digest} does not match the announced {self.expected}")
        if self.store.has_blob(digest, self.n):
            return digest, self.n, self.store.blob_meta(digest).get("gitoid", "")  # type: ignore[union-attr]
        self.store.publish_blob(self.tmp, digest, self.n, "", bytes(self.head))
        return digest, self.n, ""

    def abort(self) -> None:
        """Drop the partial file (a no-op after a successful finish)."""
        if not self.f.closed:
            self.f.close()
        self.tmp.unlink(missing_ok=True)


async def pump(chunks: AsyncIterator[bytes], consume: Callable[[list[bytes]], None]) -> None:
    """Hand `chunks` to `consume` in batches of about `PUMP_BATCH` bytes, each in a worker thread while the
    next batch is received (one batch in flight: memory stays at two batches). `consume` sees the batches in
    order; its exception, or the receiver's, is raised once nothing runs any more."""
    pending: asyncio.Future | None = None
    batch: list[bytes] = []
    n = 0
    try:
        async for chunk in chunks:
            batch.append(chunk)
            n += len(chunk)
            if n >= PUMP_BATCH:
                if pending is not None:
                    await pending
                pending = asyncio.ensure_future(run_in_threadpool(consume, batch))
                batch, n = [], 0
        if pending is not None:
            await pending
            pending = None
        if batch:
            await run_in_threadpool(consume, batch)
    finally:
        if pending is not None and not pending.done():
            await asyncio.wait([pending])  # let the thread finish before the caller closes what it writes to
