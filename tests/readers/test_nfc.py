"""The nfcpy backend against a stand-in frontend at nfcpy's tag layer: tags are real
``nfc.tag.tt4.Type4Tag`` objects whose ISO-DEP link (``_dep``) talks to one of our
virtual cards, so nfcpy's own transceive/is_present code and exceptions are used.
No device is needed (issue 2 item 6)."""

from __future__ import annotations

import errno
import threading
import time
from typing import Any

import nfc.clf
import nfc.tag.tt4
import pytest

from agent.errors import CardRemovedError, NoCardError, NoReaderError
from agent.readers.apdu import SW, ApduChannel, Command, Ins
from agent.readers.base import EventKind
from agent.readers.errors import ReaderGoneError
from agent.readers.nfc import NfcBackend
from agent.sim.card import VirtualCard

from .cards import SMALL, TEST_AID, BlockingCard, make_card, pull_mid_command


class FakeIsoDep:
    """Where nfcpy's IsoDepInitiator would frame blocks for the radio."""

    def __init__(self, field: FakeField) -> None:
        self.field = field

    def exchange(self, command: bytes | None, timeout: float | None = None) -> bytearray | None:
        card = self.field.card
        if self.field.unplugged:
            raise OSError(errno.ENODEV, "No such device")
        if card is None:
            raise nfc.clf.TimeoutError("no answer from the card")
        if command is None:  # presence check (R(NAK) in nfcpy)
            return None
        answer = card.process(bytes(command))
        if self.field.card is not card:  # pulled away while it was answering
            raise nfc.clf.TimeoutError("no answer from the card")
        return bytearray(answer)


class FakeField:
    """The RF field of the stand-in reader: which card lies on it."""

    def __init__(self) -> None:
        self.card: VirtualCard | None = None
        self.unplugged = False


class FakeFrontend:
    """Stands in for nfc.ContactlessFrontend: connect(rdwr=..., terminate=...)."""

    def __init__(self, field: FakeField) -> None:
        self.field = field
        self.closed = False

    def __str__(self) -> str:
        return "Sony RC-S380/P (stand-in) on usb:054c:06c1"

    def connect(self, rdwr: dict[str, Any], terminate: Any) -> Any:
        assert "106A" in rdwr["targets"]
        while True:
            if self.field.unplugged:
                raise OSError(errno.ENODEV, "No such device")
            if self.field.card is not None:
                self.field.card.power_on()
                tag = nfc.tag.tt4.Type4Tag(self, None)
                tag._nfcid = bytearray(b"\x08\x01\x02\x03")
                tag._dep = FakeIsoDep(self.field)
                if not rdwr["on-connect"](tag):
                    return tag
            if terminate():
                return None
            time.sleep(0.01)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def field() -> FakeField:
    return FakeField()


@pytest.fixture
def backend(field: FakeField) -> NfcBackend:
    def factory(path: str) -> FakeFrontend:
        if field.unplugged:
            raise OSError(errno.ENODEV, f"no device at {path}")
        return FakeFrontend(field)

    return NfcBackend("usb:054c:06c1", poll_interval=0.02, frontend_factory=factory, reopen_interval=0.05)


READER = "nfc:usb:054c:06c1"


def test_reads_through_nfcpy_type4tag(field: FakeField, backend: NfcBackend) -> None:
    field.card = make_card()
    [info] = backend.list_readers()
    assert (info.name, info.card_present, info.backend) == (READER, True, "nfc")
    assert "RC-S380" in info.extra["device"]
    ch = ApduChannel(backend.connect(READER))
    assert not ch.extended_length  # nfcpy does not keep the ATS: short APDUs unless configured "on"
    assert ch.send(Command(0, Ins.SELECT, 4, 0x0C, TEST_AID)).sw == SW.OK
    ch.send(Command(0, Ins.SELECT, 2, 0x0C, b"\x01\x01"))
    assert ch.send(Command(0, Ins.READ_BINARY, 0, 0, le=256)).data == SMALL[:256]


def test_presence_events(field: FakeField, backend: NfcBackend) -> None:
    assert [(e.kind, e.reader) for e in backend.wait_for_events(0)] == [(EventKind.READER_ATTACHED, READER)]
    threading.Timer(0.05, lambda: setattr(field, "card", make_card())).start()
    events = backend.wait_for_events(5)
    assert [(e.kind, e.reader) for e in events] == [(EventKind.CARD_INSERTED, READER)]
    field.card = None
    assert [e.kind for e in backend.wait_for_events(5)] == [EventKind.CARD_REMOVED]
    started = time.monotonic()
    assert backend.wait_for_events(0.2) == []
    assert time.monotonic() - started >= 0.19


def test_card_removed_between_commands(field: FakeField, backend: NfcBackend) -> None:
    field.card = make_card()
    conn = backend.connect(READER)
    assert conn.transmit(bytes.fromhex("00A4000C")) == b"\x90\x00"
    field.card = None
    with pytest.raises(CardRemovedError):
        conn.transmit(bytes.fromhex("00A4000C"))
    with pytest.raises(NoCardError):
        backend.connect(READER)


def test_card_removed_mid_command(field: FakeField, backend: NfcBackend) -> None:
    card = BlockingCard()
    field.card = card
    conn = backend.connect(READER)
    errors = pull_mid_command(conn, card, lambda: setattr(field, "card", None))
    assert len(errors) == 1 and type(errors[0]) is CardRemovedError


def test_reader_unplugged(field: FakeField, backend: NfcBackend) -> None:
    field.card = make_card()
    backend.wait_for_events(0)
    conn = backend.connect(READER)
    field.unplugged = True
    with pytest.raises(ReaderGoneError):
        conn.transmit(bytes.fromhex("00A4000C"))
    assert backend.list_readers() == []
    with pytest.raises(NoReaderError, match="readers: none"):
        backend.connect(READER)
    assert [e.kind for e in backend.wait_for_events(1)] == [EventKind.CARD_REMOVED, EventKind.READER_DETACHED]
    field.unplugged = False  # plugged back in: reopened on the next look
    assert [e.kind for e in backend.wait_for_events(1)] == [EventKind.READER_ATTACHED, EventKind.CARD_INSERTED]


def test_non_iso_dep_tag_is_not_a_card_we_can_read(field: FakeField, backend: NfcBackend) -> None:
    class Type2Tag:
        type = "Type2Tag"
        is_present = True

    def connect(rdwr: dict[str, Any], terminate: Any) -> Any:
        return Type2Tag()

    backend._frontend()
    backend._clf.connect = connect  # type: ignore[union-attr]
    with pytest.raises(NoCardError, match="not an ISO 14443-4 card"):
        backend.connect(READER)


def test_missing_nfcpy_device_means_no_reader() -> None:
    def factory(path: str) -> Any:
        raise OSError(errno.ENODEV, f"no reader found on {path}")

    opened: list[str] = []

    def counting(path: str) -> Any:
        opened.append(path)
        return factory(path)

    backend = NfcBackend("usb", frontend_factory=counting, reopen_interval=60)
    assert backend.list_readers() == []
    assert backend.list_readers() == []
    assert opened == ["usb"]  # no USB scan on every poll while no device is there
    assert backend.wait_for_events(0) == []
    with pytest.raises(NoReaderError):
        backend.connect("nfc:usb")


def test_import_does_not_load_nfcpy() -> None:
    import subprocess
    import sys

    code = "import sys, agent.readers.nfc, agent.readers.registry; print('nfc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"


def test_a_read_owns_the_card(field: FakeField, backend: NfcBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    """nfcpy's counterpart of a PC/SC transaction (issue 14 item 3): while one
    connection holds the card for a read, the presence poll sends nothing to it and
    another connection's command waits until the read ends."""
    field.card = make_card()
    backend.wait_for_events(0)
    sent: list[bytes | None] = []  # every frame the card got: None is nfcpy's presence check
    real_exchange = FakeIsoDep.exchange

    def exchange(self: FakeIsoDep, command: bytes | None, timeout: float | None = None) -> bytearray | None:
        sent.append(None if command is None else bytes(command))
        return real_exchange(self, command, timeout)

    reading, other = backend.connect(READER), backend.connect(READER)
    monkeypatch.setattr(FakeIsoDep, "exchange", exchange)
    answered = threading.Event()

    def other_program() -> None:
        other.transmit(bytes.fromhex("00A4000C"))
        answered.set()

    with reading.exclusive():
        assert reading.transmit(bytes.fromhex("00A4000C")) == b"\x90\x00"
        thread = threading.Thread(target=other_program)
        thread.start()
        assert backend.wait_for_events(0.1) == []  # the card stays reported, unpoked
        assert not answered.wait(0.2), "another connection's command ran inside the read"
        assert reading.transmit(bytes.fromhex("00A4000C")) == b"\x90\x00"
        assert sent == [bytes.fromhex("00A4000C")] * 2  # only the read's own commands
    thread.join(5)
    assert answered.is_set() and len(sent) == 3
