"""Secure messaging against ICAO 9303-11 Appendix D.4 (3DES) and G.1 (AES), from domain.md."""

from __future__ import annotations

import pytest

from agent.icao.crypto import Cipher
from agent.icao.select import select_application
from agent.icao.sm import SecureMessaging, SecureMessagingError, max_read_chunk
from agent.readers.apdu import Command, Response

H = bytes.fromhex
KS_ENC = H("979EC13B1CBFE9DCD01AB0FED307EAE5")
KS_MAC = H("F1CB1F1FB5ADF208806B89DC579DC1F8")
SSC = int.from_bytes(H("887022120C06C226"), "big")


class Scripted:
    """A channel that checks each protected command byte-exactly and plays an answer."""

    extended_length = False

    def __init__(self, script: list[tuple[bytes, bytes]]) -> None:
        self.script = list(script)

    def send(self, command: Command) -> Response:
        expected, answer = self.script.pop(0)
        assert command.encode() == expected
        return Response.from_bytes(answer)


APPENDIX_D = [
    (H("0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800"), H("990290008E08FA855A5D4C50A8ED9000")),
    (H("0CB000000D9701048E08ED6705417E96BA5500"),
     H("8709019FF0EC34F9922651990290008E08AD55CC17140B2DED9000")),
    (H("0CB000040D9701128E082EA28A70F3C7B53500"),
     H("871901FB9235F4E4037F2327DCC8964F1F9B8C30F42C8E2FFF224A990290008E08C8B2787EAEA07D749000")),
]


def test_appendix_d_select_and_reads() -> None:
    sm = SecureMessaging(Scripted(APPENDIX_D), KS_ENC, KS_MAC, Cipher.DES3, SSC)
    assert sm.send(Command(0x00, 0xA4, 0x02, 0x0C, H("011E"))) == Response(b"", 0x9000)
    assert sm.send(Command(0x00, 0xB0, 0x00, 0x00, le=4)) == Response(H("60145F01"), 0x9000)
    assert sm.send(Command(0x00, 0xB0, 0x00, 0x04, le=0x12)) == Response(
        H("04303130365F36063034303030305C026175"), 0x9000)
    assert sm.ssc == SSC + 6


def test_typo_vector_from_some_ports_is_rejected() -> None:
    # domain.md: some ports copy the 4-byte READ BINARY response with a stray 4B (…2DED4B9000)
    typo = APPENDIX_D[1][1][:-2] + H("4B9000")
    script = [APPENDIX_D[0], (APPENDIX_D[1][0], typo)]
    sm = SecureMessaging(Scripted(script), KS_ENC, KS_MAC, Cipher.DES3, SSC)
    sm.send(Command(0x00, 0xA4, 0x02, 0x0C, H("011E")))
    with pytest.raises(SecureMessagingError):
        sm.send(Command(0x00, 0xB0, 0x00, 0x00, le=4))
    assert not sm.alive


def test_tampered_mac_kills_the_session() -> None:
    tampered = APPENDIX_D[0][1][:-3] + bytes((APPENDIX_D[0][1][-3] ^ 1,)) + H("9000")
    sm = SecureMessaging(Scripted([(APPENDIX_D[0][0], tampered)]), KS_ENC, KS_MAC, Cipher.DES3, SSC)
    with pytest.raises(SecureMessagingError) as info:
        sm.send(Command(0x00, 0xA4, 0x02, 0x0C, H("011E")))
    assert info.value.exit_code == 6
    assert not sm.alive
    with pytest.raises(SecureMessagingError):
        sm.send(Command(0x00, 0xB0, 0x00, 0x00, le=4))


@pytest.mark.parametrize("sw", [b"\x69\x87", b"\x69\x88"])
def test_chip_sm_error_ends_session(sw: bytes) -> None:
    sm = SecureMessaging(Scripted([(APPENDIX_D[0][0], sw)]), KS_ENC, KS_MAC, Cipher.DES3, SSC)
    with pytest.raises(SecureMessagingError):
        sm.send(Command(0x00, 0xA4, 0x02, 0x0C, H("011E")))
    assert not sm.alive


def test_plain_9000_without_mac_is_refused() -> None:
    sm = SecureMessaging(Scripted([(APPENDIX_D[0][0], H("9000"))]), KS_ENC, KS_MAC, Cipher.DES3, SSC)
    with pytest.raises(SecureMessagingError):
        sm.send(Command(0x00, 0xA4, 0x02, 0x0C, H("011E")))


def test_plain_error_status_passes_through() -> None:
    sm = SecureMessaging(Scripted([(APPENDIX_D[0][0], H("6A82"))]), KS_ENC, KS_MAC, Cipher.DES3, SSC)
    assert sm.send(Command(0x00, 0xA4, 0x02, 0x0C, H("011E"))).sw == 0x6A82
    assert sm.alive and sm.ssc == SSC  # neither side counted the unprotected answer


def test_aes_select_after_pace_appendix_g1() -> None:
    # domain.md, G.1: first AES-SM command after PACE, SSC 0
    script = [(H("0CA4040C1D871101752F676B09FAC86A87D632749A49C7CC8E08C18BA1FCE707BD9F00"),
               H("990290008E08BEA7B381C494A0799000"))]
    sm = SecureMessaging(Scripted(script), H("F5F0E35C0D7161EE6724EE513A0D9A7F"),
                         H("FE251C7858B356B24514B3BD5F4297D1"), Cipher.AES128, 0)
    assert select_application(sm) == Response(b"", 0x9000)


def test_max_read_chunk() -> None:
    assert max_read_chunk(False, 16) == 0xDF
    assert max_read_chunk(False, 8) == 231
    big = max_read_chunk(True, 16)
    assert 0x1000 < big < 0x10000


def test_extended_le_uses_two_byte_do97() -> None:
    class Capture:
        extended_length = True
        command: Command | None = None

        def send(self, command: Command) -> Response:
            self.command = command
            return Response(b"", 0x6282)

    inner = Capture()
    sm = SecureMessaging(inner, KS_ENC, KS_MAC, Cipher.DES3, 0)
    sm.send(Command(0x00, 0xB0, 0x00, 0x00, le=1000))
    assert inner.command is not None
    assert inner.command.data[:4] == H("970203E8")
    assert inner.command.encode()[-2:] == H("0000")
