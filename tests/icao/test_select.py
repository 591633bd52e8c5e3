"""SELECT of the eMRTD application: the one helper, byte-exact (9303-10 §3.6.1)."""

from __future__ import annotations

from agent.icao.select import Aid, SelectBy, select_application, select_command
from agent.readers.apdu import Command, Response


class _Recorder:
    extended_length = False

    def __init__(self, sw: int) -> None:
        self.sent: list[Command] = []
        self.sw = sw

    def send(self, command: Command) -> Response:
        self.sent.append(command)
        return Response(b"", self.sw)


def test_select_application_sends_the_emrtd_aid_without_fci() -> None:
    channel = _Recorder(0x9000)
    assert select_application(channel).sw == 0x9000
    assert channel.sent == [select_command(SelectBy.AID, Aid.EMRTD.value)]
    assert channel.sent[0].encode() == bytes.fromhex("00A4040C07A0000002471001")


def test_a_refusal_is_returned_not_raised() -> None:
    assert select_application(_Recorder(0x6A82)).sw == 0x6A82
