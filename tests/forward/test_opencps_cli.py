"""``idagent intake test`` and ``idagent outbox list`` for the OpenCPS target, through the
real CLI entry point, against the local stand-in portal; the daemon's forwarding service
with ``[intake] target = "opencps"``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opencps_helpers import applicant

from agent.cli import main
from agent.config import load_config
from agent.forward.worker import DeliveryReport, ForwardingService
from agent.sim.services.opencps import ACCOUNTS, EMPLOYEE, GROUP_ID, PROCEDURES, OpenCpsTestService


@pytest.fixture
def portal() -> Iterator[OpenCpsTestService]:
    service = OpenCpsTestService().start()
    yield service
    service.stop()


def write_config(tmp_path: Path, portal_url: str, password: str = ACCOUNTS[EMPLOYEE].password,
                 template: str = PROCEDURES[0].template_no) -> Path:
    pw = tmp_path / "opencps.password"
    pw.write_text(password + "\n", encoding="utf-8")
    pw.chmod(0o600)
    path = tmp_path / "idagent.toml"
    path.write_text(f"""
[intake]
enabled = true
target = "opencps"
[opencps]
portal = "{portal_url}"
group_id = "{GROUP_ID}"
username = "{EMPLOYEE}"
password_file = "{pw}"
service_code = "{PROCEDURES[0].service_code}"
gov_agency_code = "{PROCEDURES[0].gov_agency_code}"
dossier_template_no = "{template}"
timeout = 2.0
settle = 0.0
[outbox]
path = "{tmp_path / 'outbox.sqlite3'}"
key_file = "{tmp_path / 'outbox.key'}"
base_backoff = 0.05
max_backoff = 0.1
""", encoding="utf-8")
    return path


def test_intake_test_passes_and_files_nothing(tmp_path: Path, portal: OpenCpsTestService,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(write_config(tmp_path, portal.url)), "intake", "test"]) == 0
    out = capsys.readouterr().out
    assert "intake test: ok" in out and "1.001612" in out
    assert portal.state.stats()["dossiers"] == 0


@pytest.mark.parametrize(("password", "template", "expected"), [
    ("sai-mat-khau", PROCEDURES[0].template_no, "not authorised (HTTP 203)"),
    (ACCOUNTS[EMPLOYEE].password, "TP-KHONG-CO", "dossierTemplateNo 'TP-KHONG-CO'"),
])
def test_intake_test_names_the_problem(tmp_path: Path, portal: OpenCpsTestService, password: str, template: str,
                                       expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, portal.url, password=password, template=template)
    assert main(["--config", str(config), "--json", "intake", "test"]) == 7
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and any(expected in line for line in out["checks"])


def test_forwarding_service_files_and_outbox_list_shows_receipt_and_failure(
        tmp_path: Path, portal: OpenCpsTestService, capsys: pytest.CaptureFixture[str]) -> None:
    portal.state.control({"assign_numbers": True})
    config_path = write_config(tmp_path, portal.url)
    service = ForwardingService(load_config(str(config_path)))
    events: list[DeliveryReport] = []
    service.watch(events.append)
    service.start()
    try:
        assert service.format == "opencps"
        service.forward(applicant(1))
        portal.state.control({"login_mode": "redirect", "fail_before": 0.0})
        deadline = time.monotonic() + 5
        while not events and time.monotonic() < deadline:
            time.sleep(0.01)
        (dossier,) = portal.state.dossiers.values()
        # the account's password changes on the portal: the next one is refused
        accounts_backup = dict(ACCOUNTS)
        ACCOUNTS[EMPLOYEE] = ACCOUNTS[EMPLOYEE].__class__("doi-mat-khau", "employee", frozenset({"1.001612"}))
        try:
            service.forward(applicant(2))
            while len(events) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            ACCOUNTS.update(accounts_backup)
    finally:
        service.stop()
    assert [(e.state, e.receipt) for e in events] == [("delivered", dossier["dossierNo"]), ("failed", None)]
    assert main(["--config", str(config_path), "outbox", "list", "--all"]) == 0
    out = capsys.readouterr().out
    assert dossier["dossierNo"] in out
    assert "redirected to /c/portal/login" in out and "failed" in out
