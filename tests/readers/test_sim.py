"""The in-process backend: slots, events, removal and detachment mid-read."""

from __future__ import annotations

import threading

import pytest

from agent.errors import CardRemovedError, NoCardError, NoReaderError, ReaderError
from agent.readers.apdu import ApduChannel, Command, Ins
from agent.readers.base import EventKind
from agent.readers.errors import ReaderGoneError, ResponseTooShortError
from agent.readers.sim import SimBackend

from .cards import BlockingCard, ShortAnswerCard, make_card, pull_mid_command

R0, R1 = "Sim Reader 00", "Sim Reader 01"


def kinds(events):  # type: ignore[no-untyped-def]
    return [(e.kind, e.reader) for e in events]


def test_first_events_report_what_is_there_then_changes() -> None:
    sim = SimBackend((R0, R1))
    sim.insert(R1, make_card())
    assert kinds(sim.wait_for_events(1)) == [(EventKind.READER_ATTACHED, R0), (EventKind.READER_ATTACHED, R1),
                                             (EventKind.CARD_INSERTED, R1)]
    assert sim.wait_for_events(0.05) == []
    sim.insert(R0, make_card())
    sim.remove(R1)
    assert kinds(sim.wait_for_events(1)) == [(EventKind.CARD_REMOVED, R1), (EventKind.CARD_INSERTED, R0)]


def test_remove_and_reinsert_between_two_looks_is_seen() -> None:
    sim = SimBackend((R0,))
    sim.insert(R0, make_card())
    sim.wait_for_events(0)
    sim.remove(R0)
    sim.insert(R0, make_card())
    assert kinds(sim.wait_for_events(0.5)) == [(EventKind.CARD_REMOVED, R0), (EventKind.CARD_INSERTED, R0)]


def test_wait_wakes_on_insert_from_another_thread() -> None:
    sim = SimBackend((R0,))
    sim.wait_for_events(0)
    timer = threading.Timer(0.05, lambda: sim.insert(R0, make_card()))
    timer.start()
    events = sim.wait_for_events(5)
    timer.join()
    assert kinds(events) == [(EventKind.CARD_INSERTED, R0)]
    assert events[0].atr.startswith(b"\x3B")


def test_attach_detach_events() -> None:
    sim = SimBackend(())
    assert sim.wait_for_events(0) == []
    sim.attach(R0)
    sim.insert(R0, make_card())
    assert kinds(sim.wait_for_events(1)) == [(EventKind.READER_ATTACHED, R0), (EventKind.CARD_INSERTED, R0)]
    sim.detach(R0)
    assert kinds(sim.wait_for_events(1)) == [(EventKind.CARD_REMOVED, R0), (EventKind.READER_DETACHED, R0)]


def test_list_and_connect_errors_name_the_readers() -> None:
    sim = SimBackend((R0, R1))
    sim.insert(R0, make_card())
    infos = sim.list_readers()
    assert [(i.name, i.card_present, i.backend) for i in infos] == [(R0, True, "sim"), (R1, False, "sim")]
    with pytest.raises(NoReaderError, match="'Nope'.*Sim Reader 00, Sim Reader 01"):
        sim.connect("Nope")
    with pytest.raises(NoCardError, match="Sim Reader 01"):
        sim.connect(R1)
    with pytest.raises(ReaderError, match="already holds a card"):
        sim.insert(R0, make_card())


def test_removed_card_makes_next_transmit_fail() -> None:
    sim = SimBackend((R0,))
    sim.insert(R0, make_card())
    conn = sim.connect(R0)
    assert conn.transmit(bytes.fromhex("00A4000C")) == b"\x90\x00"
    sim.remove(R0)
    with pytest.raises(CardRemovedError):
        conn.transmit(bytes.fromhex("00A4000C"))
    sim.insert(R0, make_card())  # a new card does not revive the old connection
    with pytest.raises(CardRemovedError):
        conn.transmit(bytes.fromhex("00A4000C"))
    conn.close()
    conn.close()  # twice is fine


@pytest.mark.parametrize("pull", ["remove", "detach"])
def test_card_or_reader_pulled_mid_command(pull: str) -> None:
    sim = SimBackend((R0,))
    card = BlockingCard()
    sim.insert(R0, card)
    conn = sim.connect(R0)
    errors = pull_mid_command(conn, card, lambda: getattr(sim, pull)(R0))
    expected = ReaderGoneError if pull == "detach" else CardRemovedError
    assert len(errors) == 1 and type(errors[0]) is expected
    assert errors[0].hint  # a one-line instruction for the clerk


def test_response_shorter_than_two_bytes_is_a_typed_error() -> None:
    sim = SimBackend((R0,))
    sim.insert(R0, ShortAnswerCard())
    conn = sim.connect(R0)
    with pytest.raises(ResponseTooShortError, match="1-byte response"):
        conn.transmit(bytes.fromhex("00A4000C"))


@pytest.mark.parametrize(("option", "card_ext", "expected"),
                         [("auto", True, True), ("auto", False, False), ("on", False, True), ("off", True, False)])
def test_extended_length_option(option: str, card_ext: bool, expected: bool) -> None:
    sim = SimBackend((R0,), extended_length=option)
    sim.insert(R0, make_card(extended_length=card_ext))
    assert sim.connect(R0).extended_length is expected


def test_bad_extended_length_option_is_a_config_error() -> None:
    from agent.errors import ConfigError

    with pytest.raises(ConfigError, match="extended_length"):
        SimBackend((R0,), extended_length="maybe")


def test_close_resets_the_card() -> None:
    sim = SimBackend((R0,))
    card = make_card()
    sim.insert(R0, card)
    ch = ApduChannel(sim.connect(R0))
    ch.send(Command(0, Ins.SELECT, 2, 0x0C, b"\x01\x1C"))
    assert card.current_ef is not None
    ch.connection.close()  # type: ignore[attr-defined]
    assert card.current_ef is None
