"""APDU encoding (ISO/IEC 7816-3 §12.1 cases 1-4, short and extended) and chaining."""

from __future__ import annotations

import pytest

from agent.errors import ProtocolError
from agent.readers.apdu import SW, ApduChannel, ApduError, Command, Response, check


@pytest.mark.parametrize(
    ("command", "extended", "expected"),
    [
        (Command(0x00, 0xA4, 0x04, 0x0C), None, "00A4040C"),  # case 1
        (Command(0x00, 0xB0, 0x00, 0x00, le=256), None, "00B0000000"),  # case 2 short, Le=256 → 00
        (Command(0x00, 0xB0, 0x00, 0x00, le=0xDF), None, "00B00000DF"),
        (Command(0x00, 0xA4, 0x02, 0x0C, b"\x01\x1E"), None, "00A4020C02011E"),  # case 3
        (Command(0x00, 0x88, 0x00, 0x00, b"\x01" * 8, le=256), None, "0088000008" + "01" * 8 + "00"),  # case 4
        (Command(0x00, 0xB0, 0x00, 0x00, le=0x1000), None, "00B00000001000"),  # case 2 extended
        (Command(0x00, 0xB0, 0x00, 0x00, le=65536), None, "00B00000000000"),  # Le=65536 → 0000
        (Command(0x00, 0xA4, 0x02, 0x0C, b"\xAA" * 300), None, "00A4020C00012C" + "AA" * 300),  # case 3E
        (Command(0x00, 0x88, 0, 0, b"\x01\x02", le=256), True, "00880000" + "000002" + "0102" + "0100"),
    ],
)
def test_encoding(command: Command, extended: bool | None, expected: str) -> None:
    assert command.encode(extended).hex().upper() == expected


def test_extended_case4_le_follows_without_extra_zero() -> None:
    # case 4E: 00 || Lc(2) || data || Le(2)
    raw = Command(0x0C, 0xB0, 0, 0, b"\x97\x02\x10\x00", le=0x1000).encode()
    assert raw.hex().upper() == "0CB00000" + "000004" + "97021000" + "1000"


def test_short_refuses_what_needs_extended() -> None:
    with pytest.raises(ValueError):
        Command(0, 0xB0, 0, 0, le=300).encode(extended=False)
    with pytest.raises(ValueError):
        Command(0, 0xB0, 0, 0, le=0)


class ScriptedCard:
    """A transmitter answering from a script, recording what it got."""

    def __init__(self, answers: list[str], extended: bool = False) -> None:
        self.answers = [bytes.fromhex(a) for a in answers]
        self.sent: list[str] = []
        self.extended = extended

    @property
    def extended_length(self) -> bool:
        return self.extended

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu.hex().upper())
        return self.answers.pop(0)


def test_61xx_is_followed_by_get_response_and_data_is_joined() -> None:
    card = ScriptedCard(["01026104", "030405066102", "07089000"])
    response = ApduChannel(card).send(Command(0x00, 0xB0, 0, 0, le=256))
    assert response == Response(bytes(range(1, 9)), SW.OK)
    assert card.sent == ["00B0000000", "00C0000004", "00C0000002"]


def test_6cxx_reissues_with_the_right_le() -> None:
    card = ScriptedCard(["6C05", "01020304059000"])
    response = ApduChannel(card).send(Command(0x00, 0xB0, 0, 0, le=256))
    assert response.data == bytes(range(1, 6)) and response.ok
    assert card.sent == ["00B0000000", "00B0000005"]


def test_endless_61xx_is_a_protocol_error_not_a_hang() -> None:
    card = ScriptedCard(["6101"] * 1000)
    with pytest.raises(ProtocolError, match="never ended"):
        ApduChannel(card).send(Command(0x00, 0xB0, 0, 0, le=256))


def test_response_shorter_than_two_bytes_is_a_typed_error() -> None:
    with pytest.raises(ProtocolError, match="too short"):
        ApduChannel(ScriptedCard(["90"])).send(Command(0, 0xA4, 0, 0))


def test_extended_command_on_a_short_only_reader_is_refused() -> None:
    with pytest.raises(ProtocolError, match="extended length"):
        ApduChannel(ScriptedCard([], extended=False)).send(Command(0, 0xB0, 0, 0, le=1000))


def test_check_compares_the_whole_status_word() -> None:
    # a check on sw1 != 90 and sw2 != 00 lets 6300 through (domain.md pitfall)
    with pytest.raises(ApduError) as info:
        check(Response(b"", 0x6300), "EXTERNAL AUTHENTICATE")
    assert info.value.sw == 0x6300 and "WARNING_AUTH_FAILED" in str(info.value)
    with pytest.raises(ApduError):
        check(Response(b"", 0x9001), "x")
    assert check(Response(b"\x01", 0x9000), "x") == b"\x01"


def test_counters() -> None:
    channel = ApduChannel(ScriptedCard(["01029000"]))
    channel.send(Command(0, 0xB0, 0, 0, le=2))
    assert (channel.apdu_count, channel.bytes_sent, channel.bytes_received) == (1, 5, 4)
