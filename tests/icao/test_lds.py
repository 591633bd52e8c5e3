"""LDS parsers on real-shaped bytes (9303-10 §4.6-4.7; DG13 per domain.md) and on
malformed input (a ParseError naming the file and the offset)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from agent.errors import ParseError
from agent.icao import tlv
from agent.icao.lds import (
    parse_com,
    parse_dg1,
    parse_dg2,
    parse_dg11,
    parse_dg12,
    parse_dg13,
)
from agent.icao.lds.com import build_com
from agent.icao.lds.dg1 import build_dg1
from agent.icao.lds.dg2 import build_dg2
from agent.icao.lds.dg13 import OID_UTF8, build_dg13
from agent.identity.from_chip import identity_from_chip
from agent.sim.face import synthetic_face

TODAY = dt.date(2026, 11, 26)
#: 9303-11 Appendix D.4: EF.COM's first 22 bytes as read in the worked example
#: (plain "60145F0104303130365F36063034303030305C026175"): LDS 1.6, Unicode 4.0.0, DG1+DG2
COM_9303 = bytes.fromhex("60145F0104303130365F36063034303030305C0261755F")[:22]
VN_TD1 = ("IDVNM0990123459001099012345<<0", "9903159M3903157VNM<<<<<<<<<<<0",
          "NGUYEN<<VAN<AN<<<<<<<<<<<<<<<<")
DG13_FIELDS: dict[int, str | list[str]] = {
    1: "001099012345", 2: "Nguyễn Văn An", 3: "15/03/1999", 4: "Nam", 5: "Việt Nam", 6: "Kinh",
    7: "Không", 8: "Xã Đông Anh, Hà Nội", 9: "Số 1 Tràng Tiền, Hoàn Kiếm, Hà Nội",
    10: "Nốt ruồi C:1cm trên trước mày phải", 11: "01/07/2021", 12: "15/03/2039",
    13: ["Nguyễn Văn Bình", "Trần Thị Cúc"], 14: [], 15: "012345678", 16: "0A1B2C3D4E5F6071",
    42: "giá trị lạ",
}


def test_com_from_9303_worked_example() -> None:
    com = parse_com(bytes.fromhex("60145F0104303130365F36063034303030305C026175"))
    assert com.lds_version == "1.6"
    assert com.unicode_version == "4.0.0"
    assert com.data_groups == (1, 2)


def test_com_vietnamese_list() -> None:
    com = parse_com(build_com([1, 2, 3, 13, 14, 15]))
    assert com.data_groups == (1, 2, 3, 13, 14, 15)
    assert com.lds_version == "1.7"


def test_com_missing_list() -> None:
    data = tlv.encode(0x60, tlv.encode(0x5F01, b"0107") + tlv.encode(0x5F36, b"040000"))
    with pytest.raises(ParseError, match="tag 5C missing") as info:
        parse_com(data)
    assert info.value.source == "COM"


def test_dg1_td1() -> None:
    dg1 = parse_dg1(build_dg1(VN_TD1), today=TODAY)
    assert dg1.mrz.id_number == "001099012345"
    assert dg1.mrz.document_number == "099012345"


def test_dg1_bad_check_digit_offset_is_in_the_file() -> None:
    lines = list(VN_TD1)
    lines[1] = lines[1][:6] + "0" + lines[1][7:]
    with pytest.raises(ParseError) as info:
        parse_dg1(build_dg1(lines), today=TODAY)
    # 61 5D 5F1F 5A: the MRZ text starts at offset 5; line 2 position 6 is 5 + 30 + 6
    assert info.value.source == "DG1" and info.value.offset == 41


def test_dg1_truncated() -> None:
    with pytest.raises(ParseError) as info:
        parse_dg1(build_dg1(VN_TD1)[:50])
    assert info.value.source == "DG1"


def test_dg2_jpeg() -> None:
    face = synthetic_face(7)
    dg2 = parse_dg2(build_dg2(face.jpeg, face.width, face.height, gender="F"))
    assert len(dg2.faces) == 1
    image = dg2.faces[0]
    assert (image.width, image.height, image.image_format, image.gender) == (360, 480, "JPEG", "F")
    assert dg2.photo_jpeg == face.jpeg
    assert 15_000 <= len(face.jpeg) <= 20_000


def test_dg2_jpeg2000_converted_to_jpeg() -> None:
    face = synthetic_face(8)
    out = io.BytesIO()
    Image.open(io.BytesIO(face.jpeg)).save(out, "JPEG2000")
    dg2 = parse_dg2(build_dg2(out.getvalue(), face.width, face.height, jpeg2000=True))
    assert dg2.faces[0].image_format == "JPEG2000"
    shown = Image.open(io.BytesIO(dg2.photo_jpeg or b""))
    assert shown.format == "JPEG" and shown.size == (360, 480)


def test_dg2_not_an_image() -> None:
    with pytest.raises(ParseError, match="neither JPEG nor JPEG 2000") as info:
        parse_dg2(build_dg2(b"GIF89a" + bytes(100), 10, 10))
    assert info.value.source == "DG2" and info.value.offset is not None


def test_dg2_bad_record_header() -> None:
    data = bytearray(build_dg2(synthetic_face(1).jpeg, 360, 480))
    at = data.find(b"FAC\x00")
    data[at:at + 4] = b"XXXX"
    with pytest.raises(ParseError, match="FAC") as info:
        parse_dg2(bytes(data))
    assert info.value.offset == at


def test_dg2_claiming_16_mb() -> None:
    with pytest.raises(ParseError, match="claims 16777215"):
        parse_dg2(bytes.fromhex("7583FFFFFF7F6100"))


def test_dg11_fields() -> None:
    body = tlv.encode_many(
        (0x5C, bytes.fromhex("5F0E5F2B5F11")), (0x5F0E, "TRẦN<<THỊ<BÍCH NGỌC".encode()),
        (0x5F2B, b"19850704"), (0x5F11, "Hà Nội".encode()), (0x5F60, b"\x01"))
    dg11 = parse_dg11(tlv.encode(0x6B, body))
    assert dg11.full_name == "TRẦN THỊ BÍCH NGỌC"
    assert dg11.date_of_birth == dt.date(1985, 7, 4)
    assert dg11.place_of_birth == "Hà Nội"
    assert dg11.other == {0x5F60: b"\x01"}


def test_dg11_bad_utf8() -> None:
    with pytest.raises(ParseError, match="UTF-8") as info:
        parse_dg11(tlv.encode(0x6B, tlv.encode(0x5F11, b"\xff\xfe")))
    assert info.value.offset == 5


def test_dg12_fields() -> None:
    body = tlv.encode_many((0x5F19, "Cục Cảnh sát QLHC về TTXH".encode()), (0x5F26, b"20210701"),
                           (0xA0, tlv.encode(0x02, b"\x01") + tlv.encode(0x5F1A, b"A<<B")))
    dg12 = parse_dg12(tlv.encode(0x6C, body))
    assert dg12.issuing_authority == "Cục Cảnh sát QLHC về TTXH"
    assert dg12.date_of_issue == dt.date(2021, 7, 1)
    assert dg12.other_persons == ("A<<B",)


def test_dg13_vietnamese_layout() -> None:
    dg13 = parse_dg13(build_dg13(DG13_FIELDS))
    assert dg13.id_number == "001099012345"
    assert dg13.full_name == "Nguyễn Văn An"
    assert dg13.date_of_birth == dt.date(1999, 3, 15)
    assert dg13.sex == "M"
    assert dg13.date_of_issue == dt.date(2021, 7, 1)
    assert dg13.date_of_expiry == dt.date(2039, 3, 15) and not dg13.no_expiry
    assert (dg13.father_name, dg13.mother_name, dg13.spouse_name) == ("Nguyễn Văn Bình", "Trần Thị Cúc", None)
    assert dg13.old_id_number == "012345678"
    assert dg13.card_uuid == "0A1B2C3D4E5F6071"
    assert dg13.unknown_fields == {42: "giá trị lạ"}
    assert "001099012345" not in repr(dg13)


def _dg13_raw(entries: list[bytes]) -> bytes:
    body = tlv.encode(0x02, b"\x01") + tlv.encode(0x06, OID_UTF8) + tlv.encode(0x31, b"".join(entries))
    return tlv.encode(0x6D, tlv.encode(0x30, body))


def _entry(n: int, value: bytes) -> bytes:
    return tlv.encode(0x30, tlv.encode(0x02, bytes((n,))) + value)


def test_dg13_keyed_by_number_not_position_printable_string_and_no_expiry() -> None:
    data = _dg13_raw([
        _entry(12, tlv.encode(0x0C, "Không thời hạn".encode())),
        _entry(4, tlv.encode(0x0C, "Nữ".encode())),
        _entry(1, tlv.encode(0x13, b"079160012345")),
    ])
    dg13 = parse_dg13(data)
    assert dg13.id_number == "079160012345"
    assert dg13.sex == "F"
    assert dg13.no_expiry and dg13.date_of_expiry is None
    empty = parse_dg13(_dg13_raw([_entry(12, tlv.encode(0x0C, b""))]))
    assert empty.no_expiry


def test_dg13_bad_date_names_offset() -> None:
    data = _dg13_raw([_entry(3, tlv.encode(0x0C, b"1999-03-15"))])
    with pytest.raises(ParseError, match="dd/MM/yyyy") as info:
        parse_dg13(data)
    assert info.value.source == "DG13"
    assert data[info.value.offset or 0] == 0x0C


def test_dg13_wrong_oid() -> None:
    body = tlv.encode(0x02, b"\x01") + tlv.encode(0x06, bytes.fromhex("2A8648")) + tlv.encode(0x31, b"")
    with pytest.raises(ParseError, match="OID"):
        parse_dg13(tlv.encode(0x6D, tlv.encode(0x30, body)))


def test_dg13_truncated() -> None:
    data = build_dg13(DG13_FIELDS)
    with pytest.raises(ParseError) as info:
        parse_dg13(data[:-10])
    assert info.value.source == "DG13"


def test_identity_from_chip_prefers_dg13() -> None:
    face = synthetic_face(3)
    ident = identity_from_chip(parse_dg1(build_dg1(VN_TD1), today=TODAY), parse_dg13(build_dg13(DG13_FIELDS)),
                               parse_dg2(build_dg2(face.jpeg, face.width, face.height)))
    assert ident.document_number == "099012345"
    assert ident.id_number == "001099012345"
    assert ident.full_name == "Nguyễn Văn An"
    assert ident.nationality == "Việt Nam"
    assert ident.date_of_expiry == dt.date(2039, 3, 15)
    assert ident.photo_jpeg == face.jpeg
    assert ident.sources["full_name"] == "chip"


def test_identity_from_mrz_only() -> None:
    ident = identity_from_chip(parse_dg1(build_dg1(VN_TD1), today=TODAY), None, None)
    assert ident.full_name == "NGUYEN VAN AN"
    assert ident.id_number == "001099012345"
    assert ident.nationality == "VNM"
    assert ident.photo_jpeg is None


def _small_jp2() -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(synthetic_face(12, width=60, height=80, target_bytes=2_000).jpeg)).save(out, "JPEG2000")
    return build_dg2(out.getvalue(), 60, 80, jpeg2000=True)


_SAMPLES = {
    "DG2-JP2": (_small_jp2(), parse_dg2),
    "COM": (build_com([1, 2, 3, 13, 14, 15]), parse_com),
    "DG1": (build_dg1(VN_TD1), lambda d: parse_dg1(d, today=TODAY)),
    "DG13": (build_dg13(DG13_FIELDS), parse_dg13),
    "DG2": (build_dg2(synthetic_face(11, width=60, height=80, target_bytes=2_000).jpeg, 60, 80), parse_dg2),
}


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(_SAMPLES)), cut=st.integers(0, 5000), flips=st.lists(
    st.tuples(st.integers(0, 5000), st.integers(1, 255)), max_size=4))
def test_mutated_files_raise_only_parse_error(name: str, cut: int, flips: list[tuple[int, int]]) -> None:
    data, parse = _SAMPLES[name]
    mutated = bytearray(data[:max(1, len(data) - cut % len(data))])
    for at, xor in flips:
        mutated[at % len(mutated)] ^= xor
    try:
        parse(bytes(mutated))
    except ParseError:
        pass
