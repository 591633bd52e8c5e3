"""The daemon's view of the forwards (agent/pipeline.py ``Forwards``), built from the config."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from forward_helpers import OFFICER_ID, OFFICER_NAME, PASSWORD, USERNAME

from agent.config import Config
from agent.forward.forwards import BhytUpstreamError, ConfiguredForwards
from agent.identity import Identity
from agent.sim.services.bhyt import BhytTestService
from agent.sim.services.intake import IntakeTestService


@pytest.fixture
def live_gateway() -> BhytTestService:
    service = BhytTestService().start()
    yield service
    service.stop()


def _config(tmp_path: Path, gateway_url: str, intake_url: str, hmac_key_file: Path) -> Config:
    return (Config.defaults()
            .replace("bhyt", enabled=True, base_url=gateway_url, username=USERNAME, password=PASSWORD,
                     officer_name=OFFICER_NAME, officer_id=OFFICER_ID, retries=0, breaker_threshold=1)
            .replace("intake", enabled=True, url=intake_url, hmac_key_file=str(hmac_key_file))
            .replace("outbox", path=str(tmp_path / "o.sqlite3"), key_file=str(tmp_path / "o.key")))


def test_lookup_and_intake_from_config(tmp_path: Path, live_gateway: BhytTestService,
                                       intake: IntakeTestService, hmac_key_file: Path) -> None:
    forwards = ConfiguredForwards(_config(tmp_path, live_gateway.url, intake.intake_url, hmac_key_file))
    demo = Identity(id_number="001099012345", full_name="Nguyễn Văn An", date_of_birth=dt.date(1999, 3, 15), sex="M")
    try:
        assert forwards.bhyt_enabled() and forwards.intake_enabled()
        live_gateway.state.control({"variant": "year_only"})
        result = forwards.bhyt(demo)
        assert (result["status"], result["dob_matched"], result["valid_to"]) == ("valid", "year", "2027-12-31")
        assert result["message"] == "Thẻ hợp lệ."
        receipt = forwards.intake(demo)
        assert receipt["status"] == "queued" and receipt["outbox_id"] == 1
        deadline = time.monotonic() + 5
        while intake.state.body(receipt["idempotency_key"]) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert intake.state.body(receipt["idempotency_key"]) is not None
        live_gateway.state.control({"outage": True})
        with pytest.raises(BhytUpstreamError) as err:
            forwards.bhyt(demo)
        assert err.value.exit_code == 7 and err.value.code == "bhyt_gateway_error"
        started = time.perf_counter()
        with pytest.raises(BhytUpstreamError) as err:
            forwards.bhyt(demo)
        assert err.value.code == "bhyt_gateway_unavailable" and time.perf_counter() - started < 0.05
    finally:
        forwards.close()


def test_disabled_forwards(tmp_path: Path) -> None:
    forwards = ConfiguredForwards(Config.defaults())
    assert not forwards.bhyt_enabled() and not forwards.intake_enabled()
    forwards.close()
