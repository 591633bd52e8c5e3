"""Garbage in, typed errors out: SecurityInfos, SM responses, PACE answers and the
virtual chip's command parser never leak IndexError/ValueError (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.errors import IdAgentError, ParseError
from agent.icao import pace
from agent.icao.crypto import Cipher
from agent.icao.keys import CanKey
from agent.icao.securityinfo import Mapping, PaceInfo, pace_oid, parse_security_infos
from agent.icao.sm import SecureMessaging, SecureMessagingError
from agent.readers.apdu import ApduChannel, Command, Response
from agent.sim.chip import ChipProfile, VirtualChip, default_card_access

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(max_size=120))
def test_security_infos_garbage(data: bytes) -> None:
    try:
        parse_security_infos(data, source="DG14")
    except ParseError as exc:
        assert exc.source == "DG14"


@FAST
@given(st.binary(max_size=80), st.sampled_from([0x9000, 0x6282, 0x6A82]))
def test_sm_response_garbage(data: bytes, sw: int) -> None:
    class Fixed:
        extended_length = False

        def send(self, command: Command) -> Response:
            return Response(data, sw)

    sm = SecureMessaging(Fixed(), b"\x01" * 16, b"\x02" * 16, Cipher.AES128, 0)
    try:
        sm.send(Command(0, 0xB0, 0, 0, le=8))
    except SecureMessagingError:
        assert not sm.alive


@FAST
@given(st.lists(st.binary(max_size=40), min_size=4, max_size=4))
def test_pace_answers_garbage(answers: list[bytes]) -> None:
    class Chip:
        extended_length = False

        def __init__(self) -> None:
            self.queue = [b"\x90\x00"] + [a + b"\x90\x00" for a in answers]

        def transmit(self, apdu: bytes) -> bytes:
            return self.queue.pop(0)

    info = PaceInfo(pace_oid(Mapping.ECDH_GM, Cipher.AES128), 2, 13)
    try:
        pace.authenticate(ApduChannel(Chip()), CanKey("123456"), info)
    except IdAgentError:
        pass


@FAST
@given(st.binary(min_size=0, max_size=300))
def test_chip_never_crashes_on_garbage(apdu: bytes) -> None:
    chip = VirtualChip(ChipProfile({0x011C: default_card_access(), 0x0101: b"\x61\x00"}, can="123456"))
    chip.power_on()
    answer = chip.process(apdu)
    assert len(answer) >= 2


@FAST
@given(st.sampled_from([0x00, 0x0C, 0x10]), st.sampled_from([0xA4, 0xB0, 0xB1, 0x84, 0x82, 0x22, 0x86, 0x88, 0xC0]),
       st.integers(0, 255), st.integers(0, 255), st.binary(max_size=60), st.one_of(st.none(), st.integers(1, 300)))
def test_chip_structured_commands(cla: int, ins: int, p1: int, p2: int, data: bytes, le: int | None) -> None:
    chip = VirtualChip(ChipProfile({0x011C: default_card_access(), 0x0101: b"\x61\x00"}, can="123456"))
    chip.power_on()
    for _ in range(2):  # a second time, after whatever state the first one left
        answer = chip.process(Command(cla, ins, p1, p2, data, le).encode(extended=True if le and le > 256 else None))
        assert len(answer) >= 2
