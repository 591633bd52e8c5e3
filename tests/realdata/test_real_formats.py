"""Formats seen on real documents (issue 11 item 7): DG2 in ISO/IEC 39794-5, ISO/IEC
19794-5 records (one with a broken image), the BSI TR-03105-5 reference document's data
groups (DG2 JPEG 2000, TD3 DG1 with issuing state D, DG14 3DES CA on brainpoolP224r1),
a TD2 DG1, DG11 list fields with "<" fillers."""

from __future__ import annotations

import datetime as dt

import pytest
from realdata_helpers import BSI, FIXTURES

from agent.errors import ParseError
from agent.icao import ca, securityinfo, tlv
from agent.icao.lds.dg1 import build_dg1, parse_dg1
from agent.icao.lds.dg2 import parse_any_face_record, parse_dg2
from agent.icao.lds.dg11 import parse_dg11
from agent.icao.mrz import check_digit

BIOMETRIC = FIXTURES / "iso_biometric"
TODAY = dt.date(2026, 1, 15)


@pytest.mark.parametrize("name", ["ICAO_39794_5_AP_DG2_AllFields.dat", "ICAO_39794_5_AP_DG2_MandFields.dat"])
def test_dg2_in_iso_39794_5_gives_the_photo(name):
    dg2 = parse_dg2((BIOMETRIC / name).read_bytes())
    face = dg2.faces[0]
    assert face.image_format == "JPEG2000" and face.width > 0 and face.height > 0
    assert dg2.photo_jpeg is not None and dg2.photo_jpeg.startswith(b"\xff\xd8")


@pytest.mark.parametrize("name", ["ICAO_39794_5_AP_AllFields.dat", "ICAO_39794_5_AP_MandFields.dat"])
def test_standalone_39794_5_face_records(name):
    faces = parse_any_face_record((BIOMETRIC / name).read_bytes())
    assert len(faces) == 1 and faces[0].image_format == "JPEG2000"


def test_iso_19794_5_records_good_and_broken():
    face = parse_any_face_record((BIOMETRIC / "ISO19794_Test1_Data.bin").read_bytes())[0]
    assert (face.image_format, face.width, face.height) == ("JPEG", 148, 70)
    with pytest.raises(ParseError, match="JPEG face image does not decode"):
        parse_any_face_record((BIOMETRIC / "ISO19794_Test2_Data_InvalidImage.bin").read_bytes())


def test_39794_record_without_an_image_is_a_parse_error():
    raw = bytearray((BIOMETRIC / "ICAO_39794_5_AP_MandFields.dat").read_bytes())
    at = raw.index(b"\x00\x00\x00\x0cjP  ")
    raw[at:at + 4] = b"\x01\x02\x03\x04"   # the image no longer starts like one
    with pytest.raises(ParseError, match="without a JPEG or JPEG 2000 image"):
        parse_any_face_record(bytes(raw))


def test_bsi_reference_document_data_groups():
    dg1 = parse_dg1((BSI / "Datagroup1.bin").read_bytes(), today=TODAY)
    assert dg1.mrz.format == "TD3" and dg1.mrz.issuing_state == "D"
    dg2 = parse_dg2((BSI / "Datagroup2.bin").read_bytes())
    assert dg2.faces[0].image_format == "JPEG2000" and dg2.photo_jpeg is not None
    infos = securityinfo.parse_security_infos((BSI / "Datagroup14.bin").read_bytes(), source="DG14")
    chosen = ca.select_parameters(infos)
    assert chosen is not None and chosen.cipher.label == "3DES" and chosen.group.name == "brainpoolP224r1"
    # the test chip's published key pair: DG14's key is the one in DG14_pk.bin
    assert (BSI / "DG14_pk.bin").read_bytes() in (BSI / "Datagroup14.bin").read_bytes()
    assert (BSI / "DG15_pk.bin").read_bytes() in (BSI / "Datagroup15.bin").read_bytes()
    assert tlv.parse_file((BSI / "EF_COM.bin").read_bytes(), 0x60, source="COM").find(0x5C) is not None
    for number, tag in ((3, 0x63), (4, 0x76)):  # fingerprints and iris (9303-10 table 35): never shown
        assert tlv.parse_file((BSI / f"Datagroup{number}.bin").read_bytes(), tag, source=f"DG{number}").constructed


def _td2() -> tuple[str, str]:
    number, birth, expiry = "D23145890", "740812", "120415"
    line2 = (number + str(check_digit(number)) + "UTO" + birth + str(check_digit(birth)) + "F" + expiry
             + str(check_digit(expiry)) + "<<<<<<<")
    composite = line2[0:10] + line2[13:20] + line2[21:35]
    return "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", line2 + str(check_digit(composite))


def test_td2_dg1_parses():
    line1, line2 = _td2()
    assert len(line1) == len(line2) == 36
    mrz = parse_dg1(build_dg1((line1, line2)), today=TODAY).mrz
    assert mrz.format == "TD2" and mrz.document_number == "D23145890" and mrz.issuing_state == "UTO"
    assert (mrz.primary_identifier, mrz.secondary_identifier) == ("ERIKSSON", "ANNA MARIA")
    assert mrz.date_of_birth == dt.date(1974, 8, 12)
    broken = line2[:35] + str((int(line2[35]) + 1) % 10)
    with pytest.raises(ParseError, match="composite"):
        parse_dg1(build_dg1((line1, broken)), today=TODAY)


def test_dg11_list_fields_never_show_fillers():
    body = (tlv.encode(0x5C, bytes.fromhex("5F0E5F115F42"))
            + tlv.encode(0x5F0E, b"MUSTERMANN<<ERIKA")
            + tlv.encode(0x5F11, b"BERLIN<DEUTSCHLAND<<")
            + tlv.encode(0x5F42, b"HEIDESTRASSE 17<KOELN<<51147<D"))
    dg11 = parse_dg11(tlv.encode(0x6B, body))
    assert dg11.full_name == "MUSTERMANN ERIKA"
    assert dg11.place_of_birth == "BERLIN, DEUTSCHLAND"
    assert dg11.address == "HEIDESTRASSE 17, KOELN, 51147, D"
