"""Connection limits and strict Host parsing for the local API.

Any local process can connect to 127.0.0.1:8765. Without limits, 1,100 idle connections
exhausted the 1,024 file descriptors of the systemd unit: ``/health`` timed out and the
accept loop logged a traceback per attempt. The guard sits between the listening socket
and aiohttp's protocol:

* at most ``max_connections`` open connections, and ``max_connections_per_peer`` from one
  address; when full, the oldest connection that never authenticated makes room (a desk's
  own client authenticates on its first request), else the new one is reset at once;
* a connection that has not presented the API token within ``unauth_idle`` seconds of
  opening is closed (slow or idle unauthenticated peers cannot hold a slot), while
  authenticated ones keep aiohttp's normal keep-alive.

All of it runs on the API's event loop thread: no locks.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

#: RFC 9110 §7.2 / RFC 3986 §3.2.2: Host = uri-host [ ":" port ]; we accept only a DNS name,
#: an IPv4 literal or a bracketed IPv6 literal, and digits for the port: nothing else
HOST_RE = re.compile(r"(?P<name>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))(?::(?P<port>[0-9]{1,5}))?")


def parse_host(header: str | None) -> tuple[str, int | None] | None:
    """(lower-case name, port or None) of a well-formed Host header, else None."""
    if not header:
        return None
    match = HOST_RE.fullmatch(header)
    if match is None:
        return None
    port = match.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        return None
    return match.group("name").lower(), (int(port) if port is not None else None)


@dataclass
class _Conn:
    peer: str
    opened: float
    transport: asyncio.BaseTransport | None = None
    authenticated: bool = False


@dataclass
class GuardStats:
    refused: int = 0
    evicted: int = 0
    idle_closed: int = 0
    open: int = 0


@dataclass
class ConnectionGuard:
    max_connections: int
    max_per_peer: int
    unauth_idle: float
    clock: Callable[[], float]
    on_event: Callable[[str], None] = lambda _reason: None
    stats: GuardStats = field(default_factory=GuardStats)
    _conns: dict[asyncio.BaseTransport, _Conn] = field(default_factory=dict)
    _per_peer: dict[str, int] = field(default_factory=dict)

    def wrap(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` around aiohttp's one."""
        return lambda: _GuardedProtocol(self, factory())

    # ------------------------------------------------------------- bookkeeping
    def admit(self, transport: asyncio.BaseTransport) -> bool:
        peer = _peer_of(transport)
        if not self._make_room(peer):
            self.stats.refused += 1
            self.on_event("refused")
            _reset(transport)
            return False
        self._conns[transport] = _Conn(peer, self.clock(), transport)
        self._per_peer[peer] = self._per_peer.get(peer, 0) + 1
        self.stats.open = len(self._conns)
        return True

    def release(self, transport: asyncio.BaseTransport) -> None:
        conn = self._conns.pop(transport, None)
        if conn is None:
            return
        left = self._per_peer.get(conn.peer, 1) - 1
        if left <= 0:
            self._per_peer.pop(conn.peer, None)
        else:
            self._per_peer[conn.peer] = left
        self.stats.open = len(self._conns)

    def authenticated(self, transport: asyncio.BaseTransport | None) -> None:
        conn = self._conns.get(transport) if transport is not None else None
        if conn is not None:
            conn.authenticated = True

    def _make_room(self, peer: str) -> bool:
        full_peer = self._per_peer.get(peer, 0) >= self.max_per_peer
        full_all = len(self._conns) >= self.max_connections
        if not (full_peer or full_all):
            return True
        victims = [c for c in self._conns.values() if not c.authenticated and (c.peer == peer or not full_peer)]
        if not victims:
            return False
        oldest = min(victims, key=lambda c: c.opened)
        self.stats.evicted += 1
        self.on_event("evicted")
        self._close(oldest)
        return True

    def sweep(self) -> None:
        """Close connections that did not authenticate within ``unauth_idle`` seconds."""
        limit = self.clock() - self.unauth_idle
        for conn in [c for c in self._conns.values() if not c.authenticated and c.opened <= limit]:
            self.stats.idle_closed += 1
            self.on_event("unauthenticated_idle")
            self._close(conn)

    def _close(self, conn: _Conn) -> None:
        if conn.transport is not None:
            self.release(conn.transport)
            _reset(conn.transport)


def _peer_of(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return "?"


def _reset(transport: asyncio.BaseTransport) -> None:
    """Close at once with a reset: no FIN_WAIT, no buffered bytes to a peer that does not read."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    abort = getattr(transport, "abort", None)
    if abort is not None:
        abort()
    else:
        transport.close()


class _GuardedProtocol(asyncio.Protocol):
    """Delegates to aiohttp's request handler once the guard admitted the connection."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._guard.admit(transport):
            return
        self._transport = transport
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is None:
            return
        self._guard.release(self._transport)
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._transport is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._transport is not None else None

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
