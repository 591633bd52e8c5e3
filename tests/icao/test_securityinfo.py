"""SecurityInfos parsing/encoding (9303-11 §9.2), with the Appendix G EF.CardAccess values."""

from __future__ import annotations

import pytest

from agent.errors import ParseError
from agent.icao import securityinfo as si
from agent.icao.crypto import Cipher

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


@pytest.mark.parametrize("data,offset", [
    (G1_CARD_ACCESS[:-3], 0),          # SET runs past the end
    (H("3103020102"), 2),              # SecurityInfo is not a SEQUENCE
    (H("30023100"), 0),                # not a SET
    (H("3104300206FF"), 5),            # inner length runs past the end
])
def test_malformed_raises_parse_error(data: bytes, offset: int) -> None:
    with pytest.raises(ParseError) as info:
        si.parse_security_infos(data, source="DG14")
    assert info.value.source == "DG14"
    assert info.value.offset == offset


def test_pace_info_with_garbage_version_is_parse_error() -> None:
    bad = H("3110300E060A04007F000702020402020400")  # version is an OCTET STRING
    with pytest.raises(ParseError) as info:
        si.parse_security_infos(bad)
    assert info.value.offset == 2
