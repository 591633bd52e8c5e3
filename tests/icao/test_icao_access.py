"""establish(): PACE first, BAC fallback, the CAN rule, 6883 after a broken chain,
and reading EF.CardAccess (with the MF-select quirk), against the virtual chip."""

from __future__ import annotations

import pytest

from agent.icao import access
from agent.icao.access import AccessDeniedError, CanNotAcceptedError, choose_pace, establish, read_card_access
from agent.icao.crypto import Cipher
from agent.icao.keys import CanKey, MrzKey
from agent.icao.securityinfo import Mapping, PaceInfo, SecurityInfos, encode_security_infos, pace_oid
from agent.icao.select import select_application
from agent.readers.apdu import ApduChannel, Command
from agent.sim import link as sim_link
from agent.sim.chip import FID_CARD_ACCESS, ChipProfile, ChipQuirks, VirtualChip, default_card_access, dg_fid

H = bytes.fromhex
MRZ = MrzKey("099012345", "990315", "390315")
CAN = CanKey("012345")
DG1 = b"\x61\x05\x5f\x1f\x02AB"


class Link(sim_link.Link):
    def __init__(self, card: VirtualChip, corrupt_ga2: bool = False) -> None:
        super().__init__(card)
        self.corrupt_ga2 = corrupt_ga2

    def transmit(self, apdu: bytes) -> bytes:
        if self.corrupt_ga2 and apdu[:2] == H("1086") and apdu[7] == 0x81:
            apdu = apdu[:-3] + bytes((apdu[-3] ^ 1,)) + apdu[-2:]  # mapping key off the curve
        return super().transmit(apdu)


def make_chip(card_access: bytes | None = None, **extra: object) -> VirtualChip:
    files = {dg_fid(1): DG1}
    if card_access is not None:
        files[FID_CARD_ACCESS] = card_access
    profile = ChipProfile(files, mrz_key=MRZ, can=CAN.can, **extra)  # type: ignore[arg-type]
    return VirtualChip(profile)


def read_dg1(sm: access.SecureMessaging) -> bytes:
    select_application(sm)
    return sm.send(Command(0, 0xB0, 0x81, 0, le=len(DG1))).data


def run(chip: VirtualChip, key: MrzKey | CanKey, prefer: str = "pace", corrupt: bool = False
        ) -> tuple[access.SecureMessaging, access.AccessInfo, Link]:
    link = Link(chip, corrupt)
    channel = ApduChannel(link)
    card_access = read_card_access(channel)
    sm, info = establish(channel, key, card_access=card_access, prefer=prefer)
    return sm, info, link


def test_cccd_like_chip_uses_pace_with_can() -> None:
    sm, info, _ = run(make_chip(default_card_access()), CAN)
    assert (info.protocol, info.mapping, info.cipher, info.parameter_id, info.key_type) == (
        "PACE", "ECDH-GM", "AES-128", 13, "CAN")
    assert info.to_dict()["oid"] == "0.4.0.127.0.7.2.2.4.2.2"
    assert read_dg1(sm) == DG1


def test_bac_only_chip_with_mrz() -> None:
    sm, info, _ = run(make_chip(None, pace_enabled=False), MRZ)
    assert (info.protocol, info.cipher, info.key_type) == ("BAC", "3DES", "MRZ")
    assert info.pace_failure == "the chip has no EF.CardAccess"
    assert read_dg1(sm) == DG1


def test_prefer_bac() -> None:
    sm, info, _ = run(make_chip(default_card_access()), MRZ, prefer="bac")
    assert info.protocol == "BAC" and read_dg1(sm) == DG1


def test_can_on_bac_only_chip() -> None:
    with pytest.raises(CanNotAcceptedError) as err:
        run(make_chip(None, pace_enabled=False), CAN)
    assert err.value.exit_code == 5


def test_wrong_can_is_denied_without_trying_bac() -> None:
    chip = make_chip(default_card_access())
    with pytest.raises(AccessDeniedError):
        run(chip, CanKey("111111"))


def test_wrong_mrz_on_pace_chip_does_not_fall_back_to_bac() -> None:
    link_chip = make_chip(default_card_access())
    with pytest.raises(AccessDeniedError):
        run(link_chip, MrzKey("099012345", "990315", "390316"))


def test_wrong_mrz_bac() -> None:
    with pytest.raises(AccessDeniedError):
        run(make_chip(None, pace_enabled=False), MrzKey("099012345", "990315", "390316"))


@pytest.mark.parametrize("quirk", [False, True])
def test_failed_pace_falls_back_to_bac_and_closes_chain(quirk: bool) -> None:
    chip = make_chip(default_card_access(), quirks=ChipQuirks(unclosed_chain_6883=quirk))
    sm, info, link = run(chip, MRZ, corrupt=True)
    assert info.protocol == "BAC" and info.pace_failure and "6A80" in info.pace_failure
    sent = [apdu[:2] for apdu, _ in link.log]
    answers = [answer[-2:] for _, answer in link.log]
    if quirk:
        assert H("6883") in answers  # the first GET CHALLENGE
        assert H("0086") in sent  # the chain was closed
    else:
        assert H("6883") not in answers
    assert read_dg1(sm) == DG1


def test_card_access_is_one_sfi_read_in_the_mf() -> None:
    # 9303-10 §3.11.3: EF.CardAccess (SFI 1C) is readable in the clear; READ BINARY by
    # SFI from the MF (P1 = 9C) needs no SELECT
    link = Link(make_chip(default_card_access()))
    assert read_card_access(ApduChannel(link)) == default_card_access()
    assert len(link.log) == 1
    assert link.log[0][0][:4] == H("00B09C00")


@pytest.mark.parametrize("sfi_sw", [0x6A82, 0x6986, 0x6D00, 0x6A81])
def test_chip_without_sfi_in_the_mf_gets_select_and_read(sfi_sw: int) -> None:
    chip = make_chip(default_card_access(), quirks=ChipQuirks(card_access_sfi_sw=sfi_sw))
    link = Link(chip)
    assert read_card_access(ApduChannel(link)) == default_card_access()
    assert link.log[0][1] == sfi_sw.to_bytes(2, "big")
    assert [apdu[:4] for apdu, _ in link.log[1:3]] == [H("00A4000C"), H("00A4020C")]


def test_mf_select_quirk_still_reads_card_access() -> None:
    chip = make_chip(default_card_access(), quirks=ChipQuirks(mf_select_6d00=True, card_access_sfi_sw=0x6A82))
    link = Link(chip)
    assert read_card_access(ApduChannel(link)) == default_card_access()
    assert link.log[1][1] == H("6D00")
    assert link.log[2][0] == H("00A4020C02011C")


def test_sfi_read_refusing_the_length_reads_the_header_first() -> None:
    # a chip serving fewer bytes per READ BINARY than the file holds (6700 above):
    # header by SFI, then the rest by offset, still without SELECT
    blob = default_card_access()
    chip = make_chip(blob, quirks=ChipQuirks(max_le=len(blob) - 1))
    link = Link(chip)
    assert read_card_access(ApduChannel(link)) == blob
    assert link.log[0][1] == H("6700")
    assert link.log[1][0] == H("00B09C0004")
    assert all(apdu[1] == 0xB0 for apdu, _ in link.log)


def test_long_card_access_read_in_chunks() -> None:
    infos = [PaceInfo(pace_oid(Mapping.ECDH_GM, Cipher.AES128), 2, pid) for pid in range(8, 19)]
    infos += [PaceInfo(pace_oid(Mapping.DH_GM, c), 2, pid) for c in Cipher for pid in range(3)]
    blob = encode_security_infos(infos)
    assert len(blob) > 0xDF
    chip = make_chip(blob, quirks=ChipQuirks(rejects_le_zero=True))
    assert read_card_access(ApduChannel(Link(chip))) == blob


def test_no_card_access() -> None:
    assert read_card_access(ApduChannel(Link(make_chip(None, pace_enabled=False)))) is None


def test_choose_pace_prefers_cam_then_ecdh_then_cipher_then_size() -> None:
    def info(m: Mapping, c: Cipher, pid: int) -> PaceInfo:
        return PaceInfo(pace_oid(m, c), 2, pid)

    offered = [info(Mapping.DH_GM, Cipher.AES256, 2), info(Mapping.ECDH_GM, Cipher.AES128, 13),
               info(Mapping.ECDH_GM, Cipher.AES128, 8), info(Mapping.ECDH_IM, Cipher.AES256, 13)]
    assert choose_pace(SecurityInfos(tuple(offered))) == offered[1]
    offered.append(info(Mapping.ECDH_GM, Cipher.AES256, 12))
    assert choose_pace(SecurityInfos(tuple(offered))) == offered[-1]
    offered.append(info(Mapping.ECDH_CAM, Cipher.AES128, 12))
    assert choose_pace(SecurityInfos(tuple(offered))) == offered[-1]
    assert choose_pace(SecurityInfos((info(Mapping.ECDH_GM, Cipher.AES128, 0),))) is None  # EC mapping on DH group


def test_pace_with_several_parameter_sets_sends_parameter_id() -> None:
    infos = [PaceInfo(pace_oid(Mapping.ECDH_GM, Cipher.AES128), 2, 13),
             PaceInfo(pace_oid(Mapping.ECDH_GM, Cipher.AES128), 2, 9)]
    sm, info, link = run(make_chip(encode_security_infos(infos)), CAN)
    assert info.parameter_id == 13
    mse = next(apdu for apdu, _ in link.log if apdu[:4] == H("0022C1A4"))
    assert mse.endswith(H("84010D"))
    assert read_dg1(sm) == DG1


def test_malformed_card_access_falls_back_to_bac_with_mrz() -> None:
    chip = make_chip(None)
    link = Link(chip)
    sm, info = establish(ApduChannel(link), MRZ, card_access=H("3105300306"))
    assert info.protocol == "BAC" and info.pace_failure and "malformed" in info.pace_failure
    with pytest.raises(CanNotAcceptedError):
        establish(ApduChannel(Link(make_chip(None))), CAN, card_access=H("3105300306"))


@pytest.mark.parametrize("protocol", ["PACE", "BAC"])
def test_card_pulled_at_any_apdu_is_card_removed(protocol: str) -> None:
    from agent.errors import CardRemovedError

    card_access = default_card_access() if protocol == "PACE" else None
    total = len(run(make_chip(card_access, pace_enabled=protocol == "PACE"), MRZ)[2].log)

    class Pulled(Link):
        def __init__(self, card: VirtualChip, at: int) -> None:
            super().__init__(card)
            self.at = at

        def transmit(self, apdu: bytes) -> bytes:
            if len(self.log) == self.at:
                raise CardRemovedError("the card left the reader")
            return super().transmit(apdu)

    for at in range(total):
        link = Pulled(make_chip(card_access, pace_enabled=protocol == "PACE"), at)
        channel = ApduChannel(link)
        with pytest.raises(CardRemovedError):
            establish(channel, MRZ, card_access=read_card_access(channel))


def test_can_pace_broken_off_is_not_reported_as_a_refused_can() -> None:
    """A chip that answers garbage in the middle of PACE (the card moved) gets "lay the
    card down again", exit 6, not "this card does not accept the CAN"."""
    from agent.icao.access import PaceInterruptedError

    class BreaksOff(Link):
        def transmit(self, apdu: bytes) -> bytes:
            if apdu[1] == 0x86 and apdu[0] & 0x10:  # a chained GENERAL AUTHENTICATE step
                return H("6F00")
            return super().transmit(apdu)

    with pytest.raises(PaceInterruptedError) as err:
        establish(ApduChannel(BreaksOff(make_chip(default_card_access()))), CAN,
                  card_access=default_card_access())
    assert err.value.exit_code == 6 and "keep it still" in err.value.hint
