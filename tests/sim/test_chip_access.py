"""The virtual chip's access control and secure messaging, card side: access
conditions, wrong keys, bad MACs, quirks, and the handler hook."""

from __future__ import annotations

import pytest

from agent.errors import CardRemovedError
from agent.icao import access, bac
from agent.icao.crypto import Cipher
from agent.icao.keys import CanKey, MrzKey
from agent.icao.select import Aid, SelectBy, select_command
from agent.icao.sm import SecureMessaging, SecureMessagingError, SessionKeys
from agent.readers.apdu import ApduChannel, Command, Response
from agent.readers.sim import SimBackend
from agent.sim.chip import (
    FID_COM,
    ChipProfile,
    ChipQuirks,
    ChipState,
    VirtualChip,
    default_card_access,
    dg_fid,
)
from agent.sim.chip_access import CardSession
from agent.sim.link import Link

H = bytes.fromhex
MRZ = MrzKey("099012345", "990315", "390315")
CAN = CanKey("012345")
COM = H("600A5F0104303130375C024161")
DG1 = b"\x61\x05\x5f\x1f\x02AB"
DG2 = bytes(range(256)) * 80  # 20 KB, a CCCD-sized face image
BIG = bytes(i % 251 for i in range(40000))  # needs B1 for offsets above 32767
SELECT_APP = select_command(SelectBy.AID, Aid.EMRTD.value)


def profile(**extra: object) -> ChipProfile:
    files = {FID_COM: COM, dg_fid(1): DG1, dg_fid(2): DG2, dg_fid(3): b"\x63\x00", dg_fid(14): BIG,
             0x011C: default_card_access()}
    return ChipProfile(files, mrz_key=MRZ, can=CAN.can, **extra)  # type: ignore[arg-type]


def open_chip(key: MrzKey | CanKey = CAN, **extra: object) -> tuple[VirtualChip, SecureMessaging]:
    chip = VirtualChip(profile(**extra))
    chip.power_on()
    channel = ApduChannel(Link(chip))
    sm, _ = access.establish(channel, key, card_access=access.read_card_access(channel))
    assert sm.send(SELECT_APP).sw == 0x9000
    return chip, sm


def test_dg_needs_secure_messaging() -> None:
    chip = VirtualChip(profile())
    chip.power_on()
    assert chip.process(H("00A4040C07A0000002471001")) == H("9000")
    assert chip.process(H("00B0810004")) == H("6982")
    assert chip.process(H("00A4020C020101")) == H("9000")
    assert chip.process(H("00B0000004")) == H("6982")


def test_reads_under_sm_sfi_offset_and_odd_ins() -> None:
    _, sm = open_chip()
    assert sm.send(Command(0, 0xB0, 0x81, 0, le=len(DG1))).data == DG1
    assert sm.send(Command(0, 0xB0, 0x82, 0x10, le=0x20)).data == DG2[0x10:0x30]
    assert sm.send(Command(0, 0xA4, 0x02, 0x0C, H("010E"))).sw == 0x9000
    end = sm.send(Command(0, 0xB1, 0, 0, H("54029C40"), le=0x40))  # offset 40000 = the end of the file
    assert end.data == H("5300")
    far = sm.send(Command(0, 0xB1, 0, 0, H("54028000"), le=0x44))  # offset 32768
    assert far.data[:2] == H("5340") and far.data[2:] == BIG[32768:32768 + 0x40]


def test_extended_read_under_sm() -> None:
    _, sm = open_chip()
    chunk = sm.max_read_chunk()
    assert chunk > 0x1000
    sm.send(Command(0, 0xA4, 0x02, 0x0C, H("0102")))
    answer = sm.send(Command(0, 0xB0, 0, 0, le=4096))
    assert answer.data == DG2[:4096]


def test_dg3_needs_terminal_authentication_and_absent_file() -> None:
    _, sm = open_chip()
    assert sm.send(Command(0, 0xB0, 0x83, 0, le=2)).sw == 0x6982
    assert sm.send(Command(0, 0xA4, 0x02, 0x0C, H("010B"))).sw == 0x6A82  # DG11
    assert sm.alive
    assert sm.send(Command(0, 0xB0, 0x81, 0, le=len(DG1))).data == DG1


def test_plain_error_quirk() -> None:
    _, sm = open_chip(quirks=ChipQuirks(plain_error_sw=True))
    assert sm.send(Command(0, 0xA4, 0x02, 0x0C, H("010B"))).sw == 0x6A82
    assert sm.send(Command(0, 0xB0, 0x81, 0, le=len(DG1))).data == DG1  # SSCs still agree


@pytest.mark.parametrize("quirks,le,sw", [
    (ChipQuirks(rejects_le_zero=True), 256, 0x6700),
    (ChipQuirks(max_le=0xA0, too_large_sw=0x6B00), 0xDF, 0x6B00),
    (ChipQuirks(max_le=0xA0, too_large_sw=0x6282), 0xA1, 0x6282),
])
def test_chunk_quirks(quirks: ChipQuirks, le: int, sw: int) -> None:
    _, sm = open_chip(quirks=quirks)
    assert sm.send(Command(0, 0xB0, 0x82, 0, le=le)).sw == sw
    assert sm.send(Command(0, 0xB0, 0x82, 0, le=0xA0)).data == DG2[:0xA0]


def test_bac_then_bad_mac_drops_chip_session() -> None:
    chip, sm = open_chip(MRZ, pace_enabled=False)
    assert sm.cipher is Cipher.DES3 and chip.state.authenticated_with == "BAC"
    bad = SecureMessaging(ApduChannel(Link(chip)), b"\x01" * 16, b"\x02" * 16, Cipher.DES3, sm.ssc)
    with pytest.raises(SecureMessagingError):
        bad.send(Command(0, 0xB0, 0x81, 0, le=4))
    assert chip.state.session is None
    with pytest.raises(SecureMessagingError):
        sm.send(Command(0, 0xB0, 0x81, 0, le=4))


def test_wrong_mrz_bac_answers_6300() -> None:
    chip = VirtualChip(profile(pace_enabled=False))
    chip.power_on()
    channel = ApduChannel(Link(chip))
    with pytest.raises(bac.AccessDeniedError):
        bac.authenticate(channel, MrzKey("099012345", "990315", "390316"))


def test_plain_command_ends_the_session() -> None:
    chip, sm = open_chip()
    assert chip.process(H("00B0810004")) == H("6982")
    assert chip.state.session is None


class EchoRekey:
    """A handler like Chip Authentication: answers under the old keys, then re-keys."""

    def __init__(self) -> None:
        self.seen: list[tuple[Command, str | None]] = []

    def handle(self, cmd: Command, state: ChipState) -> Response | None:
        if cmd.ins != 0x22 or (cmd.p1, cmd.p2) != (0x41, 0xA4):
            return None
        self.seen.append((cmd, state.authenticated_with))
        state.set_session_after_response(CardSession(SessionKeys(b"\x11" * 16, b"\x22" * 16, Cipher.AES128), 0))
        return Response(b"", 0x9000)


def test_handler_hook_and_rekey_after_response() -> None:
    chip, sm = open_chip()
    handler = EchoRekey()
    chip.add_handler(handler)
    assert sm.send(Command(0, 0x22, 0x41, 0xA4, H("800A04007F00070202030202"))).sw == 0x9000
    assert handler.seen[0][0].data == H("800A04007F00070202030202")
    assert handler.seen[0][1] == "PACE"
    rekeyed = SecureMessaging(sm.inner, b"\x11" * 16, b"\x22" * 16, Cipher.AES128, 0)
    assert rekeyed.send(Command(0, 0xB0, 0x81, 0, le=len(DG1))).data == DG1
    assert chip.process(H("0088000008")) == H("6D00")  # unknown to core and handler


def test_through_sim_backend_and_card_removal() -> None:
    backend = SimBackend()
    chip = VirtualChip(profile())
    backend.insert("Sim Reader 00", chip)
    connection = backend.connect("Sim Reader 00")
    channel = ApduChannel(connection)
    sm, info = access.establish(channel, CAN, card_access=access.read_card_access(channel))
    assert info.protocol == "PACE"
    sm.send(SELECT_APP)
    assert sm.send(Command(0, 0xB0, 0x81, 0, le=len(DG1))).data == DG1
    backend.remove("Sim Reader 00")
    with pytest.raises(CardRemovedError):
        sm.send(Command(0, 0xB0, 0x81, 0, le=len(DG1)))


def test_power_cycle_forgets_the_session() -> None:
    chip, sm = open_chip()
    chip.power_off()
    chip.power_on()
    with pytest.raises(SecureMessagingError):
        sm.send(Command(0, 0xB0, 0x81, 0, le=4))


def test_extended_apdu_refused_before_sm_keeps_sscs_equal() -> None:
    chip, sm = open_chip(extended_length=False)
    # the terminal thinks extended length works; the chip answers 6700 in the clear
    raw = sm.protect(Command(0, 0xB0, 0x82, 0, le=1000))
    answer = Response.from_bytes(chip.process(raw.encode(extended=True)))
    assert answer == Response(b"", 0x6700)
    assert sm.unprotect(answer).sw == 0x6700
    assert sm.send(Command(0, 0xB0, 0x82, 0, le=0x20)).data == DG2[:0x20]


def test_broken_chain_is_forgotten_without_the_quirk() -> None:
    chip = VirtualChip(profile())
    chip.power_on()
    assert chip.process(H("0022C1A40F800A04007F00070202040202830102")) == H("9000")
    assert chip.process(H("10860000027C0000"))[-2:] == H("9000")
    assert chip.process(H("10860000047C028100"))[-2:] == H("6A80")  # PACE ends inside the chain
    # a later last-of-chain GENERAL AUTHENTICATE (e.g. Chip Authentication) reaches the handlers
    assert chip.process(H("00860000027C0000")) == H("6D00")


def test_broken_chain_quirk_answers_6883_until_closed() -> None:
    chip = VirtualChip(profile(quirks=ChipQuirks(unclosed_chain_6883=True)))
    chip.power_on()
    chip.process(H("0022C1A40F800A04007F00070202040202830102"))
    chip.process(H("10860000027C0000"))
    chip.process(H("10860000047C028100"))
    assert chip.process(H("0084000008")) == H("6883")
    assert chip.process(H("00860000027C0000")) == H("6985")
    assert len(chip.process(H("0084000008"))) == 10
