"""SecurityInfos parsing/encoding (9303-11 §9.2), with the Appendix G EF.CardAccess values."""

from __future__ import annotations

import pytest

from agent.errors import ParseError
from agent.icao import securityinfo as si
from agent.icao.crypto import Cipher
from agent.icao.tlv import encode

H = bytes.fromhex
G1_CARD_ACCESS = H("31143012060A04007F0007020204020202010202010D")  # domain.md, Appendix G.1
G2_CARD_ACCESS = H("31143012060A04007F00070202040102020102020100")  # dmrtd pace_test_dh.dart, G.2


def test_g1_card_access() -> None:
    infos = si.parse_security_infos(G1_CARD_ACCESS)
    (pace,) = infos.pace
    assert pace == si.PaceInfo("0.4.0.127.0.7.2.2.4.2.2", 2, 13)
    assert pace.mapping is si.Mapping.ECDH_GM and pace.cipher is Cipher.AES128
    assert si.encode_security_infos(infos.infos) == G1_CARD_ACCESS


def test_g2_card_access() -> None:
    (pace,) = si.parse_security_infos(G2_CARD_ACCESS).pace
    assert (pace.mapping, pace.cipher, pace.parameter_id) == (si.Mapping.DH_GM, Cipher.AES128, 0)


def test_all_kinds_round_trip_and_unknown_kept_raw() -> None:
    unknown = H("300A06052B0601020302012A")
    infos = (
        si.PaceInfo(si.pace_oid(si.Mapping.ECDH_IM, Cipher.AES256), 2, 18),
        si.PaceDomainParameterInfo(si.ID_PACE + ".2", H("300C060704007F0007010202010D"), 7),
        si.ChipAuthenticationInfo(si.ca_oid(True, Cipher.AES128), 1, 3),
        si.ChipAuthenticationPublicKeyInfo(si.ID_PK_ECDH, H("300730020600030100"), 3),
        si.ActiveAuthenticationInfo(si.ID_AA, 1, "0.4.0.127.0.7.1.1.4.1.3"),
        si.TerminalAuthenticationInfo(si.ID_TA, 1),
        si.UnknownSecurityInfo("1.3.6.1.2.3", unknown),
    )
    parsed = si.parse_security_infos(si.encode_security_infos(infos))
    assert set(parsed.infos) == set(infos)
    assert parsed.chip_authentication[0].key_id == 3
    assert si.ca_protocol(parsed.chip_authentication[0].protocol) == ("ECDH", Cipher.AES128)


def test_dg14_wrapper_accepted() -> None:
    dg14 = H("6E16") + G1_CARD_ACCESS
    assert si.parse_security_infos(dg14, source="DG14").pace[0].parameter_id == 13


@pytest.mark.parametrize("data,offset,reason", [
    (G1_CARD_ACCESS[:-3], 0, "Insufficient data"),               # SET runs past the end
    (H("3103020102"), 2, "_SecurityInfo - method should"),              # SecurityInfo is not a SEQUENCE
    (H("30023100"), 0, "expected a SET OF SecurityInfo"),         # not a SET
    # inner length field of 127 bytes runs past the end: the offset is the element's (4),
    # not its length byte's (5), as asn1crypto's parser reports no position
    (H("3104300206FF"), 4, "Insufficient data"),
    (H("3180") + G1_CARD_ACCESS[2:] + H("0000"), 1, "indefinite length"),   # DER only
    (H("31850000000014") + G1_CARD_ACCESS[2:], 1, "length field of 5 bytes"),
    (H("310E300C") + G1_CARD_ACCESS[4:16], 2, 'Field "required_data" is missing'),  # only the protocol
    (H("31083006020101020101"), 2, "ObjectIdentifier"),           # protocol not an OID
])
def test_malformed_raises_parse_error(data: bytes, offset: int, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        si.parse_security_infos(data, source="DG14")
    assert info.value.source == "DG14"
    assert info.value.offset == offset
    assert reason in str(info.value)


def test_fields_after_the_declared_ones_are_ignored_and_trailing_bytes_too() -> None:
    extra = H("3117") + H("3015") + G1_CARD_ACCESS[4:] + H("020101")
    assert si.parse_security_infos(extra + H("FFFF")).pace == [si.PaceInfo(si.pace_oid(
        si.Mapping.ECDH_GM, Cipher.AES128), 2, 13)]


def test_optional_integer_of_another_type_is_parse_error() -> None:
    # parameterId an OCTET STRING, then one more field: asn1crypto alone would read the
    # OCTET STRING as an extra field after an absent parameterId
    bad = H("3117") + H("3015") + G1_CARD_ACCESS[4:-3] + H("04010D") + H("020101")
    with pytest.raises(ParseError, match="parameter_id is not an INTEGER") as info:
        si.parse_security_infos(bad)
    assert info.value.offset == 2


def test_fields_kept_raw_keep_their_bytes() -> None:
    # a non-minimal length (BER, accepted) in the FileID is kept as read, not re-encoded
    ef_cvca = H("04820080") + bytes(128)
    info = H("060804007F00070202020201 01".replace(" ", "")) + ef_cvca
    data = encode(0x31, encode(0x30, info))
    (parsed,) = si.parse_security_infos(data).terminal_authentication
    assert parsed.ef_cvca == ef_cvca


def test_invalid_ber_tag_in_a_raw_field_is_parse_error() -> None:
    # X.690 §8.1.2.4.2: a tag number below 31 in the high-tag form is not BER; the
    # hand-written reader let it through inside fields it kept raw
    bad = si.encode_security_infos([si.TerminalAuthenticationInfo(si.ID_TA, 1, H("04020101"))])
    bad = bad.replace(H("04020101"), H("1F040101"))
    with pytest.raises(ParseError, match="Non-minimal tag"):
        si.parse_security_infos(bad)


def test_dg14_set_must_fit_in_its_wrapper() -> None:
    # the 6E length must cover the SET (9303-10 §4.7.14); it was not checked before
    with pytest.raises(ParseError, match="Insufficient data") as info:
        si.parse_security_infos(H("6E02") + G1_CARD_ACCESS, source="DG14")
    assert info.value.offset == 2


def test_pace_info_with_garbage_version_is_parse_error() -> None:
    bad = H("3110300E060A04007F000702020402020400")  # version is an OCTET STRING
    with pytest.raises(ParseError) as info:
        si.parse_security_infos(bad)
    assert info.value.offset == 2
