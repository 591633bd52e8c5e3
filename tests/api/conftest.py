from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# api_fakes, beside this file, is importable as pytest puts this folder (not a package)
# on sys.path to import this conftest
from api_fakes import FakeBackend, FakeForwards, FakePipeline, FakeQrDecoder, Harness

from agent.config import Config
from agent.daemon import Daemon

READERS = ["Reader A", "Reader B"]


def make_config(tmp_path: Path, **api: Any) -> Config:
    config = Config.defaults()
    config = config.replace("api", token_file=str(tmp_path / "api.token"), **api)
    return config.replace("readers", backends=["sim"], poll_interval=0.05)


@pytest.fixture
def harness_factory(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    started: list[Daemon] = []

    def factory(*, pipeline: FakePipeline | None = None, forwards: FakeForwards | None = None,
                clock: Callable[[], float] = time.monotonic, wedge: dict[str, Any] | None = None,
                wedge_keyboard: Callable[..., Any] | None = None, **api: Any) -> Harness:
        """``wedge``: [wedge] settings; ``wedge_keyboard``: its X11 backend factory (a double)."""
        backend = FakeBackend(READERS)
        pipeline = pipeline or FakePipeline()
        forwards = forwards or FakeForwards()
        config = make_config(tmp_path, **api)
        if wedge is not None:
            config = config.replace("wedge", **wedge)
        daemon = Daemon(config, pipeline=pipeline, backends=[backend], qr_decoder=FakeQrDecoder(),
                        forwards=forwards, clock=clock, port=0, wedge_keyboard=wedge_keyboard)
        daemon.start()
        started.append(daemon)
        return Harness(daemon, backend, pipeline, forwards)

    yield factory
    for daemon in started:
        daemon.stop()
    assert threading.active_count() < 50


@pytest.fixture
def harness(harness_factory: Callable[..., Harness]) -> Harness:
    return harness_factory()
