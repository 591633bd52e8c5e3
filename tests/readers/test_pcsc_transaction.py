"""Another program on the same reader during a read (issue 14 item 3), through the
real stack: our read and a second PC/SC program (its own process and pcscd connection)
sending GET CHALLENGE all the time, on the virtual chip behind vpcd and pcscd.

Without a transaction, the other program's plain command lands between ours: the chip
ends secure messaging (9303-11 §9.8.4) and the read fails with 6988, or PACE is
refused (6300) with the right CAN. With SCardBeginTransaction held for the whole read,
pcscd keeps the other program's commands off the card until the read ends."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.icao.keys import CanKey
from agent.icao.read import read_chip
from agent.icao.trust import TrustStore
from agent.readers.apdu import ApduChannel
from agent.readers.pcsc import PcscBackend
from agent.sim.profile import load_profile, virtual_chip

ROOT = Path(__file__).resolve().parents[2]
OTHER = Path(__file__).with_name("other_pcsc_program.py")
TODAY = dt.date(2026, 1, 15)


def test_read_holds_the_card_against_another_program(vpcd_card: Callable[..., object], tmp_path: Path) -> None:
    pytest.importorskip("smartcard")
    client = vpcd_card(virtual_chip(load_profile("nguyen-van-an")))
    reader = client.reader  # type: ignore[attr-defined]
    stop = tmp_path / "stop"
    other = subprocess.Popen([sys.executable, str(OTHER), reader, str(stop)], stdout=subprocess.PIPE, text=True)
    held: list[list[float]] = []  # [start, end] of each transaction we held (wall clock)
    try:
        assert other.stdout is not None
        assert json.loads(other.stdout.readline()).get("ready")
        assert json.loads(other.stdout.readline()).get("working")  # it has had an answer
        store = TrustStore.load(ROOT / "fixtures" / "pki" / "store")
        backend = PcscBackend()
        try:
            with backend.connect(reader) as conn:
                begin, end = conn._begin_transaction, conn._end_transaction

                def begin_transaction() -> None:
                    begin()
                    held.append([time.time(), float("inf")])  # once pcscd gave it to us

                def end_transaction(hcard: int) -> None:
                    held[-1][1] = time.time()  # before pcscd lets it go
                    end(hcard)

                conn._begin_transaction = begin_transaction  # type: ignore[method-assign]
                conn._end_transaction = end_transaction  # type: ignore[method-assign]
                read = read_chip(ApduChannel(conn), CanKey("012345"), trust=store, today=TODAY)
        finally:
            backend.close()
    finally:
        stop.touch()  # it answers once more after this, then reports
        out, _ = other.communicate(timeout=30)
    report = json.loads(out.strip().splitlines()[-1])
    answers = report["answers"]
    assert read.verified, read.verification
    assert read.read_again is None  # nothing broke: no second read was needed
    assert held and all(end > start for start, end in held), held
    # judged by order, not by time: an exchange of the other program sent while we held
    # the card and answered before we let it go ran inside our read
    inside = [a for a in answers for start, end in held if a[0] > start and a[1] < end]
    before = [a for a in answers if a[1] < held[0][0]]
    after = [a for a in answers if a[0] > held[-1][1]]
    assert before and after, report
    assert inside == [], f"{len(inside)} foreign GET CHALLENGEs ran inside the read"


def test_silent_card_ends_the_read_at_the_apdu_deadline(vpcd_card: Callable[..., object]) -> None:
    """Issue 14 item 10 through pcscd: the card stops answering mid-read. The read
    fails after [card] apdu_timeout (here 1 s) instead of waiting for the card; ending
    the transaction and disconnecting do not wait for the stuck command either (the
    PC/SC client serialises a context's calls: they go to a background thread)."""
    import threading

    from agent.icao.deadline import ReaderTimeoutError

    pytest.importorskip("smartcard")
    chip = virtual_chip(load_profile("nguyen-van-an"))
    inner, count, release = chip.process, [0], threading.Event()

    def process(apdu: bytes) -> bytes:
        count[0] += 1
        if count[0] == 30:
            release.wait(60)
        return inner(apdu)

    chip.process = process  # type: ignore[method-assign]
    reader = vpcd_card(chip).reader  # type: ignore[attr-defined]
    outcome: dict[str, object] = {}

    def read() -> None:
        backend = PcscBackend()
        started = time.monotonic()
        try:
            with backend.connect(reader) as conn:
                read_chip(ApduChannel(conn), CanKey("012345"), today=TODAY, apdu_timeout=1.0, read_timeout=30)
        except Exception as exc:  # noqa: BLE001 - judged below
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=read, daemon=True)
    try:
        thread.start()
        # judged by order, not by time: the read (with the end of the transaction and
        # the disconnect) is over while the silent command is still held, which it is
        # for 60 s; the 45 s only bound the wait (bench/bench_silent_reader.py has the times)
        thread.join(45)
        assert not thread.is_alive(), "the read waited for the silent card"
    finally:
        release.set()
    assert isinstance(outcome.get("error"), ReaderTimeoutError), outcome
    assert float(outcome["seconds"]) >= 1.0  # (a lower bound: the deadline was not cut short)
