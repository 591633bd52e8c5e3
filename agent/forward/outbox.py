"""The outbox: a durable, encrypted queue in SQLite through which every forward goes.

Guarantees
- An item put in the outbox survives a crash or a power cut once ``put`` returns
  (that transaction commits with ``synchronous=FULL``: the WAL is fsynced).
- Delivery is at least once: a worker claims due items, delivers them, then marks them.
  A crash between delivery and mark leads to one more delivery of the same item with
  the same idempotency key; the receiver deduplicates, so the effect is exactly once.
  State changes after a delivery commit with ``synchronous=NORMAL`` (WAL not fsynced
  at each commit): a power cut may undo the last marks, which again only means a
  repeated delivery, so the fsync per delivered item is not worth its cost.
- Payloads are encrypted at rest with AES-256-GCM; the associated data binds each
  ciphertext to its idempotency key and kind, so rows cannot be swapped. The payload
  is deleted as soon as the item is delivered; the metadata row (no personal data:
  id, kind, key, attempts, times, last error) goes after ``retention_days``.
- An item is given up (state ``failed``) after ``max_attempts`` or when older than the
  retention period, or at once on a permanent error (the receiver refused it); failed
  items keep their encrypted payload until purged, so ``idagent outbox retry`` works.

Idempotency keys are random UUID4s chosen at enqueue; they are UNIQUE, so putting
the same dossier twice is a no-op.

Why one module of ~460 lines: the SQL schema, its state machine and the encryption
binding are one contract (each statement relies on the others' invariants); the
delivery loop is elsewhere (``worker.py``).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from agent.errors import IdAgentError
from agent.forward.keyfile import load_or_create_key
from agent.forward.settings import ForwardConfig, OutboxConfig

logger = logging.getLogger(__name__)

NONCE_SIZE = 12
AAD_PREFIX = b"idagent-outbox-v1"
SCHEMA_VERSION = 2
DAY_S = 86400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id            INTEGER PRIMARY KEY,
    idem_key      TEXT    NOT NULL UNIQUE,
    kind          TEXT    NOT NULL,
    content_type  TEXT    NOT NULL,
    payload       BLOB,
    state         TEXT    NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at    REAL    NOT NULL,
    next_try_at   REAL    NOT NULL,
    lease_until   REAL,
    updated_at    REAL    NOT NULL,
    delivered_at  REAL,
    last_error    TEXT,
    receipt       TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_try_at);
"""


class State(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class OutboxError(IdAgentError):
    code = "outbox"
    exit_code = 1
    hint = "Check the outbox file and its key file (idagent outbox list)."


class OutboxItemNotFound(OutboxError):
    code = "outbox_item"
    exit_code = 3
    hint = "List the items with: idagent outbox list"


@dataclass(frozen=True)
class OutboxItem:
    """A claimed item, decrypted, ready to deliver."""

    id: int
    idem_key: str
    kind: str
    content_type: str
    body: bytes = field(repr=False)
    attempts: int


@dataclass(frozen=True)
class ItemInfo:
    """What ``idagent outbox list`` shows: no personal data."""

    id: int
    idem_key: str
    kind: str
    state: str
    attempts: int
    created_at: float
    next_try_at: float | None
    delivered_at: float | None
    last_error: str | None
    #: what the receiver gave back for a delivered item (e.g. the one-stop dossier number)
    receipt: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "idempotency_key": self.idem_key, "kind": self.kind, "state": self.state,
                "attempts": self.attempts, "created_at": _iso(self.created_at),
                "next_try_at": _iso(self.next_try_at), "delivered_at": _iso(self.delivered_at),
                "last_error": self.last_error, "receipt": self.receipt}


@dataclass(frozen=True)
class Outcome:
    """What a delivery attempt gave. ``permanent``: retrying cannot help. ``receipt``:
    the receiver's reference for a delivered item (no personal data: a dossier number or
    reference); ``error`` on a delivered item is a note kept for the clerk (e.g. a date the
    receiver echoed differently)."""

    ok: bool
    error: str = ""
    permanent: bool = False
    #: the receiver's own reference for a delivered item (its receipt or dossier
    #: number), when it gives one: shown to the clerk, and kept on the item's metadata
    #: row (no personal data) for ``idagent outbox list``
    receipt: str | None = None
    #: the earliest retry, in seconds (over the backoff): e.g. after a timeout, long enough
    #: for the receiver to finish the request it may still be working on
    retry_after: float = 0.0


@dataclass(frozen=True)
class Policy:
    max_attempts: int = 50
    base_backoff: float = 1.0
    max_backoff: float = 300.0
    retention_days: float = 7.0

    @classmethod
    def from_config(cls, section: OutboxConfig) -> Policy:
        return cls(max_attempts=section.max_attempts, base_backoff=section.base_backoff,
                   max_backoff=section.max_backoff, retention_days=section.retention_days)


_INFO_COLUMNS = ("id, idem_key, kind, state, attempts, created_at, next_try_at, delivered_at, last_error,"
                 " receipt")


def _info(r: Sequence[Any]) -> ItemInfo:
    return ItemInfo(r[0], r[1], r[2], r[3], r[4], r[5], r[6] if r[3] == State.PENDING.value else None,
                    r[7], r[8], r[9])


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


class Outbox:
    def __init__(self, path: str | os.PathLike[str], key: bytes, *, policy: Policy | None = None,
                 clock: Callable[[], float] = time.time, rng: Callable[[int], bytes] = os.urandom,
                 jitter: Callable[[], float] | None = None) -> None:
        if len(key) != 32:
            raise OutboxError("the outbox key must be 32 bytes (AES-256)")
        self.path = Path(path)
        self.policy = policy or Policy()
        self._aead = AESGCM(key)
        self._clock = clock
        self._rng = rng
        self._jitter = jitter or (lambda: int.from_bytes(os.urandom(4), "big") / 2**32)
        self._lock = threading.RLock()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # the queue file is only for this user (SQLite gives its -wal and -shm files the
        # same mode), so create it 0600 before SQLite does with the umask's mode
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(self.path, 0o600)
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        # freed pages (a delivered item's payload) are zeroed, not left as ciphertext
        # that a key leaked later could open
        self._db.execute("PRAGMA secure_delete=ON")
        with self._tx():
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    self._db.execute(stmt)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
            if "receipt" not in columns:
                # version 1 files (before receipts): add the column, keep every item
                self._db.execute("ALTER TABLE outbox ADD COLUMN receipt TEXT")
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @classmethod
    def from_config(cls, config: ForwardConfig, **kwargs: Any) -> Outbox:
        key = load_or_create_key(config.outbox.key_file)
        return cls(config.outbox.path, key, policy=Policy.from_config(config.outbox), **kwargs)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ sqlite

    @contextmanager
    def _tx(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction (takes the write lock up front, so two processes
        never both read-then-write the same rows). ``durable``: fsync at commit."""
        with self._lock:
            if durable:
                self._db.execute("PRAGMA synchronous=FULL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            finally:
                if durable:
                    self._db.execute("PRAGMA synchronous=NORMAL")

    # ------------------------------------------------------------------ crypto

    @staticmethod
    def _aad(kind: str, idem_key: str) -> bytes:
        return b"|".join((AAD_PREFIX, kind.encode("utf-8"), idem_key.encode("ascii")))

    def _seal(self, kind: str, idem_key: str, body: bytes) -> bytes:
        nonce = self._rng(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, body, self._aad(kind, idem_key))

    def _open(self, kind: str, idem_key: str, blob: bytes) -> bytes:
        try:
            return self._aead.decrypt(blob[:NONCE_SIZE], blob[NONCE_SIZE:], self._aad(kind, idem_key))
        except InvalidTag:
            raise OutboxError("an outbox item does not decrypt with this key (wrong key file, or tampered)",
                              hint="Use the key file the outbox was created with.") from None

    # ------------------------------------------------------------------ enqueue

    @staticmethod
    def new_key() -> str:
        return str(uuid.uuid4())

    def put(self, kind: str, body: bytes, *, content_type: str = "application/json",
            idem_key: str | None = None) -> str:
        """Store one item; returns its idempotency key. A key already present is a no-op."""
        return self.put_many([(kind, body, content_type, idem_key)])[0]

    def put_many(self, items: Iterable[tuple[str, bytes, str, str | None]]) -> list[str]:
        """Store several items in one durable transaction (one fsync)."""
        now = self._clock()
        rows, keys = [], []
        for kind, body, content_type, idem_key in items:
            key = idem_key or self.new_key()
            keys.append(key)
            rows.append((key, kind, content_type, self._seal(kind, key, body), State.PENDING.value, now, now, now))
        with self._tx(durable=True) as db:
            db.executemany(
                "INSERT OR IGNORE INTO outbox (idem_key, kind, content_type, payload, state, created_at,"
                " next_try_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return keys

    # ------------------------------------------------------------------ worker side

    def release_leases(self, settle: float = 0.0) -> int:
        """Forget every claim: called by the (single) worker at start, after a crash.
        ``settle``: those items wait that long first, for a receiver that may still be
        working on the request the dead worker sent (see agent/forward/opencps.py)."""
        with self._tx() as db:
            return db.execute("UPDATE outbox SET lease_until = NULL, next_try_at = MAX(next_try_at, ?)"
                              " WHERE lease_until IS NOT NULL", (self._clock() + settle,)).rowcount

    def expire(self) -> int:
        """Give up items past max_attempts or older than the retention period.
        ``retention_days = 0`` purges delivered items at once; it sets no age limit on
        pending ones (they would all be given up before their first attempt)."""
        now = self._clock()
        oldest = now - self.policy.retention_days * DAY_S if self.policy.retention_days > 0 else float("-inf")
        with self._tx() as db:
            n = db.execute(
                "UPDATE outbox SET state = ?, updated_at = ?, lease_until = NULL,"
                " last_error = COALESCE(last_error, '') || ' [given up: ' ||"
                " CASE WHEN attempts >= ? THEN 'max attempts' ELSE 'retention' END || ']'"
                " WHERE state = ? AND lease_until IS NULL AND (attempts >= ? OR created_at < ?)",
                (State.FAILED.value, now, self.policy.max_attempts, State.PENDING.value,
                 self.policy.max_attempts, oldest)).rowcount
        if n:
            logger.warning("outbox: gave up %d item(s) (max attempts or retention)", n)
        return n

    def claim(self, limit: int, lease: float = 120.0) -> list[OutboxItem]:
        """Due items, marked as taken for ``lease`` seconds; each claim counts as an attempt.

        An item that does not decrypt (wrong key file, tampered row) fails for good at
        once, its payload kept for ``idagent outbox retry`` with the right key: raising
        here would stop every other item behind it (and the worker thread with them)."""
        now = self._clock()
        items: list[OutboxItem] = []
        broken: list[tuple[float, str, int]] = []
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, idem_key, kind, content_type, payload, attempts FROM outbox"
                " WHERE state = ? AND next_try_at <= ? AND (lease_until IS NULL OR lease_until <= ?)"
                " AND attempts < ? ORDER BY next_try_at, id LIMIT ?",
                (State.PENDING.value, now, now, self.policy.max_attempts, limit)).fetchall()
            for r in rows:
                try:
                    items.append(OutboxItem(r[0], r[1], r[2], r[3], self._open(r[2], r[1], r[4]), r[5] + 1))
                except OutboxError as err:
                    broken.append((now, err.message[:200], r[0]))
            db.executemany("UPDATE outbox SET lease_until = ?, attempts = attempts + 1, updated_at = ?"
                           " WHERE id = ?", [(now + lease, now, item.id) for item in items])
            db.executemany("UPDATE outbox SET state = 'failed', attempts = attempts + 1, updated_at = ?,"
                           " last_error = ? WHERE id = ?", broken)
        if broken:
            logger.error("outbox: %d item(s) do not decrypt with this key file (wrong key, or tampered): "
                         "marked failed", len(broken))
        return items

    def record(self, results: Sequence[tuple[OutboxItem, Outcome]]) -> None:
        """Mark a batch of attempts in one transaction."""
        now = self._clock()
        delivered = [(now, now, outcome.error[:200] or None, (outcome.receipt or "")[:255] or None, item.id)
                     for item, outcome in results if outcome.ok]
        retry, failed = [], []
        for item, outcome in results:
            if outcome.ok:
                continue
            error = outcome.error[:200]
            if outcome.permanent or item.attempts >= self.policy.max_attempts:
                failed.append((now, error, item.id))
            else:
                retry.append((now + max(self.backoff(item.attempts), outcome.retry_after), now, error, item.id))
        with self._tx() as db:
            # the payload goes at once: nothing personal stays after delivery
            db.executemany("UPDATE outbox SET state = 'delivered', payload = NULL, lease_until = NULL,"
                           " delivered_at = ?, updated_at = ?, last_error = ?, receipt = ? WHERE id = ?",
                           delivered)
            db.executemany("UPDATE outbox SET next_try_at = ?, lease_until = NULL, updated_at = ?,"
                           " last_error = ? WHERE id = ?", retry)
            db.executemany("UPDATE outbox SET state = 'failed', lease_until = NULL, updated_at = ?,"
                           " last_error = ? WHERE id = ?", failed)
        if failed:
            logger.warning("outbox: %d item(s) failed for good", len(failed))

    def backoff(self, attempts: int) -> float:
        p = self.policy
        # the exponent is capped: 2.0 ** 1024 overflows, and 2 ** 60 s is past any max_backoff
        ceiling = min(p.max_backoff, p.base_backoff * 2.0 ** min(max(0, attempts - 1), 60))
        return ceiling / 2 + self._jitter() * ceiling / 2

    def next_due(self) -> float | None:
        """When the earliest pending item is due (wall clock), or None if none is pending."""
        with self._lock:
            row = self._db.execute("SELECT MIN(next_try_at) FROM outbox WHERE state = ?",
                                   (State.PENDING.value,)).fetchone()
        return float(row[0]) if row[0] is not None else None

    # ------------------------------------------------------------------ admin

    def item_id(self, idem_key: str) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT id FROM outbox WHERE idem_key = ?", (idem_key,)).fetchone()
        return int(row[0]) if row else None

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall()
        out = {s.value: 0 for s in State}
        out.update({state: n for state, n in rows})
        return out

    def oldest_pending_created_at(self) -> float | None:
        """When the oldest pending item was queued (the fleet view alerts on its age)."""
        with self._lock:
            row = self._db.execute("SELECT MIN(created_at) FROM outbox WHERE state = ?",
                                   (State.PENDING.value,)).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def list_items(self, states: Iterable[str] = (State.PENDING.value, State.FAILED.value),
                   limit: int = 1000) -> list[ItemInfo]:
        wanted = list(states)
        marks = ",".join("?" * len(wanted))
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_INFO_COLUMNS} FROM outbox WHERE state IN ({marks}) ORDER BY id LIMIT ?",
                (*wanted, limit)).fetchall()
        return [_info(r) for r in rows]

    def info(self, idem_key: str) -> ItemInfo | None:
        """One item's state and receipt, by idempotency key (for the counter page)."""
        with self._lock:
            row = self._db.execute(f"SELECT {_INFO_COLUMNS} FROM outbox WHERE idem_key = ?", (idem_key,)).fetchone()
        return _info(row) if row else None

    def retry(self, item_id: int | None = None) -> int:
        """Make failed (or waiting) items due now, with a fresh attempt budget."""
        now = self._clock()
        with self._tx() as db:
            if item_id is None:
                return db.execute("UPDATE outbox SET state = 'pending', attempts = 0, next_try_at = ?,"
                                  " updated_at = ?, created_at = ? WHERE state IN ('pending', 'failed')"
                                  " AND payload IS NOT NULL", (now, now, now)).rowcount
            row = db.execute("SELECT state, payload IS NOT NULL FROM outbox WHERE id = ?", (item_id,)).fetchone()
            if row is None:
                raise OutboxItemNotFound(f"no outbox item {item_id}")
            if row[0] == State.DELIVERED.value or not row[1]:
                raise OutboxError(f"outbox item {item_id} was delivered already", hint="Nothing to retry.")
            return db.execute("UPDATE outbox SET state = 'pending', attempts = 0, next_try_at = ?,"
                              " updated_at = ?, created_at = ? WHERE id = ?",
                              (now, now, now, item_id)).rowcount

    def purge(self, *, delivered: bool = False, failed: bool = False, pending: bool = False) -> int:
        """Delete rows in the named states at once (pending only when asked explicitly)."""
        states = [s for s, on in ((State.DELIVERED, delivered), (State.FAILED, failed),
                                  (State.PENDING, pending)) if on]
        if not states:
            return 0
        marks = ",".join("?" * len(states))
        with self._tx() as db:
            n = db.execute(f"DELETE FROM outbox WHERE state IN ({marks})", [s.value for s in states]).rowcount
        self._checkpoint()
        return n

    def purge_expired(self) -> int:
        """Delete metadata of delivered items, and failed items, older than the retention."""
        oldest = self._clock() - self.policy.retention_days * DAY_S
        with self._tx() as db:
            n = db.execute("DELETE FROM outbox WHERE (state = 'delivered' AND delivered_at < ?)"
                           " OR (state = 'failed' AND updated_at < ?)", (oldest, oldest)).rowcount
        return n

    def _checkpoint(self) -> None:
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
