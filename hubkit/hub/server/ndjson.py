"""Reading a commit's NDJSON body from its spool file with bounded memory.

The stock client sends every "regular" file base64-encoded inside one JSON line, so a 5 GB checkpoint is a
6.7 GB line. Small lines are parsed as JSON; a large `file` line is split around its `content` string, whose
base64 is decoded chunk by chunk straight into the blob store. Memory stays flat whatever the file size.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Iterator
from pathlib import Path

from .errors import BadRequest
from .storage import Store

BIG_LINE = 1 << 20
_BLOCK = 8 << 20  # a multiple of 4: base64 chunks must decode independently
_CONTENT_KEY = re.compile(rb'"content"\s*:\s*"')


def _line_spans(path: Path) -> Iterator[tuple[int, int]]:
    """(start, end) byte offsets of each line, newline excluded."""
    with open(path, "rb") as f:
        pos = start = 0
        while block := f.read(_BLOCK):
            i = block.find(b"\n")
            while i != -1:
                yield start, pos + i
                start = pos + i + 1
                i = block.find(b"\n", i + 1)
            pos += len(block)
        if start < pos:
            yield start, pos


def _find(f, byte: bytes, start: int, end: int) -> int:
    """Offset of the first `byte` in [start, end), or -1."""
    pos = start
    while pos < end:
        f.seek(pos)
        block = f.read(min(_BLOCK, end - pos))
        i = block.find(byte)
        if i != -1:
            return pos + i
        pos += len(block)
    return -1


def _stream_base64(f, store: Store, start: int, end: int, what: str) -> tuple[str, int, str]:
    n = end - start
    if n % 4:
        raise BadRequest(f"Invalid base64 content for {what}")
    f.seek(end - 2)
    pad = f.read(2).count(b"=")
    writer = store.blob_writer(n // 4 * 3 - pad)
    try:
        pos = start
        while pos < end:
            f.seek(pos)
            chunk = f.read(min(_BLOCK, end - pos))
            try:
                writer.write(binascii.a2b_base64(chunk, strict_mode=True))
            except binascii.Error:
                raise BadRequest(f"Invalid base64 content for {what}") from None
            pos += len(chunk)
        return writer.finish()
    finally:
        writer.abort()


def read_commit_lines(path: Path, store: Store) -> Iterator[tuple[int, dict, tuple[str, int, str] | None]]:
    """Yield `(line number, parsed item, stored blob or None)` for each non-empty line of a commit body.

    For a large `file` line the blob is already stored and the item's `content` is emptied.

    Raises:
        BadRequest: a line is not JSON, or a large line is not a base64 `file` operation.
    """
    with open(path, "rb") as f:
        for lineno, (s, e) in enumerate(_line_spans(path), 1):
            if e - s <= BIG_LINE:
                f.seek(s)
                raw = f.read(e - s)
                if not raw.strip():
                    continue
                yield lineno, _loads(raw, lineno), None
                continue
            f.seek(s)
            head = f.read(64 * 1024)
            m = _CONTENT_KEY.search(head)
            if not m:
                raise BadRequest(f"Malformed commit payload at line {lineno}: oversized line without file content")
            cstart = s + m.end()
            cend = _find(f, b'"', cstart, e)
            if cend == -1:
                raise BadRequest(f"Malformed commit payload at line {lineno}")
            f.seek(cend)
            tail = f.read(e - cend)
            if len(tail) > BIG_LINE:
                raise BadRequest(f"Malformed commit payload at line {lineno}: oversized metadata")
            item = _loads(head[: m.end()] + tail, lineno)
            value = item.get("value") if isinstance(item, dict) else None
            if item.get("key") != "file" or not isinstance(value, dict) or not isinstance(value.get("path"), str):
                raise BadRequest(f"Malformed commit payload at line {lineno}: oversized line is not a file")
            if value.get("encoding", "base64") != "base64":
                raise BadRequest(f"Unsupported encoding {value.get('encoding')!r} for {value['path']!r}")
            yield lineno, item, _stream_base64(f, store, cstart, cend, repr(value["path"]))


def _loads(raw: bytes, lineno: int) -> dict:
    try:
        item = json.loads(raw)
    except ValueError:
        raise BadRequest(f"Malformed commit payload at line {lineno}") from None
    if not isinstance(item, dict) or "key" not in item or "value" not in item:
        raise BadRequest(f"Malformed commit payload at line {lineno}")
    return item
