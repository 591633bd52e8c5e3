"""PC/SC backend logic against a stand-in for pyscard's ``smartcard.scard`` module:
reader hot-plug through the PnP pseudo-reader (vpcd's readers never come and go),
error mapping, and a reader unplugged mid-command."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from smartcard import scard as real

from agent.errors import CardRemovedError, NoCardError, NoReaderError, PcscUnavailableError, ReaderError
from agent.readers import pcsc
from agent.readers.base import EventKind
from agent.readers.errors import ReaderGoneError

ATR = bytes.fromhex("3B8001" "81")


class FakeScard:
    """Behaves like pcsc-lite seen through pyscard, for a few readers held in a dict."""

    def __init__(self) -> None:
        for name in dir(real):
            if name.startswith("SCARD_"):
                setattr(self, name, getattr(real, name))
        self.cond = threading.Condition()
        self.readers: dict[str, list[Any]] = {}  # name -> [present, atr, event counter]
        self.blocking_calls = 0
        #: SCardGetStatusChange calls that ended because their timeout ran out
        self.timeouts = 0
        self.service = True
        self.transmit_result: tuple[int, list[int]] = (real.SCARD_S_SUCCESS, [0x90, 0x00])
        self.status_result: int = real.SCARD_S_SUCCESS
        self.epoch = 1  # bumped by restart(): contexts of an older pcscd are dead

    # -- test controls --
    def plug(self, name: str, present: bool = False) -> None:
        with self.cond:
            self.readers[name] = [present, ATR if present else b"", 0]
            self.cond.notify_all()

    def restart(self) -> None:
        """pcscd restarted: old contexts fail with NO_SERVICE, yet the client library's
        SCardIsValidContext still calls them valid (it only checks its own table)."""
        with self.cond:
            self.epoch += 1
            self.cond.notify_all()

    def _dead(self, ctx: int) -> bool:
        return ctx // 1000 != self.epoch

    def unplug(self, name: str) -> None:
        with self.cond:
            del self.readers[name]
            self.cond.notify_all()

    def card(self, name: str, present: bool) -> None:
        with self.cond:
            self.readers[name] = [present, ATR if present else b"", self.readers[name][2] + 1]
            self.cond.notify_all()

    # -- the scard API --
    def SCardEstablishContext(self, scope: int) -> tuple[int, int]:  # noqa: N802
        return (real.SCARD_S_SUCCESS, self.epoch * 1000 + 1) if self.service else (real.SCARD_E_NO_SERVICE, 0)

    def SCardIsValidContext(self, ctx: int) -> int:  # noqa: N802
        return real.SCARD_S_SUCCESS if self.service else real.SCARD_E_INVALID_HANDLE

    def SCardReleaseContext(self, ctx: int) -> int:  # noqa: N802
        return real.SCARD_S_SUCCESS

    def SCardCancel(self, ctx: int) -> int:  # noqa: N802
        return real.SCARD_S_SUCCESS

    def SCardGetErrorMessage(self, code: int) -> str:  # noqa: N802
        return real.SCardGetErrorMessage(code)

    def SCardListReaders(self, ctx: int, groups: list[str]) -> tuple[int, list[str]]:  # noqa: N802
        if not self.service or self._dead(ctx):
            return real.SCARD_E_NO_SERVICE, []
        with self.cond:
            names = list(self.readers)
        return (real.SCARD_S_SUCCESS, names) if names else (real.SCARD_E_NO_READERS_AVAILABLE, [])

    def _event_state(self, name: str) -> int:
        present, _atr, counter = self.readers[name]
        return (real.SCARD_STATE_PRESENT if present else real.SCARD_STATE_EMPTY) | (counter << 16)

    def SCardGetStatusChange(self, ctx: int, timeout_ms: int, states: list[tuple[str, int]]):  # noqa: N802
        if not self.service or self._dead(ctx):
            return real.SCARD_E_NO_SERVICE, []
        deadline = time.monotonic() + timeout_ms / 1000
        if timeout_ms:
            self.blocking_calls += 1
        with self.cond:
            while True:
                out: list[tuple[str, int, list[int]]] = []
                changed = False
                for name, current in states:
                    if name == pcsc.PNP_NOTIFICATION:
                        count = len(self.readers)
                        differs = current >> 16 != count
                        changed |= differs
                        out.append((name, (count << 16) | (real.SCARD_STATE_CHANGED if differs else 0), []))
                        continue
                    if name not in self.readers:
                        return real.SCARD_E_UNKNOWN_READER, []
                    event = self._event_state(name)
                    differs = current == real.SCARD_STATE_UNAWARE or event != current
                    changed |= differs
                    flag = real.SCARD_STATE_CHANGED if differs else 0
                    out.append((name, event | flag, list(self.readers[name][1])))
                if changed:
                    return real.SCARD_S_SUCCESS, out
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.cond.wait(remaining):
                    self.timeouts += 1
                    return real.SCARD_E_TIMEOUT, out
                if self._dead(ctx):
                    return real.SCARD_E_NO_SERVICE, []

    def SCardConnect(self, ctx: int, reader: str, share: int, protocols: int):  # noqa: N802
        if self._dead(ctx):
            return real.SCARD_E_NO_SERVICE, 0, 0
        with self.cond:
            if reader not in self.readers:
                return real.SCARD_E_UNKNOWN_READER, 0, 0
            if not self.readers[reader][0]:
                return real.SCARD_E_NO_SMARTCARD, 0, 0
        return real.SCARD_S_SUCCESS, 7, real.SCARD_PROTOCOL_T1

    def SCardStatus(self, hcard: int):  # noqa: N802
        return self.status_result, "r", pcsc.SCARD_STATUS_PRESENT, real.SCARD_PROTOCOL_T1, list(ATR)

    def SCardTransmit(self, hcard: int, protocol: int, apdu: list[int]):  # noqa: N802
        return self.transmit_result

    def SCardDisconnect(self, hcard: int, disposition: int) -> int:  # noqa: N802
        return real.SCARD_S_SUCCESS


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeScard:
    stand_in = FakeScard()
    monkeypatch.setattr(pcsc, "_scard", lambda: stand_in)
    return stand_in


def kinds(events):  # type: ignore[no-untyped-def]
    return [(e.kind, e.reader) for e in events]


def test_readers_appearing_and_disappearing(fake: FakeScard) -> None:
    fake.plug("Reader A")
    backend = pcsc.PcscBackend()
    assert kinds(backend.wait_for_events(0)) == [(EventKind.READER_ATTACHED, "Reader A")]
    threading.Timer(0.05, lambda: fake.plug("Reader B", present=True)).start()
    events = backend.wait_for_events(30)
    # woken by the PnP pseudo-reader, not by a poll: no wait ran out its timeout (a
    # backend not watching PnP would only see Reader B after one)
    assert fake.timeouts == 0
    assert kinds(events) == [(EventKind.READER_ATTACHED, "Reader B"), (EventKind.CARD_INSERTED, "Reader B")]
    assert events[1].atr == ATR
    threading.Timer(0.05, lambda: fake.unplug("Reader B")).start()
    assert kinds(backend.wait_for_events(5)) == [(EventKind.CARD_REMOVED, "Reader B"),
                                                 (EventKind.READER_DETACHED, "Reader B")]
    names = [i.name for i in backend.list_readers()]
    assert names == ["Reader A"]


def test_several_readers_and_a_quick_swap(fake: FakeScard) -> None:
    for name in ("R1", "R2", "R3"):
        fake.plug(name)
    backend = pcsc.PcscBackend(exclude=("R3",))
    assert [e.reader for e in backend.wait_for_events(0)] == ["R1", "R2"]
    fake.card("R2", True)
    fake.card("R2", False)
    fake.card("R2", True)  # out and in again before we looked: the event counter tells
    fake.card("R1", True)
    events = backend.wait_for_events(1)
    assert kinds(events) == [(EventKind.CARD_INSERTED, "R1"), (EventKind.CARD_INSERTED, "R2")]
    fake.card("R2", False)
    fake.card("R2", True)
    assert kinds(backend.wait_for_events(1)) == [(EventKind.CARD_REMOVED, "R2"), (EventKind.CARD_INSERTED, "R2")]


def test_waiting_blocks_instead_of_polling(fake: FakeScard) -> None:
    fake.plug("Reader A", present=True)
    backend = pcsc.PcscBackend()
    backend.wait_for_events(0)
    started = time.monotonic()
    assert backend.wait_for_events(0.3) == []
    assert time.monotonic() - started >= 0.29
    assert fake.blocking_calls == 1


def test_pcscd_stopping_while_waiting_is_typed(fake: FakeScard) -> None:
    fake.plug("Reader A")
    backend = pcsc.PcscBackend()
    backend.wait_for_events(0)
    fake.service = False
    with pytest.raises(PcscUnavailableError):
        backend.wait_for_events(0.1)
    with pytest.raises(PcscUnavailableError):
        backend.list_readers()
    fake.service = True  # the daemon is back: a fresh context is made
    assert [i.name for i in backend.list_readers()] == ["Reader A"]


def test_connect_errors(fake: FakeScard) -> None:
    fake.plug("Reader A")
    backend = pcsc.PcscBackend()
    with pytest.raises(NoReaderError, match="'Reader Z'; readers: Reader A"):
        backend.connect("Reader Z")
    with pytest.raises(NoCardError):
        backend.connect("Reader A")


def test_reader_unplugged_mid_command(fake: FakeScard) -> None:
    fake.plug("Reader A", present=True)
    conn = pcsc.PcscBackend().connect("Reader A")
    assert conn.transmit(b"\x00\xa4\x00\x0c") == b"\x90\x00"
    fake.transmit_result = (real.SCARD_E_NOT_TRANSACTED, [])
    fake.status_result = real.SCARD_E_READER_UNAVAILABLE
    with pytest.raises(ReaderGoneError, match="unplugged"):
        conn.transmit(b"\x00\xa4\x00\x0c")


def test_card_removed_reported_directly(fake: FakeScard) -> None:
    fake.plug("Reader A", present=True)
    conn = pcsc.PcscBackend().connect("Reader A")
    fake.transmit_result = (real.SCARD_W_REMOVED_CARD, [])
    with pytest.raises(CardRemovedError):
        conn.transmit(b"\x00\xa4\x00\x0c")


def test_same_backend_recovers_after_pcscd_restart(fake: FakeScard) -> None:
    """The daemon keeps one PcscBackend for its lifetime: after pcscd restarts, the
    next calls must make a fresh context instead of failing forever."""
    fake.plug("Reader A", present=True)
    backend = pcsc.PcscBackend()
    assert kinds(backend.wait_for_events(0)) == [(EventKind.READER_ATTACHED, "Reader A"),
                                                 (EventKind.CARD_INSERTED, "Reader A")]
    fake.restart()
    assert [i.name for i in backend.list_readers()] == ["Reader A"]
    assert backend.connect("Reader A").transmit(b"\x00\xa4\x00\x0c") == b"\x90\x00"
    fake.restart()
    # the monitor may report the outage once, then it must work again
    try:
        backend.wait_for_events(0.05)
    except PcscUnavailableError:
        pass
    fake.card("Reader A", False)
    assert kinds(backend.wait_for_events(1)) == [(EventKind.CARD_REMOVED, "Reader A")]


@pytest.mark.parametrize(("code", "error"), [
    (real.SCARD_E_NO_SERVICE, PcscUnavailableError),
    (real.SCARD_E_SERVICE_STOPPED, PcscUnavailableError),
    (real.SCARD_W_REMOVED_CARD, CardRemovedError),
    (real.SCARD_W_RESET_CARD, CardRemovedError),
    (real.SCARD_E_NO_SMARTCARD, NoCardError),
    (real.SCARD_E_UNKNOWN_READER, NoReaderError),
    (real.SCARD_E_READER_UNAVAILABLE, ReaderGoneError),
    (real.SCARD_E_SHARING_VIOLATION, pcsc.PcscError),
    (real.SCARD_E_NOT_TRANSACTED, pcsc.PcscError),
])
def test_error_mapping(code: int, error: type[ReaderError]) -> None:
    mapped = pcsc.map_error(code, "doing something", "Reader A", ["Reader A", "Reader B"])
    assert type(mapped) is error
    assert mapped.hint and "doing something" in mapped.message
