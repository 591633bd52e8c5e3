"""ISO-DEP cards on readers that pcscd does not drive (e.g. Sony RC-S380), via nfcpy.

nfcpy is imported lazily: a machine without libusb or nfcpy can still import this
package, and only learns about it when the "nfc" backend is configured.

nfcpy has no event API; presence is polled (``tag.is_present`` while a card is there,
a short ``clf.connect`` sense otherwise) every ``poll_interval`` seconds.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from agent.errors import CardRemovedError, NoCardError, NoReaderError, ReaderError
from agent.readers.atr import resolve_extended_length
from agent.readers.base import CardConnection, ReaderBackend, ReaderEvent, ReaderInfo, check_response
from agent.readers.errors import ReaderGoneError
from agent.readers.slots import SlotState, diff_states

logger = logging.getLogger(__name__)

#: ISO/IEC 14443-4 targets: type A and type B at 106 kbit/s (nfcpy's brty names)
TARGETS = ("106A", "106B")
#: how long a presence check may sense for a new card
SENSE_TIME = 0.15
#: how long a connection waits for the card while another one holds it for a read
OWNER_WAIT = 30.0

Frontend = Any  # nfc.ContactlessFrontend, or a test double with the same methods
FrontendFactory = Callable[[str], Frontend]


def _open_frontend(path: str) -> Frontend:
    try:
        import nfc
    except ImportError as exc:
        raise NoReaderError(f"nfcpy is not usable: {exc}",
                            hint="Install nfcpy and libusb-1.0-0, or remove 'nfc' from readers.backends.") from exc
    return nfc.ContactlessFrontend(path)


def _nfc_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(tag-level command errors, frontend communication errors) of nfcpy, or empty
    tuples when nfcpy is missing (test doubles then raise plain OSError)."""
    try:
        import nfc.clf
        import nfc.tag
    except ImportError:
        return (), ()
    return (nfc.tag.TagCommandError,), (nfc.clf.CommunicationError,)


def _is_iso_dep(tag: Any) -> bool:
    # nfcpy's Type4Tag (ISO-DEP) is the only tag type with a transceive() for APDUs
    return tag is not None and getattr(tag, "type", "") == "Type4Tag" and hasattr(tag, "transceive")


class NfcBackend(ReaderBackend):
    name = "nfc"

    def __init__(self, path: str = "usb", *, extended_length: str = "auto", poll_interval: float = 0.5,
                 frontend_factory: FrontendFactory = _open_frontend, reopen_interval: float = 2.0) -> None:
        resolve_extended_length(extended_length, b"")
        self.path = path
        self.reader = f"nfc:{path}"
        # nfcpy's Type4Tag does not keep the ATS, so "auto" cannot read card capabilities:
        # stay with short APDUs unless the config says "on"
        self.extended = extended_length == "on"
        self.poll_interval = poll_interval
        self._factory = frontend_factory
        #: after a failed open (no device), wait this long before scanning USB again
        self.reopen_interval = reopen_interval
        self._next_open = 0.0
        self._lock = threading.RLock()
        #: one owner at a time for a whole read (NfcConnection.exclusive)
        self._owner_lock = threading.Lock()
        self._owner: NfcConnection | None = None
        self._clf: Frontend | None = None
        self._tag: Any = None
        self._generation = 0
        self._reported: dict[str, SlotState] | None = None
        self._stop = threading.Event()

    # -- device and tag --
    def _frontend(self) -> Frontend | None:
        if self._clf is None:
            if time.monotonic() < self._next_open:
                return None
            try:
                self._clf = self._factory(self.path)
            except (OSError, NoReaderError) as exc:
                logger.debug("no nfcpy frontend at %s: %s", self.path, exc)
                self._next_open = time.monotonic() + self.reopen_interval
                return None
            logger.info("nfcpy frontend opened: %s", self._clf)
        return self._clf

    def _drop_frontend(self) -> None:
        clf, self._clf, self._tag = self._clf, None, None
        if clf is not None:
            try:
                clf.close()
            except OSError:
                pass

    def _sense(self) -> Any:
        """The ISO-DEP tag in the field now (activated), or None."""
        clf = self._frontend()
        if clf is None:
            return None
        owner = self._owner
        if owner is not None and owner.tag is self._tag:
            # a read holds the card: no presence check between its commands (the read
            # itself notices a card that left)
            return self._tag
        if self._tag is not None:
            try:
                if self._tag.is_present:
                    return self._tag
            except OSError:
                self._drop_frontend()
                return None
            self._tag = None
        deadline = time.monotonic() + SENSE_TIME
        try:
            tag = clf.connect(rdwr={"targets": list(TARGETS), "on-connect": lambda _tag: False},
                              terminate=lambda: time.monotonic() > deadline or self._stop.is_set())
        except OSError as exc:  # the device went away (USB unplugged)
            logger.warning("nfcpy frontend %s failed: %s", self.path, exc)
            self._drop_frontend()
            return None
        if tag:
            self._tag = tag
            self._generation += 1
        return self._tag

    def _state(self) -> dict[str, SlotState]:
        tag = self._sense()
        if self._clf is None:
            return {}
        return {self.reader: SlotState(tag is not None, b"", self._generation)}

    # -- ReaderBackend --
    def list_readers(self) -> list[ReaderInfo]:
        with self._lock:
            state = self._state()
            device = str(self._clf) if self._clf is not None else ""
        return [ReaderInfo(name, s.card_present, b"", self.name, {"device": device}) for name, s in state.items()]

    def connect(self, reader: str) -> NfcConnection:
        with self._lock:
            state = self._state()
            if reader not in state:
                raise NoReaderError(f"no reader named {reader!r}; readers: {', '.join(state) or 'none'}")
            if self._tag is None:
                raise NoCardError(f"no card on reader {reader!r}")
            if not _is_iso_dep(self._tag):
                kind = getattr(self._tag, "type", "?")
                raise NoCardError(f"the card on {reader!r} is not an ISO 14443-4 card ({kind})",
                                  hint="Only chip ID cards and passports can be read; lay the ID card on the reader.")
            return NfcConnection(self, self._tag, self._generation)

    def wait_for_events(self, timeout: float) -> list[ReaderEvent]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                previous = self._reported or {}
                first = self._reported is None
                current = self._state()
                self._reported = current
            events = diff_states(previous, current)
            if events or first:
                return events
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stop.wait(min(self.poll_interval, remaining)):
                return []

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._drop_frontend()

    # -- used by NfcConnection --
    def _check_current(self, tag: Any, generation: int) -> None:
        if self._clf is None:
            raise ReaderGoneError(f"nfc reader {self.path!r} was unplugged")
        if self._tag is not tag or self._generation != generation:
            raise CardRemovedError(f"the card left {self.reader!r}")


class NfcConnection(CardConnection):
    def __init__(self, backend: NfcBackend, tag: Any, generation: int) -> None:
        self.backend = backend
        self.tag = tag
        self.generation = generation
        self.reader = backend.reader
        self._closed = False

    @property
    def extended_length(self) -> bool:
        return self.backend.extended

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """One owner for a whole read, nfcpy's counterpart of a PC/SC transaction: the
        presence poll leaves the card alone, and any other connection to it waits
        until the read ends (issue 14)."""
        backend = self.backend
        if not backend._owner_lock.acquire(timeout=OWNER_WAIT):
            raise ReaderError(f"another read held the card on {self.reader!r} for {OWNER_WAIT:.0f} s",
                              hint="Wait for the other read to finish, then lay the card down again.")
        backend._owner = self
        try:
            yield
        finally:
            backend._owner = None
            backend._owner_lock.release()

    def _wait_for_owner(self) -> None:
        owner = self.backend._owner
        if owner is None or owner is self:
            return
        if not self.backend._owner_lock.acquire(timeout=OWNER_WAIT):
            raise ReaderError(f"another read held the card on {self.reader!r} for {OWNER_WAIT:.0f} s",
                              hint="Wait for the other read to finish, then try again.")
        self.backend._owner_lock.release()

    def transmit(self, apdu: bytes) -> bytes:
        if self._closed:
            raise ReaderError(f"connection to {self.reader!r} is closed")
        self._wait_for_owner()
        with self.backend._lock:
            self.backend._check_current(self.tag, self.generation)
            tag_errors, link_errors = _nfc_errors()
            try:
                response = self.tag.transceive(bytes(apdu))
            except OSError as exc:
                self.backend._drop_frontend()
                raise ReaderGoneError(f"nfc reader {self.backend.path!r} failed mid-command ({exc})") from exc
            except tag_errors + link_errors as exc:
                raise self._classify(exc) from exc
        return check_response(bytes(response or b""), self.reader)

    def _classify(self, exc: BaseException) -> ReaderError:
        """A failed exchange usually means the card left the field; ask the tag."""
        try:
            present = bool(self.tag.is_present)
        except OSError:
            self.backend._drop_frontend()
            return ReaderGoneError(f"nfc reader {self.backend.path!r} failed mid-command")
        if not present:
            self.backend._tag = None
            return CardRemovedError(f"the card left {self.reader!r} during a command")
        return ReaderError(f"contactless exchange failed on {self.reader!r}: {type(exc).__name__} {exc}",
                           hint="Keep the card flat and still on the reader and try again.")

    def close(self) -> None:
        self._closed = True
