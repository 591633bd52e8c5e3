"""The BHYT client against the local test gateway (a real HTTP server).

Codes, endpoints and request fields: domain.md, "BHYT card check" (letter
1923/BHXH-CNTT). People: fixtures/bhyt/register.json (synthetic).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import unicodedata

import pytest
import requests
from forward_helpers import FakeClock, make_settings

from agent.forward.bhyt import CHECK_PATH, BhytClient
from agent.forward.bhyt_codes import BhytStatus
from agent.forward.bhyt_input import BhytInputError, normalize_card, normalize_name, parse_dob
from agent.forward.bhyt_result import BhytResult
from agent.sim.services.bhyt import BhytTestService

# --------------------------------------------------------------------------- the field problem

def test_year_only_dob_in_register_found_through_the_fallback(client: BhytClient,
                                                              gateway: BhytTestService) -> None:
    # register: Trần Thị Bình recorded with "1985" only; her ID card says 20/07/1985
    result = client.check("079185000123", "Trần Thị Bình", dt.date(1985, 7, 20))
    assert result.status is BhytStatus.VALID and result.code == "000" and result.usable
    assert result.dob_sent == ("20/07/1985", "1985")
    assert result.dob_matched == "year"
    assert result.insurance_dob == "1985"
    # the gateway really said 070 to the full date first
    assert gateway.state.snapshot()["counters"]["by_code"] == {"070": 1, "000": 1}


def test_full_dob_matches_without_a_second_query(client: BhytClient, gateway: BhytTestService) -> None:
    result = client.check("001099012345", "Nguyễn Văn An", "15/03/1999")
    assert result.status is BhytStatus.VALID
    assert result.dob_sent == ("15/03/1999",) and result.dob_matched == "full"
    assert result.card_valid_from == "2026-01-01" and result.card_valid_to == "2027-12-31"
    assert result.facility_code == "01001"
    assert gateway.state.snapshot()["counters"]["checks"] == 1


def test_demo_person_year_only_variant(client: BhytClient, gateway: BhytTestService) -> None:
    gateway.state.control({"variant": "year_only"})
    result = client.check("001099012345", "Nguyễn Văn An", "1999-03-15")
    assert (result.status, result.dob_matched, result.dob_sent) == (BhytStatus.VALID, "year", ("15/03/1999", "1999"))


def test_register_date_in_same_year_found_by_year(client: BhytClient) -> None:
    # register 01/01/1988, card 12/09/1988
    result = client.check("001088004567", "Lê Văn Cường", "12/09/1988")
    assert (result.status, result.dob_matched) == (BhytStatus.VALID, "year")
    assert result.insurance_dob == "01/01/1988"


def test_register_date_in_another_year_stays_wrong_dob(client: BhytClient) -> None:
    result = client.check("040090001234", "Dương Văn Minh", "05/05/1990")
    assert result.status is BhytStatus.WRONG_DOB and result.code == "070"
    assert result.dob_sent == ("05/05/1990", "1990") and result.dob_matched is None
    assert not result.usable


def test_year_only_input_is_sent_once(client: BhytClient) -> None:
    result = client.check("079185000123", "Trần Thị Bình", "1985")
    assert result.dob_sent == ("1985",) and result.dob_matched == "year"


# --------------------------------------------------------------------------- every register case

@pytest.mark.parametrize(("card", "name", "dob", "status", "code", "usable"), [
    ("036080001122", "Hoàng Văn Em", "22/02/1980", BhytStatus.REPLACED, "003", False),
    ("048195003344", "Võ Thị Phương", "30/04/1995", BhytStatus.REPLACED, "004", True),
    ("031192007788", "Phạm Thị Dung", "08/11/1992", BhytStatus.EXPIRED, "010", False),
    ("001075005566", "Đặng Văn Giang", "03/03/1975", BhytStatus.REVOKED, "110", False),
    ("001083006677", "Đỗ Văn Hùng", "14/06/1983", BhytStatus.VALID_OTHER_MINISTRY, "001", True),
    ("001186006688", "Bùi Thị Hoa", "09/09/1986", BhytStatus.VALID_OTHER_MINISTRY, "002", True),
    ("079193008899", "Ngô Thị Lan", "11/11/1993", BhytStatus.WRONG_FACILITY, "090", False),
    ("079191009900", "Lý Thị Ngọc", "25/12/1991", BhytStatus.REPORTED_REDUCTION, "120", False),
    ("001223000999", "Mai Gia Bảo", "02/02/2023", BhytStatus.CHILD_WITHOUT_CARD, "130", False),
    ("001070001010", "Tạ Văn Quang", "1970", BhytStatus.CARD_DATA_ERROR, "100", False),
    ("999999999999", "Không Có Ai", "1990", BhytStatus.NOT_FOUND, "050", False),
    ("DN4010199012399", "Nguyễn Văn An", "15/03/1999", BhytStatus.NOT_FOUND, "050", False),
    ("DN4020199012345", "Nguyễn Văn An", "15/03/1999", BhytStatus.WRONG_PROVINCE_CODE, "052", False),
    ("DN3010199012345", "Nguyễn Văn An", "15/03/1999", BhytStatus.WRONG_BENEFIT_CODE, "053", False),
    ("HC4010199012345", "Nguyễn Văn An", "15/03/1999", BhytStatus.WRONG_CARD_CODE, "051", False),
    ("001099012345", "Nguyễn Văn Ân", "15/03/1999", BhytStatus.WRONG_NAME, "061", False),
    ("001099012345", "Trần Văn An", "15/03/1999", BhytStatus.WRONG_NAME, "060", False),
])
def test_register_cases(client: BhytClient, card: str, name: str, dob: str, status: BhytStatus,
                        code: str, usable: bool) -> None:
    result = client.check(card, name, dob)
    assert (result.status, result.code, result.usable) == (status, code, usable)
    assert result.message_vi and result.message_en


def test_replaced_card_carries_the_new_card(client: BhytClient) -> None:
    result = client.check("DN4360080001122", "Hoàng Văn Em", "22/02/1980")
    assert result.new_card is not None
    assert result.new_card["card_code"] == "DN4790080001122"
    assert result.new_card["valid_to"] == "2027-06-30"
    assert result.old_card_code == "DN4360080001122"


def test_officer_not_registered_and_name_mismatch(gateway: BhytTestService, clock: FakeClock) -> None:
    unknown = BhytClient(make_settings(gateway.url, officer_id="079190009999"), clock=clock, sleep=clock.sleep)
    assert unknown.check("001099012345", "Nguyễn Văn An", "15/03/1999").code == "054"
    wrong = BhytClient(make_settings(gateway.url, officer_name="Người Khác"), clock=clock, sleep=clock.sleep)
    result = wrong.check("001099012345", "Nguyễn Văn An", "15/03/1999")
    assert (result.code, result.status, result.upstream_failure) == ("055", BhytStatus.OFFICER_NAME_MISMATCH, True)


def test_gateway_rejects_malformed_request_with_205(client: BhytClient, gateway: BhytTestService) -> None:
    # the client never sends this; the test service must still answer like the gateway
    token = client._current_token()
    params = {"token": token.access_token, "id_token": token.id_token, "username": "79001_BV",
              "password": client.settings.password_md5}
    answer = requests.post(gateway.url + CHECK_PATH, params=params,
                           json={"maThe": "123", "hoTen": "X", "ngaySinh": "15-03-1999"}, timeout=5).json()
    assert answer["maKetQua"] == "205"


# --------------------------------------------------------------------------- inputs

def test_name_normalization_before_sending(client: BhytClient) -> None:
    decomposed = unicodedata.normalize("NFD", "  trần   thị\tbình ")
    assert normalize_name(decomposed) == "TRẦN THỊ BÌNH"
    assert unicodedata.is_normalized("NFC", normalize_name(decomposed))
    assert client.check("079185000123", decomposed, "1985").status is BhytStatus.VALID


def test_dob_and_card_parsing() -> None:
    assert parse_dob("1985").full is None and parse_dob("1985").year == "1985"
    assert parse_dob("20071985").full == "20/07/1985"  # the card's QR writes ddMMyyyy
    assert parse_dob("1985-07-20").full == "20/07/1985"
    assert parse_dob(dt.date(1985, 7, 20)).full == "20/07/1985"
    assert normalize_card(" dn4010199012345 ") == "DN4010199012345"
    for bad in ("12345", "DN9010199012345", "00109901234X"):
        with pytest.raises(BhytInputError):
            normalize_card(bad)
    with pytest.raises(BhytInputError):
        parse_dob("31/02/1999")


# --------------------------------------------------------------------------- token

def test_token_is_kept_then_refreshed_before_expiry(client: BhytClient, gateway: BhytTestService,
                                                    clock: FakeClock) -> None:
    gateway.state.control({"token_ttl": 300})
    client.check("001099012345", "Nguyễn Văn An", "15/03/1999")
    client.check("001099012345", "Nguyễn Văn An", "15/03/1999")
    assert client.logins == 1
    clock.advance(280)  # inside the 30 s refresh margin
    assert client.check("001099012345", "Nguyễn Văn An", "15/03/1999").status is BhytStatus.VALID
    assert client.logins == 2
    assert gateway.state.snapshot()["counters"]["unauthorized"] == 0


def test_401_leads_to_one_relogin(client: BhytClient, gateway: BhytTestService) -> None:
    client.check("001099012345", "Nguyễn Văn An", "15/03/1999")
    gateway.state.control({"revoke_tokens": True})
    result = client.check("001099012345", "Nguyễn Văn An", "15/03/1999")
    assert result.status is BhytStatus.VALID
    assert client.logins == 2
    assert gateway.state.snapshot()["counters"]["unauthorized"] == 1


def test_wrong_password_is_auth_error(gateway: BhytTestService, clock: FakeClock) -> None:
    bad = BhytClient(make_settings(gateway.url, password="wrong"), clock=clock, sleep=clock.sleep)
    result = bad.check("001099012345", "Nguyễn Văn An", "15/03/1999")
    assert result.status is BhytStatus.AUTH_ERROR and result.upstream_failure
    assert "account" in result.message_en


# --------------------------------------------------------------------------- failures

def test_server_errors_are_retried_with_exponential_backoff(client: BhytClient, gateway: BhytTestService,
                                                            clock: FakeClock) -> None:
    gateway.state.control({"error_rate": 1.0})
    result = client.check("001099012345", "Nguyễn Văn An", "15/03/1999")
    assert result.status is BhytStatus.GATEWAY_ERROR and result.attempts == 3  # 1 + retries=2
    # jitter fixed at 0.5: ceiling/2 + 0.5*ceiling/2, ceilings 0.2 then 0.4
    assert clock.sleeps == pytest.approx([0.15, 0.3])
    gateway.state.control({"error_rate": 0.0})
    assert client.check("001099012345", "Nguyễn Văn An", "15/03/1999").status is BhytStatus.VALID


def test_backoff_jitter_stays_within_bounds(gateway: BhytTestService, clock: FakeClock) -> None:
    import random

    rng = random.Random(7)
    c = BhytClient(make_settings(gateway.url, retries=6, backoff_base=0.1, backoff_max=1.0, breaker_threshold=50),
                   clock=clock, sleep=clock.sleep, jitter=rng.random)
    gateway.state.control({"error_rate": 1.0})
    c.check("001099012345", "Nguyễn Văn An", "15/03/1999")
    ceilings = [min(1.0, 0.1 * 2 ** n) for n in range(6)]
    assert len(clock.sleeps) == 6
    for slept, ceiling in zip(clock.sleeps, ceilings, strict=True):
        assert ceiling / 2 <= slept <= ceiling
    assert len(set(clock.sleeps)) == 6


def test_timeout_is_a_gateway_error(gateway: BhytTestService) -> None:
    fast = BhytClient(make_settings(gateway.url, timeout=0.2, retries=0), sleep=lambda s: None)
    gateway.state.control({"delay_ms": 600})
    result = fast.check("001099012345", "Nguyễn Văn An", "15/03/1999")
    assert result.status is BhytStatus.GATEWAY_ERROR
    assert "timeout" in result.message_en


def test_dropped_connections_are_a_gateway_error(client: BhytClient, gateway: BhytTestService) -> None:
    gateway.state.control({"outage": True, "outage_mode": "drop"})
    result = client.check("001099012345", "Nguyễn Văn An", "15/03/1999")
    assert result.status is BhytStatus.GATEWAY_ERROR and result.attempts == 3


# --------------------------------------------------------------------------- thread safety, logs

def test_concurrent_checks_share_one_login(gateway: BhytTestService) -> None:
    shared = BhytClient(make_settings(gateway.url))
    gateway.state.control({"delay_ms": 5})
    results: list[BhytResult] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(5):
            r = shared.check("079185000123", "Trần Thị Bình", "20/07/1985")
            with lock:
                results.append(r)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 40
    assert all(r.status is BhytStatus.VALID and r.dob_matched == "year" for r in results)
    assert shared.logins == 1


def test_logs_carry_no_names_or_numbers(client: BhytClient, gateway: BhytTestService,
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client.check("079185000123", "Trần Thị Bình", "20/07/1985")
    gateway.state.control({"outage": True})
    client.check("079185000123", "Trần Thị Bình", "20/07/1985")
    text = caplog.text + " ".join(str(r.args) for r in caplog.records)
    for secret in ("079185000123", "Bình", "BÌNH", "Binh", "20/07/1985", "HC4790185000123"):
        assert secret not in text
    assert "07********23" in text  # the masked form is what the log shows
    assert "Bình" not in repr(client.check("079185000123", "Trần Thị Bình", "1985"))
