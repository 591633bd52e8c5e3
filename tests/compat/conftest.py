"""The agent with the reader-kit service on, the in-process virtual reader and the
real chip pipeline (trust store of fixtures/pki), plus the real clients: the npm
socket.io-client under Node (``NodeKitClient``) and python-socketio's client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.config import Config
from agent.daemon import Daemon
from agent.sim.kit_client import NodeKitClient


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


@pytest.fixture
def node_client() -> Iterator[Callable[..., NodeKitClient]]:
    clients: list[NodeKitClient] = []

    def make(url: str, options: dict[str, Any] | None = None, *, ca: Path | None = None) -> NodeKitClient:
        if not NodeKitClient.available():
            pytest.fail("node or tests/compat/node/node_modules missing: run scripts/setup.sh")
        client = NodeKitClient(url, options, ca=ca)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
