"""``idagent bhyt check`` and ``idagent outbox`` through the real CLI entry point."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from forward_helpers import OFFICER_ID, OFFICER_NAME, PASSWORD, USERNAME, person

from agent.cli import main
from agent.config import load_config
from agent.forward.intake import IntakeSettings, enqueue_dossier
from agent.forward.outbox import Outbox, Outcome
from agent.sim.services.bhyt import BhytTestService
from agent.sim.services.intake import IntakeTestService

#: the BHYT lookup's JSON as main wrote it before the lookup became typed (issue 15)
LOOKUP_WIRE = json.loads((Path(__file__).resolve().parents[2] / "fixtures" / "bhyt" / "lookup_wire.json")
                         .read_text(encoding="utf-8"))


@pytest.fixture
def live_gateway() -> BhytTestService:
    service = BhytTestService().start()
    yield service
    service.stop()


def _write_config(tmp_path: Path, gateway_url: str, intake_url: str, hmac_key_file: Path) -> Path:
    password_file = tmp_path / "bhyt.password"
    password_file.write_text(PASSWORD + "\n", encoding="utf-8")
    password_file.chmod(0o600)
    path = tmp_path / "idagent.toml"
    path.write_text(f"""
[bhyt]
enabled = true
base_url = "{gateway_url}"
username = "{USERNAME}"
password_file = "{password_file}"
officer_name = "{OFFICER_NAME}"
officer_id = "{OFFICER_ID}"
facility_code = "79001"
retries = 0
[intake]
url = "{intake_url}"
hmac_key_file = "{hmac_key_file}"
[outbox]
path = "{tmp_path / 'outbox.sqlite3'}"
key_file = "{tmp_path / 'outbox.key'}"
""", encoding="utf-8")
    return path


@pytest.fixture
def config_path(tmp_path: Path, live_gateway: BhytTestService, intake: IntakeTestService,
                hmac_key_file: Path) -> Path:
    return _write_config(tmp_path, live_gateway.url, intake.intake_url, hmac_key_file)


def test_bhyt_check_text_shows_status_dates_and_dob_match(config_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--config", str(config_path), "bhyt", "check", "--id", "079185000123",
                 "--name", "Trần Thị Bình", "--dob", "20/07/1985"])
    out = capsys.readouterr().out
    assert code == 0
    assert "status:    valid (code 000)" in out
    assert "Thẻ hợp lệ." in out and "The card is valid." in out
    assert "valid:     2026-01-01 to 2026-12-31" in out
    assert "DOB sent:  20/07/1985 then 1985" in out and "DOB match: the year only" in out


def test_bhyt_check_json(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--config", str(config_path), "--json", "bhyt", "check", "--card", "DN4010199012345",
                 "--name", "nguyễn văn an", "--dob", "1999-03-15"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (doc["status"], doc["dob_matched"], doc["card_valid_to"]) == ("valid", "full", "2027-12-31")


def test_bhyt_check_gateway_down_exits_7(config_path: Path, live_gateway: BhytTestService,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    live_gateway.state.control({"outage": True})
    code = main(["--config", str(config_path), "bhyt", "check", "--id", "001099012345",
                 "--name", "Nguyễn Văn An", "--dob", "15/03/1999"])
    assert code == 7
    assert "gateway_error" in capsys.readouterr().out


def test_bhyt_check_bad_input_exits_3(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--config", str(config_path), "bhyt", "check", "--id", "12345", "--name", "X", "--dob", "1999"])
    assert code == 3
    assert "12-digit" in capsys.readouterr().err


def test_outbox_list_retry_purge_show_no_personal_data(config_path: Path, intake: IntakeTestService,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(config_path)
    settings = IntakeSettings.from_config(config)
    with Outbox.from_config(config) as box:
        keys = [enqueue_dossier(box, person(i), settings) for i in range(3)]
        (item, *_rest) = box.claim(1)
        box.record([(item, Outcome(False, "HTTP 422", permanent=True))])
    assert main(["--config", str(config_path), "--json", "outbox", "list"]) == 0
    listing = capsys.readouterr().out
    doc = json.loads(listing)
    assert doc["counts"] == {"pending": 2, "delivered": 0, "failed": 1}
    assert {i["idempotency_key"] for i in doc["items"]} == set(keys)
    failed = [i for i in doc["items"] if i["state"] == "failed"][0]
    assert failed["last_error"] == "HTTP 422" and failed["attempts"] == 1
    assert "Thử" not in listing and "0010995" not in listing

    assert main(["--config", str(config_path), "outbox", "list"]) == 0
    text = capsys.readouterr().out
    assert "pending 2, failed 1, delivered 0" in text and "HTTP 422" in text

    assert main(["--config", str(config_path), "outbox", "retry", str(failed["id"])]) == 0
    assert "1 item(s) due now" in capsys.readouterr().out
    assert main(["--config", str(config_path), "--json", "outbox", "run", "--until-empty"]) == 0
    assert json.loads(capsys.readouterr().out)["delivered"] == 3
    assert intake.state.stats()["unique_dossiers"] == 3
    assert main(["--config", str(config_path), "--json", "outbox", "purge"]) == 0
    assert json.loads(capsys.readouterr().out) == {"purged": 3}
    assert main(["--config", str(config_path), "outbox", "retry", "42"]) == 3


def test_bhyt_check_without_gateway_config_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bhyt", "check", "--id", "001099012345", "--name", "Nguyễn Văn An", "--dob", "1999"])
    assert code == 3
    assert "[bhyt] base_url" in capsys.readouterr().err


#: ``idagent --json bhyt check``: the case's arguments, exit code, and (from
#: fixtures/bhyt/lookup_wire.json, as main printed them at bff8979) the JSON printed
CLI_CASES = {
    "year_only": (["--id", "079185000123", "--name", "Trần Thị Bình", "--dob", "20/07/1985"], 0),
    "replaced": (["--id", "036080001122", "--name", "Hoàng Văn Em", "--dob", "22/02/1980"], 9),
    "outage": (["--id", "001099012345", "--name", "Nguyễn Văn An", "--dob", "15/03/1999"], 7),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_bhyt_check_json_is_what_it_was(case: str, config_path: Path, live_gateway: BhytTestService,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    args, exit_code = CLI_CASES[case]
    if case == "outage":
        live_gateway.state.control({"outage": True})
    assert main(["--config", str(config_path), "--json", "bhyt", "check", *args]) == exit_code
    # the time a lookup took is the one value that differs from run to run
    out = re.sub(r'"elapsed_ms": [0-9.]+', '"elapsed_ms": ELAPSED', capsys.readouterr().out)
    assert out == LOOKUP_WIRE["cli"][case]
