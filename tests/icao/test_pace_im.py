"""PACE Integrated Mapping against the 9303-11 worked examples (ECDH-IM on
brainpoolP256r1 and DH-IM on the 1024-bit MODP group, AES-128, CAN 123456), as
reproduced in zienit/icao-examples PACE_ECDH_IMTest.java / PACE_DH_IMTest.java, and
terminal ↔ chip handshakes on every parameter set where IM is defined."""

from __future__ import annotations

import pytest

from agent.icao import crypto, pace, params
from agent.icao.crypto import Cipher
from agent.icao.keys import CanKey
from agent.icao.securityinfo import Mapping, PaceInfo, encode_security_infos, pace_oid
from agent.icao.select import select_application
from agent.readers.apdu import ApduChannel, Command
from agent.sim.chip import FID_CARD_ACCESS, ChipProfile, VirtualChip, dg_fid
from agent.sim.link import Link

H = bytes.fromhex
CAN = CanKey("123456")


def test_password_and_nonce() -> None:
    k_pi = crypto.kdf(pace.password(CAN), crypto.KDF_PI, Cipher.AES128)
    assert k_pi == H("591468CDA83D65219CCCB8560233600F")
    assert crypto.decrypt(Cipher.AES128, k_pi, H("143DC40C08C8E891FBED7DEDB92B64AD")) == H(
        "2923BE84E16CD6AE529049F1F1BBE9EB")


def test_ecdh_im_mapping_and_keys() -> None:
    group = params.by_id(13)
    s, t = H("2923BE84E16CD6AE529049F1F1BBE9EB"), H("5DD4CBFC96F5453B130D890A1CDBAE32")
    assert pace.im_pseudorandom(Cipher.AES128, s, t, group.curve.p) == int(
        "A2F8FF2DF50E52C6599F386ADCB595D229F6A167ADE2BE5F2C3296ADD5B7430E", 16)
    mapped = pace.im_generator(group, Cipher.AES128, s, t)
    assert group.encode(mapped) == H(
        "048E82D31559ED0FDE92A4D0498ADD3C23BABA94FB77691E31E90AEA77FB17D427"
        "4C1AE14BD0C3DBAC0C871B7F3608169364437CA30AC243A089D3F266C1E60FAD")
    sk = int("A73FB703AC1436A18E0CFA5ABB3F7BEC7A070E7A6788486BEE230C4A22762595", 16)
    terminal = group.mul(sk, mapped)
    assert group.encode(terminal) == H(
        "0489CBA23FFE96AA18D824627C3E934E54A9FD0B87A95D1471DC1C0ABFDCD640D4"
        "6755DE9B7B778280B6BEBD57439ADFEB0E21FD4ED6DF42578C13418A59B34C37")
    chip = group.decode(H("0467F78E5F7F7686082B293E8D087E056916D0F74BC01A5F8957D0DE45691E51E8"
                          "932B69A962B52A0985AD2C0A271EE6A13A8ADDDCD1A3A994B9DED257F4D22753"))
    secret = group.shared_secret(group.mul(sk, chip))
    assert secret == H("4F150FDE1D4F0E38E95017B891BAE17133A0DF45B0D3E18B60BA7BEAFDC2C713")
    ks_enc, ks_mac = pace.session_keys(secret, Cipher.AES128)
    assert (ks_enc, ks_mac) == (H("0D3FEB33251A6370893D62AE8DAAF51B"), H("B01E89E3D9E8719E586B50B4A7506E0B"))
    oid = pace_oid(Mapping.ECDH_IM, Cipher.AES128)
    assert pace.token(Cipher.AES128, ks_mac, oid, group, chip) == H("450F02B86F6A0909")
    assert pace.token(Cipher.AES128, ks_mac, oid, group, terminal) == H("75D4D96E8D5B0308")


def test_dh_im_mapping() -> None:
    group = params.by_id(0)
    s, t = H("FA5B7E3E49753A0DB9178B7B9BD898C8"), H("B3A6DB3C870C3E99245E0D1C06B747DE")
    assert crypto.decrypt(Cipher.AES128, crypto.kdf(b"123456", 3, Cipher.AES128),
                          H("9ABB8864CA0FF1551E620D1EF4E13510")) == s
    assert pace.im_pseudorandom(Cipher.AES128, s, t, group.p) == int(
        "A0C7C50C002061A51CC87D254EF38068607417B6EE1B36473CFB800D2D2E5FA2B6980F01105D24FAB22ACD1BFA5C8A4C"
        "093ECDFAFE6D7125D42A843E338603835CF19AFAFF75EFE21DC5F6AA1F9AE46C25087E7368166FB08C1E4627AFED7D93"
        "570417B790FF7F747E57F432B04E1236819E0DFEF5B6E77CA4999925328182D2", 16)
    assert pace.im_generator(group, Cipher.AES128, s, t) == int(
        "1D7D767F11E333BCD6DBAEF40E799E7A926B96973550656FF3C830726D118D61C276CDCC61D475CF03A98E0C0E79CAEB"
        "A5BE25578BD4551D0B10903236F0B0F976852FA78EEA14EA0ACA87D1E91F688FE0DFF897BBE35A472621D343564B262F"
        "34223AE8FC59B664BFEDFA2BFE7516CA5510A6BBB633D517EC25D4E0BBAA16C2", 16)


IM_IDS = [pid for pid, g in params.STANDARD.items() if pace.im_supported(g)]


@pytest.mark.parametrize("pid", IM_IDS)
def test_im_handshake_every_parameter(pid: int) -> None:
    group = params.STANDARD[pid]
    mapping = Mapping.ECDH_IM if group.kind == "ECDH" else Mapping.DH_IM
    cipher = Cipher.AES256 if pid in (17, 18) else Cipher.AES128
    info = PaceInfo(pace_oid(mapping, cipher), 2, pid)
    dg1 = b"\x61\x03\x5f\x1f\x00"
    chip = VirtualChip(ChipProfile({FID_CARD_ACCESS: encode_security_infos([info]), dg_fid(1): dg1}, can=CAN.can))
    result = pace.authenticate(ApduChannel(Link(chip)), CAN, info)
    assert result.mapping is mapping and result.chip_mapping_key is None
    select_application(result.sm)
    assert result.sm.send(Command(0, 0xB0, 0x81, 0, le=len(dg1))).data == dg1


@pytest.mark.parametrize("cipher", [Cipher.DES3, Cipher.AES192])
def test_im_other_ciphers(cipher: Cipher) -> None:
    info = PaceInfo(pace_oid(Mapping.ECDH_IM, cipher), 2, 12)
    chip = VirtualChip(ChipProfile({FID_CARD_ACCESS: encode_security_infos([info])}, can=CAN.can))
    assert pace.authenticate(ApduChannel(Link(chip)), CAN, info).cipher is cipher


def test_im_not_defined_on_p224() -> None:
    info = PaceInfo(pace_oid(Mapping.ECDH_IM, Cipher.AES128), 2, 10)
    chip = VirtualChip(ChipProfile({FID_CARD_ACCESS: encode_security_infos([info])}, can=CAN.can))
    with pytest.raises(pace.PaceError):
        pace.authenticate(ApduChannel(Link(chip)), CAN, info)
