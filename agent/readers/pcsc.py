"""PC/SC readers through pyscard (pcsc-lite's pcscd on Linux).

The only module that imports pyscard. It uses pyscard's thin ``smartcard.scard``
layer so that every PC/SC return code is seen and mapped to one typed error here;
lists of ints become bytes once, in this module.

Threads: pcsc-lite serialises calls per context, so the event monitor
(``wait_for_events``, which blocks in SCardGetStatusChange) has its own context and
does not hold up ``connect``/``transmit`` made from another thread.

Why one module of ~490 lines: it is the whole pyscard boundary (error mapping, the
backend with its hot-plug monitor, the connection with transactions, and the pcscd
probes ``doctor`` uses); split, the "only module that imports pyscard" rule would
become several.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from agent.errors import CardRemovedError, IdAgentError, NoCardError, NoReaderError, PcscUnavailableError, ReaderError
from agent.readers.atr import resolve_extended_length
from agent.readers.base import OpenedConnection, ReaderBackend, ReaderEvent, ReaderInfo, check_response
from agent.readers.errors import ReaderGoneError, ResponseTooShortError
from agent.readers.slots import SlotState, diff_states

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: pcsc-lite's client library honours PCSCLITE_CSOCK_NAME; so do we
PCSCD_SOCKET = os.environ.get("PCSCLITE_CSOCK_NAME", "/run/pcscd/pcscd.comm")
#: pseudo-reader whose state changes when readers appear or disappear (PC/SC part 5;
#: pcsc-lite keeps the reader count in the high word of its event state)
PNP_NOTIFICATION = "\\\\?PnP?\\Notification"
#: SCardStatus card state bit (pcsc-lite pcsclite.h); pyscard does not export this set
SCARD_STATUS_PRESENT = 0x0004
PCSCD_FIX = "start it with 'sudo systemctl start pcscd.socket' (install: sudo apt install pcscd)"


def _scard() -> Any:
    """pyscard's low-level module, imported on first use so that a machine without
    libpcsclite can still import this package (and be told what is missing)."""
    try:
        from smartcard import scard
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise PcscUnavailableError(f"pyscard is not usable: {exc}",
                                   hint="Install libpcsclite1 and pyscard (scripts/setup.sh does both).") from exc
    return scard


def _code(hresult: int) -> int:
    """pyscard returns PC/SC codes as signed or unsigned ints depending on the build."""
    return hresult & 0xFFFFFFFF


def _message(hresult: int) -> str:
    try:
        return str(_scard().SCardGetErrorMessage(hresult))
    except Exception:  # noqa: BLE001 - only decoration of an error we already report
        return f"PC/SC error 0x{_code(hresult):08X}"


class PcscError(ReaderError):
    """A PC/SC failure that has no more specific meaning; keeps the return code."""

    code = "pcsc"
    #: the reader is there but the exchange failed: "read failed" (CLI contract)
    exit_code = 6

    def __init__(self, message: str, hresult: int, **kw: Any) -> None:
        super().__init__(f"{message}: {_message(hresult)} (0x{_code(hresult):08X})", **kw)
        self.hresult = _code(hresult)


def map_error(hresult: int, what: str, reader: str = "", readers: Iterable[str] = ()) -> ReaderError:
    """The typed error for a PC/SC return code. ``what`` says what we were doing."""
    s = _scard()
    code = _code(hresult)
    where = f" on {reader!r}" if reader else ""
    if code in (_code(s.SCARD_E_NO_SERVICE), _code(s.SCARD_E_SERVICE_STOPPED)):
        return PcscUnavailableError(f"{what}: the PC/SC daemon (pcscd) is not running")
    if code in (_code(s.SCARD_W_REMOVED_CARD), _code(s.SCARD_W_RESET_CARD)):
        return CardRemovedError(f"{what}{where}: the card was removed or reset")
    if code == _code(s.SCARD_E_NO_SMARTCARD):
        return NoCardError(f"{what}: no card on reader {reader!r}")
    if code in (_code(s.SCARD_E_UNKNOWN_READER), _code(s.SCARD_E_NO_READERS_AVAILABLE)):
        names = ", ".join(readers) or "none"
        return NoReaderError(f"{what}: no reader named {reader!r}; readers: {names}")
    if code == _code(s.SCARD_E_READER_UNAVAILABLE):
        return ReaderGoneError(f"{what}: reader {reader!r} is no longer available (unplugged?)")
    if code == _code(s.SCARD_E_SHARING_VIOLATION):
        return PcscError(f"{what}{where}: another program holds the card", hresult,
                         hint="Close the other smart-card program (e.g. a browser or pcsc_scan) and try again.")
    if code in (_code(s.SCARD_W_UNRESPONSIVE_CARD), _code(s.SCARD_W_UNPOWERED_CARD)):
        return PcscError(f"{what}{where}: the card does not answer", hresult,
                         hint="Lay the card flat on the reader, or try another card.")
    return PcscError(f"{what}{where}", hresult)


class PcscBackend(ReaderBackend):
    """All PC/SC readers pcscd knows (optionally filtered by name parts).

    ``extended_length``: "on"/"off" force it; "auto" reads the card capabilities in the
    ATR's historical bytes: the third software function table, bit b7 "extended Lc and
    Le fields" (ISO/IEC 7816-4 §8.1.1.2.7; agent.readers.atr). A card that does not say
    so gets short APDUs only. ``disposition``: what closing a connection does to the
    card ("reset" ends any secure-messaging session; "leave" keeps it)."""

    name = "pcsc"

    def __init__(self, *, extended_length: str = "auto", include: Sequence[str] = (), exclude: Sequence[str] = (),
                 disposition: str = "reset") -> None:
        resolve_extended_length(extended_length, b"")  # validates the option
        self.extended_length_option = extended_length
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        if disposition not in ("reset", "leave"):
            raise ValueError("disposition must be 'reset' or 'leave'")
        self.disposition = disposition
        self._lock = threading.Lock()
        self._ctx: int | None = None
        self._event_ctx: int | None = None
        # every context we made, released by close() or, failing that, when the backend
        # is garbage-collected: each one is a socket held open in pcscd
        self._contexts: list[int] = []
        weakref.finalize(self, _release_contexts, self._contexts)
        self._reported: dict[str, SlotState] | None = None
        self._raw: dict[str, int] = {}

    # -- contexts --
    def _establish(self) -> int:
        s = _scard()
        hresult, ctx = s.SCardEstablishContext(s.SCARD_SCOPE_USER)
        if hresult != s.SCARD_S_SUCCESS:
            raise map_error(hresult, "connecting to pcscd")
        self._contexts.append(int(ctx))
        return int(ctx)

    def _context(self) -> int:
        if self._ctx is None or not self._valid(self._ctx):
            self._ctx = self._establish()
        return self._ctx

    def _events_context(self) -> int:
        if self._event_ctx is None or not self._valid(self._event_ctx):
            self._event_ctx = self._establish()
        return self._event_ctx

    @staticmethod
    def _valid(ctx: int) -> bool:
        """False once pcscd restarted under us (the context died with it)."""
        s = _scard()
        return bool(s.SCardIsValidContext(ctx) == s.SCARD_S_SUCCESS)

    def _names(self, ctx: int) -> list[str]:
        s = _scard()
        hresult, names = s.SCardListReaders(ctx, [])
        if _code(hresult) in (_code(s.SCARD_E_NO_READERS_AVAILABLE),):
            return []
        if hresult != s.SCARD_S_SUCCESS:
            raise map_error(hresult, "listing readers")
        return [n for n in names if self._wanted(n)]

    def _wanted(self, name: str) -> bool:
        if self.include and not any(part in name for part in self.include):
            return False
        return not any(part in name for part in self.exclude)

    def _snapshot(self, ctx: int) -> dict[str, tuple[int, bytes]]:
        """Each reader's raw event state and ATR, right now."""
        s = _scard()
        for _attempt in range(3):
            names = self._names(ctx)
            if not names:
                return {}
            hresult, states = s.SCardGetStatusChange(ctx, 0, [(n, s.SCARD_STATE_UNAWARE) for n in names])
            if _code(hresult) == _code(s.SCARD_E_UNKNOWN_READER):
                continue  # a reader left between the two calls: look again
            if hresult != s.SCARD_S_SUCCESS and _code(hresult) != _code(s.SCARD_E_TIMEOUT):
                raise map_error(hresult, "reading reader states")
            return {name: (int(state), bytes(atr or b"")) for name, state, atr in states}
        raise ReaderError("the reader list kept changing while it was read",
                          hint="A reader is being plugged in and out; leave it plugged in.")

    @staticmethod
    def _slot(state: int, atr: bytes) -> SlotState:
        s = _scard()
        present = bool(state & s.SCARD_STATE_PRESENT) and not state & s.SCARD_STATE_MUTE
        # pcsc-lite counts card insertions/removals in the high word of the event state
        return SlotState(present, atr if present else b"", (state >> 16) & 0xFFFF)

    # -- ReaderBackend --
    def _fresh_after_restart(self, use: Callable[[int], T]) -> T:
        """Run ``use(context)``; if pcscd says it is not running, make a new context and
        try once more. SCardIsValidContext only checks the client library's own handle
        table, so a context that died with a restarted pcscd still looks valid (found by
        bench/fault_matrix.py: after a pcscd restart every call failed until the agent
        itself was restarted)."""
        try:
            return use(self._context())
        except PcscUnavailableError:
            self._ctx = None
            return use(self._context())

    def list_readers(self) -> list[ReaderInfo]:
        with self._lock:
            snapshot = self._fresh_after_restart(self._snapshot)
        return [ReaderInfo(name, self._slot(state, atr).card_present, self._slot(state, atr).atr, self.name)
                for name, (state, atr) in snapshot.items()]

    def connect(self, reader: str) -> PcscConnection:
        s = _scard()
        with self._lock:
            names, ctx = self._fresh_after_restart(lambda c: (self._names(c), c))
            if reader not in names:
                raise NoReaderError(f"no reader named {reader!r}; readers: {', '.join(names) or 'none'}")
            # T=1 first: it carries case-4 APDUs without the T=0 GET RESPONSE dance
            hresult, hcard, protocol = s.SCardConnect(ctx, reader, s.SCARD_SHARE_SHARED, s.SCARD_PROTOCOL_T1)
            if _code(hresult) == _code(s.SCARD_E_PROTO_MISMATCH):
                hresult, hcard, protocol = s.SCardConnect(ctx, reader, s.SCARD_SHARE_SHARED,
                                                          s.SCARD_PROTOCOL_T0 | s.SCARD_PROTOCOL_T1)
            if hresult != s.SCARD_S_SUCCESS:
                raise map_error(hresult, "connecting to the card", reader, names)
            hresult, _name, _state, _proto, atr = s.SCardStatus(hcard)
            if hresult != s.SCARD_S_SUCCESS:
                s.SCardDisconnect(hcard, s.SCARD_LEAVE_CARD)
                raise map_error(hresult, "reading the card status", reader, names)
        atr_bytes = bytes(atr)
        extended = resolve_extended_length(self.extended_length_option, atr_bytes)
        logger.info("connected to %s (T=%d, extended length %s)", reader,
                    0 if protocol == s.SCARD_PROTOCOL_T0 else 1, extended)
        return PcscConnection(self, int(hcard), reader, int(protocol), atr_bytes, extended)

    def wait_for_events(self, timeout: float) -> list[ReaderEvent]:
        """Block in SCardGetStatusChange on every reader plus the PnP pseudo-reader
        until something changes (or ``timeout``), then diff a fresh snapshot against
        what was last reported."""
        try:
            return self._wait_for_events(timeout)
        except PcscUnavailableError:
            # the next call makes a new context (see _fresh_after_restart)
            self._event_ctx = None
            raise

    def _wait_for_events(self, timeout: float) -> list[ReaderEvent]:
        s = _scard()
        ctx = self._events_context()
        if self._reported is None:
            return self._report(ctx, {})
        deadline = time.monotonic() + timeout
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            hresult = self._block(ctx, remaining)
            if _code(hresult) == _code(s.SCARD_E_CANCELLED):
                return []
            if hresult != s.SCARD_S_SUCCESS and _code(hresult) not in (
                    _code(s.SCARD_E_TIMEOUT), _code(s.SCARD_E_UNKNOWN_READER)):
                raise map_error(hresult, "waiting for reader events")
            events = self._report(ctx, self._reported)
            if events or remaining <= 0 or _code(hresult) == _code(s.SCARD_E_TIMEOUT):
                return events

    def _block(self, ctx: int, timeout: float) -> int:
        s = _scard()
        states = [(name, state & ~s.SCARD_STATE_CHANGED) for name, state in self._raw.items()]
        # the reader count we know goes in the high word: pcsc-lite answers at once when
        # it differs, so a reader attached since our snapshot is not missed
        states.append((PNP_NOTIFICATION, len(self._raw) << 16))
        hresult, _result = s.SCardGetStatusChange(ctx, int(timeout * 1000), states)
        return int(hresult)

    def _report(self, ctx: int, previous: dict[str, SlotState]) -> list[ReaderEvent]:
        snapshot = self._snapshot(ctx)
        self._raw = {name: state for name, (state, _atr) in snapshot.items()}
        current = {name: self._slot(state, atr) for name, (state, atr) in snapshot.items()}
        self._reported = current
        return diff_states(previous, current)

    def cancel(self) -> None:
        """Wake a thread blocked in ``wait_for_events`` (it returns no events)."""
        if self._event_ctx is not None:
            _scard().SCardCancel(self._event_ctx)

    def close(self) -> None:
        self.cancel()
        _release_contexts(self._contexts)
        self._ctx = self._event_ctx = None


def _release_contexts(contexts: list[int]) -> None:
    try:
        s = _scard()
        for ctx in contexts:
            s.SCardReleaseContext(ctx)
    except Exception:  # noqa: BLE001 - also runs at interpreter exit, when little is left
        pass
    contexts.clear()


class PcscConnection(OpenedConnection):
    def __init__(self, backend: PcscBackend, hcard: int, reader: str, protocol: int, atr: bytes,
                 extended: bool) -> None:
        super().__init__(atr, extended)
        self.backend = backend
        self.hcard: int | None = hcard
        self.reader = reader
        self.protocol = protocol
        self._abandoned = False

    def transmit(self, apdu: bytes) -> bytes:
        s = _scard()
        if self.hcard is None:
            raise ReaderError(f"connection to {self.reader!r} is closed")
        hresult, response = s.SCardTransmit(self.hcard, self.protocol, list(apdu))
        if hresult != s.SCARD_S_SUCCESS:
            error = map_error(hresult, "sending a command", self.reader)
            raise self._classify(error) if isinstance(error, PcscError) else error
        raw = bytes(response)
        if len(raw) < 2:
            # vpcd (and some drivers) report a card pulled mid-command as an empty answer
            try:
                check_response(raw, self.reader)
            except ResponseTooShortError as error:
                raise self._classify(error) from None
        return raw

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """SCardBeginTransaction for the whole read (PC/SC part 5 §3.1.4): pcscd keeps
        every other connection's commands (and resets) off the card until
        SCardEndTransaction. Another program's GET CHALLENGE in the middle of a read
        used to end our secure-messaging session (6988) or turn a right CAN into a
        refused PACE (issue 14). While another program holds its own transaction, pcscd
        makes us wait for it."""
        self._begin_transaction()
        try:
            yield
        finally:
            hcard = self.hcard
            if hcard is not None:
                self._call(lambda: self._end_transaction(hcard))

    def _end_transaction(self, hcard: int) -> None:
        s = _scard()
        hresult = s.SCardEndTransaction(hcard, s.SCARD_LEAVE_CARD)
        if hresult != s.SCARD_S_SUCCESS:
            logger.info("ending the PC/SC transaction on %s: %s", self.reader, _message(hresult))

    def abandon(self) -> None:
        """A transmit of ours is stuck in pcscd (agent.icao.deadline): pcsc-lite's client
        serialises the calls of one context, so ending the transaction, disconnecting
        and even the backend's next connect would wait for it. Those calls go to a
        background thread from now on, and the backend takes a new context."""
        self._abandoned = True
        self.backend._ctx = None

    def _call(self, fn: Callable[[], object]) -> None:
        if not self._abandoned:
            fn()
            return
        threading.Thread(target=fn, name="pcsc-release", daemon=True).start()

    def _begin_transaction(self) -> None:
        s = _scard()
        if self.hcard is None:
            raise ReaderError(f"connection to {self.reader!r} is closed")
        hresult = s.SCardBeginTransaction(self.hcard)
        if _code(hresult) == _code(s.SCARD_W_RESET_CARD):
            # another program reset the card since we connected: nothing of ours is on
            # it yet (the read has not started), so take the new state and go on
            logger.info("the card on %s was reset by another program: reconnecting", self.reader)
            hresult, _protocol = s.SCardReconnect(self.hcard, s.SCARD_SHARE_SHARED, self.protocol,
                                                  s.SCARD_LEAVE_CARD)
            if hresult == s.SCARD_S_SUCCESS:
                hresult = s.SCardBeginTransaction(self.hcard)
        if hresult != s.SCARD_S_SUCCESS:
            raise map_error(hresult, "reserving the card for this read", self.reader)

    #: how long a failed exchange may take to show up as a card removal: readers
    #: without hot-plug interrupts are polled by pcscd (every 400 ms in pcsc-lite)
    REMOVAL_SETTLE = 1.0

    def _classify(self, error: IdAgentError) -> IdAgentError:
        """A failed exchange often means the card (or reader) left, reported as a
        generic transport error: ask pcscd what became of them before blaming the card."""
        s = _scard()
        if self.hcard is None:
            return error
        status, _name, state, _proto, _atr = s.SCardStatus(self.hcard)
        code = _code(status)
        if code == _code(s.SCARD_E_READER_UNAVAILABLE):
            return ReaderGoneError(f"sending a command: reader {self.reader!r} was unplugged")
        if code in (_code(s.SCARD_W_REMOVED_CARD), _code(s.SCARD_E_NO_SMARTCARD)) or (
                status == s.SCARD_S_SUCCESS and not state & SCARD_STATUS_PRESENT):
            return CardRemovedError(f"sending a command on {self.reader!r}: the card left the reader")
        try:
            if wait_for_card(self.reader, present=False, timeout=self.REMOVAL_SETTLE):
                return CardRemovedError(f"sending a command on {self.reader!r}: the card left the reader")
        except NoReaderError:
            return ReaderGoneError(f"sending a command: reader {self.reader!r} was unplugged")
        except ReaderError:
            pass  # pcscd itself failing now: the original error says more
        return error

    def close(self) -> None:
        if self.hcard is None:
            return
        s = _scard()
        how = s.SCARD_RESET_CARD if self.backend.disposition == "reset" else s.SCARD_LEAVE_CARD
        hcard, self.hcard = self.hcard, None
        self._call(lambda: s.SCardDisconnect(hcard, how))


def wait_for_card(reader: str, present: bool = True, timeout: float = 10.0) -> bool:
    """Block (in SCardGetStatusChange, not a sleep loop) until pcscd reports a card in
    ``reader`` (or no card, with ``present=False``). False on timeout. For tests and the
    demo: vpcd's reader notices a virtual card only at its next presence poll."""
    s = _scard()
    hresult, ctx = s.SCardEstablishContext(s.SCARD_SCOPE_USER)
    if hresult != s.SCARD_S_SUCCESS:
        raise map_error(hresult, "connecting to pcscd")
    try:
        deadline = time.monotonic() + timeout
        state = s.SCARD_STATE_UNAWARE
        while True:
            remaining = deadline - time.monotonic()
            hresult, result = s.SCardGetStatusChange(ctx, max(0, int(remaining * 1000)), [(reader, state)])
            if _code(hresult) == _code(s.SCARD_E_TIMEOUT) or remaining <= 0:
                return False
            if hresult != s.SCARD_S_SUCCESS:
                raise map_error(hresult, "waiting for a card", reader)
            _name, event_state, _atr = result[0]
            if bool(event_state & s.SCARD_STATE_PRESENT) == present:
                return True
            state = event_state & ~s.SCARD_STATE_CHANGED
    finally:
        s.SCardReleaseContext(ctx)


def reader_names() -> list[str]:
    """Every reader pcscd lists now (no include/exclude filtering)."""
    backend = PcscBackend()
    try:
        return [info.name for info in backend.list_readers()]
    finally:
        backend.close()


def pcscd_answers() -> bool:
    """True when a pcscd accepts a PC/SC context right now."""
    try:
        s = _scard()
    except PcscUnavailableError:
        return False
    hresult, ctx = s.SCardEstablishContext(s.SCARD_SCOPE_USER)
    if hresult != s.SCARD_S_SUCCESS:
        return False
    s.SCardReleaseContext(ctx)
    return True


def pcscd_status() -> tuple[bool, str]:
    """For ``idagent doctor``: is the PC/SC daemon there, and if not, how to fix it."""
    try:
        s = _scard()
    except PcscUnavailableError as exc:
        return False, f"{exc.message}; {exc.hint}"
    socket_there = os.path.exists(PCSCD_SOCKET)
    hresult, ctx = s.SCardEstablishContext(s.SCARD_SCOPE_USER)
    if hresult != s.SCARD_S_SUCCESS:
        if not socket_there:
            return False, f"pcscd is not running (no socket {PCSCD_SOCKET}); {PCSCD_FIX}"
        return False, (f"pcscd socket {PCSCD_SOCKET} exists but the daemon does not answer "
                       f"({_message(hresult)}); restart it: sudo systemctl restart pcscd")
    try:
        hresult, names = s.SCardListReaders(ctx, [])
        count = len(names) if hresult == s.SCARD_S_SUCCESS else 0
    finally:
        s.SCardReleaseContext(ctx)
    return True, f"pcscd is running ({count} reader(s) attached)"
