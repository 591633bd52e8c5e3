"""The real path: pyscard → pcscd → vpcd → our virtual card (issue 2 item 8).

pcscd is started by the ``pcscd`` fixture when none runs (tests/conftest.py); vpcd's
reader notices a card only at its next presence poll, so every wait below is a
blocking SCardGetStatusChange with a timeout, not a sleep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.errors import CardRemovedError, NoCardError, NoReaderError
from agent.readers.apdu import SW, ApduChannel, Command, Ins
from agent.readers.base import EventKind
from agent.readers.pcsc import PcscBackend, pcscd_status, wait_for_card
from agent.readers.registry import open_reader
from agent.sim.card import Chaining
from agent.sim.pcscd import ensure_pcscd

from .cards import SMALL, TEST_AID, BlockingCard, make_card, pull_mid_command

ROOT = Path(__file__).resolve().parents[2]


def read_small(ch: ApduChannel, le: int) -> bytes:
    assert ch.send(Command(0, Ins.SELECT, 4, 0x0C, TEST_AID)).sw == SW.OK
    assert ch.send(Command(0, Ins.SELECT, 2, 0x0C, b"\x01\x01")).sw == SW.OK
    r = ch.send(Command(0, Ins.READ_BINARY, 0, 0, le=le))
    assert r.sw == SW.OK
    return r.data


def test_virtual_reader_lists_the_card_with_its_atr(vpcd_card) -> None:  # type: ignore[no-untyped-def]
    # one slot per test: two tests runs on this machine share the two vpcd slots
    card = make_card()
    reader = vpcd_card(card).reader
    infos = {i.name: i for i in PcscBackend().list_readers()}
    assert {"Virtual PCD 00 00", "Virtual PCD 00 01"} <= set(infos)
    assert infos[reader].card_present
    assert infos[reader].atr == card.power_on()


@pytest.mark.parametrize("chaining", [Chaining.NONE, Chaining.GET_RESPONSE, Chaining.WRONG_LE])
def test_chaining_through_pcscd(vpcd_card, chaining: Chaining) -> None:  # type: ignore[no-untyped-def]
    card = make_card(chaining=chaining, chunk=120)
    reader = vpcd_card(card).reader
    with PcscBackend().connect(reader) as conn:
        assert read_small(ApduChannel(conn), 256) == SMALL[:256]
    sent_ins = [c[1] for c in card.log]
    if chaining is Chaining.GET_RESPONSE:
        assert sent_ins.count(0xC0) == 3  # 120 + 120 + 16
    elif chaining is Chaining.WRONG_LE:
        assert sent_ins == [0xA4, 0xA4, 0xB0]  # SMALL has 256+ bytes left: Le 256 was right
    else:
        assert 0xC0 not in sent_ins


def test_wrong_le_through_pcscd_reissues(vpcd_card) -> None:  # type: ignore[no-untyped-def]
    card = make_card(chaining=Chaining.WRONG_LE)
    reader = vpcd_card(card).reader
    with PcscBackend().connect(reader) as conn:
        ch = ApduChannel(conn)
        read_small(ch, 1)
        end = len(SMALL) - 4
        r = ch.send(Command(0, Ins.READ_BINARY, end >> 8, end & 0xFF, le=256))
    assert (r.sw, r.data) == (SW.OK, b"tail")
    assert card.log[-2:] == [bytes((0, 0xB0, end >> 8, end & 0xFF, 0)), bytes((0, 0xB0, end >> 8, end & 0xFF, 4))]


def test_extended_length_auto_from_the_atr(vpcd_card) -> None:  # type: ignore[no-untyped-def]
    reader = vpcd_card(make_card(extended_length=True)).reader
    with PcscBackend(extended_length="auto").connect(reader) as conn:
        assert conn.extended_length
        assert read_small(ApduChannel(conn), len(SMALL)) == SMALL  # 516 bytes in one extended Le


def test_short_length_card_is_not_sent_extended_apdus(vpcd_card) -> None:  # type: ignore[no-untyped-def]
    reader = vpcd_card(make_card(extended_length=False)).reader
    with PcscBackend(extended_length="auto").connect(reader) as conn:
        assert not conn.extended_length
    with PcscBackend(extended_length="on").connect(reader) as conn:
        assert conn.extended_length  # the config can force it


def test_unknown_reader_and_empty_reader(vpcd_empty_reader: str) -> None:
    backend = PcscBackend()
    with pytest.raises(NoReaderError, match="'No Such Reader'.*Virtual PCD 00 00"):
        backend.connect("No Such Reader")
    with pytest.raises(NoCardError, match=vpcd_empty_reader):
        backend.connect(vpcd_empty_reader)


def test_open_reader_picks_the_only_reader_with_a_card(vpcd_card) -> None:  # type: ignore[no-untyped-def]
    reader = vpcd_card(make_card()).reader
    with open_reader([PcscBackend(include=(reader,))]) as conn:
        assert conn.reader == reader


def test_insert_and_remove_events(vpcd_card) -> None:  # type: ignore[no-untyped-def]
    card = make_card()
    client = vpcd_card(card, inserted=False)
    reader = client.reader
    backend = PcscBackend(include=(reader,))
    assert [(e.kind, e.reader) for e in backend.wait_for_events(0)] == [(EventKind.READER_ATTACHED, reader)]
    client.insert()
    events = collect(backend, EventKind.CARD_INSERTED)
    assert [(e.kind, e.reader, e.atr) for e in events] == [(EventKind.CARD_INSERTED, reader, card.power_on())]
    client.remove()
    events = collect(backend, EventKind.CARD_REMOVED)
    assert [(e.kind, e.reader) for e in events] == [(EventKind.CARD_REMOVED, reader)]
    client.insert()
    assert [e.kind for e in collect(backend, EventKind.CARD_INSERTED)] == [EventKind.CARD_INSERTED]
    started = time.monotonic()
    assert backend.wait_for_events(0.3) == []  # nothing changes: it blocks, then returns empty
    assert time.monotonic() - started >= 0.25


def collect(backend: PcscBackend, kind: EventKind, timeout: float = 10.0) -> list:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = backend.wait_for_events(deadline - time.monotonic())
        if any(e.kind is kind for e in events):
            return events
    raise AssertionError(f"no {kind.value} event within {timeout} s")


def test_card_pulled_mid_command(vpcd_card) -> None:  # type: ignore[no-untyped-def]
    card = BlockingCard()
    client = vpcd_card(card)
    conn = PcscBackend().connect(client.reader)
    # the socket goes while the card is still "thinking"
    errors = pull_mid_command(conn, card, lambda: client.remove(timeout=0), timeout=10)
    assert len(errors) == 1 and isinstance(errors[0], CardRemovedError), errors
    with pytest.raises(CardRemovedError):
        conn.transmit(bytes.fromhex("00B0000001"))
    conn.close()
    assert wait_for_card(client.reader, present=False, timeout=10)


def test_nested_ensure_pcscd_leaves_the_daemon_running(pcscd) -> None:  # type: ignore[no-untyped-def]
    with ensure_pcscd() as inner:
        assert pcscd_status()[0]
        assert inner.pid == pcscd.pid
    ok, message = pcscd_status()
    assert ok and "reader" in message


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def test_cli_readers_json_lists_the_virtual_card(vpcd_card) -> None:  # type: ignore[no-untyped-def]
    reader = vpcd_card(make_card()).reader
    done = run_cli("readers", "--json", "--backend", "pcsc")
    assert done.returncode == 0, done.stderr
    readers = {r["name"]: r for r in json.loads(done.stdout)["readers"]}
    assert readers[reader]["card_present"] is True
    assert readers[reader]["atr"] == make_card().power_on().hex().upper()


def test_pcscd_not_running_is_a_typed_error(tmp_path: Path) -> None:
    """pcsc-lite's client library takes its socket path from PCSCLITE_CSOCK_NAME: point
    it where no daemon is, without touching the pcscd other tests use."""
    env = {"PCSCLITE_CSOCK_NAME": str(tmp_path / "no-pcscd.comm")}
    done = run_cli("readers", "--json", "--backend", "pcsc", env=env)
    assert done.returncode != 0
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "pcscd_down" and "pcscd" in error["hint"]
    probe = subprocess.run([sys.executable, "-c", "from agent.readers.pcsc import pcscd_status; print(pcscd_status())"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, **env})
    assert "(False, " in probe.stdout and "systemctl start pcscd" in probe.stdout


def test_no_delayed_ack_stall_per_command(vpcd_card, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """vpcd sends length and payload separately; without TCP_QUICKACK on the card side
    every APDU waited ~40 ms for a delayed ACK (measured: median 44 ms, now < 1 ms;
    bench/bench_readers.py prints the round trip). Judged by structure, not by time:
    the card side turns quick ACKs on before every read from vpcd (Linux clears the
    option again after a while, so once per connection would not do)."""
    import socket

    from agent.sim import vpcd

    if not hasattr(socket, "TCP_QUICKACK"):
        pytest.skip("no TCP_QUICKACK on this platform")
    acks: list[int] = []
    original = vpcd._quickack

    def counting(sock: socket.socket) -> None:
        original(sock)
        acks.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK))

    reader = vpcd_card(make_card()).reader
    with PcscBackend().connect(reader) as conn:
        ch = ApduChannel(conn)
        read_small(ch, 1)
        monkeypatch.setattr(vpcd, "_quickack", counting)
        for _ in range(40):
            ch.send(Command(0, Ins.READ_BINARY, 0, 0, le=256))
    # each command is two reads (length, then payload), each after a quick ACK that took
    assert len(acks) >= 2 * 40 and all(acks), acks
