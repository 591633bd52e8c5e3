"""MRZ: TD1 as on the Vietnamese card (domain.md synthetic example), TD3 (the 9303-4
specimen ERIKSSON ANNA MARIA), check digits per 9303-3 §4.9."""

from __future__ import annotations

import datetime as dt

import pytest

from agent.icao.keys import CanKey, document_number_of, yymmdd
from agent.icao.mrz import MrzError, build_td1_vn, check_digit, expiry_date, parse_mrz, td1_access_key

TODAY = dt.date(2026, 11, 26)
#: domain.md, "MRZ (TD1, 3 × 30)" synthetic example
VN_TD1 = ("IDVNM0990123459001099012345<<0", "9903159M3903157VNM<<<<<<<<<<<0",
          "NGUYEN<<VAN<AN<<<<<<<<<<<<<<<<")
#: 9303-4 Appendix A specimen
TD3 = ("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F1204159ZE184226B<<<<<10")


def test_check_digits_9303_3() -> None:
    # 9303-11 Appendix D: L898902C<3, 690806 1, 940623 6
    assert check_digit("L898902C<") == 3
    assert check_digit("690806") == 1
    assert check_digit("940623") == 6
    assert check_digit("001099012345") == 0


def test_vietnamese_td1() -> None:
    mrz = parse_mrz(VN_TD1, today=TODAY)
    assert mrz.format == "TD1"
    assert mrz.document_number == "099012345"
    assert mrz.id_number == "001099012345"
    assert mrz.date_of_birth == dt.date(1999, 3, 15)
    assert mrz.date_of_expiry == dt.date(2039, 3, 15)
    assert mrz.sex == "M"
    assert (mrz.primary_identifier, mrz.secondary_identifier) == ("NGUYEN", "VAN AN")
    key = mrz.access_key()
    assert (key.document_number, key.date_of_birth, key.date_of_expiry) == ("099012345", "990315", "390315")


def test_builder_reproduces_domain_example() -> None:
    assert build_td1_vn("001099012345", "990315", "M", "390315", "NGUYEN", "VAN AN") == VN_TD1


def test_td3_specimen() -> None:
    mrz = parse_mrz("\n".join(TD3), today=TODAY)
    assert mrz.document_number == "L898902C3"
    assert mrz.date_of_birth == dt.date(1974, 8, 12)
    assert mrz.date_of_expiry == dt.date(2012, 4, 15)
    assert mrz.sex == "F"
    assert mrz.full_name == "ERIKSSON ANNA MARIA"
    assert mrz.optional_data == "ZE184226B"


def test_single_run_of_90_characters() -> None:
    assert parse_mrz("".join(VN_TD1), today=TODAY).id_number == "001099012345"


@pytest.mark.parametrize(("line", "position", "what"), [
    (1, 14, "document number"), (2, 6, "date of birth"), (2, 14, "date of expiry"),
    (2, 29, "composite"), (1, 29, "12-digit ID"),
])
def test_bad_check_digit_names_line_and_position(line: int, position: int, what: str) -> None:
    lines = list(VN_TD1)
    text = lines[line - 1]
    wrong = str((int(text[position]) + 1) % 10)
    lines[line - 1] = text[:position] + wrong + text[position + 1:]
    with pytest.raises(MrzError, match=what) as info:
        parse_mrz(lines, today=TODAY)
    assert (info.value.line, info.value.position) == (line, position)
    assert f"line {line} position {position}" in str(info.value)


def test_wrong_line_length() -> None:
    with pytest.raises(MrzError, match="29 characters") as info:
        parse_mrz([VN_TD1[0], VN_TD1[1][:-1], VN_TD1[2]], today=TODAY)
    assert info.value.line == 2


def test_bad_character() -> None:
    with pytest.raises(MrzError, match="outside the MRZ set") as info:
        parse_mrz([VN_TD1[0], VN_TD1[1], "NGUYEN<<VAN<AN<<<<<<<<<<<<<<<-"], today=TODAY)
    assert (info.value.line, info.value.position) == (3, 29)


def test_century_rules() -> None:
    # birth: never in the future; expiry: 20YY unless more than 50 years ahead
    assert parse_mrz(VN_TD1, today=dt.date(2026, 1, 1)).date_of_birth == dt.date(1999, 3, 15)
    lines = build_td1_vn("001226012345", "260315", "F", "460315", "TRAN", "THI BICH NGOC")
    assert parse_mrz(lines, today=TODAY).date_of_birth == dt.date(2026, 3, 15)
    assert parse_mrz(lines, today=dt.date(2026, 3, 14)).date_of_birth == dt.date(1926, 3, 15)
    assert expiry_date("760101", TODAY, 0) == (dt.date(2076, 1, 1), False)
    assert expiry_date("770101", TODAY, 0) == (dt.date(1977, 1, 1), False)


def test_no_expiry_year_convention() -> None:
    lines = build_td1_vn("001060012345", "600315", "M", "991231", "LE", "HOANG DUC")
    mrz = parse_mrz(lines, today=TODAY, no_expiry_year=2099)
    assert mrz.date_of_expiry is None and mrz.expiry_unconfirmed
    plain = parse_mrz(lines, today=TODAY, no_expiry_year=0)
    assert plain.date_of_expiry == dt.date(1999, 12, 31) and not plain.expiry_unconfirmed


def test_repr_masks() -> None:
    assert "099012345" not in repr(parse_mrz(VN_TD1, today=TODAY))


def test_td1_access_key_from_the_first_two_lines() -> None:
    assert td1_access_key(VN_TD1[:2]) == parse_mrz(VN_TD1, today=TODAY).access_key()
    with pytest.raises(MrzError, match="check digit of the date of expiry"):
        td1_access_key([VN_TD1[0], VN_TD1[1][:14] + "8" + VN_TD1[1][15:]])


def test_the_vietnamese_id_gives_can_and_document_number() -> None:
    # domain.md: CAN = the last 6 digits, MRZ document number = the last 9
    assert CanKey.of_id_number("001099012345") == CanKey("012345")
    assert document_number_of("001099012345") == "099012345"
    assert yymmdd(dt.date(1999, 3, 15)) == "990315"
