"""The desk daemon: readers and QR sources in, identity events out.

Threads, and why:

* one monitor thread per reader backend polls ``wait_for_events`` and hands card
  events to the reader's worker; it never touches a card itself;
* one worker thread per reader reads one card at a time, so a stuck reader (a card
  that stops answering mid-read) blocks only itself;
* one thread per QR source; a QR seen just before a card supplies its access key;
* a small executor runs forwards (BHYT lookup, intake), so a gateway that is down
  never delays the next read;
* the API (aiohttp) runs its own asyncio loop in its own thread;
* a housekeeping thread drops the identity after ``config.api.identity_ttl``.

The current identity lives only in memory and is dropped when its card leaves the
reader, after the TTL, on ``DELETE /identity``, or when the next card is read.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.api.events import EventHub, EventType
from agent.api.metrics import Metrics
from agent.config import Config
from agent.errors import IdAgentError, ReaderError
from agent.icao.keys import AccessKey, CanKey, MrzKey
from agent.identity import Identity
from agent.logs import forget_sensitive, register_sensitive
from agent.pipeline import (
    PROBABLE_CLONE,
    VERIFIED,
    ChipPipeline,
    Forwards,
    QrDecoder,
    QrScan,
    QrSource,
    ReadOutcome,
)
from agent.readers.base import CardConnection, EventKind, ReaderBackend, ReaderEvent

logger = logging.getLogger(__name__)

#: a key typed in or scanned is used for a card that arrives within this many seconds
KEY_WINDOW = 120.0
#: access-denied exit code in the CLI contract (TEAM.md): the ACCESS layer's errors carry it
ACCESS_DENIED_EXIT = 5
HOUSEKEEPING_PERIOD = 0.25


class AccessNeededError(IdAgentError):
    code = "need_access"
    exit_code = 5
    hint = "Scan the QR code on the card, or type the 6-digit card access number (the last 6 digits of the ID number)."


class InternalError(IdAgentError):
    code = "internal"
    exit_code = 1
    hint = "Lay the card down again; if it repeats, send the agent's log to IT."


class CloneRefusedError(IdAgentError):
    code = "probable_clone"
    exit_code = 2
    hint = "Ask for another identity document; report the card to the issuing police office."


class AlteredDataRefusedError(IdAgentError):
    code = "altered_data"
    exit_code = 2
    hint = "Ask for another identity document; the data on this chip do not match their signature."


class NotConfiguredError(IdAgentError):
    code = "not_configured"
    exit_code = 3


class NoIdentityError(IdAgentError):
    code = "no_identity"
    exit_code = 4
    hint = "Lay the card on the reader (or scan its QR code) first."


@dataclass
class Current:
    """The identity on show, with what happened to it since it was read."""

    read_id: int
    reader: str
    identity: Identity
    verification: dict[str, Any]
    created: float
    access: dict[str, str] = field(default_factory=dict)
    lookup: dict[str, Any] | None = None
    intake: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self, *, photo: bool = False, compat: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "read_id": self.read_id, "reader": self.reader,
            "identity": self.identity.to_dict(photo=photo),
            "has_photo": self.identity.photo_jpeg is not None,
            "photo_url": "/identity/photo.jpg" if self.identity.photo_jpeg else None,
            "verification": self.verification, "lookup": self.lookup, "intake": self.intake,
            "access": self.access,
        }
        if compat:
            out["compat"] = self.identity.to_compat_dict()
        return out


def _sensitive_values(identity: Identity) -> list[str | None]:
    return [identity.id_number, identity.old_id_number, identity.document_number, identity.full_name,
            identity.father_name, identity.mother_name, identity.spouse_name]


class IdentityStore:
    """The one current identity, thread-safe, with its TTL."""

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._current: Current | None = None
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def get(self) -> Current | None:
        with self._lock:
            return self._current

    def put(self, current: Current) -> Current | None:
        register_sensitive(_sensitive_values(current.identity))
        with self._lock:
            previous, self._current = self._current, current
        return previous

    def update(self, read_id: int, **changes: Any) -> Current | None:
        with self._lock:
            current = self._current
            if current is None or current.read_id != read_id:
                return None
            for name, value in changes.items():
                setattr(current, name, value)
            return current

    def drop(self, *, reader: str | None = None, expired: bool = False) -> Current | None:
        """Drop the identity (only the one from ``reader`` / only if expired, when asked)."""
        with self._lock:
            current = self._current
            if current is None:
                return None
            if reader is not None and current.reader != reader:
                return None
            if expired and self._clock() - current.created < self.ttl:
                return None
            self._current = None
        wipe(current)
        return current


def wipe(current: Current) -> None:
    forget_sensitive(_sensitive_values(current.identity))
    current.identity.clear()
    current.lookup = None
    current.intake = None


class ReaderWorker:
    """Reads the cards of one reader, one at a time, on its own thread."""

    def __init__(self, daemon: Daemon, backend: ReaderBackend, reader: str) -> None:
        self.daemon = daemon
        self.backend = backend
        self.reader = reader
        self.inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.card_present = False
        self.waiting_for_key = False
        self.busy = False
        self.present_at = 0.0
        self._thread = threading.Thread(target=self._run, name=f"reader:{reader}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.inbox.put(("stop", None))

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

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
            elif kind == "keys" and self.card_present and self.waiting_for_key:
                self._attempt(payload)

    def _attempt(self, given: list[AccessKey] | None) -> None:
        keys = given if given else self.daemon.keys_for_card()
        if not keys:
            self.waiting_for_key = True
            self.daemon.hub.publish(EventType.NEED_ACCESS, {
                "reader": self.reader, "reason": "no_key",
                "message": "Quét mã QR trên thẻ, hoặc nhập 6 số cuối của số CCCD để mở chip.",
                "hint": AccessNeededError.hint})
            return
        self.waiting_for_key = False
        self.busy = True
        try:
            self.daemon.read_card(self.backend, self.reader, keys, self.present_at, worker=self)
        except Exception:  # noqa: BLE001 - a bug below must not kill this reader's thread for good
            logger.exception("unexpected failure while reading on %s", self.reader)
            self.daemon.metrics.read_failures.inc(reason="internal")
            self.daemon.publish_error(InternalError("the read failed unexpectedly"), reader=self.reader)
        finally:
            self.busy = False


class Daemon:
    """Wires readers, QR sources, the chip pipeline, forwards and the API."""

    def __init__(self, config: Config, *, pipeline: ChipPipeline, backends: list[ReaderBackend] | None = None,
                 qr_decoder: QrDecoder | None = None, qr_sources: list[QrSource] | None = None,
                 forwards: Forwards | None = None, clock: Callable[[], float] = time.monotonic,
                 port: int | None = None, config_loader: Callable[[], Config] | None = None) -> None:
        self.config = config
        self.pipeline = pipeline
        self.qr_decoder = qr_decoder
        self.forwards = forwards
        self.clock = clock
        self.metrics = Metrics()
        self.hub = EventHub(on_drop=lambda _c: self.metrics.ws_dropped.inc())
        self.store = IdentityStore(config.api.identity_ttl, clock)
        self.port = config.api.port if port is None else port
        self._config_loader = config_loader
        self._backends: list[ReaderBackend] = list(backends) if backends is not None else []
        self._backend_factory = backends is None
        self._qr_sources: list[QrSource] = list(qr_sources or [])
        self._qr_factory = qr_sources is None
        self._rewire_on_reload = False
        self._workers: dict[str, ReaderWorker] = {}
        self._workers_lock = threading.Lock()
        self._pending_key: tuple[AccessKey, float] | None = None
        self._last_qr: QrScan | None = None
        self._key_lock = threading.Lock()
        self._intake_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="forward")
        self._api: Any = None  # agent.api.server.ApiServer, imported lazily (it imports us)
        self.started_at = time.time()
        self.metrics.gauge("idagent_ws_clients", "WebSocket clients connected.", lambda: self.hub.client_count)
        self.metrics.gauge("idagent_identity_in_memory", "1 while an identity is held in memory.",
                           lambda: 1 if self.store.get() else 0)

    @classmethod
    def from_config(cls, config: Config, *, config_loader: Callable[[], Config] | None = None,
                    backends: list[ReaderBackend] | None = None, port: int | None = None) -> Daemon:
        """The production wiring: real chip pipeline, QR decoder, forwards and sources."""
        from agent.pipeline import CccdQrDecoder, ConfiguredForwards, IcaoPipeline

        daemon = cls(config, pipeline=IcaoPipeline.from_config(config), backends=backends,
                     qr_decoder=CccdQrDecoder(config.card.no_expiry_year), qr_sources=None,
                     forwards=ConfiguredForwards(config), port=port, config_loader=config_loader)
        daemon._rewire_on_reload = True
        return daemon

    def _rewire(self, config: Config) -> None:
        """New trust store, QR rules and forwards from a reloaded config."""
        from agent.pipeline import CccdQrDecoder, ConfiguredForwards, IcaoPipeline

        pipeline = IcaoPipeline.from_config(config)
        forwards = ConfiguredForwards(config)
        old, self.forwards = self.forwards, forwards
        self.pipeline = pipeline
        self.qr_decoder = CccdQrDecoder(config.card.no_expiry_year)
        if old is not None:
            old.close()

    # ---------------------------------------------------------------- life cycle
    def start(self) -> None:
        """Start the API and the watchers; returns once the API listens."""
        from agent.api.server import ApiServer

        self._api = ApiServer(self)
        self._api.start()
        self.port = self._api.port
        self._start_watchers()
        housekeeping = threading.Thread(target=self._housekeeping, name="housekeeping", daemon=True)
        housekeeping.start()
        self._threads.append(housekeeping)
        logger.info("agent started: API on http://%s:%d, %d reader backend(s), %d QR source(s)",
                    self.config.api.host, self.port, len(self._backends), len(self._qr_sources))

    def _start_watchers(self) -> None:
        if self._backend_factory:
            self._backends = make_backends(self.config)
        if self._qr_factory:
            from agent.pipeline import make_qr_sources

            self._qr_sources = make_qr_sources(self.config)
        for backend in self._backends:
            thread = threading.Thread(target=self._monitor, args=(backend,), name=f"monitor:{backend.name}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        for source in self._qr_sources:
            thread = threading.Thread(target=self._watch_qr, args=(source,), name=f"qr:{source.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _stop_watchers(self, timeout: float = 2.0) -> None:
        self._stop.set()
        with self._workers_lock:
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            worker.stop()
        for thread in self._threads:
            thread.join(timeout)
        for worker in workers:
            worker.join(timeout)
        self._threads.clear()
        if self._backend_factory:
            for backend in self._backends:
                backend.close()
        self._stop.clear()

    def stop(self) -> None:
        self._stop_watchers()
        dropped = self.store.drop()
        if dropped:
            self.metrics.identity_drops.inc(reason="shutdown")
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._api is not None:
            self._api.stop()
        if self.forwards is not None:
            self.forwards.close()
        logger.info("agent stopped")

    def reload(self) -> None:
        """SIGHUP: re-read the config; restart readers and QR sources with it. The API
        keeps listening (a new host/port needs a restart)."""
        if self._config_loader is None:
            logger.warning("reload asked, but the agent has no config file to re-read")
            return
        try:
            new = self._config_loader()
        except IdAgentError as err:
            logger.error("config reload refused, keeping the old config: %s", err.message)
            return
        if (new.api.host, new.api.port) != (self.config.api.host, self.config.api.port):
            logger.warning("api.host/api.port changed: restart the agent to apply them")
        self._stop_watchers()
        if self._rewire_on_reload:
            try:
                self._rewire(new)
            except IdAgentError as err:
                logger.error("config reload: %s; keeping the old trust store and forwards", err.message)
        self.config = new
        self.store.ttl = new.api.identity_ttl
        if self._api is not None:
            self._api.apply_config(new)
        self._start_watchers()
        logger.info("config reloaded from %s", new.source)

    # ---------------------------------------------------------------- readers
    def _accepts(self, reader: str) -> bool:
        include, exclude = self.config.readers.include, self.config.readers.exclude
        if include and not any(word in reader for word in include):
            return False
        return not any(word in reader for word in exclude)

    def _monitor(self, backend: ReaderBackend) -> None:
        interval = self.config.readers.poll_interval
        failing = False
        while not self._stop.is_set():
            try:
                events = backend.wait_for_events(interval)
                failing = False
            except ReaderError as err:
                if not failing:  # once per outage, not every poll
                    logger.warning("reader backend %s: %s", backend.name, err.message)
                    self.publish_error(err, reader="")
                failing = True
                self._stop.wait(max(interval, 1.0))
                continue
            except Exception:  # noqa: BLE001 - keep watching: one bad poll must not blind the desk
                logger.exception("reader backend %s: unexpected failure while polling", backend.name)
                self._stop.wait(max(interval, 1.0))
                continue
            for event in events:
                if self._accepts(event.reader):
                    self._on_reader_event(backend, event)

    def _on_reader_event(self, backend: ReaderBackend, event: ReaderEvent) -> None:
        now = self.clock()
        if event.kind is EventKind.READER_ATTACHED:
            self._worker(backend, event.reader)
            self.hub.publish(EventType.READER_ATTACHED, {"reader": event.reader, "backend": backend.name})
        elif event.kind is EventKind.READER_DETACHED:
            with self._workers_lock:
                worker = self._workers.pop(event.reader, None)
            if worker is not None:
                worker.stop()
            self._card_gone(event.reader, "reader_detached")
            self.hub.publish(EventType.READER_DETACHED, {"reader": event.reader})
        elif event.kind is EventKind.CARD_INSERTED:
            self.hub.publish(EventType.CARD_PRESENT, {"reader": event.reader, "atr": event.atr.hex().upper()})
            self._worker(backend, event.reader).inbox.put(("card", now))
        elif event.kind is EventKind.CARD_REMOVED:
            worker = self._workers.get(event.reader)
            if worker is not None:
                worker.inbox.put(("removed", None))
            self.hub.publish(EventType.CARD_REMOVED, {"reader": event.reader})
            self._card_gone(event.reader, "removed")

    def _worker(self, backend: ReaderBackend, reader: str) -> ReaderWorker:
        with self._workers_lock:
            worker = self._workers.get(reader)
            if worker is None:
                worker = ReaderWorker(self, backend, reader)
                self._workers[reader] = worker
                worker.start()
            return worker

    def _card_gone(self, reader: str, reason: str) -> None:
        dropped = self.store.drop(reader=reader)
        if dropped is not None:
            self.metrics.identity_drops.inc(reason=reason)
            self.hub.publish(EventType.IDENTITY_CLEARED, {"reason": reason, "read_id": dropped.read_id})

    def readers(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for backend in self._backends:
            try:
                infos = backend.list_readers()
            except ReaderError as err:
                out.append({"backend": backend.name, "error": err.to_dict()})
                continue
            for info in infos:
                if not self._accepts(info.name):
                    continue
                worker = self._workers.get(info.name)
                entry = info.to_dict()
                entry["backend"] = entry.get("backend") or backend.name
                entry["busy"] = bool(worker and worker.busy)
                entry["waiting_for_key"] = bool(worker and worker.waiting_for_key)
                out.append(entry)
        return out

    # ---------------------------------------------------------------- keys and QR
    def keys_for_card(self) -> list[AccessKey]:
        """Keys for a card just laid down: one typed in (API) first, then the QR's."""
        now = self.clock()
        keys: list[AccessKey] = []
        with self._key_lock:
            if self._pending_key is not None:
                key, at = self._pending_key
                self._pending_key = None
                if now - at <= KEY_WINDOW:
                    keys.append(key)
            if self._last_qr is not None and now - self._last_qr.at <= KEY_WINDOW:
                keys += [k for k in self._last_qr.keys if k not in keys]
        return keys

    def submit_key(self, key: AccessKey, reader: str | None = None) -> dict[str, Any]:
        """A key from the API. Readers waiting for one get it now; otherwise it is kept
        for the next card (for ``KEY_WINDOW`` seconds)."""
        waiting = [w for w in list(self._workers.values())
                   if w.waiting_for_key and (reader is None or w.reader == reader)]
        if reader is not None and reader not in self._workers:
            from agent.errors import NoReaderError

            raise NoReaderError("no such reader")
        if waiting:
            for worker in waiting:
                worker.inbox.put(("keys", [key]))
            return {"status": "reading", "readers": [w.reader for w in waiting]}
        with self._key_lock:
            self._pending_key = (key, self.clock())
        return {"status": "waiting_for_card"}

    def on_qr_text(self, text: str | bytes, source: str = "api") -> dict[str, Any]:
        if self.qr_decoder is None:
            raise IdAgentError("QR decoding is not available in this agent", hint="Check the agent's install.")
        try:
            scan = self.qr_decoder.decode(text)
        except IdAgentError:
            self.metrics.qr_scans.inc(result="bad_payload")
            raise
        scan.at = self.clock()
        self.metrics.qr_scans.inc(result="ok")
        with self._key_lock:
            self._last_qr = scan
        self.hub.publish(EventType.QR_SCANNED, {"source": source, "keys": len(scan.keys)})
        waiting = [w for w in list(self._workers.values()) if w.waiting_for_key]
        for worker in waiting:
            worker.inbox.put(("keys", list(scan.keys)))  # the CAN first, then MRZ candidates
        return {"status": "reading" if waiting else "waiting_for_card", "keys": len(scan.keys)}

    def _watch_qr(self, source: QrSource) -> None:
        while not self._stop.is_set():
            try:
                for payload in source.payloads(self._stop):
                    try:
                        self.on_qr_text(payload, source=source.name)
                    except IdAgentError as err:
                        self.publish_error(err, reader="")
            except IdAgentError as err:  # the device is gone or unusable: say so, retry later
                self.publish_error(err, reader="")
            except Exception:  # noqa: BLE001 - keep watching: one bad frame must not end QR scanning
                logger.exception("QR source %s: unexpected failure", source.name)
            self._stop.wait(2.0)

    def _recent_qr_identity(self) -> Identity | None:
        with self._key_lock:
            scan = self._last_qr
            if scan is None or self.clock() - scan.at > KEY_WINDOW:
                return None
            self._last_qr = None  # one QR goes with one card
            return scan.identity

    # ---------------------------------------------------------------- reading
    def read_card(self, backend: ReaderBackend, reader: str, keys: list[AccessKey], present_at: float,
                  worker: ReaderWorker | None = None) -> None:
        """Open, read and verify the card with the first key that works (on the
        reader's worker thread); publish the results; start the forwards."""
        self.hub.publish(EventType.READ_STARTED, {"reader": reader})
        outcome: ReadOutcome | None = None
        last_denied: IdAgentError | None = None
        interrupted: IdAgentError | None = None
        for key in keys:
            try:
                with backend.connect(reader) as connection:
                    outcome = self._read_once(connection, reader, key)
                break
            except IdAgentError as err:
                if getattr(err, "exit_code", None) == ACCESS_DENIED_EXIT:
                    last_denied = err
                    continue
                if err.code == "pace_interrupted" and key is not keys[-1]:
                    # PACE broke off: the QR's MRZ candidates (BAC) may still open the chip
                    interrupted = err
                    continue
                self.metrics.read_failures.inc(reason=err.code)
                self.metrics.reads.inc(outcome="error")
                self.publish_error(err, reader=reader)
                return
        if outcome is None and interrupted is not None:
            # the CAN's PACE broke off and no other key opened the chip: the card most
            # likely moved; "wrong number" would send the clerk the wrong way
            self.metrics.read_failures.inc(reason=interrupted.code)
            self.metrics.reads.inc(outcome="error")
            self.publish_error(interrupted, reader=reader)
            return
        if outcome is None:
            denied = last_denied or AccessNeededError("the card refused the access key")
            self.metrics.read_failures.inc(reason="access_denied")
            self.metrics.reads.inc(outcome="error")
            self.publish_error(denied, reader=reader)
            if worker is not None:
                worker.waiting_for_key = True
            self.hub.publish(EventType.NEED_ACCESS, {
                "reader": reader, "reason": "key_refused",
                "message": "Số vừa nhập không mở được chip. Kiểm tra lại 6 số cuối của số CCCD.",
                "hint": AccessNeededError.hint})
            return
        self._publish_outcome(reader, outcome, present_at)

    def _read_once(self, connection: CardConnection, reader: str, key: AccessKey) -> ReadOutcome:
        last_sent = [0.0]

        def on_progress(name: str, done: int, total: int) -> None:
            now = time.monotonic()
            # at most ~20 events a second per reader, plus each file's last chunk
            if done >= total or now - last_sent[0] >= 0.05:
                last_sent[0] = now
                self.hub.publish(EventType.READ_PROGRESS,
                                 {"reader": reader, "file": name, "done": done, "total": total})

        started = time.monotonic()
        outcome = self.pipeline.read(connection, key, on_progress)
        if not outcome.read_seconds:
            outcome.read_seconds = time.monotonic() - started
        if not outcome.access:
            outcome.access = {"key": "can" if isinstance(key, CanKey) else "mrz" if isinstance(key, MrzKey) else ""}
        return outcome

    def _publish_outcome(self, reader: str, outcome: ReadOutcome, present_at: float) -> None:
        identity = outcome.identity
        qr_identity = self._recent_qr_identity()
        if qr_identity is not None:
            # a QR of another person (another ID number) is not merged: its fields would
            # fill gaps in this card's record
            if identity.id_number is None or qr_identity.id_number in (None, identity.id_number):
                identity = identity.merge(qr_identity)
            else:
                logger.warning("the QR scanned before this card belongs to another ID number: not merged")
            qr_identity.clear()
        status = str(outcome.verification.get("status", "error"))
        current = Current(read_id=self.store.next_id(), reader=reader, identity=identity,
                          verification=outcome.verification, created=self.clock(), access=outcome.access)
        previous = self.store.put(current)
        if previous is not None:
            self.metrics.identity_drops.inc(reason="replaced")
            wipe(previous)
        self.metrics.reads.inc(outcome=status)
        self.metrics.read_seconds.observe(outcome.read_seconds)
        total = time.monotonic() - present_at if self.clock is time.monotonic else outcome.read_seconds
        overhead = max(0.0, total - outcome.read_seconds)
        current.timings = {"read_ms": round(outcome.read_seconds * 1000, 2), "total_ms": round(total * 1000, 2)}
        lookup_pending = bool(self.forwards and self.forwards.bhyt_enabled())
        payload = current.to_dict()
        payload["timings"] = current.timings
        payload["lookup_pending"] = lookup_pending
        compat = {**identity.to_compat_dict(), "faceImage": None}
        if identity.photo_jpeg:
            import base64

            compat["faceImage"] = base64.b64encode(identity.photo_jpeg).decode("ascii")
        self.hub.publish(EventType.IDENTITY_READY, payload, compat=compat)
        self.metrics.overhead_seconds.observe(overhead)
        self.hub.publish(EventType.VERIFICATION, {"reader": reader, "read_id": current.read_id,
                                                  **outcome.verification})
        logger.info("card read on %s: %s (%.0f ms read, %.1f ms agent)", reader,
                    "verified" if status == VERIFIED else "probable clone" if status == PROBABLE_CLONE else status,
                    outcome.read_seconds * 1000, overhead * 1000)
        if lookup_pending:
            self.start_lookup(current)

    # ---------------------------------------------------------------- forwards
    def current_or_raise(self) -> Current:
        current = self.store.get()
        if current is None:
            raise NoIdentityError("no identity in memory")
        return current

    def start_lookup(self, current: Current) -> concurrent.futures.Future[dict[str, Any]]:
        if self.forwards is None or not self.forwards.bhyt_enabled():
            raise NotConfiguredError("BHYT lookup is not configured",
                                     hint="Set [bhyt] enabled = true and base_url in the config.")
        self.hub.publish(EventType.LOOKUP_STARTED, {"read_id": current.read_id, "kind": "bhyt"})
        return self._executor.submit(self._lookup, current.read_id, current.identity)

    def _lookup(self, read_id: int, identity: Identity) -> dict[str, Any]:
        assert self.forwards is not None
        started = time.monotonic()
        try:
            result = self.forwards.bhyt(identity)
        except IdAgentError as err:
            result = {"status": "error", "error": err.to_dict()}
        except Exception as err:  # noqa: BLE001 - a forward bug must not kill the executor silently
            logger.exception("BHYT lookup crashed")
            result = {"status": "error", "error": {"code": "internal", "message": type(err).__name__,
                                                   "hint": IdAgentError.hint}}
        self.metrics.lookup_seconds.observe(time.monotonic() - started)
        self.metrics.lookups.inc(result=str(result.get("status", "unknown")))
        if self.store.update(read_id, lookup=result) is not None:
            self.hub.publish(EventType.LOOKUP_RESULT, {"read_id": read_id, "kind": "bhyt", **result},
                             compat=result)
        return result

    def submit_intake(self) -> dict[str, Any]:
        current = self.current_or_raise()
        if self.forwards is None or not self.forwards.intake_enabled():
            raise NotConfiguredError("intake is not configured",
                                     hint="Set [intake] enabled = true and url in the config.")
        if current.verification.get("status") == PROBABLE_CLONE:
            raise CloneRefusedError("the chip is probably a copy: its data are not sent on as a dossier")
        passive = current.verification.get("passive")
        if isinstance(passive, dict) and passive.get("status") == "invalid":
            raise AlteredDataRefusedError("the card's data were altered after signing: they are not sent on "
                                          "as a dossier")
        with self._intake_lock:
            # one read is one dossier: a client retrying POST /intake gets the first
            # receipt (same idempotency key), not a second dossier the receiver cannot dedup
            if current.intake is not None:
                return current.intake
            try:
                receipt = self.forwards.intake(current.identity)
            except IdAgentError:
                self.metrics.intakes.inc(result="error")
                raise
            self.metrics.intakes.inc(result="queued")
            self.store.update(current.read_id, intake=receipt)
        self.hub.publish(EventType.INTAKE_RESULT, {"read_id": current.read_id, **receipt})
        return receipt

    def clear_identity(self, reason: str = "api") -> bool:
        dropped = self.store.drop()
        if dropped is None:
            return False
        self.metrics.identity_drops.inc(reason=reason)
        self.hub.publish(EventType.IDENTITY_CLEARED, {"reason": reason, "read_id": dropped.read_id})
        return True

    def publish_error(self, err: IdAgentError, *, reader: str) -> None:
        self.hub.publish(EventType.ERROR, {"reader": reader, **err.to_dict()},
                         compat={"code": err.code, "message": err.message})

    def _housekeeping(self) -> None:
        while not self._stop.wait(HOUSEKEEPING_PERIOD):
            self.expire()

    def expire(self) -> bool:
        """Drop what outlived its time: the identity (TTL), a QR scan or a typed key
        that no card came for (``KEY_WINDOW``)."""
        now = self.clock()
        with self._key_lock:
            if self._last_qr is not None and now - self._last_qr.at > KEY_WINDOW:
                self._last_qr.identity.clear()
                self._last_qr = None
            if self._pending_key is not None and now - self._pending_key[1] > KEY_WINDOW:
                self._pending_key = None
        dropped = self.store.drop(expired=True)
        if dropped is None:
            return False
        self.metrics.identity_drops.inc(reason="ttl")
        self.hub.publish(EventType.IDENTITY_CLEARED, {"reason": "ttl", "read_id": dropped.read_id})
        return True

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "uptime_s": round(time.time() - self.started_at, 1),
                "readers": len(self._workers), "backends": [b.name for b in self._backends],
                "qr_sources": [s.name for s in self._qr_sources],
                "identity": self.store.get() is not None,
                "bhyt": bool(self.forwards and self.forwards.bhyt_enabled()),
                "intake": bool(self.forwards and self.forwards.intake_enabled())}


def make_backends(config: Config) -> list[ReaderBackend]:
    from agent.readers.registry import make_backend

    return [make_backend(name, config) for name in config.readers.backends]


def run_until_signalled(daemon: Daemon, *, on_ready: Callable[[], None] | None = None) -> int:
    """Run in the main thread until SIGTERM/SIGINT; SIGHUP reloads the config."""
    import signal

    stop = threading.Event()
    reload_asked = threading.Event()

    def _on_stop(_sig: int, _frame: object) -> None:
        stop.set()

    def _on_hup(_sig: int, _frame: object) -> None:
        reload_asked.set()

    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    signal.signal(signal.SIGTERM, _on_stop)
    signal.signal(signal.SIGINT, _on_stop)
    signal.signal(signal.SIGHUP, _on_hup)
    try:
        daemon.start()
        if on_ready is not None:
            on_ready()
        while not stop.wait(0.2):
            if reload_asked.is_set():
                reload_asked.clear()
                daemon.reload()
    finally:
        daemon.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


__all__ = ["Daemon", "Current", "IdentityStore", "AccessNeededError", "NoIdentityError", "NotConfiguredError",
           "run_until_signalled"]
