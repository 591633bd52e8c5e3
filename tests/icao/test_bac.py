"""BAC against ICAO 9303-11 Appendix D (values listed in domain.md), value by value."""

from __future__ import annotations

import pytest

from agent.icao import bac, crypto
from agent.icao.crypto import Cipher
from agent.icao.keys import MrzKey
from agent.icao.sm import AccessDeniedError
from agent.readers.apdu import Command, Response

H = bytes.fromhex
MRZ = MrzKey("L898902C", "690806", "940623")
RND_IC = H("4608F91988702212")
RND_IFD = H("781723860C06C226")
K_IFD = H("0B795240CB7049B01C19B33E32804F0B")
K_IC = H("0B4F80323EB3191CB04970CB4052790B")
K_ENC = H("AB94FDECF2674FDFB9B391F85D7F76F2")
K_MAC = H("7962D9ECE03D1ACD4C76089DCE131543")
EA_DATA = H("72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F25F1448EEA8AD90A7")
EA_RESPONSE = H("46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F2F2D235D074D7449")


def test_mrz_information_appendix_d() -> None:
    assert bac.mrz_information(MRZ) == "L898902C<369080619406236"


def test_key_seed_and_keys_appendix_d() -> None:
    assert bac.key_seed(MRZ) == H("239AB9CB282DAF66231DC5A4DF6BFBAE")
    assert bac.basic_access_keys(MRZ) == (K_ENC, K_MAC)


def test_external_authenticate_cryptogram_appendix_d() -> None:
    assert bac.build_cryptogram(K_ENC, K_MAC, RND_IFD + RND_IC + K_IFD) == EA_DATA
    assert bac.open_cryptogram(K_ENC, K_MAC, EA_RESPONSE) == RND_IC + RND_IFD + K_IC


def test_session_keys_and_ssc_appendix_d() -> None:
    session = bac.session_from_exchange(K_IFD, K_IC, RND_IC, RND_IFD)
    assert session.ks_enc == H("979EC13B1CBFE9DCD01AB0FED307EAE5")
    assert session.ks_mac == H("F1CB1F1FB5ADF208806B89DC579DC1F8")
    assert session.ssc == int.from_bytes(H("887022120C06C226"), "big")


class ScriptedChip:
    """Answers the Appendix D exchange byte-exactly and records the commands."""

    extended_length = False

    def __init__(self, ea_answer: Response) -> None:
        self.sent: list[Command] = []
        self.ea_answer = ea_answer

    def send(self, command: Command) -> Response:
        self.sent.append(command)
        if command.ins == 0x84:
            return Response(RND_IC, 0x9000)
        return self.ea_answer


def _rng_from(*chunks: bytes):  # type: ignore[no-untyped-def]
    queue = list(chunks)

    def rng(n: int) -> bytes:
        chunk = queue.pop(0)
        assert len(chunk) == n
        return chunk
    return rng


def test_authenticate_replays_appendix_d() -> None:
    chip = ScriptedChip(Response(EA_RESPONSE, 0x9000))
    sm = bac.authenticate(chip, MRZ, _rng_from(RND_IFD, K_IFD))
    assert chip.sent[0].encode() == H("0084000008")
    assert chip.sent[1].encode() == H("0082000028") + EA_DATA + H("28")
    assert sm.ks_enc == H("979EC13B1CBFE9DCD01AB0FED307EAE5")
    assert sm.ssc == int.from_bytes(H("887022120C06C226"), "big")
    assert sm.cipher is Cipher.DES3


def test_wrong_mrz_6300_is_access_denied() -> None:
    chip = ScriptedChip(Response(b"", 0x6300))
    with pytest.raises(AccessDeniedError) as info:
        bac.authenticate(chip, MRZ, _rng_from(RND_IFD, K_IFD))
    assert info.value.exit_code == 5


def test_parity_adjust() -> None:
    assert crypto.adjust_parity(b"\x00\x01\xfe\xff") == b"\x01\x01\xfe\xfe"
