"""Fixtures of the real-data tests; helpers live in realdata_helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from realdata_helpers import shared

from agent.icao.trust import ImportReport, import_file
from agent.sim.signing import TestPki, load_test_pki


@pytest.fixture(scope="session")
def pki() -> TestPki:
    return load_test_pki()


@pytest.fixture(scope="session")
def de_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ImportReport]:
    """A trust folder with the real German master list (588 members) imported."""
    folder = tmp_path_factory.mktemp("de_store")
    report = import_file(shared() / "masterlists" / "DE_ML_2026-05-28-08-28-45.ml", folder)
    return folder, report
