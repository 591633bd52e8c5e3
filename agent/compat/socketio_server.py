"""The reader-kit Socket.IO service (``[compat] enabled = true``): the protocol of the
reader kits sold for CCCD cards (``agent.compat.kit``), served by the agent so that
desk software written for a kit works unchanged.

* A real Socket.IO server (python-socketio, Engine.IO v4: what the npm
  ``socket.io-client`` 4.x speaks) on aiohttp, on its own address and port (default
  127.0.0.1:8000), http or https (``tls_cert``/``tls_key``), on its own asyncio loop
  and thread: a slow kit client never slows the native API.
* The daemon's events arrive through the event hub's listeners, on the reader
  threads. The payloads of a read are built right there, while the identity is
  still held (it may be wiped a moment later), and only when a client is connected.
* Security: kit clients send no token. The service binds loopback unless configured;
  a browser's Origin must be in ``allowed_origins`` (checked by Engine.IO at the
  handshake; a program sends no Origin); at most ``MAX_CLIENTS`` connections; the data
  of a card that failed verification are not sent unless ``send_unverified``.
* The webcam (``camera``) streams ``/image`` on ``camera_port`` only while a client is
  connected there (``agent.compat.webcam``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

import socketio
from aiohttp import web

from agent import __version__
from agent.compat import kit
from agent.compat.active_auth import keys_of, sign_challenge
from agent.config import CompatSection, ConfigValueError
from agent.desk.events import IdentityShown
from agent.desk.session import Current
from agent.errors import IdAgentError
from agent.loopthread import start_loop_thread, stop_loop_thread

logger = logging.getLogger(__name__)

#: connections beyond this are refused (each costs a socket and its buffers)
MAX_CLIENTS = 32
#: seconds a /get_aa may take (a read in progress on the card goes first)
AA_TIMEOUT = 30.0
#: the event name of every card event, and of the client events (the kits' names)
EVENT = "/event"


class Desk(Protocol):
    """What the service needs from the daemon."""

    @property
    def hub(self) -> Any: ...

    @property
    def store(self) -> Any: ...

    def on_card(self, job: Callable[[Any], Any]) -> Future[Any]: ...

    def reread(self, keys: list[Any]) -> dict[str, Any]: ...


def ssl_context(config: CompatSection) -> ssl.SSLContext | None:
    """HTTPS when both ``tls_cert`` and ``tls_key`` are set; a clear error otherwise."""
    if not config.tls_cert and not config.tls_key:
        return None
    if not (config.tls_cert and config.tls_key):
        raise ConfigValueError("[compat] tls_cert and tls_key go together: one is set, the other is empty",
                               hint="Set both (PEM files) for https, or neither for http.")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigValueError(f"[compat] tls_cert/tls_key: cannot load {config.tls_cert} / {config.tls_key}: {exc}",
                               hint="Give a PEM certificate and its PEM private key "
                                    "(python -m agent.compat.tls DIR makes a pair).") from exc
    return context


def origin_check(allowed: list[str]) -> Callable[[str | None], bool]:
    """Engine.IO calls this with the handshake's Origin (never pass it [] : that turns
    Engine.IO's check off)."""
    allowed_set = {o.rstrip("/") for o in allowed}

    def check(origin: str | None) -> bool:
        ok = origin is None or origin in allowed_set
        if not ok:
            logger.warning("reader-kit service: connection from origin %s refused (not in [compat] allowed_origins)",
                           origin)
        return ok

    return check


class CompatService:
    """The kit protocol for every client of ``host:port``; start/stop from the daemon."""

    def __init__(self, desk: Desk, config: CompatSection, *, no_expiry_year: int = 2099,
                 prefer: str = "pace") -> None:
        self.desk = desk
        self.config = config
        self.no_expiry_year = no_expiry_year
        self.prefer = prefer
        self.host = config.host
        self.port = config.port
        self.camera_port = config.camera_port
        self.scheme = "http"
        self._ssl = ssl_context(config)
        if self._ssl is not None:
            self.scheme = "https"
        # always_connect: the connection is acknowledged before the connect handler runs,
        # so that /info, emitted there, reaches the client after its "connect" (a packet
        # before the acknowledgement is dropped by socket.io-client)
        self.sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins=origin_check(config.allowed_origins),
                                        always_connect=True, logger=False, engineio_logger=False)
        self._clients: set[str] = set()
        self._serial_nfc = kit.reader_serial("")
        self._serial_device = kit.reader_serial(socket.gethostname())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runners: list[web.AppRunner] = []
        self._tasks: set[asyncio.Future[None]] = set()
        self.camera: Any = None
        self._register()

    # ---------------------------------------------------------------- Socket.IO handlers
    @property
    def client_count(self) -> int:
        """Kit clients connected now."""
        return len(self._clients)

    def _register(self) -> None:
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("/get_aa", self._on_get_aa)
        self.sio.on("/input_data", self._on_input_data)

    async def _on_connect(self, sid: str, environ: dict[str, Any], _auth: Any = None) -> bool:
        if len(self._clients) >= MAX_CLIENTS:
            logger.warning("reader-kit service: connection refused, %d clients already", MAX_CLIENTS)
            return False
        self._clients.add(sid)
        now = dt.datetime.now().astimezone()
        await self.sio.emit("/info", kit.info(__version__, self._serial_nfc, self._serial_device, now), to=sid)
        return True

    async def _on_disconnect(self, sid: str, *_reason: Any) -> None:
        self._clients.discard(sid)

    async def _on_get_aa(self, sid: str, payload: Any) -> None:
        """``/get_aa {clientId, challenge}``: the card on the reader signs the client's
        challenge; the answer (id 7) goes to ``clientId`` (the kits' documents: the
        client's Socket.IO id) when it is connected, else to the asking client."""
        client_id = payload.get("clientId") if isinstance(payload, dict) else None
        if client_id in self._clients:
            sid = str(client_id)
        try:
            challenge = kit.challenge_from(payload)
            current = self.desk.store.get()
            if current is None:
                raise _NeedAccess("no card data to open the chip with")
            keys = keys_of(current.identity, no_expiry_year=self.no_expiry_year)

            def job(worker: Any) -> bytes:
                with worker.backend.connect(worker.reader) as connection:
                    return sign_challenge(connection, keys, challenge, prefer=self.prefer)

            future = self.desk.on_card(job)
            signature = await asyncio.wait_for(asyncio.wrap_future(future), AA_TIMEOUT)
        except IdAgentError as err:
            logger.info("reader-kit /get_aa failed: %s (%s)", err.code, err.message)
            await self.sio.emit(EVENT, kit.failure(err.code), to=sid)
            return
        except TimeoutError:
            await self.sio.emit(EVENT, kit.failure("card_removed"), to=sid)
            return
        await self.sio.emit(EVENT, kit.aa_answer(signature, challenge), to=sid)

    async def _on_input_data(self, sid: str, payload: Any) -> None:
        """``/input_data {idCode, dateOfBirth, expiryDate}``: read the card again with
        those data; the read's events (ids 2, 4, 5 or 3) go to every client."""
        try:
            keys = kit.keys_from_input(payload)
            self.desk.reread(keys)
        except IdAgentError as err:
            await self.sio.emit(EVENT, kit.failure(err.code), to=sid)

    # ---------------------------------------------------------------- daemon events
    def on_event(self, event: Any) -> None:
        """Hub listener, on the publishing (reader) thread: keep it cheap."""
        if not self._clients or self._loop is None:
            return
        try:
            messages = self.messages_for(event)
        except Exception:  # noqa: BLE001 - a fault here must never reach the reader thread's read
            logger.exception("reader-kit service: event %s not sent", getattr(event, "type", "?"))
            return
        if messages:
            self._loop.call_soon_threadsafe(self._send, messages)

    def messages_for(self, event: Any) -> list[dict[str, Any]]:
        """The kit events for one daemon event (built now: the identity may be wiped soon)."""
        kind = str(getattr(event.type, "value", event.type))
        if kind == "card_present":
            self._serial_nfc = kit.reader_serial(str(event.data.get("reader", "")),
                                                 bytes.fromhex(str(event.data.get("atr", ""))))
            return [kit.new_card()]
        if kind == "identity_ready" and isinstance(event.data, IdentityShown):
            return self._read_messages(event.data.current)
        if kind == "error":
            return [kit.failure(str(event.data.get("code", "")))]
        if kind == "need_access":
            return [kit.failure("access_denied" if event.data.get("reason") == "key_refused" else "need_access")]
        return []

    def _read_messages(self, current: Current) -> list[dict[str, Any]]:
        """Ids 2, 4, 5 (or 3) for the identity just put on show (the typed record the
        ``identity_ready`` event carries), unless another one replaced it already."""
        if self.desk.store.get() is not current:
            return []
        read_id = current.read_id
        verification = current.verification
        if not verification.verified and not self.config.send_unverified:
            logger.info("reader-kit service: read %s not verified (%s): its data are not sent", read_id,
                        verification.status.value)
            return [{**kit.failure("unverified"), "data": kit.verdict(verification)}]
        messages = [kit.card_read(current.identity, verification)]
        if self.config.send_raw or self.config.send_photo:
            messages.append(kit.raw_files(current.files, current.identity.photo_jpeg,
                                          send_raw=self.config.send_raw, send_photo=self.config.send_photo))
        messages.append(kit.security(current.files, verification))
        return messages

    def _send(self, messages: list[dict[str, Any]]) -> None:
        task = asyncio.ensure_future(self._emit_in_order(messages))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _emit_in_order(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            await self.sio.emit(EVENT, message)

    # ---------------------------------------------------------------- life cycle
    def start(self, timeout: float = 10.0) -> CompatService:
        try:
            self._loop, self._thread = start_loop_thread("compat", self._startup, timeout, on_failure=self._cleanup)
        except TimeoutError as exc:
            raise IdAgentError("the reader-kit service did not start in time") from exc
        except OSError as exc:
            raise IdAgentError(f"the reader-kit service could not listen on {self.host}:{self.port}: {exc}",
                               hint="Another program (a kit's own service?) holds the port: stop it or set "
                                    "[compat] port.") from exc
        self.desk.hub.listeners.append(self.on_event)
        logger.info("reader-kit service on %s://%s:%d%s", self.scheme, self.host, self.port,
                    f", webcam on port {self.camera_port}" if self.camera is not None else "")
        return self

    async def _listen(self, app: web.Application, port: int) -> int:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, self.host, port, ssl_context=self._ssl, reuse_address=True)
        await site.start()
        server = getattr(site, "_server", None)
        return int(server.sockets[0].getsockname()[1]) if server is not None and server.sockets else port

    async def _startup(self) -> None:
        app = web.Application()
        self.sio.attach(app)
        self.port = await self._listen(app, self.port)
        if self.config.camera:
            from agent.compat.webcam import CameraStream

            self.camera = CameraStream(self.config, origin_check(self.config.allowed_origins),
                                       max_clients=MAX_CLIENTS)
            camera_app = web.Application()
            self.camera.sio.attach(camera_app)
            self.camera_port = await self._listen(camera_app, self.camera_port)

    async def _cleanup(self) -> None:
        if self.camera is not None:
            await self.camera.close()
            await self.camera.sio.shutdown()
        await self.sio.shutdown()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    def stop(self, timeout: float = 5.0) -> None:
        if self.on_event in self.desk.hub.listeners:
            self.desk.hub.listeners.remove(self.on_event)
        stop_loop_thread(self._loop, self._thread, self._cleanup, timeout, "reader-kit service")
        self._loop = None


class _NeedAccess(IdAgentError):
    code = "need_access"
    http_status = 409
