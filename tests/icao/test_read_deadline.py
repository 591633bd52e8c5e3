"""The agent's own read deadlines (issue 14 item 10): a reader that stops answering, or
answers too slowly, ends the read within ``[card] apdu_timeout`` / ``read_timeout``
with a typed error (exit 6), instead of blocking it for as long as the reader is
silent. The reader here is the in-process virtual one with a stalling wrapper."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config import Config, ConfigValueError, load_config
from agent.icao.deadline import ReadDeadlineError, ReaderTimeoutError
from agent.icao.keys import CanKey
from agent.icao.read import read_chip
from agent.icao.trust import TrustStore
from agent.readers.apdu import ApduChannel
from agent.readers.base import CardConnection, WrappedConnection
from agent.readers.sim import DEFAULT_READER, SimBackend
from agent.sim.profile import load_profile, virtual_chip

ROOT = Path(__file__).resolve().parents[2]
#: how long a silent command stays unanswered. The tests judge the deadlines by order
#: of events (the read ended while that command was still unanswered; a slow reader's
#: read ended before all its commands were sent), not by how long they took: the
#: figures are in bench/bench_silent_reader.py. Waits of HANG_SECONDS only end a read
#: that never ends; a read that ignored its deadline would wait for STALL_SECONDS.
STALL_SECONDS = 120.0
HANG_SECONDS = 60.0


class Stalling(WrappedConnection):
    """Answers normally until APDU ``silent_at`` (1-based), which never comes back until
    ``release`` is set; every answer takes ``delay`` seconds."""

    def __init__(self, inner: CardConnection, silent_at: int = 0, delay: float = 0.0) -> None:
        super().__init__(inner)
        self.can_stall = True  # unlike the in-process chip it wraps
        self.silent_at = silent_at
        self.delay = delay
        self.count = 0
        self.release = threading.Event()
        #: the silent command came back (only after ``release``, or after STALL_SECONDS)
        self.silent_answered = threading.Event()

    def transmit(self, apdu: bytes) -> bytes:
        self.count += 1
        if self.count == self.silent_at:
            self.release.wait(STALL_SECONDS)
            self.silent_answered.set()
        if self.delay:
            time.sleep(self.delay)
        return self.inner.transmit(apdu)


@pytest.fixture
def backend() -> Iterator[SimBackend]:
    sim = SimBackend(extended_length="auto")
    sim.insert(DEFAULT_READER, virtual_chip(load_profile("nguyen-van-an")))
    yield sim
    sim.close()


def _ends_within(seconds: float, read: Callable[[], Any]) -> tuple[BaseException | None, float]:
    """Run ``read`` on a thread; fail (not hang) when it outlives ``seconds``."""
    box: dict[str, BaseException] = {}
    started = time.monotonic()

    def run() -> None:
        try:
            read()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    elapsed = time.monotonic() - started
    assert not thread.is_alive(), f"the read was still blocked after {seconds} s"
    return box.get("error"), elapsed


def test_silent_reader_fails_the_read_at_the_apdu_deadline(backend: SimBackend) -> None:
    conn = Stalling(backend.connect(DEFAULT_READER), silent_at=20)
    try:
        error, elapsed = _ends_within(HANG_SECONDS, lambda: read_chip(ApduChannel(conn), CanKey("012345"),
                                                                      apdu_timeout=0.5, read_timeout=30))
        # the read ended while the card still had not answered: it did not wait for it
        assert not conn.silent_answered.is_set()
    finally:
        conn.release.set()
    assert isinstance(error, ReaderTimeoutError) and not isinstance(error, ReadDeadlineError)
    assert error.exit_code == 6 and error.hint and "0.5 s" in error.message
    assert elapsed >= 0.5  # and it did wait that long (a lower bound: load cannot break it)


def _clean_read_apdus(backend: SimBackend) -> int:
    conn = Stalling(backend.connect(DEFAULT_READER))
    read_chip(ApduChannel(conn), CanKey("012345"))
    return conn.count


def test_slow_reader_fails_the_read_at_the_read_deadline(backend: SimBackend) -> None:
    # every answer in 30 ms: no command is late, but the ~100 of a read outlast 1 s
    full_read = _clean_read_apdus(backend)
    assert full_read * 0.03 > 2  # (the read could not end in time even on an idle machine)
    conn = Stalling(backend.connect(DEFAULT_READER), delay=0.03)
    error, elapsed = _ends_within(HANG_SECONDS, lambda: read_chip(ApduChannel(conn), CanKey("012345"),
                                                                  apdu_timeout=2, read_timeout=1))
    assert isinstance(error, ReadDeadlineError) and error.code == "read_deadline"
    # cut part-way: fewer commands than a read needs (a deadline checked only at the
    # end would let them all through; a busy machine only sends fewer)
    assert conn.count < full_read
    assert elapsed >= 1


def test_deadlines_leave_a_normal_read_alone(backend: SimBackend) -> None:
    store = TrustStore.load(ROOT / "fixtures" / "pki" / "store")
    read = read_chip(ApduChannel(backend.connect(DEFAULT_READER)), CanKey("012345"), trust=store,
                     apdu_timeout=5, read_timeout=20)
    assert read.verified


def test_the_read_path_takes_the_deadlines_from_the_config(backend: SimBackend) -> None:
    # agent.readpath.ChipReader: the one read path of idagent read, the daemon and the API
    from agent.pipeline import IcaoPipeline

    base = Config.defaults()
    config = dataclasses.replace(base, card=dataclasses.replace(base.card, apdu_timeout=0.4, read_timeout=30))
    conn = Stalling(backend.connect(DEFAULT_READER), silent_at=10)
    try:
        error, _elapsed = _ends_within(HANG_SECONDS, lambda: IcaoPipeline.from_config(config).read(
            conn, CanKey("012345"), lambda *a: None))
        assert not conn.silent_answered.is_set()
    finally:
        conn.release.set()
    # the configured 0.4 s, not the default 5 s, ended it
    assert isinstance(error, ReaderTimeoutError) and "0.4 s" in error.message


def test_config_bounds(tmp_path: Path) -> None:
    path = tmp_path / "idagent.toml"
    path.write_text("[card]\napdu_timeout = 2.5\nread_timeout = 15\n", encoding="utf-8")
    config = load_config(path, env={})
    assert (config.card.apdu_timeout, config.card.read_timeout) == (2.5, 15)
    path.write_text("[card]\napdu_timeout = 0\n", encoding="utf-8")
    with pytest.raises(ConfigValueError):
        load_config(path, env={})


class _PulledAt(WrappedConnection):
    """The card leaves the reader at APDU ``at`` (1-based): CardRemovedError."""

    def __init__(self, inner: CardConnection, at: int) -> None:
        super().__init__(inner)
        self.can_stall = True  # so that the read runs its commands on the deadline worker
        self.at = at
        self.count = 0

    def transmit(self, apdu: bytes) -> bytes:
        self.count += 1
        if self.count >= self.at:
            from agent.errors import CardRemovedError

            raise CardRemovedError("the card left the reader")
        return self.inner.transmit(apdu)


def _apdu_workers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "chip-read-apdu" and t.is_alive()}


def test_a_finished_read_leaves_no_worker_and_no_reference_behind(backend: SimBackend) -> None:
    """The deadline worker of a read ends with the read and keeps nothing of it. It used
    to live on (one idle thread per read, for good) holding its last job: after a read
    that failed, the error's traceback, so every frame of the failed read and of its
    caller, with whatever they held (the identity of an earlier read, in the tests)."""
    import gc
    import weakref

    from agent.errors import IdAgentError
    from agent.identity.from_chip import identity_of

    class Held:
        """Stands for what the caller of a read holds (an identity)."""

    def failed_read() -> weakref.ref[Held]:
        held = Held()
        with pytest.raises(IdAgentError):
            read_chip(ApduChannel(_PulledAt(backend.connect(DEFAULT_READER), at=30)), CanKey("012345"),
                      apdu_timeout=5, read_timeout=20)
        return weakref.ref(held)

    before = _apdu_workers()
    held = failed_read()
    read = read_chip(ApduChannel(Stalling(backend.connect(DEFAULT_READER))), CanKey("012345"),
                     apdu_timeout=5, read_timeout=20)
    assert identity_of(read).id_number
    del read
    # the workers of both reads end (a generous deadline: they end at once)
    deadline = time.monotonic() + HANG_SECONDS
    while _apdu_workers() - before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _apdu_workers() - before, "a read's deadline worker outlived the read"
    gc.collect()
    assert held() is None, "something of the failed read still holds its caller's frame"
