"""The forwards the daemon really uses (``agent.pipeline.ConfiguredForwards``, what
``Daemon.from_config`` wires), built from the config: a BHYT lookup and a dossier
intake through the outbox, against the local stand-in services."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from forward_helpers import OFFICER_ID, OFFICER_NAME, PASSWORD, USERNAME

from agent.config import Config
from agent.daemon import Daemon
from agent.forward.bhyt_codes import BhytStatus
from agent.forward.bhyt_input import MissingInputError
from agent.identity import Identity
from agent.pipeline import ConfiguredForwards
from agent.sim.services.bhyt import BhytTestService
from agent.sim.services.intake import IntakeTestService


@pytest.fixture
def live_gateway() -> Iterator[BhytTestService]:
    service = BhytTestService().start()
    yield service
    service.stop()


def _config(tmp_path: Path, gateway_url: str, intake_url: str, hmac_key_file: Path) -> Config:
    return (Config.defaults()
            .replace("bhyt", enabled=True, base_url=gateway_url, username=USERNAME, password=PASSWORD,
                     officer_name=OFFICER_NAME, officer_id=OFFICER_ID, retries=0, breaker_threshold=1)
            .replace("intake", enabled=True, url=intake_url, hmac_key_file=str(hmac_key_file))
            .replace("outbox", path=str(tmp_path / "o.sqlite3"), key_file=str(tmp_path / "o.key")))


def test_the_daemon_wires_these_forwards(tmp_path: Path, live_gateway: BhytTestService,
                                         intake: IntakeTestService, hmac_key_file: Path) -> None:
    config = _config(tmp_path, live_gateway.url, intake.intake_url, hmac_key_file)
    daemon = Daemon.from_config(config, backends=[], port=0)
    try:
        assert type(daemon.forwards) is ConfiguredForwards
    finally:
        daemon.forwarding.close()


def test_lookup_and_intake_from_config(tmp_path: Path, live_gateway: BhytTestService,
                                       intake: IntakeTestService, hmac_key_file: Path) -> None:
    forwards = ConfiguredForwards(_config(tmp_path, live_gateway.url, intake.intake_url, hmac_key_file))
    demo = Identity(id_number="001099012345", full_name="Nguyễn Văn An", date_of_birth=dt.date(1999, 3, 15), sex="M")
    try:
        assert forwards.bhyt_enabled() and forwards.intake_enabled()
        live_gateway.state.control({"variant": "year_only"})
        result = forwards.bhyt(demo)
        assert (result.status, result.dob_matched, result.card_valid_to) == (BhytStatus.VALID, "year", "2027-12-31")
        assert result.usable is True and result.message_vi
        receipt = forwards.intake(demo)
        assert receipt["status"] == "queued"
        deadline = time.monotonic() + 5
        while intake.state.body(receipt["idempotency_key"]) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert intake.state.body(receipt["idempotency_key"]) is not None
        # a gateway failure is a result for the page (the breaker counts it), not an error
        live_gateway.state.control({"outage": True})
        failed = forwards.bhyt(demo)
        assert (failed.status, failed.usable) == (BhytStatus.GATEWAY_ERROR, False)
        before = live_gateway.state.snapshot()["counters"]["outage_answers"]
        assert forwards.bhyt(demo).status is BhytStatus.GATEWAY_UNAVAILABLE  # the breaker is open
        assert live_gateway.state.snapshot()["counters"]["outage_answers"] == before  # the gateway was not asked
    finally:
        forwards.close()


def test_lookup_without_the_fields_it_needs(tmp_path: Path, live_gateway: BhytTestService,
                                            intake: IntakeTestService, hmac_key_file: Path) -> None:
    forwards = ConfiguredForwards(_config(tmp_path, live_gateway.url, intake.intake_url, hmac_key_file))
    try:
        # no check is sent; the desk makes the error its lookup's result (tests/api/test_lookup_wire.py)
        with pytest.raises(MissingInputError):
            forwards.bhyt(Identity(id_number="001099012345"))
    finally:
        forwards.close()


def test_disabled_forwards() -> None:
    forwards = ConfiguredForwards(Config.defaults())
    assert not forwards.bhyt_enabled() and not forwards.intake_enabled()
    forwards.close()
