"""Access keys from the QR: CAN = last 6 digits, BAC document number = last 9 digits,
expiry from the validity rules (domain.md "Validity rule (law)")."""

from __future__ import annotations

import datetime as dt

import pytest

from agent.icao.keys import CanKey, MrzKey
from agent.qr.access_keys import VALIDITY_RULES, access_keys_from_qr, expiry_candidates
from agent.qr.payload import QrPayloadError, parse_cccd

AN = "001099012345|123456789|Nguyễn Văn An|15031999|Nam|Số 12 Ngõ 34, Hà Nội|20042021"


def test_can_first_then_bac() -> None:
    keys = access_keys_from_qr(AN)
    assert isinstance(keys[0], CanKey) and keys[0].can == "012345"
    bac = keys[1]
    assert isinstance(bac, MrzKey)
    assert bac.document_number == "099012345"
    assert bac.date_of_birth == "990315"
    # issued at 22 under the 2014 law: renew at 25, on the birthday
    assert bac.date_of_expiry == "240315"
    assert len(keys) == 2


def test_domain_mrz_sample_agrees() -> None:
    # domain.md synthetic MRZ: doc 099012345, DOB 990315, expiry 390315 (= renewal at 40)
    card = parse_cccd(AN.replace("20042021", "20052022"))  # issued at 23: within 2 years of 25
    keys = access_keys_from_qr(card)
    assert any(isinstance(k, MrzKey) and k.date_of_expiry == "390315" for k in keys)


@pytest.mark.parametrize(("birth", "issued", "first"), [
    (dt.date(1999, 3, 15), dt.date(2021, 4, 20), "240315"),   # 2014 law, age 22 → 25
    (dt.date(1999, 3, 15), dt.date(2022, 5, 20), "390315"),   # within 2 years of 25 → 40
    (dt.date(1980, 7, 1), dt.date(2021, 1, 5), "400701"),     # age 40.5 → 60
    (dt.date(2011, 8, 9), dt.date(2024, 9, 1), "360809"),     # 2023 law, age 13 → 25
    (dt.date(2014, 8, 9), dt.date(2024, 9, 1), "280809"),     # 2023 law, age 10 → 14
    (dt.date(1960, 5, 2), dt.date(2021, 6, 1), "990502"),     # past 60 → no expiry
])
def test_expiry_rules(birth: dt.date, issued: dt.date, first: str) -> None:
    assert expiry_candidates(birth, issued)[0].yymmdd == first


def test_no_expiry_year_is_configurable() -> None:
    out = expiry_candidates(dt.date(1962, 5, 2), dt.date(2021, 1, 1), no_expiry_year=2100)
    assert out[0].yymmdd == "000502" and out[0].date is None
    assert expiry_candidates(dt.date(1962, 5, 2), dt.date(2021, 1, 1), no_expiry_year=None) == []


def test_grace_boundary_gives_both_candidates() -> None:
    # issued 2 weeks before the 23rd birthday: literally "renew at 25", but the grace
    # rule's counting is unconfirmed, so "40" is the second candidate
    out = [c.yymmdd for c in expiry_candidates(dt.date(1999, 3, 15), dt.date(2022, 3, 1))]
    assert out == ["240315", "390315"]


def test_law_switch_boundary_tries_both_laws() -> None:
    # age 11 at issue, days before 2024-07-01: 2014 law says 25, 2023 law says 14
    out = [c.yymmdd for c in expiry_candidates(dt.date(2013, 1, 10), dt.date(2024, 6, 20))]
    assert out == ["380110", "270110"]


def test_29_february_birthday_candidates() -> None:
    out = [c.yymmdd for c in expiry_candidates(dt.date(2000, 2, 29), dt.date(2021, 1, 1))]
    assert out == ["250229", "250228", "250301"]


def test_rules_are_data() -> None:
    assert [r.renewal_ages for r in VALIDITY_RULES] == [(25, 40, 60), (14, 25, 40, 60)]


def test_not_a_card_raises_payload_error() -> None:
    with pytest.raises(QrPayloadError):
        access_keys_from_qr("https://example.vn")


def test_no_issue_date_only_can() -> None:
    keys = access_keys_from_qr(AN.replace("|20042021", "|"))
    assert len(keys) == 1 and isinstance(keys[0], CanKey)


def test_key_reprs_masked() -> None:
    text = repr(access_keys_from_qr(AN))
    assert "012345" not in text and "990315" not in text


def test_bytes_take_the_same_repair_path_as_the_scanner() -> None:
    # one QR-text → card path: bytes are repaired like a scan (read_payload), never a
    # stricter UTF-8 decode of its own
    assert access_keys_from_qr(AN.encode("utf-8")) == access_keys_from_qr(AN)
    # a scanner set to a legacy code page: not UTF-8, but the ID and dates survive
    legacy = AN.encode("cp1258", "replace")
    assert access_keys_from_qr(legacy) == access_keys_from_qr(AN)
