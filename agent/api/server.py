"""The local HTTP + WebSocket API and the counter page (aiohttp).

Security (see ``agent.api.auth`` for the reasoning): Host checked against loopback
names (DNS rebinding), Origin checked against the allow-list (403; CORS preflights
too), bearer token on every API route (401), WebSocket token as the first message.
The static counter page is served without a token: it holds no data. Refusals are
logged with the route, the reason and the peer address only: never the token, the
query, the body or any header value.

The server runs its own asyncio loop on its own thread; the desk's threads publish
events into ``agent.eventhub.EventHub`` thread-safely, and ``agent.api.websocket``
sends each client's frames on its WebSocket. Request bodies, access keys and error
answers are read and written by ``agent.api.request``. This module keeps the life
cycle, the guard middleware (Host, Origin, token, CORS) and the routes. The server
depends on the small ``agent.desk.protocol.DeskService`` interface, not on the daemon.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web, web_response
from aiohttp.http_exceptions import HttpProcessingError

from agent.api import render
from agent.api.auth import OriginPolicy, bearer, load_or_create_token, token_matches
from agent.api.fleet import register as register_fleet
from agent.api.guard import ConnectionGuard, parse_host
from agent.api.middleware import MAX_BODY, RequestGate
from agent.api.openapi import openapi_document
from agent.api.request import NoPhotoError, RequestError, dumps, json_body, key_from_body
from agent.api.websocket import EventSockets
from agent.config import Config
from agent.errors import IdAgentError
from agent.eventhub import Shape
from agent.logs import flush_repeats
from agent.loopthread import start_loop_thread, stop_loop_thread

if TYPE_CHECKING:
    from agent.desk.protocol import DeskService

logger = logging.getLogger(__name__)
#: aiohttp's own server log ("Error handling request"): one line per malformed request,
#: without the traceback that quotes the raw request
http_logger = logging.getLogger("agent.api.http")

#: the Server header names no library or version (aiohttp sets "Python/3.x aiohttp/3.y"
#: on every response, its own 400s for malformed requests included)
SERVER_NAME = "idagent"
web_response.SERVER_SOFTWARE = SERVER_NAME  # type: ignore[attr-defined]

STATIC_DIR = Path(__file__).with_name("static")
STATIC_FILES = {"app.js": "application/javascript", "text.js": "application/javascript", "app.css": "text/css"}
KEEPALIVE_S = 15.0


async def _server_header(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_NAME


class _MalformedRequestFilter(logging.Filter):
    """aiohttp logs a malformed request with its exception, whose text repeats the raw
    request line or header (an Authorization value included): keep the peer and the
    kind of fault only."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            status = getattr(exc, "status", None) or getattr(exc, "code", "")
            record.msg = f"{record.msg}: {type(exc).__name__} {status}".rstrip()
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


http_logger.addFilter(_MalformedRequestFilter())


class ApiServer:
    """Serves the desk (any ``DeskService``: ``agent.daemon.Daemon`` in production)."""

    def __init__(self, service: DeskService) -> None:
        self.service = service
        config = service.config
        self.token = load_or_create_token(config.api.token_file)
        self.host = config.api.host
        self.port = service.port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._sweeper: asyncio.TimerHandle | None = None
        self.guard = ConnectionGuard(config.api.max_connections, config.api.max_connections_per_peer,
                                     config.api.unauth_idle, clock=time.monotonic,
                                     on_event=lambda reason: service.metrics.connections_closed.inc(reason=reason))
        self.sockets = EventSockets(service, self.guard, self.token)
        self.gate = RequestGate(service, self.guard, self.token, self.port)
        self.metrics_token = (load_or_create_token(config.metrics.token_file) if config.metrics.enabled else None)
        self._metrics_runner: web.AppRunner | None = None
        self.metrics_port: int | None = None
        self.apply_config(config)
        service.hub.listeners.append(self._note_event)
        service.metrics.gauge("idagent_api_connections", "Open connections to the local API.",
                             lambda: float(self.guard.stats.open))
        register_fleet(service)

    def apply_config(self, config: Config) -> None:
        self.sockets.default_shape = Shape.COMPAT if config.api.compat_events else Shape.NATIVE
        self._allowed_origins = list(config.api.allowed_origins)
        self.gate.policy = OriginPolicy(self._allowed_origins + self._own_origins(), self.host)

    def _own_origins(self) -> list[str]:
        """The counter page's own origin is always allowed (it is our page)."""
        if not self.port:
            return []
        return [f"http://{name}:{self.port}" for name in ("127.0.0.1", "localhost", self.host)]

    def _note_event(self, _event: Any) -> None:
        """Hook for tests and the bench (kept cheap: events come from reader threads)."""

    # ---------------------------------------------------------------- life cycle
    def start(self, timeout: float = 10.0) -> None:
        try:
            self._loop, self._thread = start_loop_thread("api", self._startup, timeout, on_ready=self._bind_hub)
        except TimeoutError as exc:
            raise IdAgentError("the local API did not start in time") from exc
        except OSError as exc:
            raise IdAgentError(f"the local API could not listen on {self.host}:{self.port}: {exc}",
                               hint="Another program (or another idagent) holds the port: stop it or set "
                                    "[api] port.") from exc

    def _bind_hub(self, loop: asyncio.AbstractEventLoop) -> None:
        """The hub fans events out on the API's loop, as frames ``render`` writes."""
        self.service.hub.bind(loop, render.frame)

    async def _startup(self) -> None:
        app = self.make_app()
        app.on_response_prepare.append(_server_header)
        # idle keep-alive connections are closed after KEEPALIVE_S: a client that opens
        # a connection per request cannot pile up thousands of them
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=KEEPALIVE_S,
                                     logger=http_logger)
        await self._runner.setup()
        self.port = self.gate.port = await self._listen(self._runner, self.host, self.port)
        self.gate.policy = OriginPolicy(self._allowed_origins + self._own_origins(), self.host)
        if self.metrics_token is not None:
            await self._start_metrics_listener()
        self._schedule_sweep()

    async def _listen(self, runner: web.AppRunner, host: str, port: int) -> int:
        """Listen through the connection guard (aiohttp's sites have no connection limits)."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(self.guard.wrap(runner.server), host, port,  # type: ignore[arg-type]
                                          reuse_address=True, backlog=128)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def _start_metrics_listener(self) -> None:
        cfg = self.service.config.metrics
        app = web.Application(client_max_size=1024)
        app.add_routes([web.get("/metrics", self.fleet_metrics)])
        app.on_response_prepare.append(_server_header)
        self._metrics_runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                             keepalive_timeout=KEEPALIVE_S, logger=http_logger)
        await self._metrics_runner.setup()
        self.metrics_port = await self._listen(self._metrics_runner, cfg.host, cfg.port)
        logger.info("fleet metrics on http://%s:%d/metrics (bearer token in %s)", cfg.host, self.metrics_port,
                    cfg.token_file)

    def _schedule_sweep(self) -> None:
        """Every second: close unauthenticated idle connections, write log burst summaries."""
        loop = asyncio.get_running_loop()

        def tick() -> None:
            try:
                self.guard.sweep()
                flush_repeats()
            finally:
                self._sweeper = loop.call_later(1.0, tick)

        self._sweeper = loop.call_later(1.0, tick)

    def stop(self, timeout: float = 5.0) -> None:
        stop_loop_thread(self._loop, self._thread, self._shutdown, timeout, "API")

    async def _shutdown(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for server in self._servers:
            server.close()
        await self.sockets.close_all()
        for runner in (self._runner, self._metrics_runner):
            if runner is not None:
                await runner.cleanup()

    # ---------------------------------------------------------------- app
    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self.gate.middleware])
        routes = [
            web.get("/", self.index, name="index"),
            web.get("/static/{name}", self.static, name="static"),
            web.get("/favicon.ico", self.favicon, name="favicon"),
            web.get("/health", self.health, name="health"),
            web.get("/readers", self.readers, name="readers"),
            web.get("/identity", self.get_identity, name="identity"),
            web.delete("/identity", self.delete_identity, name="identity_delete"),
            web.get("/identity/photo.jpg", self.photo, name="photo"),
            web.post("/read", self.read, name="read"),
            web.post("/read/again", self.read_again, name="read_again"),
            web.post("/qr", self.qr, name="qr"),
            web.post("/bhyt/lookup", self.bhyt_lookup, name="bhyt_lookup"),
            web.post("/intake", self.intake, name="intake"),
            web.post("/wedge/type", self.wedge_type, name="wedge_type"),
            web.get("/metrics", self.metrics, name="metrics"),
            web.get("/openapi.json", self.openapi, name="openapi"),
            web.get("/events", self.sockets.handle, name="events"),
        ]
        app.add_routes(routes)
        return app

    # ---------------------------------------------------------------- page
    def _served_origin(self, request: web.Request, scheme: str) -> str:
        """Our own origin rebuilt from the validated Host's parts (never the raw header:
        it reaches the CSP header and the OpenAPI document)."""
        parsed = parse_host(request.headers.get("Host"))
        name = parsed[0] if parsed is not None else "127.0.0.1"
        return f"{scheme}://{name}:{self.port}"

    def _page_headers(self, request: web.Request) -> dict[str, str]:
        ws_origin = self._served_origin(request, "ws")
        return {
            "Content-Security-Policy": (f"default-src 'none'; script-src 'self'; style-src 'self'; "
                                        f"img-src 'self' blob:; connect-src 'self' {ws_origin}; "
                                        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY", "Cache-Control": "no-cache",
        }

    async def index(self, request: web.Request) -> web.StreamResponse:
        body = (STATIC_DIR / "index.html").read_bytes()
        return web.Response(body=body, content_type="text/html", charset="utf-8",
                            headers=self._page_headers(request))

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            raise web.HTTPNotFound()
        body = (STATIC_DIR / name).read_bytes()
        return web.Response(body=body, content_type=STATIC_FILES[name], charset="utf-8",
                            headers=self._page_headers(request))

    async def favicon(self, request: web.Request) -> web.StreamResponse:
        """No icon (browsers ask for one; a 401 here would only fill the log)."""
        return web.Response(status=204)

    # ---------------------------------------------------------------- API
    async def health(self, request: web.Request) -> web.StreamResponse:
        health = await asyncio.get_running_loop().run_in_executor(None, self.service.health)
        return web.json_response(health, dumps=dumps)

    async def readers(self, request: web.Request) -> web.StreamResponse:
        readers = await asyncio.get_running_loop().run_in_executor(None, self.service.readers)
        return web.json_response({"readers": readers}, dumps=dumps)

    async def get_identity(self, request: web.Request) -> web.StreamResponse:
        current = self.service.current_or_raise()
        photo = request.query.get("photo", "0") in ("1", "true")
        compat = request.query.get("compat", "0") in ("1", "true")
        return web.json_response(render.identity_body(current, photo=photo, compat=compat), dumps=dumps)

    async def delete_identity(self, request: web.Request) -> web.StreamResponse:
        cleared = self.service.clear_identity("api")
        return web.json_response({"cleared": cleared})

    async def photo(self, request: web.Request) -> web.StreamResponse:
        current = self.service.current_or_raise()
        jpeg = current.identity.photo_jpeg
        if not jpeg:
            raise NoPhotoError("this card has no displayable photo")
        return web.Response(body=jpeg, content_type="image/jpeg")

    async def read(self, request: web.Request) -> web.StreamResponse:
        body = await json_body(request)
        key = key_from_body(body)
        reader = body.get("reader")
        if reader is not None and not isinstance(reader, str):
            raise RequestError("reader must be a reader name (GET /readers)")
        result = self.service.submit_key(key, reader)
        return web.json_response(result, status=202)

    async def read_again(self, request: web.Request) -> web.StreamResponse:
        body = await json_body(request)
        reader = body.get("reader")
        if reader is not None and not isinstance(reader, str):
            raise RequestError("reader must be a reader name (GET /readers)")
        return web.json_response(self.service.read_again(reader), status=202)

    async def qr(self, request: web.Request) -> web.StreamResponse:
        body = await json_body(request)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > 4096:
            raise RequestError("text must be the QR code's text (1 to 4096 characters)")
        result = self.service.on_qr_text(text, source="api")
        return web.json_response(result, status=202)

    async def bhyt_lookup(self, request: web.Request) -> web.StreamResponse:
        await json_body(request)
        current = self.service.current_or_raise()
        future = self.service.start_lookup(current)
        result = await asyncio.wrap_future(future)
        return web.json_response({"read_id": current.read_id, **render.lookup_body(result)}, dumps=dumps)

    async def intake(self, request: web.Request) -> web.StreamResponse:
        await json_body(request)
        receipt = await asyncio.get_running_loop().run_in_executor(None, self.service.submit_intake)
        return web.json_response(receipt, status=202, dumps=dumps)

    async def wedge_type(self, request: web.Request) -> web.StreamResponse:
        """The counter page's "Gõ vào ứng dụng": type the identity on show into the desk
        application (the answer, and a ``wedge_result`` event, carry no typed text)."""
        await json_body(request)
        result = await asyncio.get_running_loop().run_in_executor(None, self.service.type_wedge)
        return web.json_response(result, dumps=dumps)

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=self.service.metrics.render(), content_type="text/plain",
                            headers={"X-Content-Format": "prometheus-0.0.4"})

    async def openapi(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(openapi_document(self._served_origin(request, "http")))

    async def fleet_metrics(self, request: web.Request) -> web.StreamResponse:
        """The fleet listener's only route: its own scrape token, never the desk API token."""
        assert self.metrics_token is not None
        if not token_matches(self.metrics_token, bearer(request.headers.get("Authorization"))):
            self.service.metrics.auth_refusals.inc(reason="bad_scrape_token")
            logger.warning("metrics scrape refused from %s: no valid scrape token", request.remote or "?")
            return web.Response(status=401, text="a valid scrape token is required\n",
                                headers={"WWW-Authenticate": 'Bearer realm="idagent-metrics"'})
        self.guard.authenticated(request.transport)
        return await self.metrics(request)


__all__ = ["ApiServer"]
