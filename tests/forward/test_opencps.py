"""OpenCPS intake against the local stand-in portal (a real HTTP server): the form, the
headers and auth, receipts through the outbox, and every failure the issue names."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import requests
from opencps_helpers import applicant

from agent.config import Config
from agent.forward.opencps import (
    KIND,
    OpenCpsConfigError,
    OpenCpsSender,
    OpenCpsSettings,
    build_form,
    check_portal,
    encode_form,
    enqueue_dossier,
)
from agent.forward.opencps_regions import RegionTable
from agent.forward.outbox import Outbox, OutboxItem, Policy
from agent.forward.worker import DeliveryReport, OutboxWorker
from agent.sim.services.opencps import ACCOUNTS, API, EMPLOYEE, GROUP_ID, PROCEDURES, OpenCpsTestService

KEY = bytes(range(32))
REGIONS = RegionTable.load()


@pytest.fixture
def portal() -> Iterator[OpenCpsTestService]:
    service = OpenCpsTestService().start()
    yield service
    service.stop()


def settings_for(portal: OpenCpsTestService, **overrides: object) -> OpenCpsSettings:
    proc = PROCEDURES[0]
    values: dict[str, object] = dict(portal=portal.url, group_id=GROUP_ID, username=EMPLOYEE,
                                     password=ACCOUNTS[EMPLOYEE].password, service_code=proc.service_code,
                                     gov_agency_code=proc.gov_agency_code, dossier_template_no=proc.template_no,
                                     timeout=2.0, settle=0.0, regions=REGIONS)
    values.update(overrides)
    return OpenCpsSettings(**values)  # type: ignore[arg-type]


def run_worker(box: Outbox, sender: OpenCpsSender) -> list[DeliveryReport]:
    events: list[DeliveryReport] = []
    worker = OutboxWorker(box, {KIND: sender}, concurrency=4, batch=16, idle_wait=0.01)
    worker.listeners.append(events.append)
    worker.acquire()
    worker.run(until_empty=True)
    worker.stop()
    return events


def new_box(tmp_path: Path, **policy: float) -> Outbox:
    return Outbox(tmp_path / "o.sqlite3", KEY, policy=Policy(base_backoff=0.01, max_backoff=0.02, **policy))


# --------------------------------------------------------------------------- the form

def test_form_carries_every_field_the_portal_needs(portal: OpenCpsTestService) -> None:
    form = build_form(applicant(), settings_for(portal), "idagent-0000")
    assert form["serviceCode"] == "1.001612" and form["originality"] == "3"
    assert form["applicantIdType"] == "citizen" and form["applicantIdNo"] == "001099500001"
    # one format that both the POST (dd/MM/yyyy prefix) and the PUT parser accept
    assert form["applicantIdDate"] == "01/04/2021 00:00:00"
    assert (form["cityCode"], form["districtCode"], form["wardCode"]) == ("01", "", "00004")
    assert json.loads(form["metaData"])["applicantBirthDate"] == "31/12/1990"
    assert json.loads(form["metaData"])["applicantGender"] == "Nữ"
    body = encode_form(form)
    assert dict(parse_qsl(body.decode("ascii")))["applicantName"] == "Trần Thị Ánh Tuyết"


def test_reference_uid_is_the_idempotency_key_and_has_a_letter(tmp_path: Path, portal: OpenCpsTestService) -> None:
    box = new_box(tmp_path)
    key = enqueue_dossier(box, applicant(), settings_for(portal))
    assert any(c.isalpha() for c in key) and len(key) <= 255
    (item,) = box.claim(1)
    assert dict(parse_qsl(item.body.decode("ascii")))["referenceUid"] == key
    assert item.content_type == "application/x-www-form-urlencoded"


def test_region_table_and_the_2025_merger() -> None:
    assert REGIONS.resolve("12 Lê Lợi, Phường Sài Gòn, TP. Hồ Chí Minh") is not None
    # a pre-2025 address: "Quận Ba Đình" is a district, not the new "Phường Ba Đình"
    assert REGIONS.resolve("Số 1, Phường Phúc Xá, Quận Ba Đình, Thành phố Hà Nội") is None
    assert REGIONS.resolve("Xóm Thử, Xã Không Có, Tỉnh Không Có") is None
    own = RegionTable.parse("city_code,city_name,district_code,district_name,ward_code,ward_name\n"
                            "01,Hà Nội,001,Quận Ba Đình,00001,Phường Phúc Xá\n", "site table")
    region = own.resolve("Số 1, Phường Phúc Xá, Quận Ba Đình, Thành phố Hà Nội")
    assert region is not None and (region.district_code, region.ward_code) == ("001", "00001")


# --------------------------------------------------------------------------- filing

def test_files_a_dossier_and_keeps_the_receipt(tmp_path: Path, portal: OpenCpsTestService) -> None:
    portal.state.control({"assign_numbers": True})
    box = new_box(tmp_path)
    key = enqueue_dossier(box, applicant(), settings_for(portal))
    events = run_worker(box, OpenCpsSender(settings_for(portal)))
    (dossier,) = portal.state.dossiers.values()
    assert dossier["referenceUid"] == key and dossier["applicantName"] == "TRẦN THỊ ÁNH TUYẾT"
    assert dossier["wardCode"] == "00004"
    info = box.info(key)
    assert info is not None and info.state == "delivered" and info.receipt == dossier["dossierNo"] != ""
    assert [(e.state, e.receipt) for e in events] == [("delivered", dossier["dossierNo"])]
    assert info.last_error is None  # the day survived the GMT → +07 shift


def test_a_draft_without_number_shows_the_reference(tmp_path: Path, portal: OpenCpsTestService) -> None:
    box = new_box(tmp_path)
    key = enqueue_dossier(box, applicant(), settings_for(portal))
    run_worker(box, OpenCpsSender(settings_for(portal)))
    info = box.info(key)
    assert info is not None and info.receipt == key


def test_a_shifted_echoed_date_is_noted(tmp_path: Path, portal: OpenCpsTestService) -> None:
    # a server parsing in +07 and showing in GMT moves midnight to the previous day
    portal.state.control({"server_utc_offset": 7, "display_utc_offset": 0})
    box = new_box(tmp_path)
    key = enqueue_dossier(box, applicant(), settings_for(portal))
    run_worker(box, OpenCpsSender(settings_for(portal)))
    info = box.info(key)
    assert info is not None and info.state == "delivered"
    assert "31/03/2021" in (info.last_error or "") and "time zone" in (info.last_error or "")


def test_answer_lost_after_filing_is_looked_up_not_filed_again(tmp_path: Path, portal: OpenCpsTestService) -> None:
    portal.state.control({"fail_after": 1.0})
    box = new_box(tmp_path)
    key = enqueue_dossier(box, applicant(), settings_for(portal))
    sender = OpenCpsSender(settings_for(portal))
    worker = OutboxWorker(box, {KIND: sender}, idle_wait=0.01)
    worker.acquire()
    worker.run_once()
    portal.state.control({"fail_after": 0.0})
    worker.run(until_empty=True)
    worker.stop()
    stats = portal.state.stats()
    assert stats["posts"] == 1 and stats["gets"] == 1 and stats["filed"] == 1
    assert box.info(key).state == "delivered"  # type: ignore[union-attr]


def test_timeout_waits_then_looks_up_before_resending(tmp_path: Path, portal: OpenCpsTestService) -> None:
    portal.state.control({"delay_ms": 700})
    box = new_box(tmp_path)
    key = enqueue_dossier(box, applicant(), settings_for(portal))
    sender = OpenCpsSender(settings_for(portal, timeout=0.3, settle=5.0))
    (item,) = box.claim(1)
    outcome = sender(item)
    assert not outcome.ok and "did not answer" in outcome.error and outcome.retry_after == 5.0
    recorded = box._clock()
    box.record([(item, outcome)])
    assert box.next_due() is not None and box.next_due() >= recorded + 5.0  # type: ignore[operator]
    portal.state.control({"delay_ms": 0})
    # the slow POST finishes on the portal (waited for, not slept on: a loaded machine
    # may take longer than the 0.7 s delay)
    deadline = time.monotonic() + 30
    while portal.state.references() != {key: 1} and time.monotonic() < deadline:
        time.sleep(0.02)
    assert portal.state.references() == {key: 1}
    item2 = dataclasses.replace(item, attempts=2)
    assert sender(item2).ok
    stats = portal.state.stats()
    assert stats["posts"] == 1 and stats["gets"] == 1 and stats["references_filed_twice"] == 0
    assert portal.state.references() == {key: 1}


def test_never_two_requests_for_one_key_at_once(tmp_path: Path, portal: OpenCpsTestService) -> None:
    portal.state.control({"race_window_ms": 300})
    box = new_box(tmp_path)
    enqueue_dossier(box, applicant(), settings_for(portal))
    (item,) = box.claim(1)
    sender = OpenCpsSender(settings_for(portal))
    results = []
    threads = [threading.Thread(target=lambda: results.append(sender(item))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.ok for r in results) == [False, True]
    assert any("still in flight" in r.error for r in results)
    assert portal.state.stats()["posts"] == 1


def test_the_stand_in_portal_really_files_twice_when_raced(portal: OpenCpsTestService) -> None:
    # the race the sender guards against is real on the portal (no unique index)
    portal.state.control({"race_window_ms": 300})
    body = encode_form(build_form(applicant(), settings_for(portal), "idagent-race"))
    auth = (EMPLOYEE, ACCOUNTS[EMPLOYEE].password)
    headers = {"groupId": GROUP_ID, "Accept": "application/json",
               "Content-Type": "application/x-www-form-urlencoded"}
    threads = [threading.Thread(target=requests.post, args=(portal.url + API + "/dossiers",),
                                kwargs=dict(data=body, headers=headers, auth=auth, timeout=5)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert portal.state.references() == {"idagent-race": 2}
    # one after the other, the same referenceUid returns the dossier already filed
    r = requests.post(portal.url + API + "/dossiers", data=body, headers=headers, auth=auth, timeout=5)
    assert r.status_code == 200 and portal.state.stats()["reused"] == 1


# --------------------------------------------------------------------------- failures

@pytest.mark.parametrize(("change", "settings_change", "expected"), [
    ({}, {"password": "sai-mat-khau"}, "not authorised (HTTP 203)"),
    ({}, {"service_code": "9.999999"}, "not authorised (HTTP 203)"),  # a clerk: role check first
    ({}, {"username": "quantri", "password": ACCOUNTS["quantri"].password, "service_code": "9.999999"},
     "refused (HTTP 403): Cant find process"),
    ({}, {"group_id": "1"}, "refused (HTTP 403): groupId"),
    ({"login_mode": "redirect"}, {"password": "x"}, "redirected to /c/portal/login"),
    ({"login_mode": "html"}, {"password": "x"}, "HTML page"),
    ({}, {"api_path": "/o/rest/v9"}, "does not serve /o/rest/v9/dossiers (HTTP 404)"),
])
def test_refusals_fail_the_item_with_a_clear_status(tmp_path: Path, portal: OpenCpsTestService,
                                                    change: dict[str, object], settings_change: dict[str, object],
                                                    expected: str) -> None:
    portal.state.control(change)
    box = new_box(tmp_path)
    key = enqueue_dossier(box, applicant(), settings_for(portal))
    events = run_worker(box, OpenCpsSender(settings_for(portal, **settings_change)))
    info = box.info(key)
    assert info is not None and info.state == "failed" and info.attempts == 1
    assert expected in (info.last_error or "")
    assert [e.state for e in events] == ["failed"]
    assert portal.state.stats()["filed"] == 0
    # kept: once the settings are right, a retry files it exactly once
    portal.state.control({"login_mode": "203"})
    box.retry(info.id)
    run_worker(box, OpenCpsSender(settings_for(portal)))
    assert box.info(key).state == "delivered"  # type: ignore[union-attr]
    assert portal.state.references() == {key: 1}


def test_down_portal_is_retried_with_a_clear_status(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = OpenCpsSettings(portal=f"http://127.0.0.1:{port}", group_id=GROUP_ID, username="u", password="p",
                               service_code="s", gov_agency_code="g", dossier_template_no="t", settle=0.0,
                               regions=REGIONS)
    box = new_box(tmp_path)
    key = enqueue_dossier(box, applicant(), settings)
    (item,) = box.claim(1)
    outcome = OpenCpsSender(settings)(item)
    box.record([(item, outcome)])
    info = box.info(key)
    assert info is not None and info.state == "pending" and "portal unreachable" in (info.last_error or "")


def test_xml_is_what_a_client_gets_without_accept_json(portal: OpenCpsTestService) -> None:
    r = requests.get(portal.url + API + "/dossiers/idagent-x", headers={"groupId": GROUP_ID},
                     auth=(EMPLOYEE, ACCOUNTS[EMPLOYEE].password), timeout=5)
    assert r.headers["Content-Type"].startswith("application/xml")


def test_json_bodies_are_refused_by_the_portal(portal: OpenCpsTestService) -> None:
    r = requests.post(portal.url + API + "/dossiers", json={"serviceCode": "1.001612"},
                      headers={"groupId": GROUP_ID, "Accept": "application/json"},
                      auth=(EMPLOYEE, ACCOUNTS[EMPLOYEE].password), timeout=5)
    assert r.status_code == 415 and portal.state.stats()["filed"] == 0


# --------------------------------------------------------------------------- set-up check

def test_intake_test_checks_login_and_codes_without_filing(portal: OpenCpsTestService) -> None:
    ok = check_portal(settings_for(portal))
    assert ok.ok and "ok (Đăng ký thường trú)" in ok.lines[-1]
    bad_login = check_portal(settings_for(portal, password="sai"))
    assert not bad_login.ok and "203" in bad_login.lines[0]
    other = check_portal(settings_for(portal, service_code="2.000986"))  # exists, not this clerk's
    assert not other.ok and "not among this account's procedures" in other.lines[-1]
    template = check_portal(settings_for(portal, dossier_template_no="TP-X"))
    assert not template.ok and "TP-DKTT-01" in template.lines[-1]
    stats = portal.state.stats()
    assert stats["posts"] == 0 and stats["dossiers"] == 0


def test_settings_from_config(tmp_path: Path, portal: OpenCpsTestService) -> None:
    pw = tmp_path / "pw"
    pw.write_text(ACCOUNTS[EMPLOYEE].password + "\n")
    os.chmod(pw, 0o600)
    config = Config.defaults().replace("opencps", portal=portal.url + "/", group_id=GROUP_ID, username=EMPLOYEE,
                                       password_file=str(pw), service_code="1.001612",
                                       gov_agency_code="UBND-XA-BA-DINH", dossier_template_no="TP-DKTT-01")
    settings = OpenCpsSettings.from_config(config)
    assert settings.password == ACCOUNTS[EMPLOYEE].password and settings.portal == portal.url
    assert "password" not in repr(settings) or ACCOUNTS[EMPLOYEE].password not in repr(settings)
    with pytest.raises(OpenCpsConfigError, match="group_id"):
        OpenCpsSettings.from_config(config.replace("opencps", group_id=""))
    os.chmod(pw, 0o644)
    with pytest.raises(Exception, match="0600|permissions"):
        OpenCpsSettings.from_config(config)


def test_basic_auth_and_group_header_are_sent(portal: OpenCpsTestService) -> None:
    seen: dict[str, str] = {}

    class Spy(requests.Session):
        def request(self, method, url, **kwargs):  # type: ignore[no-untyped-def, override]
            seen.update(kwargs.get("headers") or {})
            seen["auth"] = base64.b64encode(":".join(self.auth).encode()).decode()  # type: ignore[arg-type]
            return super().request(method, url, **kwargs)

    item = OutboxItem(1, "idagent-spy", KIND, "application/x-www-form-urlencoded",
                      encode_form(build_form(applicant(), settings_for(portal), "idagent-spy")), 1)
    assert OpenCpsSender(settings_for(portal), session_factory=Spy)(item).ok
    assert seen["groupId"] == GROUP_ID and seen["Accept"] == "application/json"
    assert seen["Content-Type"].startswith("application/x-www-form-urlencoded")
