"""PACE against ICAO 9303-11 Appendix G.1 (ECDH-GM, brainpoolP256r1, AES-128) and G.2
(DH-GM, 1024-bit MODP), value by value (domain.md; G.2 keys from ZeroPass/dmrtd
test/pace_test_dh.dart). The terminal talks to the virtual chip, both fed the
vector's nonce and private keys through their injected rng."""

from __future__ import annotations

import hashlib

from agent.icao import crypto, pace, params
from agent.icao.crypto import Cipher
from agent.icao.keys import MrzKey
from agent.icao.securityinfo import parse_security_infos
from agent.readers.apdu import ApduChannel, Command, Response
from agent.sim.chip import FID_CARD_ACCESS, ChipProfile, VirtualChip
from agent.sim.link import Link

H = bytes.fromhex
MRZ = MrzKey("T22000129", "640812", "101031")


def rng_of(*chunks: bytes):  # type: ignore[no-untyped-def]
    queue = list(chunks)

    def rng(n: int) -> bytes:
        chunk = queue.pop(0)
        assert len(chunk) == n, (len(chunk), n)
        return chunk
    return rng


# --- G.1 ---
G1_CARD_ACCESS = H("31143012060A04007F0007020204020202010202010D")
G1_S = H("3F00C4D39D153F2B2A214A078D899B22")
G1_SK_MAP_IFD = H("7F4EF07B9EA82FD78AD689B38D0BC78CF21F249D953BC46F4C6E19259C010F99")
G1_SK_MAP_IC = H("498FF49756F2DC1587840041839A85982BE7761D14715FB091EFA7BCE9058560")
G1_SK_EPH_IFD = H("A73FB703AC1436A18E0CFA5ABB3F7BEC7A070E7A6788486BEE230C4A22762595")
G1_SK_EPH_IC = H("107CF58696EF6155053340FD633392BA81909DF7B9706F226F32086C7AFF974A")
G1_H = H("0460332EF2450B5D247EF6D3868397D398852ED6E8CAF6FFEEF6BF85CA57057FD5"
         "0840CA7415BAF3E43BD414D35AA4608B93A2CAF3A4E3EA4E82C9C13D03EB7181")
G1_MAPPED_G = H("048CED63C91426D4F0EB1435E7CB1D74A46723A0AF21C89634F65A9AE87A9265E2"
                "8C879506743F8611AC33645C5B985C80B5F09A0B83407C1B6A4D857AE76FE522")


def test_g1_password_and_nonce() -> None:
    assert pace.password(MRZ) == H("7E2D2A41C74EA0B38CD36F863939BFA8E9032AAD")
    assert pace.password(MRZ) == hashlib.sha1(b"T22000129364081251010318").digest()
    k_pi = crypto.kdf(pace.password(MRZ), crypto.KDF_PI, Cipher.AES128)
    assert k_pi == H("89DED1B26624EC1E634C1989302849DD")
    assert crypto.decrypt(Cipher.AES128, k_pi, H("95A3A016522EE98D01E76CB6B98B42C3")) == G1_S


def test_g1_mapping_and_key_agreement_values() -> None:
    group = params.by_id(13)
    sk_ifd, sk_ic = int.from_bytes(G1_SK_MAP_IFD, "big"), int.from_bytes(G1_SK_MAP_IC, "big")
    shared = group.mul(sk_ifd, group.mul_generator(sk_ic))
    assert group.encode(shared) == G1_H
    assert group.encode(group.mul(sk_ic, group.mul_generator(sk_ifd))) == G1_H
    mapped = pace.gm_generator(group, G1_S, shared)
    assert group.encode(mapped) == G1_MAPPED_G
    eph_ifd = int.from_bytes(G1_SK_EPH_IFD, "big")
    eph_ic = int.from_bytes(G1_SK_EPH_IC, "big")
    secret = group.shared_secret(group.mul(eph_ifd, group.mul(eph_ic, mapped)))
    assert secret == H("28768D20701247DAE81804C9E780EDE582A9996DB4A315020B2733197DB84925")
    assert pace.session_keys(secret, Cipher.AES128) == (
        H("F5F0E35C0D7161EE6724EE513A0D9A7F"), H("FE251C7858B356B24514B3BD5F4297D1"))


def test_g1_full_exchange_terminal_to_chip() -> None:
    chip = VirtualChip(ChipProfile({FID_CARD_ACCESS: G1_CARD_ACCESS}, mrz_key=MRZ),
                       rng=rng_of(G1_S, G1_SK_MAP_IC, G1_SK_EPH_IC))
    link = Link(chip)
    (info,) = parse_security_infos(G1_CARD_ACCESS).pace
    result = pace.authenticate(ApduChannel(link), MRZ, info, rng=rng_of(G1_SK_MAP_IFD, G1_SK_EPH_IFD))
    assert link.log[0] == (H("0022C1A40F800A04007F00070202040202830101"), H("9000"))
    assert link.log[1] == (H("10860000027C0000"), H("7C12801095A3A016522EE98D01E76CB6B98B42C39000"))
    assert link.log[4] == (H("008600000C7C0A8508C2B0BD78D94BA86600"), H("7C0A86083ABB9674BCE93C089000"))
    assert (result.sm.ks_enc, result.sm.ks_mac) == (
        H("F5F0E35C0D7161EE6724EE513A0D9A7F"), H("FE251C7858B356B24514B3BD5F4297D1"))
    assert (result.parameter_id, result.key_type, result.cam_data) == (13, "MRZ", None)
    # first AES-SM command, SSC 0 (domain.md)
    answer = result.sm.send(Command(0x00, 0xA4, 0x04, 0x0C, H("A0000002471001")))
    assert answer == Response(b"", 0x9000)
    assert link.log[5] == (H("0CA4040C1D871101752F676B09FAC86A87D632749A49C7CC8E08C18BA1FCE707BD9F00"),
                           H("990290008E08BEA7B381C494A0799000"))


# --- G.2 (DH) ---
G2_CARD_ACCESS = H("31143012060A04007F00070202040102020102020100")
G2_S = H("FA5B7E3E49753A0DB9178B7B9BD898C8")
G2_SK_MAP_IFD = H("5265030F751F4AD18B08AC565FC7AC952E41618D")
G2_SK_MAP_IC = H("66DDAFEAC1609CB5B963BB0CB3FF8B3E047F336C")
G2_SK_EPH_IFD = H("89CCD99B0E8D3B1F11E1296DCA68EC53411CF2CA")
G2_SK_EPH_IC = H("A5B780126B7C980E9FCEA1D4539DA1D27C342DFA")
G2_PK_MAP_IFD = H(
    "23FB3749EA030D2A25B278D2A562047ADE3F01B74F17A15402CB7352CA7D2B3EB71C343DB13D1DEBCE9A3666DBCFC920"
    "B49174A602CB47965CAA73DC702489A44D41DB914DE9613DC5E98C94160551C0DF86274B9359BC0490D01B03AD54022D"
    "CB4F57FAD6322497D7A1E28D46710F461AFE710FBBBC5F8BA166F4311975EC6C")
G2_MAPPED_G = H(
    "7C9CBFE98F9FBDDA8D143506FA7D9306F4CB17E3C71707AFF5E1C1A12370249684D64EE37AF44B8DBD9D45BF6023919C"
    "BAA027AB97ACC771666C8E98FF483301BFA4872DEDE9034EDFACB70814166B7F360676829B826BEA57291B5AD69FBC84"
    "EF1E779032A305803F74341793E869742D401325B37EE8565FFCDEE618342DC5")


def test_g2_dh_values() -> None:
    group = params.by_id(0)
    k_pi = crypto.kdf(pace.password(MRZ), crypto.KDF_PI, Cipher.AES128)
    assert crypto.decrypt(Cipher.AES128, k_pi, H("854D8DF5827FA6852D1A4FA701CDDDCA")) == G2_S
    sk_ifd = int.from_bytes(G2_SK_MAP_IFD, "big")
    assert group.encode(group.mul_generator(sk_ifd)) == G2_PK_MAP_IFD
    shared = group.mul(sk_ifd, group.mul_generator(int.from_bytes(G2_SK_MAP_IC, "big")))
    assert group.encode(pace.gm_generator(group, G2_S, shared)) == G2_MAPPED_G


def test_g2_full_exchange_terminal_to_chip() -> None:
    chip = VirtualChip(ChipProfile({FID_CARD_ACCESS: G2_CARD_ACCESS}, mrz_key=MRZ),
                       rng=rng_of(G2_S, G2_SK_MAP_IC, G2_SK_EPH_IC))
    link = Link(chip)
    (info,) = parse_security_infos(G2_CARD_ACCESS).pace
    result = pace.authenticate(ApduChannel(link), MRZ, info, rng=rng_of(G2_SK_MAP_IFD, G2_SK_EPH_IFD))
    assert link.log[0][0] == H("0022C1A40F800A04007F00070202040102830101")
    assert link.log[1][1] == H("7C128010854D8DF5827FA6852D1A4FA701CDDDCA9000")
    assert link.log[2][0] == H("10860000867C8183818180") + G2_PK_MAP_IFD + H("00")
    assert link.log[4][0] == H("008600000C7C0A8508B46DD9BD4D98381F00")
    assert link.log[4][1] == H("7C0A8608917F37B5C0E6D8D19000")
    assert (result.sm.ks_enc, result.sm.ks_mac) == (
        H("2F7F46ADCC9E7E521B45D192FAFA9126"), H("805A1D27D45A5116F73C54469462B7D8"))
