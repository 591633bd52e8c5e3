"""The local API and the reader-kit service each serve from an asyncio loop on a thread
of their own (agent.loopthread). When their port is taken they refuse to start with a
typed error that says which address and what to do, and leave no thread behind."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_fakes import FakeForwards, FakePipeline

from agent.api.server import ApiServer
from agent.compat.socketio_server import CompatService
from agent.config import Config
from agent.daemon import Daemon
from agent.errors import IdAgentError


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def _threads_named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name and t.is_alive()]


def _config(tmp_path: Path) -> Config:
    return Config.defaults().replace("api", token_file=str(tmp_path / "api.token"))


def _daemon(tmp_path: Path, port: int) -> Daemon:
    return Daemon(_config(tmp_path), pipeline=FakePipeline(), backends=[], forwards=FakeForwards(), port=port)


def test_the_api_refuses_to_start_on_a_taken_port(tmp_path: Path, taken_port: int) -> None:
    api = ApiServer(_daemon(tmp_path, taken_port))
    with pytest.raises(IdAgentError) as caught:
        api.start()
    assert caught.value.message.startswith(f"the local API could not listen on 127.0.0.1:{taken_port}: ")
    assert "[api] port" in caught.value.hint
    api.stop()
    assert _threads_named("api") == []


def test_the_kit_service_refuses_to_start_on_a_taken_port(tmp_path: Path, taken_port: int) -> None:
    config = _config(tmp_path).replace("compat", enabled=True, port=taken_port, camera_port=0)
    service = CompatService(_daemon(tmp_path, 0), config.compat)
    with pytest.raises(IdAgentError) as caught:
        service.start()
    assert caught.value.message.startswith(f"the reader-kit service could not listen on 127.0.0.1:{taken_port}: ")
    assert "[compat] port" in caught.value.hint
    service.stop()
    assert _threads_named("compat") == []
