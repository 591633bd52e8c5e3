"""Fixtures of the chip-read tests: the test PKI's trust store and an in-process reader."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.icao.trust import TrustStore
from agent.readers.sim import SimBackend

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store() -> TrustStore:
    return TrustStore.load(ROOT / "fixtures" / "pki" / "store")


@pytest.fixture
def backend() -> Iterator[SimBackend]:
    sim = SimBackend(extended_length="auto")
    yield sim
    sim.close()
