"""Fair service under attack: what one client (one IP address) may hold of the server.

- **Connections.** At most `MAX_CONNECTIONS_PER_CLIENT` open at once per address; a connection over that is
  closed as soon as it is accepted, so a flood from one address never reaches the server-wide cap that every
  other client shares.
- **Headers.** A request's headers must arrive whole within `HEADER_SECONDS` of its first byte (or of the
  connection, for the first request): a connection that never finishes them ("slowloris") is closed.
  Between requests, uvicorn's keep-alive timeout closes idle connections.
- **Requests.** At most `MAX_INFLIGHT_PER_CLIENT` requests of one address are handled at once; the others wait
  their turn without holding a worker thread, so one address never takes the whole thread pool (40 threads).
- **Bodies** must make progress: see `http.BODY_MIN_RATE` (checked where a body is read, for every route).

The limits hold per address; an attacker with many addresses is out of scope for a Hub that listens on
loopback by default.

Example:
    >>> import uvicorn
    >>> uvicorn.Config(app, http=GuardedH11Protocol)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_CONNECTIONS_PER_CLIENT = 128
MAX_INFLIGHT_PER_CLIENT = 8
HEADER_SECONDS = 5.0
#: Open connections per client address, shared by every connection of the server (one event loop).
_connections: dict[str, int] = {}


def client_address(scope_or_peer: Any) -> str:
    """The address that limits are counted against (the peer's IP; "" when unknown, as for a UNIX socket)."""
    peer = scope_or_peer.get("client") if isinstance(scope_or_peer, dict) else scope_or_peer
    return str(peer[0]) if peer else ""


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a per-client connection cap and a header deadline."""

    _counted: str | None = None
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = client_address(self.client)
        if _connections.get(address, 0) >= MAX_CONNECTIONS_PER_CLIENT:
            transport.abort()  # connection_lost follows and removes it from the server's set
            return
        _connections[address] = _connections.get(address, 0) + 1
        self._counted = address
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        if self._counted is not None:
            left = _connections.get(self._counted, 1) - 1
            if left > 0:
                _connections[self._counted] = left
            else:
                _connections.pop(self._counted, None)
            self._counted = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self._header_timer is None:
            self._arm_header_timer()  # the first byte of a request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm_header_timer()  # the request line and headers are in

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(HEADER_SECONDS, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        waiting = self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)
        if waiting and not self.transport.is_closing():
            self.transport.close()


class InflightLimit:
    """At most `limit` requests of one client address handled at once; the others wait (asynchronously).

    Example:
        >>> async with limit.slot(scope):
        ...     await handle(scope)
    """

    def __init__(self, limit: int = MAX_INFLIGHT_PER_CLIENT) -> None:
        self.limit = limit
        self._slots: dict[str, _Slot] = {}

    @contextlib.asynccontextmanager
    async def slot(self, scope: dict) -> AsyncIterator[None]:
        address = client_address(scope)
        slot = self._slots.get(address)
        if slot is None:
            slot = self._slots[address] = _Slot(asyncio.Semaphore(self.limit))
        slot.users += 1
        try:
            async with slot.semaphore:
                yield
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._slots[address]


@dataclass
class _Slot:
    semaphore: asyncio.Semaphore
    users: int = 0  # requests of this address in flight or waiting
