"""A total deadline for one HTTP exchange made with ``requests``.

``requests``' ``timeout`` bounds each socket read, not the exchange: a server that
sends one byte every half second keeps every read alive and the call running for as
long as it likes (issue 14: 18 s for one BHYT lookup). Sessions that mount
:class:`DeadlineAdapter` keep track of the connection each thread is using; inside
``with abort_after(seconds):`` a timer shuts that connection's socket down when the
time is up, so the blocked read returns at once and ``requests`` raises a
``ConnectionError``. ``Deadline.expired`` then says that it was the deadline.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()


class Deadline:
    """The connections used on this thread while the deadline runs, and whether it fired."""

    def __init__(self) -> None:
        self.expired = False
        self._lock = threading.Lock()
        self._connections: list[HTTPConnection] = []

    def add(self, connection: HTTPConnection) -> None:
        with self._lock:
            if self.expired:
                _shutdown(connection)
            self._connections.append(connection)

    def fire(self) -> None:
        with self._lock:
            self.expired = True
            for connection in self._connections:
                _shutdown(connection)


def _shutdown(connection: HTTPConnection) -> None:
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _track(connection: HTTPConnection) -> None:
    deadline: Deadline | None = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.add(connection)


class _TrackedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        # connect() may run inside request(): track first, the socket is looked up late
        _track(self)
        super().request(*args, **kwargs)


class _TrackedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _track(self)
        super().request(*args, **kwargs)


class _Pool(HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _TlsPool(HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose connections ``abort_after`` can cut."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TlsPool}


@contextlib.contextmanager
def abort_after(seconds: float) -> Iterator[Deadline]:
    """Cut the connection this thread uses (through a ``DeadlineAdapter``) after ``seconds``."""
    deadline = Deadline()
    timer = threading.Timer(max(seconds, 0.0), deadline.fire)
    timer.daemon = True
    previous = getattr(_current, "deadline", None)
    _current.deadline = deadline
    timer.start()
    try:
        yield deadline
    finally:
        timer.cancel()
        _current.deadline = previous
