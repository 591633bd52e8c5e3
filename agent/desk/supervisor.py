"""The reader supervisor: one monitor thread per reader backend, one worker thread per
reader.

* a monitor polls ``wait_for_events`` and hands card events to the reader's worker;
  it never touches a card itself, and a failing backend is reported once per outage;
* a worker reads one card at a time (``agent.desk.reading``), so a stuck reader (a
  card that stops answering mid-read) blocks only itself; a card laid down with no
  key waits for one (``need_access``) until a key or a QR arrives.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from agent.config import ReadersSection
from agent.desk.errors import AccessNeededError, InternalError
from agent.desk.reading import CardReading
from agent.desk.session import IdentitySession
from agent.errors import NoCardError, NoReaderError, ReaderError
from agent.eventhub import EventHub, EventType
from agent.icao.keys import AccessKey
from agent.metrics import Metrics
from agent.readers.base import EventKind, ReaderBackend, ReaderEvent

logger = logging.getLogger(__name__)


class ReaderWorker:
    """Reads the cards of one reader, one at a time, on its own thread."""

    def __init__(self, backend: ReaderBackend, reader: str, *, reading: CardReading,
                 keys_for_card: Callable[[], list[AccessKey]], hub: EventHub, metrics: Metrics,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.backend = backend
        self.reader = reader
        self._reading = reading
        self._keys_for_card = keys_for_card
        self._hub = hub
        self._metrics = metrics
        self.inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.card_present = False
        self.waiting_for_key = False
        self.busy = False
        self.present_at = 0.0
        #: the keys of the card on the reader, for "Đọc lại" (read again); forgotten when
        #: the card leaves, or after [api] identity_ttl like the identity (forget_keys)
        self.last_keys: list[AccessKey] | None = None
        self.keys_at = 0.0
        self._clock = clock
        self._thread = threading.Thread(target=self._run, name=f"reader:{reader}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.inbox.put(("stop", None))

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def give_keys(self, keys: list[AccessKey]) -> None:
        self.inbox.put(("keys", keys))

    def _run(self) -> None:
        while True:
            kind, payload = self.inbox.get()
            if kind == "stop":
                return
            if kind == "card":
                self.card_present = True
                self.present_at = payload
                self._attempt(None)
            elif kind == "removed":
                self.card_present = False
                self.waiting_for_key = False
                self.last_keys = None
            elif kind == "again" and self.card_present:
                self.present_at = payload
                self._attempt(self.last_keys)
            elif kind == "keys" and self.card_present and self.waiting_for_key:
                self._attempt(payload)
            elif kind == "reread" and self.card_present:
                self._attempt(payload)
            elif kind == "job":
                self._run_job(*payload)

    def _run_job(self, job: Callable[[ReaderWorker], Any], future: concurrent.futures.Future[Any]) -> None:
        """A task on the card between reads (reader-kit ``/get_aa``); never during a read."""
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(job(self))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            future.set_exception(exc)

    def _attempt(self, given: list[AccessKey] | None) -> None:
        keys = given if given else self._keys_for_card()
        if not keys:
            self.waiting_for_key = True
            self._hub.publish(EventType.NEED_ACCESS, {
                "reader": self.reader, "reason": "no_key",
                "message": "Quét mã QR trên thẻ, hoặc nhập 6 số cuối của số CCCD để mở chip.",
                "hint": AccessNeededError.hint})
            return
        self.waiting_for_key = False
        self.last_keys, self.keys_at = list(keys), self._clock()
        self.busy = True
        try:
            self._reading.read_card(self.backend, self.reader, keys, self.present_at, worker=self)
        except Exception:  # noqa: BLE001 - a bug below must not kill this reader's thread for good
            logger.exception("unexpected failure while reading on %s", self.reader)
            self._metrics.read_failures.inc(reason="internal")
            self._hub.publish_error(InternalError("the read failed unexpectedly"), reader=self.reader)
        finally:
            self.busy = False


class ReaderSupervisor:
    """Watches the backends' readers and keeps one worker per reader."""

    def __init__(self, settings: ReadersSection, *, reading: CardReading, session: IdentitySession,
                 keys_for_card: Callable[[], list[AccessKey]], hub: EventHub, metrics: Metrics,
                 clock: Callable[[], float]) -> None:
        self.settings = settings
        self._reading = reading
        self._session = session
        self._keys_for_card = keys_for_card
        self._hub = hub
        self._metrics = metrics
        self._clock = clock
        self.backends: list[ReaderBackend] = []
        self._workers: dict[str, ReaderWorker] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ---------------------------------------------------------------- life cycle
    def start(self, backends: Sequence[ReaderBackend], settings: ReadersSection | None = None) -> None:
        self.settings = settings or self.settings
        self.backends = list(backends)
        self._stop.clear()
        for backend in self.backends:
            thread = threading.Thread(target=self._monitor, args=(backend,), name=f"monitor:{backend.name}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            worker.stop()
        for thread in self._threads:
            thread.join(timeout)
        for worker in workers:
            worker.join(timeout)
        self._threads.clear()

    # ---------------------------------------------------------------- keys in
    def card_worker(self, prefer: str | None = None) -> ReaderWorker | None:
        """The worker of a reader holding a card (``prefer``'s first), or None."""
        workers = [w for w in list(self._workers.values()) if w.card_present]
        workers.sort(key=lambda w: w.reader != prefer)
        return workers[0] if workers else None

    def waiting(self, reader: str | None = None) -> list[ReaderWorker]:
        """Workers with a card that waits for a key (on ``reader`` only, when named)."""
        if reader is not None and reader not in self._workers:
            raise NoReaderError("no such reader")
        return [w for w in list(self._workers.values())
                if w.waiting_for_key and (reader is None or w.reader == reader)]

    def read_again(self, reader: str | None = None) -> str:
        """Queue a new read of the card still on ``reader`` (any reader with a card when
        None), with the keys that opened it: the page's "Đọc lại" after "Xóa". A worker
        still finishing the last read takes it after that one (its inbox is in order)."""
        workers = [w for w in list(self._workers.values())
                   if w.card_present and (reader is None or w.reader == reader)]
        if not workers:
            raise NoCardError("no card lies on that reader", hint="Lay the card on the reader.")
        workers[0].inbox.put(("again", self._clock()))
        return workers[0].reader

    def forget_keys(self, older_than: float) -> None:
        """A card left on a reader: its keys (CAN, MRZ data) go no later than its identity."""
        now = self._clock()
        for worker in list(self._workers.values()):
            if worker.last_keys is not None and now - worker.keys_at >= older_than:
                worker.last_keys = None

    @property
    def reader_count(self) -> int:
        return len(self._workers)

    # ---------------------------------------------------------------- events
    def accepts(self, reader: str) -> bool:
        include, exclude = self.settings.include, self.settings.exclude
        if include and not any(word in reader for word in include):
            return False
        return not any(word in reader for word in exclude)

    def _monitor(self, backend: ReaderBackend) -> None:
        interval = self.settings.poll_interval
        failing = False
        while not self._stop.is_set():
            try:
                events = backend.wait_for_events(interval)
                failing = False
            except ReaderError as err:
                if not failing:  # once per outage, not every poll
                    logger.warning("reader backend %s: %s", backend.name, err.message)
                    self._hub.publish_error(err, reader="")
                failing = True
                self._stop.wait(max(interval, 1.0))
                continue
            except Exception:  # noqa: BLE001 - keep watching: one bad poll must not blind the desk
                logger.exception("reader backend %s: unexpected failure while polling", backend.name)
                self._stop.wait(max(interval, 1.0))
                continue
            for event in events:
                if self.accepts(event.reader):
                    self._on_event(backend, event)

    def _on_event(self, backend: ReaderBackend, event: ReaderEvent) -> None:
        now = self._clock()
        if event.kind is EventKind.READER_ATTACHED:
            self._worker(backend, event.reader)
            self._hub.publish(EventType.READER_ATTACHED, {"reader": event.reader, "backend": backend.name})
        elif event.kind is EventKind.READER_DETACHED:
            with self._lock:
                worker = self._workers.pop(event.reader, None)
            if worker is not None:
                worker.stop()
            self._session.forget("reader_detached", reader=event.reader)
            self._hub.publish(EventType.READER_DETACHED, {"reader": event.reader})
        elif event.kind is EventKind.CARD_INSERTED:
            self._hub.publish(EventType.CARD_PRESENT, {"reader": event.reader, "atr": event.atr.hex().upper()})
            self._worker(backend, event.reader).inbox.put(("card", now))
        elif event.kind is EventKind.CARD_REMOVED:
            worker = self._workers.get(event.reader)
            if worker is not None:
                worker.inbox.put(("removed", None))
            self._hub.publish(EventType.CARD_REMOVED, {"reader": event.reader})
            self._session.forget("removed", reader=event.reader)

    def _worker(self, backend: ReaderBackend, reader: str) -> ReaderWorker:
        with self._lock:
            worker = self._workers.get(reader)
            if worker is None:
                worker = ReaderWorker(backend, reader, reading=self._reading, keys_for_card=self._keys_for_card,
                                      hub=self._hub, metrics=self._metrics, clock=self._clock)
                self._workers[reader] = worker
                worker.start()
            return worker

    # ---------------------------------------------------------------- listing
    def listing(self) -> list[dict[str, Any]]:
        """The readers of every backend (``GET /readers``), with their workers' state."""
        out: list[dict[str, Any]] = []
        for backend in self.backends:
            try:
                infos = backend.list_readers()
            except ReaderError as err:
                out.append({"backend": backend.name, "error": err.to_dict()})
                continue
            for info in infos:
                if not self.accepts(info.name):
                    continue
                worker = self._workers.get(info.name)
                entry = info.to_dict()
                entry["backend"] = entry.get("backend") or backend.name
                entry["busy"] = bool(worker and worker.busy)
                entry["waiting_for_key"] = bool(worker and worker.waiting_for_key)
                out.append(entry)
        return out
