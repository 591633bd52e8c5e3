"""The one identity on show: held in memory only, thread-safe, with its TTL.

It leaves memory when its card leaves the reader, after ``[api] identity_ttl``
seconds, on ``DELETE /identity``, when the next card is read, or when the agent stops;
each departure is counted (``idagent_identity_drops_total{reason}``) and announced to
the counter page (``identity_cleared``). The names and ID numbers it holds are given
to the log redaction filter while it is in memory (``agent.logs``).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.eventhub import EventHub, EventType
from agent.forward.bhyt_result import Lookup
from agent.icao.access import AccessInfo
from agent.identity import Identity
from agent.logs import forget_sensitive, register_sensitive
from agent.metrics import Metrics
from agent.pipeline import KeyUsed, Verdict


@dataclass
class Current:
    """The identity on show, with what happened to it since it was read (its JSON:
    ``agent.api.render.identity_body``)."""

    read_id: int
    reader: str
    identity: Identity
    verification: Verdict
    created: float
    #: how the chip was opened (``ReadOutcome.access``)
    access: AccessInfo | KeyUsed | None = None
    #: the BHYT lookup's result, once it ended
    lookup: Lookup | None = None
    intake: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    #: the chip's files as read (raw; for the reader-kit service), dropped with the identity
    files: dict[str, bytes] = field(default_factory=dict, repr=False)

def _sensitive_values(identity: Identity) -> list[str | None]:
    return [identity.id_number, identity.old_id_number, identity.document_number, identity.full_name,
            identity.father_name, identity.mother_name, identity.spouse_name]


def wipe(current: Current) -> None:
    forget_sensitive(_sensitive_values(current.identity))
    current.identity.clear()
    current.files.clear()
    current.lookup = None
    current.intake = None


class IdentityStore:
    """The one current identity, thread-safe, with its TTL."""

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._current: Current | None = None
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def get(self) -> Current | None:
        with self._lock:
            return self._current

    def put(self, current: Current) -> Current | None:
        register_sensitive(_sensitive_values(current.identity))
        with self._lock:
            previous, self._current = self._current, current
        return previous

    def update(self, read_id: int, **changes: Any) -> Current | None:
        with self._lock:
            current = self._current
            if current is None or current.read_id != read_id:
                return None
            for name, value in changes.items():
                setattr(current, name, value)
            return current

    def drop(self, *, reader: str | None = None, expired: bool = False) -> Current | None:
        """Drop the identity (only the one from ``reader`` / only if expired, when asked)."""
        with self._lock:
            current = self._current
            if current is None:
                return None
            if reader is not None and current.reader != reader:
                return None
            if expired and self._clock() - current.created < self.ttl:
                return None
            self._current = None
        wipe(current)
        return current


class IdentitySession:
    """The store, with the bookkeeping of each identity's arrival and departure."""

    def __init__(self, store: IdentityStore, hub: EventHub, metrics: Metrics) -> None:
        self.store = store
        self._hub = hub
        self._metrics = metrics

    def show(self, current: Current) -> None:
        """Put ``current`` on show; the identity it replaces is wiped."""
        previous = self.store.put(current)
        if previous is not None:
            self._metrics.identity_drops.inc(reason="replaced")
            wipe(previous)

    def forget(self, reason: str, *, reader: str | None = None, expired: bool = False,
               announce: bool = True) -> Current | None:
        """Drop the identity (see ``IdentityStore.drop``), count it and, with
        ``announce``, tell the counter page."""
        dropped = self.store.drop(reader=reader, expired=expired)
        if dropped is None:
            return None
        self._metrics.identity_drops.inc(reason=reason)
        if announce:
            self._hub.publish(EventType.IDENTITY_CLEARED, {"reason": reason, "read_id": dropped.read_id})
        return dropped
