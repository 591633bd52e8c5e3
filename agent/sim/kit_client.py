"""A desk program as reader-kit integrators write it: the npm ``socket.io-client``
in a real Node process (tests/compat/node/kit_client.js, installed by
scripts/setup.sh), driven from Python by the tests and the bench."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).resolve().parents[2] / "tests" / "compat" / "node"
NODE_CLIENT = NODE_DIR / "kit_client.js"
SOCKET_IO_JS = NODE_DIR / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"


class NodeKitClient:
    """``node kit_client.js``: the npm socket.io-client in a real Node process."""

    def __init__(self, url: str, options: dict[str, Any] | None = None, *, ca: Path | None = None) -> None:
        node = shutil.which("node") or "node"
        env = dict(os.environ)
        if ca is not None:
            env["NODE_EXTRA_CA_CERTS"] = str(ca)  # trust our self-signed certificate, verify it
        self.proc = subprocess.Popen([node, str(NODE_CLIENT), url, json.dumps(options or {})],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    @staticmethod
    def available() -> bool:
        return shutil.which("node") is not None and SOCKET_IO_JS.exists()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def wait_for(self, match: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("the node client did not receive the expected event")
            try:
                message = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if match(message):
                return message

    def emit(self, event: str, data: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"emit": event, "data": data}) + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write('{"close": true}\n')
                self.proc.stdin.flush()
                self.proc.wait(5)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def kit_event(event_id: int) -> Callable[[dict[str, Any]], bool]:
    """Matches the kit's ``/event`` with this id."""
    return lambda m: m["event"] == "/event" and isinstance(m["data"], dict) and m["data"].get("id") == event_id
