"""The kit wire format (agent.compat.kit): field names and formats, the client
events' validation, and the keys /input_data gives."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from agent.compat import kit
from agent.compat.active_auth import keys_of
from agent.icao.checks import CheckResult, Status
from agent.icao.keys import CanKey, MrzKey
from agent.icao.verify import Verification, VerificationStatus
from agent.identity import Identity
from agent.pipeline import Verdict


def _chip(**changes: object) -> Identity:
    values: dict[str, object] = dict(
        id_number="001099012345", full_name="Nguyễn Văn An", date_of_birth=dt.date(1999, 3, 15), sex="F",
        date_of_issue=dt.date(2024, 7, 1), date_of_expiry=None, spouse_name="Lê Văn C",
        sources={"id_number": "chip", "full_name": "chip"})
    values.update(changes)
    return Identity(**values)  # type: ignore[arg-type]


def test_card_fields_use_kit_names_and_formats() -> None:
    fields = kit.card_fields(_chip(qr_text="001099012345|012345678|Nguyễn Văn An|15031999|Nam|x|01072024"))
    assert fields["idCode"] == "001099012345" and fields["personName"] == "Nguyễn Văn An"
    assert fields["dateOfBirth"] == "15031999" and fields["issueDate"] == "01072024"
    assert fields["gender"] == "Nữ" and fields["wifeName"] == "Lê Văn C"
    assert fields["expiryDate"] == kit.NO_EXPIRY_TEXT  # read from the chip, no expiry date
    assert fields["qr"].startswith("001099012345|")
    assert set(fields) == {*kit.KIT_NAMES.values(), "qr"}


def test_qr_only_identity_does_not_claim_no_expiry() -> None:
    fields = kit.card_fields(_chip(sources={"id_number": "qr"}, spouse_name=None))
    assert fields["expiryDate"] == "" and fields["qr"] == "" and fields["wifeName"] == ""  # never null


def test_input_data_keys_and_no_expiry_2099() -> None:
    keys = kit.keys_from_input({"idCode": "001099012345", "dateOfBirth": "29021996", "expiryDate": "29022099"})
    assert keys == [CanKey("012345"), MrzKey("099012345", "960229", "990229")]


@pytest.mark.parametrize(("payload", "words"), [
    ({"idCode": "12345", "dateOfBirth": "15031999", "expiryDate": "15032039"}, "12-digit"),
    ({"idCode": "001099012345", "dateOfBirth": "1999-03-15", "expiryDate": "15032039"}, "ddMMyyyy"),
    ({"idCode": "001099012345", "dateOfBirth": "31021999", "expiryDate": "15032039"}, "not a date"),
    ({"idCode": "001099012345", "dateOfBirth": "15031999", "expiryDate": "15132039"}, "not a date"),
    ("not an object", "expected an object"),
])
def test_input_data_errors_say_what_is_wrong(payload: object, words: str) -> None:
    with pytest.raises(kit.KitRequestError, match=words):
        kit.keys_from_input(payload)


@pytest.mark.parametrize(("payload", "words"), [
    ({}, "missing"), ({"challenge": "!!"}, "not base64"),
    ({"challenge": base64.b64encode(b"1234").decode()}, "4 bytes"),
])
def test_challenge_errors(payload: dict[str, str], words: str) -> None:
    with pytest.raises(kit.KitRequestError, match=words):
        kit.challenge_from(payload)


def test_raw_files_follow_the_settings() -> None:
    files = {"DG1": b"\x61\x01", "SOD": b"\x77\x01"}
    nothing = kit.raw_files(files, b"\xff\xd8", send_raw=False, send_photo=False)["data"]
    assert set(nothing.values()) == {""}
    photo_only = kit.raw_files(files, b"\xff\xd8", send_raw=False, send_photo=True)["data"]
    assert photo_only["img_data"] == "/9g=" and photo_only["dg1"] == ""
    raw = kit.raw_files(files, None, send_raw=True, send_photo=True)["data"]
    assert raw["dg1"] == "YQE=" and raw["sod"] == "dwE=" and raw["dg2"] == ""


def test_security_of_a_damaged_sod_keeps_the_verdict() -> None:
    ok = CheckResult(Status.VALID, "ok")
    checks = Verification(CheckResult(Status.ERROR, "EF.SOD could not be checked"), ok, CheckResult.not_supported("-"),
                          VerificationStatus.ERROR, "passive authentication failed to run")
    data = kit.security({"SOD": b"\x77\x03\x01\x02\x03"}, Verdict.of(checks))["data"]
    assert data["CA"] == "1" and data["PA"]["hash_dg1"] == "" and data["verified"] is False


def test_keys_of_the_card_just_read() -> None:
    keys = keys_of(_chip(document_number=None))
    assert keys == [CanKey("012345"), MrzKey("099012345", "990315", "990315")]  # no expiry: ddMM + 2099


def test_info_date_is_utc_with_milliseconds() -> None:
    now = dt.datetime(2026, 5, 12, 9, 39, 59, 852_400, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    assert kit.info("1.0", "A", "B", now)["date"] == "2026-05-12T02:39:59.852Z"


def test_failure_messages_are_vietnamese_for_unknown_codes_too() -> None:
    assert kit.failure("need_access")["message"].startswith("Chưa mở được chip")
    assert kit.failure("some_new_code")["message"] == kit.FAILURE_DEFAULT
