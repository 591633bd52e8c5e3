"""The desk daemon (``idagent run``): the composition root of the desk.

It builds and wires the collaborators of ``agent.desk`` (identity session, key broker,
reader supervisor, card reading, QR intake, forward orchestration), the event hub, the
metrics and the local API, and owns the life cycle: start, SIGHUP reload, stop. The
jobs themselves live in the collaborators; this class only forwards the local API's
calls (``agent.desk.protocol.DeskService``) to them.

Threads, and why:

* one monitor thread per reader backend and one worker thread per reader
  (``agent.desk.supervisor``): a stuck reader blocks only itself;
* one thread per QR source (``agent.desk.qr_intake``); a QR seen just before a card
  supplies its access key;
* a small executor runs forwards (``agent.desk.forwarding``: BHYT lookup, intake), so
  a gateway that is down never delays the next read;
* the API (aiohttp) runs its own asyncio loop in its own thread;
* a housekeeping thread drops the identity after ``config.api.identity_ttl`` and
  keys that no card came for;
* with ``[wedge] enabled``, the keyboard wedge (``agent.wedge.trigger.WedgeTrigger``)
  types the identity on show into the desk application, only on the clerk's request
  (``POST /wedge/type`` from the counter page's key, or the ``[wedge] hotkey``, whose
  X11 grab listens on its own thread).

The current identity lives only in memory and is dropped when its card leaves the
reader, after the TTL, on ``DELETE /identity``, or when the next card is read.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from agent.config import Config
from agent.desk.errors import AccessNeededError, NoIdentityError, NotConfiguredError
from agent.desk.forwarding import ForwardOrchestrator
from agent.desk.key_broker import KEY_WINDOW, KeyBroker
from agent.desk.qr_intake import QrIntake
from agent.desk.reading import CardReading
from agent.desk.session import Current, IdentitySession, IdentityStore
from agent.desk.supervisor import ReaderSupervisor
from agent.errors import IdAgentError
from agent.eventhub import EventHub, EventType
from agent.forward.bhyt_result import Lookup
from agent.icao.keys import AccessKey
from agent.metrics import Metrics
from agent.pipeline import ChipPipeline, Forwards, QrDecoder, QrSource
from agent.readers.base import ReaderBackend
from agent.readpath import make_backends
from agent.wedge.trigger import WedgeTrigger, refusal
from agent.wedge.wedge import Wedge, WedgeDisabled, WedgeSettings
from agent.wedge.x11 import X11Keyboard

logger = logging.getLogger(__name__)

HOUSEKEEPING_PERIOD = 0.25


class Daemon:
    """Wires readers, QR sources, the chip pipeline, forwards and the API."""

    def __init__(self, config: Config, *, pipeline: ChipPipeline, backends: list[ReaderBackend] | None = None,
                 qr_decoder: QrDecoder | None = None, qr_sources: list[QrSource] | None = None,
                 forwards: Forwards | None = None, clock: Callable[[], float] = time.monotonic,
                 port: int | None = None, config_loader: Callable[[], Config] | None = None,
                 wedge_keyboard: Callable[[str | None, float], X11Keyboard] | None = None) -> None:
        """``wedge_keyboard``: the keyboard wedge's X11 backend factory (tests pass a
        recording double; None: the real XTest keyboard)."""
        self.config = config
        self.clock = clock
        self.metrics = Metrics()
        self.hub = EventHub(on_drop=lambda _c: self.metrics.ws_dropped.inc())
        self.store = IdentityStore(config.api.identity_ttl, clock)
        self.session = IdentitySession(self.store, self.hub, self.metrics)
        self.keys = KeyBroker(clock)
        self.forwarding = ForwardOrchestrator(forwards, self.store, self.hub, self.metrics)
        self.reading = CardReading(pipeline, self.session, self.keys, self.forwarding, self.hub, self.metrics, clock)
        self.supervisor = ReaderSupervisor(config.readers, reading=self.reading, session=self.session,
                                           keys_for_card=self.keys.keys_for_card, hub=self.hub,
                                           metrics=self.metrics, clock=clock)
        self.qr = QrIntake(qr_decoder, keys=self.keys, readers=self.supervisor, hub=self.hub,
                           metrics=self.metrics, clock=clock)
        self.port = config.api.port if port is None else port
        self._config_loader = config_loader
        self._backends: list[ReaderBackend] = list(backends) if backends is not None else []
        self._backend_factory = backends is None
        self._qr_sources: list[QrSource] = list(qr_sources or [])
        self._qr_factory = qr_sources is None
        self._rewire_on_reload = False
        self._stop = threading.Event()
        self._housekeeping_thread: threading.Thread | None = None
        self._api: Any = None  # agent.api.server.ApiServer, imported at start (it serves this daemon)
        self.compat: Any = None  # agent.compat.socketio_server.CompatService when [compat] enabled
        self._wedge_keyboard = wedge_keyboard
        #: the keyboard wedge, while [wedge] enabled (started and stopped with the daemon)
        self.wedge: WedgeTrigger | None = None
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

    # ------------------------------------------------------- the parts tests and the bench swap
    @property
    def pipeline(self) -> ChipPipeline:
        return self.reading.pipeline

    @pipeline.setter
    def pipeline(self, pipeline: ChipPipeline) -> None:
        self.reading.pipeline = pipeline

    @property
    def forwards(self) -> Forwards | None:
        return self.forwarding.forwards

    @forwards.setter
    def forwards(self, forwards: Forwards | None) -> None:
        self.forwarding.forwards = forwards

    @property
    def qr_decoder(self) -> QrDecoder | None:
        return self.qr.decoder

    @qr_decoder.setter
    def qr_decoder(self, decoder: QrDecoder | None) -> None:
        self.qr.decoder = decoder

    def _rewire(self, config: Config) -> None:
        """New trust store, QR rules and forwards from a reloaded config."""
        from agent.pipeline import CccdQrDecoder, ConfiguredForwards, IcaoPipeline

        pipeline = IcaoPipeline.from_config(config)
        self.forwarding.replace(ConfiguredForwards(config))
        self.pipeline = pipeline
        self.qr_decoder = CccdQrDecoder(config.card.no_expiry_year)

    # ---------------------------------------------------------------- life cycle
    def start(self) -> None:
        """Start the API and the watchers; returns once the API listens."""
        from agent.api.server import ApiServer

        self._api = ApiServer(self)
        self._api.start()
        self.port = self._api.port
        if self.config.compat.enabled:
            from agent.compat.socketio_server import CompatService

            self.compat = CompatService(self, self.config.compat, no_expiry_year=self.config.card.no_expiry_year,
                                        prefer=self.config.card.prefer).start()
        self._start_watchers()
        self._start_wedge()
        self._housekeeping_thread = threading.Thread(target=self._housekeeping, name="housekeeping", daemon=True)
        self._housekeeping_thread.start()
        logger.info("agent started: API on http://%s:%d, %d reader backend(s), %d QR source(s)",
                    self.config.api.host, self.port, len(self._backends), len(self._qr_sources))

    def _start_watchers(self) -> None:
        if self._backend_factory:
            self._backends = make_backends(self.config)
        if self._qr_factory:
            from agent.pipeline import make_qr_sources

            self._qr_sources = make_qr_sources(self.config)
        self.supervisor.start(self._backends, self.config.readers)
        self.qr.start(self._qr_sources)

    def _start_wedge(self) -> None:
        settings = WedgeSettings.from_config(self.config)
        if not settings.enabled:
            return
        wedge = Wedge(settings, x11_factory=self._wedge_keyboard)
        self.wedge = WedgeTrigger(settings, self.current_or_raise, publish=self._publish_wedge, wedge=wedge).start()
        logger.info("keyboard wedge on: %s backend%s", settings.backend,
                    ", hotkey " + settings.hotkey if settings.hotkey else "")

    def _stop_wedge(self) -> None:
        wedge, self.wedge = self.wedge, None
        if wedge is not None:
            wedge.stop()

    def _publish_wedge(self, result: dict[str, Any]) -> None:
        self.hub.publish(EventType.WEDGE_RESULT, result)

    def _stop_watchers(self, timeout: float = 2.0) -> None:
        self.supervisor.stop(timeout)
        self.qr.stop(timeout)
        if self._backend_factory:
            for backend in self._backends:
                backend.close()

    def stop(self) -> None:
        self._stop.set()
        self._stop_watchers()
        if self._housekeeping_thread is not None:
            self._housekeeping_thread.join(2.0)
        self._stop_wedge()
        self.session.forget("shutdown", announce=False)
        self.keys.forget()
        if self.compat is not None:
            self.compat.stop()
        if self._api is not None:
            self._api.stop()
        self.forwarding.close()
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
        self._stop_wedge()
        self._start_wedge()
        logger.info("config reloaded from %s", new.source)

    def _housekeeping(self) -> None:
        while not self._stop.wait(HOUSEKEEPING_PERIOD):
            self.expire()

    def expire(self) -> bool:
        """Drop what outlived its time: the identity (TTL), a QR scan or a typed key
        that no card came for (``KEY_WINDOW``)."""
        self.keys.expire()
        self.supervisor.forget_keys(self.store.ttl)
        return self.session.forget("ttl", expired=True) is not None

    # ---------------------------------------------------------------- the local API's calls
    def readers(self) -> list[dict[str, Any]]:
        return self.supervisor.listing()

    def keys_for_card(self) -> list[AccessKey]:
        return self.keys.keys_for_card()

    def submit_key(self, key: AccessKey, reader: str | None = None) -> dict[str, Any]:
        """A key from the API. Readers waiting for one get it now; otherwise it is kept
        for the next card (for ``KEY_WINDOW`` seconds)."""
        waiting = self.supervisor.waiting(reader)
        if waiting:
            for worker in waiting:
                worker.give_keys([key])
            return {"status": "reading", "readers": [w.reader for w in waiting]}
        self.keys.hold_key(key)
        return {"status": "waiting_for_card"}

    def on_card(self, job: Callable[[Any], Any]) -> concurrent.futures.Future[Any]:
        """Run ``job(worker)`` on the worker thread of the reader holding the card (the
        current identity's reader first), after any read in progress (reader-kit
        ``/get_aa``). Raises NoCardError."""
        current = self.store.get()
        worker = self.supervisor.card_worker(current.reader if current else None)
        if worker is None:
            from agent.errors import NoCardError

            raise NoCardError("no card on any reader")
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        worker.inbox.put(("job", (job, future)))
        return future

    def reread(self, keys: list[AccessKey]) -> dict[str, Any]:
        """Read the card on the reader again with these keys (reader-kit ``/input_data``);
        with no card down, the first key waits for the next card, as a typed key does."""
        current = self.store.get()
        worker = self.supervisor.card_worker(current.reader if current else None)
        if worker is None:
            self.keys.hold_key(keys[0])
            return {"status": "waiting_for_card"}
        worker.inbox.put(("reread", list(keys)))
        return {"status": "reading", "readers": [worker.reader]}

    def read_again(self, reader: str | None = None) -> dict[str, Any]:
        return {"status": "reading", "readers": [self.supervisor.read_again(reader)]}

    def on_qr_text(self, text: str | bytes, source: str = "api") -> dict[str, Any]:
        return self.qr.on_qr_text(text, source)

    def current(self) -> Current | None:
        return self.store.get()

    def current_or_raise(self) -> Current:
        current = self.store.get()
        if current is None:
            raise NoIdentityError("no identity in memory")
        return current

    def start_lookup(self, current: Current) -> concurrent.futures.Future[Lookup]:
        return self.forwarding.start_lookup(current)

    def submit_intake(self) -> dict[str, Any]:
        return self.forwarding.submit_intake(self.current_or_raise())

    def type_wedge(self) -> dict[str, Any]:
        """``POST /wedge/type``: type the identity on show into the desk application's
        window (blocking: seconds of key events). Raises when refused; nothing typed then."""
        wedge = self.wedge
        if wedge is None:
            current = self.current()
            err = WedgeDisabled("the keyboard wedge is off on this desk ([wedge] enabled = false): nothing typed")
            self._publish_wedge(refusal(err, read_id=current.read_id if current else None, source="page",
                                        backend=self.config.wedge.backend))
            raise err
        return wedge.type_current("page")

    def wedge_status(self) -> dict[str, Any]:
        """For ``GET /health``: enabled, available (else the problem), method, hotkey."""
        if self.wedge is None:
            return Wedge(dataclasses.replace(WedgeSettings.from_config(self.config), enabled=False)).status()
        return self.wedge.status()

    def clear_identity(self, reason: str = "api") -> bool:
        return self.session.forget(reason) is not None

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "uptime_s": round(time.time() - self.started_at, 1),
                "readers": self.supervisor.reader_count, "backends": [b.name for b in self._backends],
                "qr_sources": [s.name for s in self._qr_sources],
                "identity": self.store.get() is not None,
                "bhyt": self.forwarding.lookup_enabled(),
                "intake": self.forwarding.intake_enabled(),
                "wedge": self.wedge_status()}


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


__all__ = ["KEY_WINDOW", "AccessNeededError", "Current", "Daemon", "IdentityStore", "NoIdentityError",
           "NotConfiguredError", "run_until_signalled"]
