"""Events the agent pushes to WebSocket clients, and the hub that fans them out.

The desk's threads (``agent.desk``) publish; the hub delivers on the API's asyncio
loop (``agent.api.server`` binds it and sends the frames). Each
client has a bounded queue: a client that does not keep up is disconnected (it can
reconnect and ask ``GET /identity`` for the current state) so one slow browser tab
never slows the others nor grows the agent's memory.

The desk publishes typed payloads for a read (``agent.desk.events``: the identity on
show, the verdict, the BHYT lookup) and plain dicts for the small events. The hub does
not know how to write the typed ones: the local API binds it with its renderer
(``agent.api.render.frame``), which writes each event's frames when it is published, on
the publishing thread (a snapshot: the identity may be wiped a moment later). Listeners
(the reader-kit service) get the same typed event.

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
    #: a dict for the small events; a typed payload (``agent.desk.events``) for a read's
    data: Any = field(default_factory=dict)
    #: compat-shape payload, when it differs from a rename of ``data`` (identity)
    compat: dict[str, Any] | None = None
    ts: float = field(default_factory=time.time)
    seq: int = 0

    @property
    def plain(self) -> bool:
        """The payload is plain data (a dict): ``native``/``encode`` write it as it is;
        a typed payload is written by ``agent.api.render``, which passes the data here."""
        return isinstance(self.data, dict)

    def native_data(self) -> dict[str, Any]:
        if not self.plain:
            raise TypeError(f"{self.type.value}: a typed payload is written by agent.api.render")
        return dict(self.data)

    def native(self, data: dict[str, Any] | None = None) -> dict[str, Any]:
        body = self.native_data() if data is None else data
        return {"type": self.type.value, "seq": self.seq, "ts": round(self.ts, 3), **body}

    def compat_shape(self, data: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The reader-kit shape, or None for events those kits have no name for."""
        name = COMPAT_NAMES.get(self.type)
        if name is None:
            return None
        if data is None:
            data = self.compat if self.compat is not None else self.native_data()
        return {"event": name, "data": data}

    def encode(self, shape: Shape) -> str | None:
        return to_frame(self.native() if shape is Shape.NATIVE else self.compat_shape())

    def __repr__(self) -> str:  # data may hold personal data
        return f"Event(type={self.type.value}, seq={self.seq})"


def to_frame(body: dict[str, Any] | None) -> str | None:
    """One event's body as the text of its WebSocket frame."""
    if body is None:
        return None
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=json_plain)


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


COMPAT_NAMES: dict[EventType, str] = {
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


#: writes one event in one shape (None: nothing for that shape); the API's is
#: ``agent.api.render.frame``, the default writes plain events only
Renderer = Callable[[Event, Shape], "str | None"]


def encode_plain(event: Event, shape: Shape) -> str | None:
    return event.encode(shape)


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
        self._render: Renderer = encode_plain
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

    def bind(self, loop: asyncio.AbstractEventLoop, render: Renderer | None = None) -> None:
        """Deliver on ``loop``, each event written by ``render`` (the API's renderer)."""
        self._loop = loop
        if render is not None:
            self._render = render

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

    def publish(self, type_: EventType, data: object = None, *,
                compat: dict[str, Any] | None = None) -> Event:
        """Called from any thread. Sequence numbers are assigned here, in call order,
        and the events reach the loop (so every client) in that order. ``data``: a dict,
        or a typed payload (``agent.desk.events``), written now, for the shapes the
        clients connected at this moment take."""
        with self._publish_lock:
            event = Event(type_, {} if data is None else data, compat, time.time(), next(self._seq))
            self._last_seq = event.seq
            loop = self._loop
            if loop is not None and not loop.is_closed():
                frames: dict[Shape, str | None] = {}
                if not event.plain:
                    # a typed payload is written now (a snapshot), not when the loop gets to it
                    for shape in {client.shape for client in list(self._clients)}:
                        frames[shape] = self._render(event, shape)
                try:
                    loop.call_soon_threadsafe(self._fanout, event, frames)
                except RuntimeError:  # loop closed between the check and the call (shutdown)
                    logger.debug("event %s dropped: loop closed", event.type.value)
        for listener in list(self.listeners):
            listener(event)
        return event

    def publish_error(self, err: IdAgentError, *, reader: str) -> Event:
        """An ``error`` event: the error's code, message and the clerk's hint."""
        return self.publish(EventType.ERROR, {"reader": reader, **err.to_dict()},
                            compat={"code": err.code, "message": err.message})

    def _fanout(self, event: Event, frames: dict[Shape, str | None]) -> None:
        for client in list(self._clients):
            if client.dropped:
                continue
            if client.shape not in frames:
                frames[client.shape] = self._render(event, client.shape)
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
