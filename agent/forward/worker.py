"""The outbox worker: claims due items, delivers them, records the outcome.

One worker per outbox file (an exclusive ``flock`` on ``<outbox>.lock``; the OS drops it
when the process dies, even by SIGKILL). Because no other worker can be running, the
worker forgets all leases at start: whatever a killed predecessor had claimed is due
again at once. Delivery is at least once; receivers deduplicate by the idempotency key.

Run in the foreground by ``idagent outbox run [--until-empty]`` (``agent.cli.outbox``;
the tests and the bench run it as ``python -m agent --config FILE outbox run``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from agent.forward.intake import KIND, IntakeSender, IntakeSettings, enqueue_dossier
from agent.forward.outbox import Outbox, OutboxError, OutboxItem, OutboxItemNotFound, Outcome
from agent.forward.settings import ForwardConfig
from agent.identity import Identity

logger = logging.getLogger(__name__)

Sender = Callable[[OutboxItem], Outcome]


HOUSEKEEPING_S = 60.0


class WorkerBusyError(OutboxError):
    code = "outbox_busy"
    exit_code = 3
    hint = "Another outbox worker (the daemon, or idagent outbox run) is using this outbox; stop it first."


@dataclass(frozen=True)
class DeliveryReport:
    """What became of one delivery attempt, for whoever shows the dossier's state (the
    daemon turns it into an ``intake_status`` event). No personal data."""

    idem_key: str
    kind: str
    #: "delivered", "retrying" (will be tried again) or "failed" (for good)
    state: str
    attempts: int
    receipt: str | None = None
    #: the receiver's or the transport's error (English, for logs and the API)
    error: str = ""


ReportListener = Callable[[DeliveryReport], None]


class OutboxWorker:
    def __init__(self, outbox: Outbox, senders: Mapping[str, Sender], *, concurrency: int = 4,
                 batch: int = 64, lease: float = 120.0, idle_wait: float = 1.0, settle: float = 0.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.outbox = outbox
        self.senders = dict(senders)
        self.concurrency = max(1, concurrency)
        self.batch = max(1, batch)
        self.lease = lease
        self.idle_wait = idle_wait
        self.settle = settle
        self._monotonic = monotonic
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="outbox-send")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None
        self._last_housekeeping = float("-inf")
        self._failed_batches = 0
        self._failures_in_a_row = 0
        self._paused_until = float("-inf")
        self.delivered = 0
        self.failed_attempts = 0
        #: called on the worker thread after each batch is recorded, one report per item
        self.listeners: list[ReportListener] = []

    # ------------------------------------------------------------------ ownership

    def acquire(self) -> None:
        """Become the outbox's only worker, then release stale claims."""
        path = Path(str(self.outbox.path) + ".lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise WorkerBusyError(f"the outbox {self.outbox.path} already has a worker") from None
        self._lock_fd = fd
        released = self.outbox.release_leases(self.settle)
        if released:
            logger.info("outbox: %d item(s) claimed by a previous worker are due again", released)

    def release(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    # ------------------------------------------------------------------ work

    def _deliver(self, item: OutboxItem) -> Outcome:
        sender = self.senders.get(item.kind)
        if sender is None:
            return Outcome(False, f"no sender for kind {item.kind!r}", permanent=True)
        try:
            return sender(item)
        except Exception as exc:  # a sender bug must not kill the worker; the item is retried
            logger.exception("outbox: sender for %s raised", item.kind)
            return Outcome(False, f"sender error ({exc.__class__.__name__})")

    def run_once(self) -> int:
        """One batch: claim, deliver concurrently, record. Returns how many were claimed.

        While the receiver is down (a whole batch failed with retryable errors), the
        worker pauses with growing backoff and then sends only a small probe batch, so a
        dead receiver sees a trickle of requests rather than every queued item at once."""
        if self._monotonic() < self._paused_until:
            return 0
        self._housekeeping()
        size = self.concurrency if self._failed_batches else self.batch
        items = self.outbox.claim(size, self.lease)
        if not items:
            return 0
        outcomes = list(self._pool.map(self._deliver, items))
        self.outbox.record(list(zip(items, outcomes, strict=True)))
        self._report(items, outcomes)
        ok = sum(1 for o in outcomes if o.ok)
        self.delivered += ok
        self.failed_attempts += len(outcomes) - ok
        if ok:
            if self._failed_batches:
                logger.info("outbox: receiver answers again")
            self._failed_batches = self._failures_in_a_row = 0
        elif not any(o.permanent for o in outcomes):
            self._failures_in_a_row += len(outcomes)
            # a few failures in a row, not one unlucky item, mean the receiver is down
            if self._failures_in_a_row >= self.concurrency:
                self._failed_batches += 1
                pause = self.outbox.backoff(self._failed_batches)
                self._paused_until = self._monotonic() + pause
                log = logger.warning if self._failed_batches == 1 else logger.debug
                log("outbox: receiver failing (%s); pausing %.2f s", outcomes[0].error, pause)
        logger.debug("outbox: batch of %d, %d delivered", len(items), ok)
        return len(items)

    def _report(self, items: list[OutboxItem], outcomes: list[Outcome]) -> None:
        if not self.listeners:
            return
        for item, outcome in zip(items, outcomes, strict=True):
            # the same rule as Outbox.record: permanent, or out of attempts, is failed for good
            given_up = outcome.permanent or item.attempts >= self.outbox.policy.max_attempts
            state = "delivered" if outcome.ok else "failed" if given_up else "retrying"
            report = DeliveryReport(item.idem_key, item.kind, state, item.attempts, outcome.receipt,
                                    outcome.error)
            for listener in list(self.listeners):
                try:
                    listener(report)
                except Exception:  # noqa: BLE001 - a listener bug must not stop deliveries
                    logger.exception("outbox: delivery listener failed")

    def _housekeeping(self) -> None:
        now = self._monotonic()
        if now - self._last_housekeeping >= HOUSEKEEPING_S:
            self._last_housekeeping = now
            self.outbox.expire()
            self.outbox.purge_expired()

    def _wait(self) -> None:
        paused = self._paused_until - self._monotonic()
        if paused > 0:
            delay = min(self.idle_wait, paused)
        else:
            due = self.outbox.next_due()
            delay = self.idle_wait if due is None else min(self.idle_wait, max(0.0, due - time.time()))
        self._wake.wait(delay)
        self._wake.clear()

    def run(self, *, until_empty: bool = False) -> None:
        """Loop until stopped (or, with ``until_empty``, until nothing is pending)."""
        while not self._stop.is_set():
            try:
                if self.run_once():
                    continue
                if until_empty and self.outbox.counts()["pending"] == 0:
                    return
                self._wait()
            except (sqlite3.Error, OSError, OutboxError):
                # a passing database or disk failure: this thread is the only deliverer,
                # so it logs and tries again after the idle wait rather than dying
                logger.exception("outbox: batch failed; retrying")
                self._wake.wait(self.idle_wait)
                self._wake.clear()

    def request_stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """Call after queuing an item so it goes out without waiting for the poll."""
        self._wake.set()

    # ------------------------------------------------------------------ thread

    def start(self) -> OutboxWorker:
        self.acquire()
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="outbox-worker", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread, then release the outbox (the outbox itself stays open)."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._pool.shutdown(wait=True)
        self.release()

    def close(self) -> None:
        """For the foreground run: release everything, the outbox included."""
        self._pool.shutdown(wait=True)
        self.release()
        self.outbox.close()


@dataclass(frozen=True)
class IntakeTarget:
    """Where dossiers go: the outbox kind, its sender, how to queue one, the label the
    page shows (``format``), and how long a dead worker's claims settle before a retry."""

    kind: str
    sender: Sender
    enqueue: Callable[[Outbox, Identity], str]
    format: str
    settle: float = 0.0


def intake_target(config: ForwardConfig) -> IntakeTarget:
    """The configured target (settings first: without a receiver the worker would fail
    every item for good)."""
    if config.intake.target == "opencps":
        from agent.forward import opencps

        ocps = opencps.OpenCpsSettings.from_config(config)
        return IntakeTarget(opencps.KIND, opencps.OpenCpsSender(ocps),
                            lambda outbox, identity: opencps.enqueue_dossier(outbox, identity, ocps),
                            "opencps", settle=ocps.settle)
    settings = IntakeSettings.from_config(config)
    return IntakeTarget(KIND, IntakeSender(settings),
                        lambda outbox, identity: enqueue_dossier(outbox, identity, settings), settings.format)


def build_worker(config: ForwardConfig, *, concurrency: int = 4, target: IntakeTarget | None = None) -> OutboxWorker:
    """A worker for the configured outbox, delivering intake dossiers."""
    target = target or intake_target(config)
    return OutboxWorker(Outbox.from_config(config), {target.kind: target.sender}, concurrency=concurrency,
                        settle=target.settle)


class ForwardingService:
    """What the daemon holds for dossier intake: the outbox, its worker thread, and
    ``forward(identity)``, which queues durably and returns at once."""

    def __init__(self, config: ForwardConfig, *, concurrency: int = 4) -> None:
        self.target = intake_target(config)
        self.format = self.target.format
        self.worker = build_worker(config, concurrency=concurrency, target=self.target)

    @property
    def outbox(self) -> Outbox:
        return self.worker.outbox

    def start(self) -> ForwardingService:
        self.worker.start()
        return self

    def forward(self, identity: Identity) -> str:
        """Queue one dossier; returns its idempotency key."""
        key = self.target.enqueue(self.worker.outbox, identity)
        self.worker.wake()
        return key

    def retry(self, idem_key: str) -> None:
        """Queue a dossier that failed for good again, due now, with fresh attempts."""
        item_id = self.worker.outbox.item_id(idem_key)
        if item_id is None:
            raise OutboxItemNotFound("this dossier is no longer in the outbox (purged)",
                                     hint="Read the card again and send a new dossier.")
        self.worker.outbox.retry(item_id)
        self.worker.wake()

    def watch(self, listener: ReportListener) -> None:
        """Call ``listener`` with each delivery report (on the worker thread)."""
        self.worker.listeners.append(listener)

    def stop(self) -> None:
        self.worker.stop()
        self.worker.outbox.close()
