"""``GET /events``: the WebSocket that carries the desk's events to a client.

A client authenticates (the bearer header, or ``{"type":"auth","token":…}`` as its
first message within ``WS_AUTH_TIMEOUT``), gets a ``hello``, then every event the
``agent.eventhub.EventHub`` queues for it: ``_send_loop`` is where a frame goes onto
the socket. A client too slow to keep up is dropped by the hub and its connection
reset at once (its socket buffer is full, so a close handshake could wait forever).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from agent.api.auth import WS_AUTH_TIMEOUT, bearer, token_matches
from agent.api.guard import ConnectionGuard
from agent.api.request import RequestError
from agent.eventhub import Client, Shape

if TYPE_CHECKING:
    from agent.desk.protocol import DeskService

logger = logging.getLogger(__name__)


class EventSockets:
    """The open event WebSockets of one API server, by hub client."""

    def __init__(self, service: DeskService, guard: ConnectionGuard, token: str) -> None:
        self.service = service
        self.guard = guard
        self.token = token
        self.default_shape = Shape.NATIVE
        self.open: dict[Client, web.WebSocketResponse] = {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        shape_name = request.query.get("shape", self.default_shape.value)
        if shape_name not in (Shape.NATIVE.value, Shape.COMPAT.value):
            raise RequestError("shape must be native or compat")
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=4096, autoping=True)
        await ws.prepare(request)
        peer = request.remote or "?"
        if not await self._authenticate(request, ws, peer):
            return ws
        client = self.service.hub.add_client(Shape(shape_name), peer)
        if client is None:
            logger.warning("websocket refused from %s: too many clients", peer)
            await ws.close(code=1013, message=b"too many clients")
            return ws
        self.open[client] = ws
        try:
            hello = {"shape": shape_name, "identity": self.service.current() is not None,
                     "queue_max": self.service.hub.queue_max}
            first = ({"type": "hello", **hello} if client.shape is Shape.NATIVE
                     else {"event": "connected", "data": hello})
            await ws.send_str(json.dumps(first))
            await self._pump(request, ws, client)
        finally:
            self.open.pop(client, None)
            self.service.hub.remove_client(client)
        return ws

    async def close_all(self) -> None:
        """On shutdown: each client told the agent is stopping (1001)."""
        for client, ws in list(self.open.items()):
            self.service.hub.remove_client(client)
            try:
                await asyncio.wait_for(ws.close(code=1001, message=b"agent stopping"), 1.0)
            except (TimeoutError, ConnectionError):
                pass

    async def _authenticate(self, request: web.Request, ws: web.WebSocketResponse, peer: str) -> bool:
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
