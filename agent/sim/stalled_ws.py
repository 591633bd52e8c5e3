"""A WebSocket client that never reads: the slow browser tab the event hub must drop
(``agent.eventhub``: bounded per-client queues). Shared by the API tests and
``bench/bench_daemon.py --api``.

The handshake is written by hand on a plain socket with a 4 KiB receive buffer, so
that the agent's sends back up at once; no WebSocket library would leave its socket
unread.
"""

from __future__ import annotations

import base64
import os
import socket


def stalled_websocket(port: int, origin: str, token: str, path: str = "/events") -> socket.socket:
    """Open ``ws://127.0.0.1:PORT/PATH`` with the API token, then never read.
    Raises RuntimeError when the agent refuses the upgrade."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n"
                  f"Authorization: Bearer {token}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        sock.close()
        raise RuntimeError(f"WebSocket handshake refused: {head[:60]!r}")
    return sock
