"""PACE against the real EF.CardAccess files of shared/real-emrtd (copies in
fixtures/real_emrtd/cardaccess): each parses, the terminal picks its PACE variant and
runs it against the virtual chip that offers that file (issue 11 items 1 and 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.icao.access import choose_pace, establish, read_card_access
from agent.icao.keys import CanKey
from agent.icao.securityinfo import parse_security_infos
from agent.icao.select import select_application
from agent.readers.apdu import ApduChannel, Command
from agent.sim.chip import FID_CARD_ACCESS, ChipProfile, VirtualChip, dg_fid
from agent.sim.link import Link
from agent.sim.signing import derive_ec_key

CARD_ACCESS = Path(__file__).resolve().parents[2] / "fixtures" / "real_emrtd" / "cardaccess"
CAN = CanKey("012345")
DG1 = b"\x61\x05\x5f\x1f\x02AB"
MSE_SET_AT = bytes.fromhex("0022C1A4")


def _chip(card_access: bytes, curve: str = "brainpoolp256r1") -> VirtualChip:
    profile = ChipProfile({dg_fid(1): DG1, FID_CARD_ACCESS: card_access}, can=CAN.can,
                          ca_private_key=derive_ec_key(b"real card access chip", curve))
    return VirtualChip(profile)


@pytest.mark.parametrize("name,mapping,cipher,parameter_id", [
    ("AT_passport_gmrtd.bin", "ECDH-GM", "AES-128", 13),
    ("NZ_passport_gmrtd_GM_3DES.bin", "ECDH-GM", "3DES", 13),
    ("DE_passport_gmrtd_GM_CAM.bin", "ECDH-CAM", "AES-128", 13),
    ("AndyQ_issue150_IM_AES256_P521.bin", "ECDH-IM", "AES-256", 18),
])
def test_real_card_access_runs_pace_and_sends_the_parameter_id(name, mapping, cipher, parameter_id):
    raw = (CARD_ACCESS / name).read_bytes()
    choice = choose_pace(parse_security_infos(raw, source=name))
    assert choice is not None and choice.parameter_id == parameter_id
    link = Link(_chip(raw, "secp521r1" if parameter_id == 18 else "brainpoolp256r1"), extended_length=True)
    channel = ApduChannel(link)
    sm, info = establish(channel, CAN, card_access=read_card_access(channel))
    assert (info.protocol, info.mapping, info.cipher, info.parameter_id) == ("PACE", mapping, cipher, parameter_id)
    # DO 84 (the parameter id) is sent even when EF.CardAccess offers one parameter set:
    # real chips were only ever seen receiving it
    mse = next(apdu for apdu, _ in link.log if apdu[:4] == MSE_SET_AT)
    assert bytes((0x84, 0x01, parameter_id)) in mse
    select_application(sm)
    assert sm.send(Command(0, 0xB0, 0x81, 0, le=len(DG1))).data == DG1


def test_parameter_id_can_be_left_out_by_config():
    raw = (CARD_ACCESS / "AT_passport_gmrtd.bin").read_bytes()
    link = Link(_chip(raw), extended_length=True)
    channel = ApduChannel(link)
    establish(channel, CAN, card_access=read_card_access(channel), send_parameter_id=False)
    mse = next(apdu for apdu, _ in link.log if apdu[:4] == MSE_SET_AT)
    assert bytes((0x84, 0x01, 13)) not in mse
