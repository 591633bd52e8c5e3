"""Fixtures for the forwarding tests: the local BHYT gateway and intake receiver (real
HTTP servers on 127.0.0.1), a fake clock."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from forward_helpers import HMAC_KEY, FakeClock, make_settings

from agent.forward.bhyt import BhytClient
from agent.sim.services.bhyt import BhytTestService
from agent.sim.services.intake import IntakeTestService


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def gateway(clock: FakeClock) -> Iterator[BhytTestService]:
    service = BhytTestService(clock=clock).start()
    yield service
    service.stop()


@pytest.fixture
def client(gateway: BhytTestService, clock: FakeClock) -> BhytClient:
    return BhytClient(make_settings(gateway.url), clock=clock, sleep=clock.sleep, jitter=lambda: 0.5)


@pytest.fixture
def intake() -> Iterator[IntakeTestService]:
    service = IntakeTestService(HMAC_KEY).start()
    yield service
    service.stop()


@pytest.fixture
def hmac_key_file(tmp_path: Path) -> Path:
    path = tmp_path / "intake.key"
    path.write_bytes(HMAC_KEY)
    os.chmod(path, 0o600)
    return path


