"""Reading a commit's NDJSON body as it arrives, with bounded memory and one write per file.

The stock client sends every "regular" file base64-encoded inside one JSON line, so a 5 GB checkpoint is a
6.7 GB line. `CommitReader` is the one place file content is decoded: it is fed the body in pieces (by
`blobs.pump`, off the event loop); a small line is parsed as JSON once it is whole; a line that grows past
`BIG_LINE` is split around its `content` string, whose base64 is decoded piece by piece straight into a
`BlobWriter` (hashed as it is written, published once), while the rest of the line is kept and parsed at
its end. Memory stays flat whatever the file size, and nothing is spooled or read back.
"""

from __future__ import annotations

import binascii
import json
import re
from dataclasses import dataclass, field

from pybase64 import b64decode as _b64decode  # SIMD base64 (a dependency; pure Python where no wheel fits)

from .blobs import BlobWriter
from .errors import BadRequest
from .http import check_text
from .records import validate_path
from .storage import Store

BIG_LINE = 1 << 20
_CONTENT_KEY = re.compile(rb'"content"\s*:\s*"')
_KEY_WINDOW = 64 * 1024  # the content key must start within this many bytes of its line


@dataclass
class _Content:
    """The base64 string of one large `file` line, being decoded into a blob."""

    head: bytes  # the line up to the content's opening quote
    writer: BlobWriter
    lineno: int
    carry: bytes = b""  # base64 characters not yet a multiple of 4
    tail: bytearray | None = None  # from the closing quote on, once it was seen


@dataclass
class CommitReader:
    """Parse a commit body fed in pieces; `items` holds `(line number, parsed item, stored blob)` per non-empty
    line, the blob being `(sha256, size, git oid or "")` for a `file` line (its content dropped from the item)
    and None for others.

    Raises:
        BadRequest: a line is not JSON, a path is invalid, or content is not valid base64 (from `feed` or
            `close`, as soon as it is seen).

    Example:
        >>> reader = CommitReader(store)
        >>> for piece in body: reader.feed(piece)
        >>> items = reader.close()
    """

    store: Store
    items: list[tuple[int, dict, tuple[str, int, str] | None]] = field(default_factory=list)
    _buf: bytearray = field(default_factory=bytearray)
    _content: _Content | None = None
    _lineno: int = 0

    def feed_all(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            self.feed(piece)

    def feed(self, data: bytes) -> None:
        pos = 0
        while pos < len(data):
            if self._content is not None and self._content.tail is None:
                pos = self._feed_content(data, pos)
                continue
            nl = data.find(b"\n", pos)
            end = len(data) if nl == -1 else nl
            if self._content is not None:
                tail = self._content.tail
                assert tail is not None  # an open content piece was handled above
                tail += data[pos:end]
                if len(tail) > BIG_LINE:
                    raise BadRequest(f"Malformed commit payload at line {self._content.lineno}: oversized metadata")
                if nl != -1:
                    self._end_big_line()
            else:
                self._buf += data[pos:end]
                if nl != -1:
                    self._end_line()
                elif len(self._buf) > BIG_LINE:
                    self._start_big_line()
            pos = end if nl == -1 else nl + 1

    def close(self) -> list[tuple[int, dict, tuple[str, int, str] | None]]:
        """The items, once the body has ended (a last line without a newline counts)."""
        if self._content is not None:
            if self._content.tail is None:
                raise BadRequest(f"Malformed commit payload at line {self._content.lineno}: unterminated content")
            self._end_big_line()
        elif self._buf:
            self._end_line()
        return self.items

    def abort(self) -> None:
        """Drop a blob being written (after an error)."""
        if self._content is not None:
            self._content.writer.abort()

    # ---- small lines --------------------------------------------------------------------------------------
    def _end_line(self) -> None:
        if len(self._buf) > BIG_LINE:  # a large line that ended within the piece that made it large
            self._start_big_line()
            if self._content is None or self._content.tail is None:
                raise BadRequest(f"Malformed commit payload at line {self._lineno + 1}: unterminated content")
            self._end_big_line()
            return
        self._lineno += 1
        raw, self._buf = bytes(self._buf), bytearray()
        if not raw.strip():
            return
        item = _loads(raw, self._lineno)
        blob = None
        if item["key"] == "file":
            where = repr(_file_path(item, self._lineno))
            try:
                data = _b64decode(item["value"].pop("content"), validate=True)
            except (binascii.Error, ValueError, KeyError, TypeError):
                raise BadRequest(f"Invalid base64 content for {where}") from None
            blob = self.store.put_bytes(data)
        self.items.append((self._lineno, item, blob))

    # ---- large lines: the content streamed into a blob ----------------------------------------------------
    def _start_big_line(self) -> None:
        lineno = self._lineno + 1
        m = _CONTENT_KEY.search(self._buf, 0, _KEY_WINDOW)
        if not m:
            raise BadRequest(f"Malformed commit payload at line {lineno}: oversized line without file content")
        rest = bytes(self._buf[m.end():])
        self._content = _Content(head=bytes(self._buf[: m.end()]), writer=self.store.blob_writer(), lineno=lineno)
        self._buf = bytearray()
        end = self._feed_content(rest, 0)
        if self._content.tail is not None:
            self._content.tail += rest[end:]

    def _feed_content(self, data: bytes, pos: int) -> int:
        """Decode base64 from `data[pos:]` up to the closing quote; returns where the content ended (the quote,
        or the end of `data`)."""
        c = self._content
        assert c is not None
        quote = data.find(b'"', pos)
        end = len(data) if quote == -1 else quote
        if c.carry:  # complete the carried characters to a group of 4, then decode the rest in place
            take = min(end - pos, (-len(c.carry)) % 4)
            c.carry += data[pos:pos + take]
            pos += take
            if len(c.carry) % 4 == 0:
                self._decode(c.carry)
                c.carry = b""
        usable = (end - pos) - (end - pos) % 4
        if usable:
            self._decode(memoryview(data)[pos:pos + usable])  # no copy of the piece
        c.carry += data[pos + usable:end]
        if quote != -1:
            if c.carry:
                raise BadRequest(f"Invalid base64 content at line {c.lineno}")
            c.tail = bytearray()
        return end

    def _decode(self, text: bytes | memoryview) -> None:
        c = self._content
        assert c is not None
        try:
            c.writer.write(_b64decode(text, validate=True))
        except (binascii.Error, ValueError, TypeError):
            raise BadRequest(f"Invalid base64 content at line {c.lineno}") from None

    def _end_big_line(self) -> None:
        c = self._content
        assert c is not None and c.tail is not None
        self._lineno = c.lineno
        try:
            item = _loads(c.head + bytes(c.tail), c.lineno)
            if item["key"] != "file":
                raise BadRequest(f"Malformed commit payload at line {c.lineno}: oversized line is not a file")
            _file_path(item, c.lineno)
            item["value"].pop("content", None)
            blob = c.writer.finish()
        finally:
            c.writer.abort()
            self._content = None
        self.items.append((c.lineno, item, blob))


def _file_path(item: dict, lineno: int) -> str:
    """The validated path of a `file` line."""
    value = item["value"]
    if not isinstance(value, dict):
        raise BadRequest(f"Malformed commit payload at line {lineno}")
    path = validate_path(value.get("path"))
    if value.get("encoding", "base64") != "base64":
        raise BadRequest(f"Unsupported encoding {value.get('encoding')!r} for {path!r}")
    return path


def _loads(raw: bytes, lineno: int) -> dict:
    try:
        item = json.loads(raw)
    except ValueError:
        raise BadRequest(f"Malformed commit payload at line {lineno}") from None
    if not isinstance(item, dict) or "key" not in item or "value" not in item:
        raise BadRequest(f"Malformed commit payload at line {lineno}")
    return check_text(item)
