"""The card-reader interface every backend implements.

A backend (PC/SC, nfcpy, replay, the in-process virtual chip) gives:

* ``CardConnection``: send a command APDU's bytes, get the response's bytes; says
  whether extended length works; close.
* ``ReaderBackend``: list readers, connect to one, and poll for events.

Only modules in this package import pyscard, nfcpy, pyserial or camera APIs. Library
types (lists of ints, pyscard exceptions) are converted here, once.
"""

from __future__ import annotations

import abc
import contextlib
import enum
from dataclasses import dataclass, field

from agent.readers.errors import ResponseTooShortError


class CardConnection(abc.ABC):
    """A connection to one card in one reader."""

    #: the reader's name, as the backend lists it
    reader: str = ""
    #: a device on the other end that may stop answering (PC/SC, nfcpy): a read puts
    #: each command under its own deadline (agent.icao.deadline). In-process cards
    #: (the simulator, a replay) answer at once and skip the worker thread that costs
    can_stall: bool = True

    @property
    @abc.abstractmethod
    def extended_length(self) -> bool:
        """True when both reader and card are known to take extended APDUs."""

    @abc.abstractmethod
    def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU, return the response bytes (data + SW1 SW2).

        Raises ``CardRemovedError`` when the card left, ``ReaderError`` for other
        transport failures. Never returns fewer than 2 bytes without raising."""

    @property
    def atr(self) -> bytes:
        return b""

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        """Hold the card for a whole sequence of commands (one chip read): no other
        program's or thread's command gets between ours (secure messaging counts every
        command; one foreign APDU ends the session). Backends with nothing to hold
        give a context that does nothing."""
        return contextlib.nullcontext()

    def abandon(self) -> None:  # noqa: B027 - optional for backends that cannot stall
        """A command sent on this connection never came back (agent.icao.deadline): from
        now on, ending a transaction and closing must not wait for it."""

    def close(self) -> None:  # noqa: B027 - optional for backends with nothing to free
        """Release the card. Safe to call twice."""

    def __enter__(self) -> CardConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OpenedConnection(CardConnection):
    """A connection that learnt, when it opened, the card's ATR and whether extended
    length works (resolved by the backend: ``agent.readers.atr.resolve_extended_length``)."""

    def __init__(self, atr: bytes, extended: bool) -> None:
        self._atr = atr
        self._extended = extended

    @property
    def extended_length(self) -> bool:
        return self._extended

    @property
    def atr(self) -> bytes:
        return self._atr


class WrappedConnection(CardConnection):
    """A connection that wraps another (recording, fault injection, metering): it
    passes everything through; subclasses override ``transmit``."""

    def __init__(self, inner: CardConnection) -> None:
        self.inner = inner
        self.reader = inner.reader
        self.can_stall = inner.can_stall

    @property
    def extended_length(self) -> bool:
        return self.inner.extended_length

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    def transmit(self, apdu: bytes) -> bytes:
        return self.inner.transmit(apdu)

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        return self.inner.exclusive()

    def abandon(self) -> None:
        self.inner.abandon()

    def close(self) -> None:
        self.inner.close()


class EventKind(enum.StrEnum):
    READER_ATTACHED = "reader_attached"
    READER_DETACHED = "reader_detached"
    CARD_INSERTED = "card_inserted"
    CARD_REMOVED = "card_removed"


@dataclass(frozen=True)
class ReaderEvent:
    kind: EventKind
    reader: str
    atr: bytes = b""


@dataclass(frozen=True)
class ReaderInfo:
    name: str
    card_present: bool
    atr: bytes = b""
    backend: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "card_present": self.card_present,
                "atr": self.atr.hex().upper(), "backend": self.backend, **self.extra}


class ReaderBackend(abc.ABC):
    """A family of readers (all PC/SC readers, all nfcpy devices, ...)."""

    name: str = ""

    @abc.abstractmethod
    def list_readers(self) -> list[ReaderInfo]:
        """Readers attached now, with card presence."""

    @abc.abstractmethod
    def connect(self, reader: str) -> CardConnection:
        """Connect to the card in ``reader``. ``NoReaderError`` for an unknown name,
        ``NoCardError`` when the reader is empty."""

    @abc.abstractmethod
    def wait_for_events(self, timeout: float) -> list[ReaderEvent]:
        """Block up to ``timeout`` seconds; return what changed since the last call
        (readers attached/detached, cards inserted/removed). The first call reports
        what is present as attached/inserted."""

    def close(self) -> None:  # noqa: B027
        """Free backend resources."""


def check_response(raw: bytes, reader: str) -> bytes:
    """Enforce the ``CardConnection.transmit`` contract: at least SW1 SW2."""
    if len(raw) < 2:
        raise ResponseTooShortError(
            f"reader {reader!r} returned a {len(raw)}-byte response; every response ends with a 2-byte status word"
        )
    return bytes(raw)
