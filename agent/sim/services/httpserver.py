"""What the two local test services (BHYT gateway, dossier intake) share: a threaded
HTTP/1.1 server on a background thread, and JSON in and out.

These servers exist for tests, the bench and the demo. They bind to 127.0.0.1 by
default and are never started by the daemon on its own.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger(__name__)


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    # many clients reconnect quickly in the bench
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that gave up (timeout) closes its end: expected here, not worth a trace
        import sys

        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class JsonHandler(BaseHTTPRequestHandler):
    # keep-alive, so clients reuse connections as they would with a real gateway
    protocol_version = "HTTP/1.1"
    server_version = "idagent-test"
    # headers and body go out in separate writes: without TCP_NODELAY, Nagle plus the
    # peer's delayed ACK adds ~40 ms to every keep-alive answer
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # request lines carry tokens in the query string: never log them
        return

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def drop_connection(self) -> None:
        """Close without an answer, as a dead upstream behind a proxy does."""
        self.close_connection = True
        try:
            self.connection.shutdown(2)
        except OSError:
            pass


class ServerThread:
    """Runs a server on a daemon thread; ``url`` is known once started."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=type(server).__name__, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{host_text}:{port}"

    def start(self) -> ServerThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


def serve_until_interrupted(server: ThreadingHTTPServer) -> None:
    """Serve in the foreground (``python -m ...``) until Ctrl-C, then close the socket."""
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
