"""DG11/DG12 (9303-10 §4.7.11, §4.7.12) fill the identity where DG13 has no value:
over DG1 (fuller name, four-digit birth year), under DG13; the details without an
Identity field land in ``extra``. Synthetic people only."""

from __future__ import annotations

import dataclasses
import datetime as dt

from agent.icao import tlv
from agent.icao.lds import parse_dg1, parse_dg11, parse_dg12, parse_dg13
from agent.icao.lds.dg1 import build_dg1
from agent.icao.lds.dg13 import build_dg13
from agent.identity.from_chip import identity_from_chip, identity_of

TODAY = dt.date(2026, 11, 26)
VN_TD1 = ("IDVNM0990123459001099012345<<0", "9903159M3903157VNM<<<<<<<<<<<0",
          "NGUYEN<<VAN<AN<<<<<<<<<<<<<<<<")


def _dg11() -> bytes:
    body = tlv.encode_many(
        (0x5C, bytes.fromhex("5F0E5F2B5F115F425F125F13")),
        (0x5F0E, "NGUYỄN<<VĂN<AN".encode()), (0x5F2B, b"19990315"), (0x5F11, "Hà Nội".encode()),
        (0x5F42, "Số 1 Tràng Tiền<Hoàn Kiếm<Hà Nội".encode()), (0x5F12, b"+84 24 0000 0000"),
        (0x5F13, "Kỹ sư".encode()), (0x5F0F, "NGUYỄN<<AN".encode()))
    return tlv.encode(0x6B, body)


def _dg12() -> bytes:
    body = tlv.encode_many((0x5C, bytes.fromhex("5F195F26")),
                           (0x5F19, "Cục Cảnh sát QLHC về TTXH".encode()), (0x5F26, b"20210701"))
    return tlv.encode(0x6C, body)


def test_dg11_dg12_fill_what_dg1_lacks() -> None:
    dg1 = parse_dg1(build_dg1(VN_TD1), today=TODAY)
    ident = identity_from_chip(dg1, None, None, dg11=parse_dg11(_dg11()), dg12=parse_dg12(_dg12()))
    assert ident.full_name == "NGUYỄN VĂN AN"  # DG11's name over the MRZ's transliteration
    assert ident.date_of_birth == dt.date(1999, 3, 15)
    assert ident.place_of_residence == "Số 1 Tràng Tiền, Hoàn Kiếm, Hà Nội"  # "<" separates parts (issue 11)
    assert ident.date_of_issue == dt.date(2021, 7, 1)
    assert ident.document_number == "099012345"  # still from DG1
    assert ident.extra == {"dg11_place_of_birth": "Hà Nội", "dg11_telephone": "+84 24 0000 0000",
                           "dg11_profession": "Kỹ sư", "dg11_other_names": "NGUYỄN AN",
                           "dg12_issuing_authority": "Cục Cảnh sát QLHC về TTXH"}
    for name in ("full_name", "date_of_birth", "place_of_residence", "date_of_issue"):
        assert ident.sources[name] == "chip"


def test_dg13_wins_over_dg11_and_dg12() -> None:
    dg13_fields: dict[int, str | list[str]] = {
        1: "001099012345", 2: "Nguyễn Văn An", 3: "15/03/1999", 9: "Thôn 2, Xã Đông Anh, Hà Nội",
        11: "02/08/2022"}
    ident = identity_from_chip(parse_dg1(build_dg1(VN_TD1), today=TODAY), parse_dg13(build_dg13(dg13_fields)),
                               None, dg11=parse_dg11(_dg11()), dg12=parse_dg12(_dg12()))
    assert ident.full_name == "Nguyễn Văn An"
    assert ident.place_of_residence == "Thôn 2, Xã Đông Anh, Hà Nội"
    assert ident.date_of_issue == dt.date(2022, 8, 2)
    # what DG13 has no field for still comes from DG11/DG12
    assert ident.extra["dg11_place_of_birth"] == "Hà Nội"
    assert ident.extra["dg12_issuing_authority"] == "Cục Cảnh sát QLHC về TTXH"


def test_without_dg11_dg12_nothing_changes() -> None:
    dg1 = parse_dg1(build_dg1(VN_TD1), today=TODAY)
    assert identity_from_chip(dg1, None, None) == identity_from_chip(dg1, None, None, dg11=None, dg12=None)
    ident = identity_from_chip(dg1, None, None)
    assert ident.extra == {} and ident.full_name == "NGUYEN VAN AN"


def test_read_chip_maps_dg11_of_the_card() -> None:
    from agent.icao.keys import CanKey
    from agent.icao.lds.com import build_com
    from agent.icao.read import read_chip
    from agent.readers.apdu import ApduChannel
    from agent.readers.sim import DEFAULT_READER, SimBackend
    from agent.sim.chip import dg_fid
    from agent.sim.profile import load_profile, virtual_chip

    base = load_profile("nguyen-van-an")
    files = {**base.files, dg_fid(11): _dg11(), 0x011E: build_com([1, 2, 3, 11, 13, 14, 15])}
    profile = dataclasses.replace(base, files=files)
    sim = SimBackend(extended_length="auto")
    try:
        sim.insert(DEFAULT_READER, virtual_chip(profile))
        read = read_chip(ApduChannel(sim.connect(DEFAULT_READER)), CanKey(profile.can or ""), today=TODAY,
                         verify=False)
    finally:
        sim.close()
    assert identity_of(read) is not None
    assert identity_of(read).full_name == "Nguyễn Văn An"  # DG13's
    assert identity_of(read).extra["dg11_profession"] == "Kỹ sư"
