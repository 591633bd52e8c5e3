"""The in-process backend: virtual cards in named virtual reader slots.

The peer of most unit tests and the demo's embedded default. It is never picked
silently: only when the config or a flag names the "sim" backend (design.md).
Thread-safe: a test may insert or remove a card from one thread while another waits
for events or transmits.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

from agent.errors import CardRemovedError, NoCardError, NoReaderError, ReaderError
from agent.readers.atr import resolve_extended_length
from agent.readers.base import OpenedConnection, ReaderBackend, ReaderEvent, ReaderInfo, check_response
from agent.readers.errors import ReaderGoneError
from agent.readers.slots import SlotState, diff_states

logger = logging.getLogger(__name__)


class VirtualCard(Protocol):
    """What this backend needs of a card: power and APDUs, in process
    (``agent.sim.card.VirtualCard`` models one; this layer does not import it)."""

    @property
    def extended_length(self) -> bool: ...

    def power_on(self) -> bytes: ...

    def power_off(self) -> None: ...

    def reset(self) -> bytes: ...

    def process(self, apdu: bytes) -> bytes: ...

DEFAULT_READER = "Sim Reader 00"


@dataclass
class _Slot:
    card: VirtualCard | None = None
    atr: bytes = b""
    generation: int = 0


class SimBackend(ReaderBackend):
    name = "sim"

    def __init__(self, readers: tuple[str, ...] = (DEFAULT_READER,), *, extended_length: str = "auto") -> None:
        resolve_extended_length(extended_length, b"")  # validate the option now, not at connect
        self.extended_length_option = extended_length
        self._cond = threading.Condition()
        self._slots: dict[str, _Slot] = {name: _Slot() for name in readers}
        self._reported: dict[str, SlotState] | None = None
        self._closed = False

    # -- test / demo controls --
    def attach(self, reader: str) -> None:
        """Plug in an empty virtual reader."""
        with self._cond:
            self._slots.setdefault(reader, _Slot())
            self._cond.notify_all()

    def detach(self, reader: str) -> None:
        """Unplug a virtual reader (its card goes with it)."""
        with self._cond:
            slot = self._slots.pop(reader, None)
            if slot is not None and slot.card is not None:
                slot.card.power_off()
            self._cond.notify_all()

    def insert(self, reader: str, card: VirtualCard) -> bytes:
        """Put ``card`` on ``reader`` (attaching the reader if needed); returns the ATR."""
        with self._cond:
            slot = self._slots.setdefault(reader, _Slot())
            if slot.card is not None:
                raise ReaderError(f"virtual reader {reader!r} already holds a card; remove it first")
            slot.atr = card.power_on()
            slot.card = card
            slot.generation += 1
            self._cond.notify_all()
            logger.info("virtual card inserted in %s", reader)
            return slot.atr

    def remove(self, reader: str) -> VirtualCard | None:
        """Take the card off ``reader``; connections to it fail from now on."""
        with self._cond:
            slot = self._slots.get(reader)
            if slot is None or slot.card is None:
                return None
            card, slot.card, slot.atr = slot.card, None, b""
            card.power_off()
            self._cond.notify_all()
            logger.info("virtual card removed from %s", reader)
            return card

    # -- ReaderBackend --
    def list_readers(self) -> list[ReaderInfo]:
        with self._cond:
            return [ReaderInfo(name, slot.card is not None, slot.atr, self.name) for name, slot in self._slots.items()]

    def connect(self, reader: str) -> SimConnection:
        with self._cond:
            slot = self._slots.get(reader)
            if slot is None:
                raise NoReaderError(f"no reader named {reader!r}; readers: {', '.join(self._slots) or 'none'}")
            if slot.card is None:
                raise NoCardError(f"no card on reader {reader!r}")
            # "auto" asks the card model itself: it is the truth the ATR would only announce
            option = self.extended_length_option
            extended = bool(slot.card.extended_length) if option == "auto" else option == "on"
            return SimConnection(self, reader, slot.card, slot.generation, slot.atr, extended)

    def _state(self) -> dict[str, SlotState]:
        return {name: SlotState(slot.card is not None, slot.atr, slot.generation) for name, slot in self._slots.items()}

    def wait_for_events(self, timeout: float) -> list[ReaderEvent]:
        with self._cond:
            previous = self._reported or {}
            first = self._reported is None
            self._cond.wait_for(lambda: first or self._closed or self._state() != previous, timeout=timeout)
            current = self._state()
            self._reported = current
            return diff_states(previous, current)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- used by SimConnection --
    def _card_for(self, reader: str, generation: int) -> VirtualCard:
        with self._cond:
            slot = self._slots.get(reader)
            if slot is None:
                raise ReaderGoneError(f"virtual reader {reader!r} was detached during the read")
            if slot.card is None or slot.generation != generation:
                raise CardRemovedError(f"the card left virtual reader {reader!r}")
            return slot.card


class SimConnection(OpenedConnection):
    """Calls ``card.process`` in process; fails once the card it was opened on left."""
    can_stall = False  # the virtual chip answers in-process

    def __init__(self, backend: SimBackend, reader: str, card: VirtualCard, generation: int, atr: bytes,
                 extended: bool) -> None:
        super().__init__(atr, extended)
        self.backend = backend
        self.reader = reader
        self.card = card
        self.generation = generation
        self._closed = False

    def transmit(self, apdu: bytes) -> bytes:
        if self._closed:
            raise ReaderError(f"connection to {self.reader!r} is closed")
        card = self.backend._card_for(self.reader, self.generation)
        response = card.process(bytes(apdu))
        # the card may have been pulled while it was answering
        self.backend._card_for(self.reader, self.generation)
        return check_response(response, self.reader)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.backend._card_for(self.reader, self.generation)
        except CardRemovedError:
            return
        # like SCARD_RESET_CARD: the next connection starts from a clean card
        self._atr = self.card.reset()
