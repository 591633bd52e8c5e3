"""The agent with the reader-kit service on, the in-process virtual reader and the
real chip pipeline (trust store of fixtures/pki), plus the real clients: the npm
socket.io-client under Node (``NodeKitClient``) and python-socketio's client."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.config import Config
from agent.daemon import Daemon

NODE_DIR = Path(__file__).parent / "node"
NODE_CLIENT = NODE_DIR / "kit_client.js"
SOCKET_IO_JS = NODE_DIR / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"


@dataclass
class KitDesk:
    daemon: Daemon
    tapper: Any
    cert: Path | None

    @property
    def url(self) -> str:
        service = self.daemon.compat
        return f"{service.scheme}://127.0.0.1:{service.port}"

    @property
    def camera_url(self) -> str:
        service = self.daemon.compat
        return f"{service.scheme}://127.0.0.1:{service.camera_port}"

    def tap(self, profile: str = "nguyen-van-an") -> None:
        self.tapper.profile = profile
        self.tapper.insert()

    def remove(self) -> None:
        self.tapper.remove()


@pytest.fixture
def kit_desk(tmp_path: Path) -> Iterator[Callable[..., KitDesk]]:
    from agent.demo import SIM_READER, TRUST_DIR, SimTapper
    from agent.readers.sim import SimBackend

    started: list[Daemon] = []

    def make(*, tls: bool = False, **compat: Any) -> KitDesk:
        cert = None
        if tls:
            from agent.compat.tls import make_self_signed

            cert, key = make_self_signed(tmp_path / "tls")
            compat.update(tls_cert=str(cert), tls_key=str(key))
        config = Config.defaults()
        config = config.replace("agent", state_dir=str(tmp_path))
        config = config.replace("api", token_file=str(tmp_path / "api.token"))
        config = config.replace("readers", backends=["sim"], poll_interval=0.05)
        config = config.replace("trust", csca_dir=str(TRUST_DIR))
        settings = {"enabled": True, "port": 0, "camera_port": 0, **compat}
        config = config.replace("compat", **settings)
        sim = SimBackend((SIM_READER,))
        daemon = Daemon.from_config(config, backends=[sim], port=0)
        daemon.start()
        started.append(daemon)
        return KitDesk(daemon, SimTapper(sim, "nguyen-van-an"), cert)

    yield make
    for daemon in started:
        daemon.stop()


class NodeKitClient:
    """``node kit_client.js``: the npm socket.io-client in a real Node process."""

    def __init__(self, url: str, options: dict[str, Any] | None = None, *, ca: Path | None = None) -> None:
        node = shutil.which("node")
        if node is None or not SOCKET_IO_JS.exists():
            pytest.fail("node or tests/compat/node/node_modules missing: run scripts/setup.sh")
        env = dict(os.environ)
        if ca is not None:
            env["NODE_EXTRA_CA_CERTS"] = str(ca)  # trust our self-signed certificate, verify it
        self.proc = subprocess.Popen([node, str(NODE_CLIENT), url, json.dumps(options or {})],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def wait_for(self, match: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> dict[str, Any]:
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


@pytest.fixture
def node_client() -> Iterator[Callable[..., NodeKitClient]]:
    clients: list[NodeKitClient] = []

    def make(url: str, options: dict[str, Any] | None = None, *, ca: Path | None = None) -> NodeKitClient:
        client = NodeKitClient(url, options, ca=ca)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def kit_event(event_id: int) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["event"] == "/event" and isinstance(m["data"], dict) and m["data"].get("id") == event_id
