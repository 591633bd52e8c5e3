"""The local HTTP + WebSocket API and the counter page (aiohttp).

Security (see ``agent.api.auth`` for the reasoning): Host checked against loopback
names (DNS rebinding), Origin checked against the allow-list (403; CORS preflights
too), bearer token on every API route (401), WebSocket token as the first message.
The static counter page is served without a token: it holds no data. Refusals are
logged with the route, the reason and the peer address only: never the token, the
query, the body or any header value.

The server runs its own asyncio loop on its own thread; the desk's threads publish
events into ``agent.eventhub.EventHub`` thread-safely, and ``_send_loop`` here sends
each client's frames on its WebSocket. The server depends on the small
``agent.desk.service.DeskService`` interface, not on the daemon.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web, web_response
from aiohttp.http_exceptions import HttpProcessingError

from agent.api.auth import WS_AUTH_TIMEOUT, OriginPolicy, bearer, load_or_create_token, token_matches
from agent.api.fleet import register as register_fleet
from agent.api.guard import ConnectionGuard, parse_host
from agent.api.openapi import openapi_document
from agent.config import Config
from agent.errors import IdAgentError
from agent.eventhub import Client, EventType, Shape, json_plain
from agent.icao.keys import AccessKey, CanKey, MrzKey, yymmdd
from agent.icao.mrz import MrzError, td1_access_key
from agent.logs import flush_repeats

if TYPE_CHECKING:
    from agent.desk.service import DeskService

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
MAX_BODY = 64 * 1024
KEEPALIVE_S = 15.0
#: on every API answer: the seq of the last event published before the request was
#: handled (the answer reflects at least the events up to it)
SEQ_HEADER = "X-Event-Seq"
#: the CAN printed on the Vietnamese card: 6 digits (domain.md)
CAN_RE = re.compile(r"^[0-9]{6}$")
ID12_RE = re.compile(r"^[0-9]{12}$")
MRZ_LINE_RE = re.compile(r"[0-9A-Z<]{30}")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


REFUSAL_HINTS = {
    "no_token": "Send the header Authorization: Bearer <token> (the token file is named in [api] token_file).",
    "bad_token": "Send the header Authorization: Bearer <token> (the token file is named in [api] token_file).",
    "bad_origin": "Add the web page's origin to [api] allowed_origins, or open the page at "
                  "http://127.0.0.1:{port}/.",
    "bad_host": "Open the page or call the API at http://127.0.0.1:{port}/ or http://localhost:{port}/ "
                "(the Host must be a loopback name, or [api] host, with port {port}).",
}


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


class RequestError(IdAgentError):
    """A malformed request: 400 with the reason."""

    code = "bad_request"
    exit_code = 3
    http_status = 400
    hint = "Fix the request; GET /openapi.json describes every route."


def error_response(status: int, code: str, message: str, hint: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, "hint": hint}}, status=status,
                             dumps=_dumps)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    return json_plain(value)


def _yymmdd(value: Any, name: str) -> str:
    """YYMMDD from 'YYMMDD' or 'YYYY-MM-DD'."""
    if not isinstance(value, str):
        raise RequestError(f"{name} must be a string (YYMMDD or YYYY-MM-DD)")
    text = value.strip()
    if re.fullmatch(r"[0-9]{6}", text):
        return text
    try:
        return yymmdd(dt.date.fromisoformat(text))
    except ValueError:
        raise RequestError(f"{name} must be YYMMDD or YYYY-MM-DD") from None


def key_from_mrz(mrz: str) -> MrzKey:
    """Document number, birth and expiry dates from a TD1 MRZ (3 × 30, 9303-5 §4.2)."""
    lines = [line.strip().upper() for line in mrz.replace("\r", "").split("\n") if line.strip()]
    if len(lines) < 2 or len(lines[0]) != 30 or len(lines[1]) != 30:
        raise RequestError("mrz must be the card's MRZ: 3 lines of 30 characters (at least the first two)")
    if not all(MRZ_LINE_RE.fullmatch(line) for line in lines[:2]):
        # str.isdigit() accepts "²" and other non-ASCII digits that int() refuses
        raise RequestError("mrz: only 0-9, A-Z and < may appear in the first two lines")
    try:
        return td1_access_key(lines)
    except (MrzError, ValueError) as exc:
        raise RequestError(f"mrz: {exc}") from None


def key_from_body(body: dict[str, Any]) -> AccessKey:
    if "can" in body:
        can = body["can"]
        if not isinstance(can, str) or not CAN_RE.match(can.strip()):
            raise RequestError("can must be the 6 digits printed on the card (the last 6 of the ID number)")
        return CanKey(can.strip())
    if "id_number" in body:
        number = body["id_number"]
        if not isinstance(number, str) or not ID12_RE.match(number.strip()):
            raise RequestError("id_number must be the 12-digit ID number")
        return CanKey.of_id_number(number.strip())
    if "mrz" in body:
        if not isinstance(body["mrz"], str):
            raise RequestError("mrz must be a string")
        return key_from_mrz(body["mrz"])
    needed = ("document_number", "birth_date", "expiry_date")
    if all(name in body for name in needed):
        doc = body["document_number"]
        if not isinstance(doc, str) or not re.fullmatch(r"[A-Za-z0-9]{1,30}", doc.strip()):
            raise RequestError("document_number must be 1 to 30 letters or digits")
        return MrzKey(doc.strip().upper(), _yymmdd(body["birth_date"], "birth_date"),
                      _yymmdd(body["expiry_date"], "expiry_date"))
    raise RequestError("give one of: can, id_number, mrz, or document_number + birth_date + expiry_date")


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestError("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object")
    return body


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
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._sockets: dict[Client, web.WebSocketResponse] = {}
        self._ws_tasks: set[asyncio.Task[Any]] = set()
        self._servers: list[asyncio.AbstractServer] = []
        self._sweeper: asyncio.TimerHandle | None = None
        self.guard = ConnectionGuard(config.api.max_connections, config.api.max_connections_per_peer,
                                     config.api.unauth_idle, clock=time.monotonic,
                                     on_event=lambda reason: service.metrics.connections_closed.inc(reason=reason))
        self.metrics_token = (load_or_create_token(config.metrics.token_file) if config.metrics.enabled else None)
        self._metrics_runner: web.AppRunner | None = None
        self.metrics_port: int | None = None
        self.apply_config(config)
        service.hub.listeners.append(self._note_event)
        service.metrics.gauge("idagent_api_connections", "Open connections to the local API.",
                             lambda: float(self.guard.stats.open))
        register_fleet(service)

    def apply_config(self, config: Config) -> None:
        self.default_shape = Shape.COMPAT if config.api.compat_events else Shape.NATIVE
        self._allowed_origins = list(config.api.allowed_origins)
        self.policy = OriginPolicy(self._allowed_origins + self._own_origins(), self.host)

    def _own_origins(self) -> list[str]:
        """The counter page's own origin is always allowed (it is our page)."""
        if not self.port:
            return []
        return [f"http://{name}:{self.port}" for name in ("127.0.0.1", "localhost", self.host)]

    def _note_event(self, _event: Any) -> None:
        """Hook for tests and the bench (kept cheap: events come from reader threads)."""

    # ---------------------------------------------------------------- life cycle
    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._serve, name="api", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise IdAgentError("the local API did not start in time")
        if self._startup_error is not None:
            raise IdAgentError(f"the local API could not listen on {self.host}:{self.port}: {self._startup_error}",
                               hint="Another program (or another idagent) holds the port: stop it or set [api] port.")

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except OSError as exc:
            self._startup_error = exc
            self._ready.set()
            loop.close()
            return
        self.service.hub.bind(loop)
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _startup(self) -> None:
        app = self.make_app()
        app.on_response_prepare.append(_server_header)
        # idle keep-alive connections are closed after KEEPALIVE_S: a client that opens
        # a connection per request cannot pile up thousands of them
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=KEEPALIVE_S,
                                     logger=http_logger)
        await self._runner.setup()
        self.port = await self._listen(self._runner, self.host, self.port)
        self.policy = OriginPolicy(self._allowed_origins + self._own_origins(), self.host)
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
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            future.result(timeout)
        except TimeoutError:
            logger.warning("API shutdown timed out")
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)

    async def _shutdown(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for server in self._servers:
            server.close()
        for client, ws in list(self._sockets.items()):
            self.service.hub.remove_client(client)
            try:
                await asyncio.wait_for(ws.close(code=1001, message=b"agent stopping"), 1.0)
            except (TimeoutError, ConnectionError):
                pass
        for runner in (self._runner, self._metrics_runner):
            if runner is not None:
                await runner.cleanup()

    # ---------------------------------------------------------------- app
    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._guard])
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
            web.get("/events", self.events, name="events"),
        ]
        app.add_routes(routes)
        return app

    #: served without the token: the page and its assets (no data, no secret)
    PUBLIC = frozenset({"index", "static", "favicon"})

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.name or "unknown"
        origin = request.headers.get("Origin")
        peer = request.remote or "?"
        if not self.policy.host_allowed(request.headers.get("Host"), self.port):
            return self._refuse(403, "bad_host", route, peer, "this Host is not served (DNS rebinding guard)")
        if not self.policy.origin_allowed(origin):
            return self._refuse(403, "bad_origin", route, peer, "this web page's origin is not allowed")
        if request.method == "OPTIONS":
            return self._cors(web.Response(status=204), origin, preflight=True)
        if route not in self.PUBLIC and route != "events":
            presented = bearer(request.headers.get("Authorization"))
            if not token_matches(self.token, presented):
                reason = "no_token" if presented is None else "bad_token"
                refusal = self._refuse(401, reason, route, peer, "a valid API token is required")
                refusal.headers["WWW-Authenticate"] = 'Bearer realm="idagent"'
                return self._cors(refusal, origin)
            self.guard.authenticated(request.transport)
        response: web.StreamResponse
        # read before the handler reads any state: the answer reflects at least every
        # event up to this seq (EventHub.last_seq), so a client can order it against events
        seq = self.service.hub.last_seq
        try:
            response = await handler(request)
        except IdAgentError as err:
            response = error_response(err.http_status, err.code, err.message, err.hint)
        except web.HTTPRequestEntityTooLarge:
            response = error_response(413, "too_large", "the body is too large", f"Send at most {MAX_BODY} bytes.")
        except web.HTTPException as exc:
            if exc.status >= 400:
                response = error_response(exc.status, "http", exc.reason, "See GET /openapi.json.")
            else:
                raise
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception:  # noqa: BLE001 - a bug answers a JSON 500, never a traceback page
            logger.exception("API route %s failed", route)
            response = error_response(500, "internal", "the agent failed to handle this request",
                                      "Send the agent's log to IT.")
        self.service.metrics.http_requests.inc(route=route, status=str(response.status))
        if route not in self.PUBLIC and not isinstance(response, web.WebSocketResponse):
            response.headers["Cache-Control"] = "no-store"
            response.headers[SEQ_HEADER] = str(seq)
        if not isinstance(response, web.WebSocketResponse):
            self._cors(response, origin)
        return response

    def _refuse(self, status: int, reason: str, route: str, peer: str, message: str) -> web.Response:
        self.service.metrics.auth_refusals.inc(reason=reason)
        self.service.metrics.http_requests.inc(route=route, status=str(status))
        logger.warning("API refused: %s on route %s from %s (%d)", reason, route, peer, status)
        return error_response(status, reason, message, REFUSAL_HINTS[reason].format(port=self.port))

    def _cors(self, response: web.StreamResponse, origin: str | None, *, preflight: bool = False) -> web.StreamResponse:
        if origin is not None:  # already checked against the allow-list
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = SEQ_HEADER
            response.headers["Vary"] = "Origin"
            if preflight:
                response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
                response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
                response.headers["Access-Control-Max-Age"] = "600"
        return response

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
        return web.json_response(health, dumps=_dumps)

    async def readers(self, request: web.Request) -> web.StreamResponse:
        readers = await asyncio.get_running_loop().run_in_executor(None, self.service.readers)
        return web.json_response({"readers": readers}, dumps=_dumps)

    async def get_identity(self, request: web.Request) -> web.StreamResponse:
        current = self.service.current_or_raise()
        photo = request.query.get("photo", "0") in ("1", "true")
        compat = request.query.get("compat", "0") in ("1", "true")
        return web.json_response(current.to_dict(photo=photo, compat=compat), dumps=_dumps)

    async def delete_identity(self, request: web.Request) -> web.StreamResponse:
        cleared = self.service.clear_identity("api")
        return web.json_response({"cleared": cleared})

    async def photo(self, request: web.Request) -> web.StreamResponse:
        current = self.service.current_or_raise()
        jpeg = current.identity.photo_jpeg
        if not jpeg:
            raise NotFoundError("this card has no displayable photo")
        return web.Response(body=jpeg, content_type="image/jpeg")

    async def read(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        key = key_from_body(body)
        reader = body.get("reader")
        if reader is not None and not isinstance(reader, str):
            raise RequestError("reader must be a reader name (GET /readers)")
        result = self.service.submit_key(key, reader)
        return web.json_response(result, status=202)

    async def read_again(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        reader = body.get("reader")
        if reader is not None and not isinstance(reader, str):
            raise RequestError("reader must be a reader name (GET /readers)")
        return web.json_response(self.service.read_again(reader), status=202)

    async def qr(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > 4096:
            raise RequestError("text must be the QR code's text (1 to 4096 characters)")
        result = self.service.on_qr_text(text, source="api")
        return web.json_response(result, status=202)

    async def bhyt_lookup(self, request: web.Request) -> web.StreamResponse:
        await _json_body(request)
        current = self.service.current_or_raise()
        future = self.service.start_lookup(current)
        result = await asyncio.wrap_future(future)
        return web.json_response({"read_id": current.read_id, **result}, dumps=_dumps)

    async def intake(self, request: web.Request) -> web.StreamResponse:
        await _json_body(request)
        receipt = await asyncio.get_running_loop().run_in_executor(None, self.service.submit_intake)
        return web.json_response(receipt, status=202, dumps=_dumps)

    async def wedge_type(self, request: web.Request) -> web.StreamResponse:
        """The counter page's "Gõ vào ứng dụng": type the identity on show into the desk
        application (the answer, and a ``wedge_result`` event, carry no typed text)."""
        await _json_body(request)
        result = await asyncio.get_running_loop().run_in_executor(None, self.service.type_wedge)
        return web.json_response(result, dumps=_dumps)

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

    # ---------------------------------------------------------------- WebSocket
    async def events(self, request: web.Request) -> web.StreamResponse:
        shape_name = request.query.get("shape", self.default_shape.value)
        if shape_name not in (Shape.NATIVE.value, Shape.COMPAT.value):
            raise RequestError("shape must be native or compat")
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=4096, autoping=True)
        await ws.prepare(request)
        peer = request.remote or "?"
        if not await self._ws_authenticate(request, ws, peer):
            return ws
        client = self.service.hub.add_client(Shape(shape_name), peer)
        if client is None:
            logger.warning("websocket refused from %s: too many clients", peer)
            await ws.close(code=1013, message=b"too many clients")
            return ws
        self._sockets[client] = ws
        try:
            hello = {"shape": shape_name, "identity": self.service.current() is not None,
                     "queue_max": self.service.hub.queue_max}
            first = ({"type": "hello", **hello} if client.shape is Shape.NATIVE
                     else {"event": "connected", "data": hello})
            await ws.send_str(json.dumps(first))
            await self._pump(request, ws, client)
        finally:
            self._sockets.pop(client, None)
            self.service.hub.remove_client(client)
        return ws

    async def _ws_authenticate(self, request: web.Request, ws: web.WebSocketResponse, peer: str) -> bool:
        if token_matches(self.token, bearer(request.headers.get("Authorization"))):
            self.guard.authenticated(request.transport)
            return True
        try:
            msg = await asyncio.wait_for(ws.receive(), WS_AUTH_TIMEOUT)
        except TimeoutError:
            msg = None
        token = None
        if msg is not None and msg.type is WSMsgType.TEXT:
            try:
                first = json.loads(msg.data)
            except json.JSONDecodeError:
                first = None
            if isinstance(first, dict) and first.get("type") == "auth" and isinstance(first.get("token"), str):
                token = first["token"]
        if token_matches(self.token, token):
            self.guard.authenticated(request.transport)
            return True
        reason = "no_token" if token is None else "bad_token"
        self.service.metrics.auth_refusals.inc(reason=reason)
        logger.warning("API refused: %s on route events from %s (websocket)", reason, peer)
        await ws.close(code=4401, message=b"unauthorized: send {\"type\":\"auth\",\"token\":...} first")
        return False

    async def _pump(self, request: web.Request, ws: web.WebSocketResponse, client: Client) -> None:
        sender = asyncio.ensure_future(self._send_loop(ws, client))
        receiver = asyncio.ensure_future(self._receive_loop(ws))
        dropped = asyncio.ensure_future(client.closed.wait())
        try:
            await asyncio.wait({sender, receiver, dropped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, receiver, dropped):
                task.cancel()
        if client.dropped:
            # too slow: its socket buffer is full, so a close handshake could wait forever;
            # cut the connection and free the buffer now
            transport = request.transport
            if transport is not None:
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    # linger 0: close() resets at once instead of the kernel trickling the
                    # megabytes still queued for a peer that does not read
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()
            return
        if not ws.closed:
            try:
                await asyncio.wait_for(ws.close(), 1.0)
            except (TimeoutError, ConnectionError):
                pass

    async def _send_loop(self, ws: web.WebSocketResponse, client: Client) -> None:
        try:
            while True:
                frame = await client.queue.get()
                await ws.send_str(frame)
        except ConnectionError:
            return

    async def _receive_loop(self, ws: web.WebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT and msg.data == '{"type":"ping"}':
                await ws.send_str('{"type":"pong"}')


class NotFoundError(IdAgentError):
    code = "no_photo"
    exit_code = 4
    http_status = 404
    hint = "The card's photo could not be shown; compare the person with the card itself."


__all__ = ["ApiServer", "RequestError", "key_from_body", "key_from_mrz", "EventType"]
