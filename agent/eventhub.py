"""Events the agent pushes to WebSocket clients, and the hub that fans them out.

The desk's threads (``agent.desk``) publish; the hub delivers on the API's asyncio
loop (``agent.api.server`` binds it and sends the frames). Each
client has a bounded queue: a client that does not keep up is disconnected (it can
reconnect and ask ``GET /identity`` for the current state) so one slow browser tab
never slows the others nor grows the agent's memory.

Two shapes go on the wire:

* ``native``: ``{"type": "identity_ready", "seq": 12, "ts": 1764133200.123, ...}``
* ``compat``: ``{"event": "card_data", "data": {...}}`` with the reader kits' field
  names (``agent.compat.kit.card_fields``, the one mapping). This predates the kit
  protocol itself, which the agent now serves as a real Socket.IO service
  (``[compat]``, ``agent.compat``): desk software written for a kit uses that; this
  WebSocket shape stays for clients already written against it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.errors import IdAgentError

logger = logging.getLogger(__name__)

#: per-client queue bound; at a few KB an event (photo excluded) this caps a client
#: at well under a megabyte
CLIENT_QUEUE_MAX = 256
#: clients beyond this are refused (each costs a queue and a task)
MAX_CLIENTS = 32


class EventType(enum.StrEnum):
    READER_ATTACHED = "reader_attached"
    READER_DETACHED = "reader_detached"
    CARD_PRESENT = "card_present"
    CARD_REMOVED = "card_removed"
    QR_SCANNED = "qr_scanned"
    NEED_ACCESS = "need_access"
    READ_STARTED = "read_started"
    READ_PROGRESS = "read_progress"
    IDENTITY_READY = "identity_ready"
    VERIFICATION = "verification"
    LOOKUP_STARTED = "lookup_started"
    LOOKUP_RESULT = "lookup_result"
    INTAKE_RESULT = "intake_result"
    #: a queued dossier's delivery: delivered (receipt), retrying, or failed for good
    INTAKE_STATUS = "intake_status"
    IDENTITY_CLEARED = "identity_cleared"
    #: the keyboard wedge typed the identity on show into the desk application, or refused
    WEDGE_RESULT = "wedge_result"
    ERROR = "error"


class Shape(enum.StrEnum):
    NATIVE = "native"
    COMPAT = "compat"


@dataclass(frozen=True)
class Event:
    type: EventType
    data: dict[str, Any] = field(default_factory=dict)
    #: compat-shape payload, when it differs from a rename of ``data`` (identity)
    compat: dict[str, Any] | None = None
    ts: float = field(default_factory=time.time)
    seq: int = 0

    def native(self) -> dict[str, Any]:
        return {"type": self.type.value, "seq": self.seq, "ts": round(self.ts, 3), **self.data}

    def compat_shape(self) -> dict[str, Any] | None:
        """The reader-kit shape, or None for events those kits have no name for."""
        name = _COMPAT_NAMES.get(self.type)
        if name is None:
            return None
        payload = self.compat if self.compat is not None else self.data
        return {"event": name, "data": payload}

    def encode(self, shape: Shape) -> str | None:
        body = self.native() if shape is Shape.NATIVE else self.compat_shape()
        if body is None:
            return None
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=json_plain)

    def __repr__(self) -> str:  # data may hold personal data
        return f"Event(type={self.type.value}, seq={self.seq})"


def json_plain(value: Any) -> Any:
    """Dates as ISO text, bytes as hex, enums by value: whatever a lower layer put in a
    result dict still reaches the client."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


_COMPAT_NAMES: dict[EventType, str] = {
    EventType.READER_ATTACHED: "reader_connected",
    EventType.READER_DETACHED: "reader_disconnected",
    EventType.CARD_PRESENT: "new_card",
    EventType.CARD_REMOVED: "card_removed",
    EventType.READ_PROGRESS: "reading",
    EventType.IDENTITY_READY: "card_data",
    EventType.VERIFICATION: "verify_result",
    EventType.LOOKUP_RESULT: "bhyt_result",
    EventType.ERROR: "error",
}


class Client:
    """One WebSocket subscriber: a bounded queue of encoded frames."""

    def __init__(self, shape: Shape, peer: str, maxsize: int = CLIENT_QUEUE_MAX) -> None:
        self.shape = shape
        self.peer = peer
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=maxsize)
        self.dropped = False
        self.closed = asyncio.Event()

    def offer(self, frame: str) -> bool:
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            return False
        return True


class EventHub:
    """Fan-out of events to WebSocket clients; ``publish`` is thread-safe."""

    def __init__(self, *, on_drop: Callable[[Client], None] | None = None,
                 max_clients: int = MAX_CLIENTS, queue_max: int = CLIENT_QUEUE_MAX) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: set[Client] = set()
        self._seq = itertools.count(1)
        self._last_seq = 0
        #: seq assignment and hand-over to the loop under one lock: clients receive the
        #: events in seq order even when several threads publish at once
        self._publish_lock = threading.Lock()
        self._on_drop = on_drop
        self.max_clients = max_clients
        self.queue_max = queue_max
        self.listeners: list[Callable[[Event], None]] = []

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    @property
    def last_seq(self) -> int:
        """The seq of the last event published. An API answer that reads this BEFORE
        reading the state it returns reflects at least every event up to it (the daemon
        changes its state before it publishes), so a client can order that answer
        against the events it receives (the counter page's refresh on connect)."""
        return self._last_seq

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def add_client(self, shape: Shape, peer: str) -> Client | None:
        if len(self._clients) >= self.max_clients:
            return None
        client = Client(shape, peer, self.queue_max)
        self._clients.add(client)
        return client

    def remove_client(self, client: Client) -> None:
        self._clients.discard(client)
        client.closed.set()

    def publish(self, type_: EventType, data: dict[str, Any] | None = None, *,
                compat: dict[str, Any] | None = None) -> Event:
        """Called from any thread. Sequence numbers are assigned here, in call order,
        and the events reach the loop (so every client) in that order."""
        with self._publish_lock:
            event = Event(type_, data or {}, compat, time.time(), next(self._seq))
            self._last_seq = event.seq
            loop = self._loop
            if loop is not None and not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(self._fanout, event)
                except RuntimeError:  # loop closed between the check and the call (shutdown)
                    logger.debug("event %s dropped: loop closed", event.type.value)
        for listener in list(self.listeners):
            listener(event)
        return event

    def publish_error(self, err: IdAgentError, *, reader: str) -> Event:
        """An ``error`` event: the error's code, message and the clerk's hint."""
        return self.publish(EventType.ERROR, {"reader": reader, **err.to_dict()},
                            compat={"code": err.code, "message": err.message})

    def _fanout(self, event: Event) -> None:
        frames: dict[Shape, str | None] = {}
        for client in list(self._clients):
            if client.dropped:
                continue
            if client.shape not in frames:
                frames[client.shape] = event.encode(client.shape)
            frame = frames[client.shape]
            if frame is None:
                continue
            if not client.offer(frame):
                self._drop(client)

    def _drop(self, client: Client) -> None:
        client.dropped = True
        self._clients.discard(client)
        # empty the queue now: the memory goes back at once, whatever the socket does
        while not client.queue.empty():
            client.queue.get_nowait()
        client.closed.set()
        logger.warning("websocket client %s too slow (queue full at %d events): disconnected",
                       client.peer, self.queue_max)
        if self._on_drop is not None:
            self._on_drop(client)
