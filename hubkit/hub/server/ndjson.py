"""Reading a commit's NDJSON body from its spool file with bounded memory.

The stock client sends every "regular" file base64-encoded inside one JSON line, so a 5 GB checkpoint is a
6.7 GB line. This module is the one place file content is decoded: small lines are parsed as JSON; a large
`file` line is split around its `content` string, whose base64 is decoded chunk by chunk straight into the
blob store. Memory stays flat whatever the file size.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from pathlib import Path

from .errors import BadRequest
from .http import check_text
from .records import validate_path
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


def _file_path(item: dict, lineno: int) -> str:
    """The validated path of a `file` line, checked before any of its content is stored."""
    value = item["value"]
    if not isinstance(value, dict):
        raise BadRequest(f"Malformed commit payload at line {lineno}")
    path = validate_path(value.get("path"))
    if value.get("encoding", "base64") != "base64":
        raise BadRequest(f"Unsupported encoding {value.get('encoding')!r} for {path!r}")
    return path


def read_commit_lines(path: Path, store: Store) -> Iterator[tuple[int, dict, tuple[str, int, str] | None]]:
    """Yield `(line number, parsed item, stored blob)` for each non-empty line of a commit body.

    Every `file` line's content is decoded into the blob store here (its path validated first) and its
    `content` dropped from the item; the blob is `(sha256, size, git oid)`, and None for other lines.

    Raises:
        BadRequest: a line is not JSON, a path is invalid, or content is not valid base64.
    """
    with open(path, "rb") as f:
        for lineno, (s, e) in enumerate(_line_spans(path), 1):
            if e - s <= BIG_LINE:
                f.seek(s)
                raw = f.read(e - s)
                if not raw.strip():
                    continue
                item = _loads(raw, lineno)
                blob = None
                if item["key"] == "file":
                    where = repr(_file_path(item, lineno))
                    try:
                        data = base64.b64decode(item["value"].pop("content"), validate=True)
                    except (ValueError, KeyError, TypeError):
                        raise BadRequest(f"Invalid base64 content for {where}") from None
                    blob = store.put_bytes(data)
                yield lineno, item, blob
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
            if item["key"] != "file":
                raise BadRequest(f"Malformed commit payload at line {lineno}: oversized line is not a file")
            where = repr(_file_path(item, lineno))
            item["value"].pop("content", None)
            yield lineno, item, _stream_base64(f, store, cstart, cend, where)


def _loads(raw: bytes, lineno: int) -> dict:
    try:
        item = json.loads(raw)
    except ValueError:
        raise BadRequest(f"Malformed commit payload at line {lineno}") from None
    if not isinstance(item, dict) or "key" not in item or "value" not in item:
        raise BadRequest(f"Malformed commit payload at line {lineno}")
    return check_text(item)
