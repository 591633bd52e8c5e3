"""The outbox: encryption at rest, dedup, backoff, expiry, purge, and the in-process worker."""

from __future__ import annotations

import os
import sqlite3
import threading
import unicodedata
from pathlib import Path

import pytest
from forward_helpers import HMAC_KEY, person

from agent.config import Config
from agent.forward.intake import KIND, IntakeSender, IntakeSettings, enqueue_dossier
from agent.forward.keyfile import KeyFileError, load_or_create_key
from agent.forward.outbox import Outbox, OutboxError, OutboxItem, OutboxItemNotFound, Outcome, Policy
from agent.forward.worker import OutboxWorker, WorkerBusyError
from agent.sim.services.intake import IntakeTestService

KEY = bytes(range(32))


class WallClock:
    def __init__(self) -> None:
        self.now = 1_764_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wall() -> WallClock:
    return WallClock()


@pytest.fixture
def outbox(tmp_path: Path, wall: WallClock) -> Outbox:
    box = Outbox(tmp_path / "outbox.sqlite3", KEY, clock=wall, jitter=lambda: 0.0,
                 policy=Policy(max_attempts=4, base_backoff=1.0, max_backoff=8.0, retention_days=7))
    yield box
    box.close()


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFD", text).encode("ascii", "ignore").decode().replace("Đ", "D").replace("đ", "d")


def _needles(identities: list) -> list[bytes]:
    out: list[bytes] = []
    for ident in identities:
        for text in (ident.full_name, ident.place_of_residence):
            for form in (unicodedata.normalize("NFC", text), unicodedata.normalize("NFD", text), _ascii(text),
                         text.upper(), _ascii(text).upper()):
                out += [form.encode("utf-8"), form.encode("utf-16-le")]
        out += [ident.id_number.encode(), ident.old_id_number.encode(), b"1999-03-15", b"15/03/1999"]
    # a last name alone is too common in ciphertext to be a needle; whole names are not
    return out


def test_outbox_file_holds_no_readable_personal_data(outbox: Outbox) -> None:
    people = [person(i) for i in range(20)]
    settings = IntakeSettings(url="http://x", hmac_key=HMAC_KEY)
    for p in people:
        enqueue_dossier(outbox, p, settings)
    # the connection is open: the WAL holds the new pages; read both files as they are now
    raw = outbox.path.read_bytes()
    wal = Path(str(outbox.path) + "-wal")
    assert wal.exists()
    raw += wal.read_bytes()
    for needle in _needles(people):
        assert needle not in raw, needle
    # the check is real: the same bytes decrypted hold the names
    items = outbox.claim(50)
    assert any("Nguyễn Văn Thử 3".encode() in i.body for i in items)


def test_payloads_are_bound_to_their_key(outbox: Outbox) -> None:
    outbox.put(KIND, b"first", idem_key="key-a")
    outbox.put(KIND, b"second", idem_key="key-b")
    db = sqlite3.connect(outbox.path)
    a, b = (row[0] for row in db.execute("SELECT payload FROM outbox ORDER BY id"))
    db.execute("UPDATE outbox SET payload = ? WHERE idem_key = 'key-a'", (b,))
    db.commit()
    db.close()
    # the row that does not open fails for good (payload kept for a retry with the right
    # key file); the others are still delivered: one bad row must not stop the queue
    assert [i.body for i in outbox.claim(10)] == [b"second"]
    (info,) = outbox.list_items(["failed"])
    assert info.idem_key == "key-a" and "does not decrypt" in (info.last_error or "")
    assert outbox.claim(10) == []


def test_an_item_that_does_not_decrypt_does_not_stop_the_worker(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", KEY)
    bad = box.put(KIND, b"tampered")
    box._db.execute("UPDATE outbox SET payload = zeroblob(40) WHERE idem_key = ?", (bad,))
    good = box.put(KIND, b"fine")
    seen: list[str] = []

    def sender(item: OutboxItem) -> Outcome:
        seen.append(item.idem_key)
        return Outcome(True)

    worker = OutboxWorker(box, {KIND: sender})
    worker.acquire()
    try:
        worker.run_once()
    finally:
        worker.stop()
    assert seen == [good]
    assert box.counts() == {"pending": 0, "delivered": 1, "failed": 1}
    box.close()


def test_same_idempotency_key_is_stored_once(outbox: Outbox) -> None:
    outbox.put(KIND, b"x", idem_key="same")
    outbox.put(KIND, b"y", idem_key="same")
    assert outbox.counts()["pending"] == 1
    assert [i.body for i in outbox.claim(10)] == [b"x"]


def test_retry_backoff_then_delivery_deletes_the_payload(outbox: Outbox, wall: WallClock) -> None:
    key = outbox.put(KIND, b"dossier")
    (item,) = outbox.claim(10)
    outbox.record([(item, Outcome(False, "HTTP 503"))])
    assert outbox.claim(10) == []  # not due: first backoff has a 1 s ceiling, jitter 0 gives 0.5 s
    wall.now += 0.5
    (item,) = outbox.claim(10)
    assert item.attempts == 2
    outbox.record([(item, Outcome(False, "HTTP 503"))])
    wall.now += 0.9
    assert outbox.claim(10) == []  # second backoff is 1.0 s (ceiling 2 s)
    wall.now += 0.1
    (item,) = outbox.claim(10)
    outbox.record([(item, Outcome(True))])
    (info,) = outbox.list_items(["delivered"])
    assert info.idem_key == key and info.state == "delivered" and info.attempts == 3
    db = sqlite3.connect(outbox.path)
    assert db.execute("SELECT payload FROM outbox").fetchone() == (None,)
    db.close()
    assert outbox.counts() == {"pending": 0, "delivered": 1, "failed": 0}


def test_backoff_is_capped_and_jittered(tmp_path: Path) -> None:
    values = iter([0.0, 1.0, 0.5])
    box = Outbox(tmp_path / "o.sqlite3", KEY, policy=Policy(base_backoff=1.0, max_backoff=8.0),
                 jitter=lambda: next(values))
    assert [box.backoff(10), box.backoff(10), box.backoff(1)] == [4.0, 8.0, 0.75]
    box.close()


def test_permanent_error_and_max_attempts_fail_the_item(outbox: Outbox, wall: WallClock) -> None:
    outbox.put(KIND, b"a", idem_key="perm")
    outbox.put(KIND, b"b", idem_key="tries")
    for item in outbox.claim(10):
        outbox.record([(item, Outcome(False, "HTTP 400", permanent=item.idem_key == "perm"))])
    for _ in range(3):
        wall.now += 100
        for item in outbox.claim(10):
            outbox.record([(item, Outcome(False, "timeout"))])
    failed = {i.idem_key: i for i in outbox.list_items(["failed"])}
    assert set(failed) == {"perm", "tries"}
    assert failed["perm"].attempts == 1 and failed["tries"].attempts == 4
    assert failed["tries"].last_error == "timeout"
    # retry gives a fresh budget
    assert outbox.retry(failed["tries"].id) == 1
    (item,) = outbox.claim(10)
    assert item.idem_key == "tries" and item.attempts == 1
    with pytest.raises(OutboxItemNotFound):
        outbox.retry(999)


def test_retention_expires_old_items_then_purges_them(outbox: Outbox, wall: WallClock) -> None:
    outbox.put(KIND, b"old", idem_key="old")
    (item,) = outbox.claim(10)
    outbox.record([(item, Outcome(False, "HTTP 503"))])
    outbox.put(KIND, b"sent", idem_key="sent")
    (sent,) = outbox.claim(10)
    outbox.record([(sent, Outcome(True))])
    wall.now += 8 * 86400
    assert outbox.expire() == 1
    (info,) = outbox.list_items(["failed"])
    assert info.idem_key == "old" and "retention" in (info.last_error or "")
    wall.now += 8 * 86400
    assert outbox.purge_expired() == 2
    assert outbox.counts() == {"pending": 0, "delivered": 0, "failed": 0}


def test_purge_and_listing_show_no_personal_data(outbox: Outbox) -> None:
    settings = IntakeSettings(url="http://x", hmac_key=HMAC_KEY)
    enqueue_dossier(outbox, person(1), settings)
    enqueue_dossier(outbox, person(2), settings)
    (first, second) = outbox.claim(10)
    outbox.record([(first, Outcome(True)), (second, Outcome(False, "HTTP 422", permanent=True))])
    listing = str([i.to_dict() for i in outbox.list_items(["pending", "failed", "delivered"])])
    assert "Thử" not in listing and "001099500001" not in listing
    assert outbox.purge(delivered=True) == 1
    assert outbox.purge(failed=True) == 1
    assert outbox.counts() == {"pending": 0, "delivered": 0, "failed": 0}


def test_key_file_created_0600_and_loose_permissions_refused(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "outbox.key"
    key = load_or_create_key(path)
    assert len(key) == 32 and (path.stat().st_mode & 0o777) == 0o600
    assert load_or_create_key(path) == key
    path.chmod(0o640)
    with pytest.raises(KeyFileError, match="0640") as err:
        load_or_create_key(path)
    assert "chmod 600" in err.value.hint and err.value.exit_code == 3
    config = Config.defaults().replace("outbox", path=str(tmp_path / "o.sqlite3"), key_file=str(path))
    with pytest.raises(KeyFileError):
        Outbox.from_config(config)


def test_outbox_from_config_and_file_permissions(tmp_path: Path) -> None:
    config = Config.defaults().replace("outbox", path=str(tmp_path / "var" / "o.sqlite3"),
                                       key_file=str(tmp_path / "var" / "o.key"))
    with Outbox.from_config(config) as box:
        box.put(KIND, b"x")
        for suffix in ("", "-wal", "-shm"):
            assert (Path(str(box.path) + suffix).stat().st_mode & 0o777) == 0o600, suffix
        assert box._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# --------------------------------------------------------------------------- worker in process

def test_worker_delivers_through_failures_exactly_once(tmp_path: Path, intake: IntakeTestService) -> None:
    intake.state.control({"fail_before": 0.2, "fail_after": 0.2, "seed": 3})
    box = Outbox(tmp_path / "o.sqlite3", KEY, policy=Policy(base_backoff=0.01, max_backoff=0.05))
    settings = IntakeSettings(url=intake.intake_url, hmac_key=HMAC_KEY)
    keys = {enqueue_dossier(box, person(i), settings) for i in range(200)}
    worker = OutboxWorker(box, {KIND: IntakeSender(settings)}, concurrency=4, batch=32, idle_wait=0.01)
    worker.acquire()
    worker.run(until_empty=True)
    worker.stop()
    stats = intake.state.stats()
    assert set(intake.state.arrivals_by_key()) == keys
    assert stats["accepted"] == 200 and stats["unique_dossiers"] == 200
    assert stats["replays"] > 0 and stats["failed_before"] > 0  # failures really happened
    assert box.counts() == {"pending": 0, "delivered": 200, "failed": 0}
    box.close()


def test_one_worker_per_outbox(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", KEY)
    box.put(KIND, b"x")
    box.claim(10)  # a claim by a worker that then dies
    first = OutboxWorker(box, {})
    first.acquire()
    second = OutboxWorker(Outbox(tmp_path / "o.sqlite3", KEY), {})
    with pytest.raises(WorkerBusyError):
        second.acquire()
    first.release()
    second.acquire()  # the lock is free again; the dead claim is released
    assert [i.body for i in second.outbox.claim(10)] == [b"x"]
    second.release()


def test_worker_thread_wakes_on_enqueue_and_survives_sender_bugs(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", KEY, policy=Policy(base_backoff=0.01, max_backoff=0.02))
    seen: list[str] = []
    done = threading.Event()

    def sender(item: OutboxItem) -> Outcome:
        seen.append(item.idem_key)
        if len(seen) == 1:
            raise RuntimeError("bug in a sender")
        done.set()
        return Outcome(True)

    worker = OutboxWorker(box, {KIND: sender}, idle_wait=5.0).start()
    try:
        key = box.put(KIND, b"x")
        worker.wake()
        assert done.wait(3.0)
    finally:
        worker.stop()
    assert seen == [key, key]
    assert box.counts()["delivered"] == 1
    box.close()


def test_unknown_kind_fails_for_good(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", KEY)
    box.put("mystery", b"x")
    worker = OutboxWorker(box, {})
    worker.acquire()
    worker.run_once()
    worker.stop()
    (info,) = box.list_items(["failed"])
    assert "no sender" in (info.last_error or "")
    box.close()


def test_outbox_rejects_a_short_key(tmp_path: Path) -> None:
    with pytest.raises(OutboxError):
        Outbox(tmp_path / "o.sqlite3", os.urandom(16))


def test_forwarding_service_for_the_daemon(tmp_path: Path, intake: IntakeTestService, hmac_key_file: Path) -> None:
    import time

    from agent.forward.worker import ForwardingService

    config = (Config.defaults()
              .replace("intake", url=intake.intake_url, hmac_key_file=str(hmac_key_file), format="fhir")
              .replace("outbox", path=str(tmp_path / "o.sqlite3"), key_file=str(tmp_path / "o.key")))
    service = ForwardingService(config).start()
    try:
        key = service.forward(person(5))
        deadline = time.monotonic() + 5
        while intake.state.body(key) is None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        service.stop()
    body = intake.state.body(key)
    assert body is not None and b'"resourceType":"Patient"' in body


def test_dead_receiver_gets_a_trickle_not_a_flood(tmp_path: Path, intake: IntakeTestService) -> None:
    import time

    intake.state.control({"fail_before": 1.0})
    box = Outbox(tmp_path / "o.sqlite3", KEY, policy=Policy(base_backoff=0.1, max_backoff=2.0))
    settings = IntakeSettings(url=intake.intake_url, hmac_key=HMAC_KEY)
    for i in range(300):
        enqueue_dossier(box, person(i), settings)
    worker = OutboxWorker(box, {KIND: IntakeSender(settings)}, concurrency=4, batch=64, idle_wait=0.05).start()
    try:
        time.sleep(1.5)
        during_outage = intake.state.stats()["requests"]
        # one full batch, then probes of 4 after pauses of 0.05-0.1, 0.1-0.2, 0.2-0.4, 0.4-0.8 s
        assert 64 < during_outage <= 64 + 4 * 6
        intake.state.control({"fail_before": 0.0})
        deadline = time.monotonic() + 15
        while box.counts()["pending"] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert box.counts() == {"pending": 0, "delivered": 300, "failed": 0}
    assert intake.state.stats()["unique_dossiers"] == 300
    box.close()


def test_worker_thread_survives_a_database_error(tmp_path: Path) -> None:
    """SQLite can fail for a moment (disk full, locked past busy_timeout): the worker
    thread must log it and carry on, not die and leave every dossier queued."""
    box = Outbox(tmp_path / "o.sqlite3", KEY)
    real_claim = box.claim
    calls = [0]

    def flaky_claim(limit: int, lease: float = 120.0) -> list[OutboxItem]:
        calls[0] += 1
        if calls[0] == 1:
            raise sqlite3.OperationalError("database is locked")
        return real_claim(limit, lease)

    box.claim = flaky_claim  # type: ignore[method-assign]
    delivered = threading.Event()

    def sender(item: OutboxItem) -> Outcome:
        delivered.set()
        return Outcome(True)

    box.put(KIND, b"x")
    worker = OutboxWorker(box, {KIND: sender}, idle_wait=0.01).start()
    try:
        assert delivered.wait(3.0)
    finally:
        worker.stop()
    assert calls[0] >= 2
    box.close()


def test_backoff_after_a_long_outage_stays_capped(tmp_path: Path) -> None:
    """The worker's pause count grows by one per failed probe batch (every 150-300 s):
    after ~1025 of them (a receiver down over a long weekend) 2.0 ** 1024 overflowed
    and killed the delivery thread."""
    box = Outbox(tmp_path / "o.sqlite3", KEY, jitter=lambda: 1.0,
                 policy=Policy(base_backoff=1.0, max_backoff=300.0, max_attempts=5000))
    assert box.backoff(1025) == 300.0
    assert box.backoff(10**6) == 300.0
    box.close()


def test_retention_zero_purges_delivered_but_does_not_give_up_pending(tmp_path: Path) -> None:
    """config: retention_days = 0 (allowed, "0..365") reads as "purge delivered items at
    once"; it made every queued dossier older than 'now' fail for good at the worker's
    first housekeeping pass, before a single delivery attempt."""
    now = [1_764_000_000.0]
    box = Outbox(tmp_path / "o.sqlite3", KEY, clock=lambda: now[0], policy=Policy(retention_days=0))
    box.put(KIND, b"queued", idem_key="queued")
    box.put(KIND, b"sent", idem_key="sent")
    now[0] += 1.0
    (first, second) = box.claim(10)
    box.record([(second, Outcome(True))])
    now[0] += 5.0
    box.record([(first, Outcome(False, "HTTP 503"))])
    now[0] += 60.0
    assert box.expire() == 0
    assert [i.idem_key for i in box.claim(10)] == ["queued"]
    assert box.purge_expired() == 1  # the delivered item's metadata goes at once
    box.close()
