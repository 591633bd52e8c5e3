"""CCCD QR payload parsing (domain.md "The card's QR code"; synthetic people only)."""

from __future__ import annotations

import datetime as dt

import pytest

from agent.errors import ParseError
from agent.identity.from_qr import identity_from_qr
from agent.qr.payload import CccdQr, NotCccdError, QrPayloadError, parse_cccd, printable, read_payload

# synthetic: Hà Nội (001), male born 1999 (digit 0 = 1900s male), year digits 99
AN = "001099012345|123456789|Nguyễn Văn An|15031999|Nam|Số 12 Ngõ 34, Phường Láng Hạ, Quận Đống Đa, Hà Nội|20042021"
# synthetic: Đà Nẵng (048), female born 2003 (digit 3 = 2000s female), born 2004, no old ID
BINH = "048304004321||Trần Thị Bình|29022004|Nữ|Thôn Đông Xá, Xã Hòa Phước, Huyện Hòa Vang, Đà Nẵng|05082024"


def test_2021_card_fields_typed_and_iso() -> None:
    card = parse_cccd(AN)
    assert card.id_number == "001099012345"
    assert card.old_id_number == "123456789"
    assert card.full_name == "Nguyễn Văn An"
    assert card.date_of_birth == dt.date(1999, 3, 15)
    assert card.sex == "M" and card.sex_label == "Nam"
    assert card.date_of_issue == dt.date(2021, 4, 20)
    assert card.province_name == "Hà Nội"
    assert card.variant == "cccd2021"
    assert card.can == "012345" and card.document_number == "099012345"
    assert card.to_dict()["date_of_birth"] == "1999-03-15"


def test_empty_old_id_and_female_2000s() -> None:
    card = parse_cccd(BINH)
    assert card.old_id_number is None
    assert card.sex == "F"
    assert card.date_of_birth == dt.date(2004, 2, 29)


def test_id_digits_checked_against_birth_and_sex() -> None:
    # digit 4 says 2000s but born 2003 is fine; break the year digits
    bad_year = BINH.replace("048304004321", "048303004321")
    with pytest.raises(QrPayloadError, match="5-6") as err:
        parse_cccd(bad_year)
    assert err.value.field_name == "id_number"
    bad_sex = AN.replace("|Nam|", "|Nữ|")
    with pytest.raises(QrPayloadError, match="sex"):
        parse_cccd(bad_sex)
    bad_century = AN.replace("001099", "001299")
    with pytest.raises(QrPayloadError, match="1999|2000s"):
        parse_cccd(bad_century)
    lenient = parse_cccd(bad_sex, strict=False)
    assert lenient.warnings and "sex" in lenient.warnings[0]


def test_unknown_province_is_a_warning_not_an_error() -> None:
    card = parse_cccd(AN.replace("001099", "003099"))
    assert any("province" in w for w in card.warnings)


@pytest.mark.parametrize(("text", "field", "expect"), [
    (AN.replace("15031999", "1503199"), "date_of_birth", "ddMMyyyy"),
    (AN.replace("15031999", "31021999"), "date_of_birth", "calendar"),
    (AN.replace("|Nam|", "|Male|"), "sex", "Nam"),
    (AN.replace("123456789", "12345"), "old_id_number", "9 digits"),
    (AN.replace("20042021", "20041990"), "date_of_issue", "before"),
    (AN.replace("|Nguyễn Văn An|", "||"), "full_name", "empty"),
    ("|".join(AN.split("|")[:5]), "place_of_residence", "at least 7"),
])
def test_precise_errors_name_the_field(text: str, field: str, expect: str) -> None:
    with pytest.raises(QrPayloadError, match=expect) as err:
        parse_cccd(text)
    assert err.value.field_name == field
    assert isinstance(err.value, ParseError)
    assert err.value.offset is not None


def test_2024_card_extra_fields_kept_raw_and_unknown() -> None:
    text = BINH + "|Trần Văn Cường|Lê Thị Dung|001204004321"
    card = parse_cccd(text)
    assert card.variant == "cancuoc2024"
    assert card.extra == ("Trần Văn Cường", "Lê Thị Dung", "001204004321")
    assert card.to_dict()["extra"] == {"unknown_7": "Trần Văn Cường", "unknown_8": "Lê Thị Dung",
                                       "unknown_9": "001204004321"}
    identity = identity_from_qr(card)
    assert identity.extra["qr_unknown_7"] == "Trần Văn Cường"
    assert identity.father_name is None  # not guessed


def test_other_documents_are_a_clear_result() -> None:
    for other in ("https://example.vn/pay?id=1", "WIFI:S:cafe;T:WPA;P:x;;", "", "00020101021238570010A000000727"):
        result = read_payload(other)
        assert result.kind == "not_cccd" and result.card is None
        assert isinstance(result.error, NotCccdError)
    with pytest.raises(NotCccdError):
        parse_cccd("hello|world")


def test_malformed_cccd_is_a_result_too() -> None:
    result = read_payload(AN.replace("15031999", "99999999"))
    assert result.kind == "malformed" and result.error is not None
    assert result.error.field_name == "date_of_birth"


def test_html_and_control_characters_are_data() -> None:
    text = AN.replace("Nguyễn Văn An", "<script>alert(1)</script>\x07An\u202e")
    card = parse_cccd(text)
    assert card.full_name == "<script>alert(1)</script>\x07An\u202e"
    shown = printable(card.full_name)
    assert "\\x07" in shown and "\\u202e" in shown and "\x07" not in shown


def test_repr_is_masked() -> None:
    card = parse_cccd(AN)
    for text in (repr(card), str(card), repr(read_payload(AN))):
        assert "001099012345" not in text and "Nguyễn" not in text


def test_to_identity_sources_qr() -> None:
    identity = identity_from_qr(parse_cccd(AN))
    assert identity.id_number == "001099012345"
    assert identity.date_of_birth == dt.date(1999, 3, 15)
    assert identity.document_number == "099012345"
    assert set(identity.sources.values()) == {"qr"}
    assert "full_name" in identity.sources


def test_bytes_payload_and_terminator() -> None:
    result = read_payload(AN.encode() + b"\r\n")
    assert result.kind == "cccd"
    assert isinstance(result.card, CccdQr)
    assert result.raw is not None and result.raw.endswith(b"\r\n")


@pytest.mark.parametrize("text", [
    # Arabic-Indic digits in the ID number (positions 5-6 left ASCII so the year check passes)
    "\u0660\u0660\u0661\u066099\u0660\u0661\u0662\u0663\u0664\u0665"
    "|123456789|Nguyen Van An|15031999|Nam|Ha Noi|20042021",
    # full-width digits in the birth date
    "001099012345|123456789|Nguyen Van An|\uff11\uff15\uff10\uff13\uff11\uff19\uff19\uff19|Nam|Ha Noi|20042021",
])
def test_only_ascii_digits_count_as_digits(text: str) -> None:
    # domain.md: the ID is 12 digits 0-9 and the CAN its last 6; Python's \d also matches
    # Arabic-Indic and full-width digits, which must not become an ID, a date or a CAN
    result = read_payload(text)
    assert result.card is None, result
    with pytest.raises(QrPayloadError):
        parse_cccd(text, strict=False)
