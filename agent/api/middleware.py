"""The middleware every request to the local API passes (see ``agent.api.auth`` for
the reasoning).

In order: the Host must be a loopback name or ``[api] host`` with our port (DNS
rebinding), a browser's Origin must be allowed (403; CORS preflights answered here),
every route but the page and its assets needs the bearer token (401; ``/events``
authenticates on its WebSocket). Then the route runs; an ``IdAgentError`` becomes its
JSON error with the class's HTTP status, a bug a JSON 500 (never a traceback page).
API answers carry ``Cache-Control: no-store`` and ``X-Event-Seq``. Refusals are logged
with the route, the reason and the peer only: never the token, query, body or headers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from agent.api.auth import OriginPolicy, bearer, token_matches
from agent.api.guard import ConnectionGuard
from agent.api.request import error_response
from agent.errors import IdAgentError

if TYPE_CHECKING:
    from agent.desk.protocol import DeskService

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
#: on every API answer: the seq of the last event published before the request was
#: handled (the answer reflects at least the events up to it)
SEQ_HEADER = "X-Event-Seq"
#: served without the token: the page and its assets (no data, no secret)
PUBLIC = frozenset({"index", "static", "favicon"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REFUSAL_HINTS = {
    "no_token": "Send the header Authorization: Bearer <token> (the token file is named in [api] token_file).",
    "bad_token": "Send the header Authorization: Bearer <token> (the token file is named in [api] token_file).",
    "bad_origin": "Add the web page's origin to [api] allowed_origins, or open the page at "
                  "http://127.0.0.1:{port}/.",
    "bad_host": "Open the page or call the API at http://127.0.0.1:{port}/ or http://localhost:{port}/ "
                "(the Host must be a loopback name, or [api] host, with port {port}).",
}


class RequestGate:
    """Host, Origin and token checks, CORS headers and error answers for one server.

    The server sets ``policy`` (on start and on reload) and ``port`` (once listening).
    """

    def __init__(self, service: DeskService, guard: ConnectionGuard, token: str, port: int) -> None:
        self.service = service
        self.guard = guard
        self.token = token
        self.port = port
        self.policy = OriginPolicy([], "127.0.0.1")

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.name or "unknown"
        origin = request.headers.get("Origin")
        peer = request.remote or "?"
        if not self.policy.host_allowed(request.headers.get("Host"), self.port):
            return self._refuse(403, "bad_host", route, peer, "this Host is not served (DNS rebinding guard)")
        if not self.policy.origin_allowed(origin):
            return self._refuse(403, "bad_origin", route, peer, "this web page's origin is not allowed")
        if request.method == "OPTIONS":
            return self._cors(web.Response(status=204), origin, preflight=True)
        if route not in PUBLIC and route != "events":
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
        if route not in PUBLIC and not isinstance(response, web.WebSocketResponse):
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
