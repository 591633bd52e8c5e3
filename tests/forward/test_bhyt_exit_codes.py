"""Issue 14 item 6: ``idagent bhyt check`` exits 9 (documented) when the gateway says the
card is not usable: not found, wrong name, wrong date of birth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from forward_helpers import OFFICER_ID, OFFICER_NAME, PASSWORD, USERNAME

from agent.cli import main
from agent.sim.services.bhyt import BhytTestService


@pytest.fixture
def config_path(tmp_path: Path) -> Iterator[Path]:
    service = BhytTestService().start()
    password_file = tmp_path / "bhyt.password"
    password_file.write_text(PASSWORD + "\n", encoding="utf-8")
    password_file.chmod(0o600)
    path = tmp_path / "idagent.toml"
    path.write_text(f'[bhyt]\nenabled = true\nbase_url = "{service.url}"\nusername = "{USERNAME}"\n'
                    f'password_file = "{password_file}"\nofficer_name = "{OFFICER_NAME}"\n'
                    f'officer_id = "{OFFICER_ID}"\nfacility_code = "79001"\nretries = 0\n', encoding="utf-8")
    yield path
    service.stop()


@pytest.mark.parametrize("card,name,dob,status", [
    ("001099099999", "Nguyễn Văn An", "15/03/1999", "not_found"),
    ("001099012345", "Lê Văn Sai", "15/03/1999", "wrong_name"),
    ("001099012345", "Nguyễn Văn An", "01/01/1990", "wrong_dob"),
])
def test_not_usable_answers_exit_9(config_path: Path, capsys: pytest.CaptureFixture[str],
                                   card: str, name: str, dob: str, status: str) -> None:
    code = main(["--config", str(config_path), "bhyt", "check", "--id", card, "--name", name, "--dob", dob])
    out = capsys.readouterr().out
    assert f"status:    {status}" in out
    assert code == 9


def test_a_valid_card_still_exits_0(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config_path), "bhyt", "check", "--id", "001099012345",
                 "--name", "Nguyễn Văn An", "--dob", "15/03/1999"]) == 0
