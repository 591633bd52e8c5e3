"""Recording any connection to a fixture and playing it back (issue 2 item 6)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.errors import NoReaderError, ParseError
from agent.readers.apdu import ApduChannel, Command, Ins
from agent.readers.base import CardConnection, EventKind
from agent.readers.replay import (
    FORMAT,
    RecordingConnection,
    RecordingRandom,
    ReplayBackend,
    ReplayConnection,
    ReplayMismatchError,
    ReplayRandom,
    load_fixture,
    save,
)
from agent.readers.sim import SimBackend

from .cards import SMALL, TEST_AID, make_card


def terminal_session(conn: CardConnection, rng: Callable[[int], bytes]) -> bytes:
    """A stand-in for protocol code: its commands depend on the injected randomness."""
    ch = ApduChannel(conn)
    ch.send(Command(0, Ins.SELECT, 4, 0x0C, TEST_AID))
    ch.send(Command(0, Ins.SELECT, 2, 0x0C, b"\x01\x01"))
    offset = rng(1)[0]
    return ch.send(Command(0, Ins.READ_BINARY, 0, offset, le=rng(2)[1] % 64 + 1)).data


def record(tmp_path: Path) -> tuple[Path, bytes]:
    sim = SimBackend()
    sim.insert("Sim Reader 00", make_card())
    conn = RecordingConnection(sim.connect("Sim Reader 00"))
    rng = RecordingRandom()
    result = terminal_session(conn, rng)
    path = tmp_path / "session.json"
    save(path, {"profile": "fs-test", "access": "none"}, conn, rng)
    return path, result


def test_record_then_replay_gives_the_same_result(tmp_path: Path) -> None:
    path, recorded = record(tmp_path)
    doc = json.loads(path.read_text())
    assert doc["format"] == FORMAT and doc["meta"]["profile"] == "fs-test" and "tool" in doc["meta"]
    assert len(doc["exchanges"]) == 3 and len(doc["random"]) == 2
    fixture = load_fixture(path)
    conn = ReplayConnection(fixture)
    assert terminal_session(conn, ReplayRandom(fixture.random)) == recorded
    conn.assert_finished()
    assert recorded and recorded in SMALL


def test_fixture_meta_date_comes_from_the_injected_clock() -> None:
    sim = SimBackend()
    sim.insert("Sim Reader 00", make_card())
    conn = RecordingConnection(sim.connect("Sim Reader 00"))
    fixed = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert conn.fixture({}, now=lambda: fixed).meta["date"] == "2026-01-02T03:04:05+00:00"


def test_mismatched_command_shows_both_sides_and_index(tmp_path: Path) -> None:
    path, _ = record(tmp_path)
    fixture = load_fixture(path)
    conn = ReplayConnection(fixture)
    conn.transmit(fixture.exchanges[0][0])
    with pytest.raises(ReplayMismatchError) as info:
        conn.transmit(bytes.fromhex("00A4020C020102"))
    err = info.value
    assert err.index == 1
    assert "00A4020C020101" in err.message and "00A4020C020102" in err.message
    assert err.expected == fixture.exchanges[1][0]


def test_running_past_the_end_fails_loudly(tmp_path: Path) -> None:
    path, _ = record(tmp_path)
    fixture = load_fixture(path)
    conn = ReplayConnection(fixture)
    for command, response in fixture.exchanges:
        assert conn.transmit(command) == response
    with pytest.raises(ReplayMismatchError, match="beyond the end.*index 3"):
        conn.transmit(fixture.exchanges[0][0])


def test_leftover_exchanges_are_reported(tmp_path: Path) -> None:
    path, _ = record(tmp_path)
    conn = ReplayConnection(path)
    with pytest.raises(ReplayMismatchError, match="left over at index 0"):
        conn.assert_finished()


def test_replay_random_checks_length_and_exhaustion() -> None:
    rng = ReplayRandom([b"\x01\x02", b"\x03"])
    assert rng(2) == b"\x01\x02"
    with pytest.raises(ReplayMismatchError, match="4 bytes, recording has 1"):
        rng(4)
    assert rng(1) == b"\x03"
    with pytest.raises(ReplayMismatchError, match="beyond the 2 recorded"):
        rng(1)


@pytest.mark.parametrize(("content", "problem"), [
    ("{not json", "not JSON"),
    ("[]", "top level must be a JSON object"),
    ('{"format": "other/1", "exchanges": []}', "'format' is 'other/1'"),
    ('{"format": "idagent-apdu/1"}', "'exchanges' must be a list"),
    ('{"format": "idagent-apdu/1", "exchanges": [{"command": "00A4"}]}', r"exchanges\[0\] must be an object"),
    ('{"format": "idagent-apdu/1", "exchanges": [{"command": "zz", "response": "9000"}]}',
     r"exchanges\[0\].command is not valid hex"),
    ('{"format": "idagent-apdu/1", "exchanges": [{"command": "00A4000C", "response": "90"}]}',
     r"exchanges\[0\].response is shorter than the 2-byte status word"),
    ('{"format": "idagent-apdu/1", "exchanges": [{"command": "00", "response": "9000"}]}',
     r"exchanges\[0\].command is shorter"),
    ('{"format": "idagent-apdu/1", "exchanges": [], "random": ["0g"]}', r"random\[0\] is not valid hex"),
    ('{"format": "idagent-apdu/1", "exchanges": [], "meta": []}', "'meta' must be an object"),
    ('{"format": "idagent-apdu/1", "exchanges": [], "extended_length": "yes"}', "'extended_length' must be"),
])
def test_malformed_fixture_names_file_and_problem(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ParseError, match=problem) as info:
        load_fixture(path)
    assert str(path) in info.value.message


def test_missing_fixture_file_is_a_parse_error(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="cannot read fixture"):
        load_fixture(tmp_path / "absent.json")


def test_replay_backend_lists_one_reader_with_a_card(tmp_path: Path) -> None:
    path, recorded = record(tmp_path)
    backend = ReplayBackend(path)
    [info] = backend.list_readers()
    assert (info.name, info.card_present, info.backend) == ("replay:session.json", True, "replay")
    events = backend.wait_for_events(0)
    assert [e.kind for e in events] == [EventKind.READER_ATTACHED, EventKind.CARD_INSERTED]
    assert backend.wait_for_events(0.01) == []
    with pytest.raises(NoReaderError, match="replay:session.json"):
        backend.connect("Virtual PCD 00 00")
    assert terminal_session(backend.connect(info.name), backend.random()) == recorded
