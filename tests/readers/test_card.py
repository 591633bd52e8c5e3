"""The virtual ISO 7816-4 card and the chaining/extended-length logic of ApduChannel
(ISO/IEC 7816-4 §7.1.1 SELECT, §7.2.3 READ BINARY; 7816-3 §12.1 APDU cases)."""

from __future__ import annotations

import pytest

from agent.errors import ProtocolError
from agent.readers.apdu import SW, ApduChannel, Command, Ins
from agent.readers.atr import atr_says_extended_length
from agent.readers.sim import SimBackend
from agent.sim.card import Chaining, CommandFormatError, parse_command

from .cards import BIG, SMALL, TEST_AID, make_card


def channel_for(card) -> ApduChannel:  # type: ignore[no-untyped-def]
    backend = SimBackend()
    backend.insert("Sim Reader 00", card)
    return ApduChannel(backend.connect("Sim Reader 00"))


def select_app(ch: ApduChannel) -> None:
    assert ch.send(Command(0, Ins.SELECT, 4, 0x0C, TEST_AID)).sw == SW.OK


@pytest.mark.parametrize("command", [
    Command(0, 0xB0, 0, 0), Command(0, 0xB0, 0, 0, le=256), Command(0, 0xA4, 2, 0x0C, b"\x01\x1E"),
    Command(0, 0xA4, 2, 0, b"\x01\x1E", le=5), Command(0, 0xB0, 0, 0, le=65536),
    Command(0, 0xB1, 0, 0, b"\x54\x02\x80\x00", le=1000), Command(0, 0xDA, 0, 0, bytes(300)),
])
def test_parse_command_round_trips_encode(command: Command) -> None:
    parsed, extended = parse_command(command.encode())
    assert parsed == command
    assert extended == command.needs_extended


@pytest.mark.parametrize("raw", ["00B0", "00A4020C0301", "00A4020C0000", "00B0000000010203", "00B000000005AABB"])
def test_parse_command_rejects_inconsistent_lengths(raw: str) -> None:
    with pytest.raises(CommandFormatError):
        parse_command(bytes.fromhex(raw))


def test_atr_announces_extended_length_as_configured() -> None:
    assert atr_says_extended_length(make_card(extended_length=True).power_on())
    assert not atr_says_extended_length(make_card(extended_length=False).power_on())


def test_select_by_aid_fid_path_and_read_with_sfi() -> None:
    ch = channel_for(make_card())
    assert ch.send(Command(0, Ins.SELECT, 2, 0x0C, b"\x01\x01")).sw == SW.FILE_NOT_FOUND  # not in the MF
    select_app(ch)
    assert ch.send(Command(0, Ins.SELECT, 2, 0x0C, b"\x01\x01")).sw == SW.OK
    r = ch.send(Command(0, Ins.READ_BINARY, 0, 4, le=8))
    assert (r.sw, r.data) == (SW.OK, SMALL[4:12])
    r = ch.send(Command(0, Ins.READ_BINARY, 0x80 | 0x02, 16, le=4))  # SFI 2, offset 16
    assert r.data == BIG[16:20]
    fcp = ch.send(Command(0, Ins.SELECT, 8, 0, b"\x02\x00\x01\x01", le=256))
    assert fcp.sw == SW.OK and fcp.data[0] == 0x62 and len(SMALL).to_bytes(2, "big") in fcp.data


def test_read_past_end_of_file() -> None:
    ch = channel_for(make_card())
    select_app(ch)
    ch.send(Command(0, Ins.SELECT, 2, 0x0C, b"\x01\x01"))
    end = len(SMALL)
    r = ch.send(Command(0, Ins.READ_BINARY, end >> 8, (end - 2) & 0xFF, le=10))
    assert (r.sw, r.data) == (SW.WARNING_END_OF_FILE, b"il")
    assert ch.send(Command(0, Ins.READ_BINARY, (end + 1) >> 8, (end + 1) & 0xFF, le=1)).sw == SW.WRONG_P1P2


def test_read_binary_odd_ins_beyond_32767() -> None:
    """Offsets above 32767 do not fit P1-P2: B1 with offset DO 54, data in DO 53
    (ISO/IEC 7816-4 §7.2.3; ICAO 9303-10 for large DG2/DG3 files)."""
    ch = channel_for(make_card())
    select_app(ch)
    ch.send(Command(0, Ins.SELECT, 2, 0x0C, b"\x01\x02"))
    r = ch.send(Command(0, Ins.READ_BINARY_ODD, 0, 0, b"\x54\x02\x9C\x40", le=100))  # offset 40000 - 0x9C40
    assert (r.sw, r.data) == (SW.WARNING_END_OF_FILE, b"\x53\x00")  # exactly at the end: nothing left
    r = ch.send(Command(0, Ins.READ_BINARY_ODD, 0, 0, b"\x54\x02\x80\x10", le=20))  # offset 32784
    assert r.sw == SW.OK
    assert r.data[:2] == b"\x53\x10" and r.data[2:] == BIG[32784:32800]


def test_extended_le_reads_more_than_256_bytes() -> None:
    ch = channel_for(make_card(extended_length=True))
    assert ch.extended_length
    select_app(ch)
    ch.send(Command(0, Ins.SELECT, 2, 0x0C, b"\x01\x01"))
    r = ch.send(Command(0, Ins.READ_BINARY, 0, 0, le=516))
    assert (r.sw, len(r.data), r.data) == (SW.OK, 516, SMALL)


def test_extended_command_refused_without_extended_support() -> None:
    card = make_card(extended_length=False)
    ch = channel_for(card)
    with pytest.raises(ProtocolError, match="extended length"):
        ch.send(Command(0, Ins.READ_BINARY, 0, 0, le=1000))
    # and the card itself answers 6700 to an extended APDU it cannot take
    assert card.process(Command(0, Ins.READ_BINARY, 0, 0, le=1000).encode()) == b"\x67\x00"


def test_get_response_chaining_61xx() -> None:
    card = make_card(chaining=Chaining.GET_RESPONSE, chunk=100)
    ch = channel_for(card)
    select_app(ch)
    ch.send(Command(0, Ins.SELECT, 2, 0x0C, b"\x01\x01"))
    before = len(card.log)
    r = ch.send(Command(0, Ins.READ_BINARY, 0, 0, le=256))
    assert (r.sw, r.data) == (SW.OK, SMALL[:256])
    sent = card.log[before:]
    # READ BINARY answered 6164, then GET RESPONSE 100 + 100 + 56
    assert [c[1] for c in sent] == [0xB0, 0xC0, 0xC0, 0xC0]
    assert sent[1] == bytes.fromhex("00C0000064")


def test_wrong_le_6cxx_is_reissued_with_the_exact_length() -> None:
    card = make_card(chaining=Chaining.WRONG_LE)
    ch = channel_for(card)
    select_app(ch)
    ch.send(Command(0, Ins.SELECT, 2, 0x0C, b"\x01\x01"))
    before = len(card.log)
    end = len(SMALL) - 4
    r = ch.send(Command(0, Ins.READ_BINARY, end >> 8, end & 0xFF, le=256))
    assert (r.sw, r.data) == (SW.OK, b"tail")
    assert card.log[before:] == [bytes((0, 0xB0, end >> 8, end & 0xFF, 0)), bytes((0, 0xB0, end >> 8, end & 0xFF, 4))]


def test_unknown_instruction_class_and_secure_messaging() -> None:
    card = make_card()
    card.power_on()
    assert card.process(bytes.fromhex("00EE0000")) == b"\x6D\x00"
    assert card.process(bytes.fromhex("80B0000001")) == b"\x6E\x00"
    assert card.process(bytes.fromhex("0CB0000001")) == b"\x68\x82"
    assert card.process(bytes.fromhex("00B0000001")) == b"\x69\x86"  # no current EF
    assert card.process(bytes.fromhex("00C0000010")) == b"\x69\x85"  # nothing to GET RESPONSE


def test_reset_clears_selection() -> None:
    card = make_card()
    card.power_on()
    card.process(b"\x00\xA4\x04\x0C" + bytes((len(TEST_AID),)) + TEST_AID)
    assert card.process(bytes.fromhex("00A4020C020101")) == b"\x90\x00"
    card.reset()
    assert card.process(bytes.fromhex("00B0000001")) == b"\x69\x86"
