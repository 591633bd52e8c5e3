"""Fixtures of the trust tests; helpers live in trust_helpers.py."""

from __future__ import annotations

import pytest

from agent.icao.trust import TrustStore
from agent.sim.signing import TestPki, load_test_pki


@pytest.fixture(scope="session")
def pki() -> TestPki:
    return load_test_pki()


@pytest.fixture(scope="session")
def store(pki: TestPki) -> TrustStore:
    return TrustStore.load(pki.store_dir)
