"""PACE terminal ↔ virtual chip in process: every standardized domain parameter (0-18)
with Generic Mapping, every cipher, CAM, CAN and MRZ passwords, wrong passwords, SM
failures after PACE."""

from __future__ import annotations

import os

import pytest

from agent.icao import pace, params
from agent.icao.crypto import Cipher
from agent.icao.keys import CanKey, MrzKey
from agent.icao.securityinfo import Mapping, PaceInfo, encode_security_infos, pace_oid
from agent.icao.select import Aid, SelectBy, select_application, select_command
from agent.icao.sm import AccessDeniedError, SecureMessagingError
from agent.readers.apdu import ApduChannel, Command
from agent.sim.chip import FID_CARD_ACCESS, ChipProfile, VirtualChip, dg_fid
from agent.sim.link import Link

H = bytes.fromhex
MRZ = MrzKey("099012345", "990315", "390315")
CAN = CanKey("012345")
DG1 = b"\x61\x05\x5f\x1f\x02AB"


def chip_for(info: PaceInfo, **extra: object) -> VirtualChip:
    files = {FID_CARD_ACCESS: encode_security_infos([info]), dg_fid(1): DG1}
    return VirtualChip(ChipProfile(files, mrz_key=MRZ, can=CAN.can, **extra))  # type: ignore[arg-type]


def handshake(info: PaceInfo, key: MrzKey | CanKey = CAN, **extra: object) -> tuple[pace.PaceResult, Link]:
    link = Link(chip_for(info, **extra))
    return pace.authenticate(ApduChannel(link), key, info), link


def read_dg1(result: pace.PaceResult) -> bytes:
    sm = result.sm
    assert select_application(sm).sw == 0x9000
    answer = sm.send(Command(0, 0xB0, 0x81, 0, le=len(DG1)))
    assert answer.sw == 0x9000
    return answer.data


@pytest.mark.parametrize("pid", sorted(params.STANDARD))
def test_generic_mapping_on_every_standard_parameter(pid: int) -> None:
    group = params.STANDARD[pid]
    mapping = Mapping.ECDH_GM if group.kind == "ECDH" else Mapping.DH_GM
    info = PaceInfo(pace_oid(mapping, Cipher.AES128), 2, pid)
    result, _ = handshake(info)
    assert (result.parameter_id, result.mapping) == (pid, mapping)
    assert read_dg1(result) == DG1


@pytest.mark.parametrize("cipher", list(Cipher))
def test_every_cipher_with_mrz_and_can(cipher: Cipher) -> None:
    info = PaceInfo(pace_oid(Mapping.ECDH_GM, cipher), 2, 12)
    for key in (MRZ, CAN):
        result, _ = handshake(info, key)
        assert result.cipher is cipher and result.sm.cipher is cipher
        assert result.key_type == ("CAN" if key is CAN else "MRZ")
        assert read_dg1(result) == DG1


@pytest.mark.parametrize("pid", [9, 13, 18])
def test_chip_authentication_mapping(pid: int) -> None:
    group = params.STANDARD[pid]
    sk_ca = 1 + int.from_bytes(os.urandom(64), "big") % (group.order - 1)
    info = PaceInfo(pace_oid(Mapping.ECDH_CAM, Cipher.AES128), 2, pid)
    result, _ = handshake(info, ca_private_key=sk_ca)
    assert result.cam_data is not None and result.cam_ca_ic is not None and result.chip_mapping_key
    # what the trust layer checks (9303-11 §4.4.3.5.2): PK_map,IC = CA_IC · PK_IC
    ca_ic = int.from_bytes(result.cam_ca_ic, "big")
    pk_ic = group.mul_generator(sk_ca)
    assert group.encode(group.mul(ca_ic, pk_ic)) == result.chip_mapping_key
    assert read_dg1(result) == DG1


def test_cam_without_chip_key_is_refused_by_the_chip() -> None:
    info = PaceInfo(pace_oid(Mapping.ECDH_CAM, Cipher.AES128), 2, 13)
    with pytest.raises(pace.PaceError):
        handshake(info)


@pytest.mark.parametrize("key", [CanKey("999999"), MrzKey("099012345", "990315", "390316")])
def test_wrong_password_is_access_denied(key: MrzKey | CanKey) -> None:
    info = PaceInfo(pace_oid(Mapping.ECDH_GM, Cipher.AES128), 2, 13)
    with pytest.raises(AccessDeniedError) as err:
        handshake(info, key)
    assert err.value.exit_code == 5
    assert "CAN" in err.value.hint


def test_bad_mac_from_chip_after_pace_ends_session() -> None:
    info = PaceInfo(pace_oid(Mapping.ECDH_GM, Cipher.AES128), 2, 13)
    result, link = handshake(info)

    class Tamper:
        extended_length = True

        def transmit(self, apdu: bytes) -> bytes:
            answer = bytearray(link.transmit(apdu))
            answer[-3] ^= 0x01  # last MAC byte
            return bytes(answer)

    sm = pace.SecureMessaging(ApduChannel(Tamper()), result.sm.ks_enc, result.sm.ks_mac, result.sm.cipher, 0)
    with pytest.raises(SecureMessagingError):
        select_application(sm)
    with pytest.raises(SecureMessagingError):
        select_application(sm)


def test_chip_drops_session_on_bad_command_mac() -> None:
    info = PaceInfo(pace_oid(Mapping.ECDH_GM, Cipher.AES128), 2, 13)
    result, link = handshake(info)
    protected = result.sm.protect(select_command(SelectBy.AID, Aid.EMRTD.value))
    broken = bytearray(protected.encode())
    broken[-2] ^= 0x80  # inside DO8E
    assert link.transmit(bytes(broken)) == H("6988")
    with pytest.raises(SecureMessagingError):
        result.sm.send(Command(0, 0xB0, 0x81, 0, le=4))  # the chip has no session any more
