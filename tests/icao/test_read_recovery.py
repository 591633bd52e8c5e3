"""Verdicts after a glitch (issue 14, items 7, 8, 9, 11): a genuine card whose read met
one transport fault ends verified, on a fresh session, and only the chip's own,
uninterrupted answers give "wrong CAN", "file absent" or "probable clone".

Each test plays the fault on the virtual chip (agent.sim) behind the in-process
reader: an answer the chip never produced (a bare status word: the chip did not see
the command, as when a reader or relay answers), or a byte flipped on the way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.icao.chip_read import ChipRead
from agent.icao.file_reader import ReadInterruptedError
from agent.icao.keys import CanKey
from agent.icao.read import read_chip
from agent.icao.sm import AccessDeniedError
from agent.icao.trust import TrustStore
from agent.identity.from_chip import identity_of
from agent.readers.apdu import ApduChannel, Ins
from agent.readers.sim import DEFAULT_READER, SimBackend
from agent.sim.chip import VirtualChip
from agent.sim.profile import load_profile, virtual_chip

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 1, 15)
CAN = CanKey("012345")
#: READ BINARY by SFI (9303-10 §3.6.2)
SFI_DG1, SFI_DG2 = 0x81, 0x82
#: unprotected "file not found" (ISO/IEC 7816-4)
SW_6A82 = bytes.fromhex("6A82")

Fault = Callable[[bytes, Callable[[bytes], bytes]], bytes | None]


def faulty_chip(fault: Fault, profile: str = "nguyen-van-an") -> tuple[VirtualChip, list[int]]:
    """The chip, with ``fault(apdu, chip_process)`` deciding each answer (None: the
    chip's own); the INS of every command the chip received is logged."""
    chip = virtual_chip(load_profile(profile))
    inner = chip.process
    seen: list[int] = []

    def process(apdu: bytes) -> bytes:
        answer = fault(apdu, inner)
        if answer is not None:
            return answer
        seen.append(apdu[1])
        return inner(apdu)

    chip.process = process  # type: ignore[method-assign]
    return chip, seen


def once(match: Callable[[bytes], bool], answer: Callable[[bytes, Callable[[bytes], bytes]], bytes],
         times: int = 1) -> Fault:
    left = [times]

    def fault(apdu: bytes, process: Callable[[bytes], bytes]) -> bytes | None:
        if left[0] and match(apdu):
            left[0] -= 1
            return answer(apdu, process)
        return None

    return fault


def bare(sw: bytes) -> Callable[[bytes, Callable[[bytes], bytes]], bytes]:
    return lambda apdu, process: sw


def flipped(at: int) -> Callable[[bytes, Callable[[bytes], bytes]], bytes]:
    def answer(apdu: bytes, process: Callable[[bytes], bytes]) -> bytes:
        out = bytearray(process(apdu))
        out[at] ^= 0x01
        return bytes(out)

    return answer


def read(backend: SimBackend, chip: VirtualChip, store: TrustStore) -> ChipRead:
    backend.insert(DEFAULT_READER, chip)
    return read_chip(ApduChannel(backend.connect(DEFAULT_READER)), CAN, trust=store, today=TODAY)


def is_ins(ins: int, p1: int | None = None) -> Callable[[bytes], bool]:
    return lambda apdu: apdu[1] == ins and (p1 is None or apdu[2] == p1)


# -- 7: AA runs on the recovered session -------------------------------------------------------

def test_flipped_byte_in_dg1_reads_again_and_runs_active_authentication(backend: SimBackend,
                                                                         store: TrustStore) -> None:
    # the MAC of DG1's answer no longer verifies: the session is lost (9303-11 §9.8)
    chip, _ = faulty_chip(once(is_ins(Ins.READ_BINARY, SFI_DG1), flipped(3)))
    result = read(backend, chip, store)
    assert result.read_again and "MAC" in result.read_again
    assert result.verification.active.status.value == "valid"
    assert result.verification.chip.status.value == "valid"
    assert result.verified and identity_of(result) is not None


# -- 8: INTERNAL AUTHENTICATE answered outside secure messaging ---------------------------------

def test_unprotected_6a82_to_internal_authenticate_retried_on_a_fresh_session(backend: SimBackend,
                                                                              store: TrustStore) -> None:
    chip, seen = faulty_chip(once(is_ins(Ins.INTERNAL_AUTHENTICATE), bare(SW_6A82)))
    result = read(backend, chip, store)
    verification = result.verification
    assert verification.status == "verified"
    assert verification.active.status.value == "valid"
    assert any("fresh session" in note for note in verification.notes)
    assert seen.count(Ins.INTERNAL_AUTHENTICATE) == 1  # the chip signed once: on the new session


def test_internal_authenticate_never_answered_is_no_clone(backend: SimBackend, store: TrustStore) -> None:
    chip, seen = faulty_chip(once(is_ins(Ins.INTERNAL_AUTHENTICATE), bare(SW_6A82), times=99))
    result = read(backend, chip, store)
    verification = result.verification
    assert verification.status != "probable_clone"
    assert verification.active.status.value == "error" and "6A82" in verification.active.reason
    # CA (valid) still speaks for the chip
    assert verification.chip.status.value == "valid" and verification.status == "verified"
    assert seen.count(Ins.INTERNAL_AUTHENTICATE) == 0


# -- 9: a corrupted PACE nonce is not a wrong CAN -----------------------------------------------

def test_flipped_pace_nonce_is_retried_not_a_wrong_can(backend: SimBackend, store: TrustStore) -> None:
    # the first GENERAL AUTHENTICATE answers the encrypted nonce (7C 12 80 10 ...): one
    # flipped bit and the chip refuses our token at the end, 6300, as for a wrong CAN
    chip, seen = faulty_chip(once(is_ins(Ins.GENERAL_AUTHENTICATE), flipped(6)))
    result = read(backend, chip, store)
    assert result.verified
    assert seen.count(Ins.MSE) == 3  # PACE, PACE again, CA


def test_wrong_can_still_reported_after_a_second_refusal(backend: SimBackend, store: TrustStore) -> None:
    chip, seen = faulty_chip(lambda apdu, process: None)
    backend.insert(DEFAULT_READER, chip)
    with pytest.raises(AccessDeniedError) as caught:
        read_chip(ApduChannel(backend.connect(DEFAULT_READER)), CanKey("999999"), trust=store, today=TODAY)
    assert caught.value.exit_code == 5
    assert seen.count(Ins.MSE) == 2  # the chip refused two uninterrupted PACE runs


# -- 11: an unprotected 6A82 to READ BINARY under SM ---------------------------------------------

def test_unprotected_6a82_to_read_binary_is_not_an_absent_file(backend: SimBackend, store: TrustStore) -> None:
    chip, _ = faulty_chip(once(is_ins(Ins.READ_BINARY, SFI_DG2), bare(SW_6A82)))
    result = read(backend, chip, store)
    assert result.outcomes["DG2"].status == "read"
    assert result.complete and result.verified
    assert result.read_again and "6A82" in result.read_again


def test_file_the_chip_lacks_is_still_absent_when_errors_come_without_sm(backend: SimBackend,
                                                                         store: TrustStore) -> None:
    # a chip answering errors without SM (domain.md), whose DG15 is gone: the READ
    # BINARY and the SELECT both answer an unprotected 6A82: the file is absent
    def no_dg15(apdu: bytes, process: Callable[[bytes], bytes]) -> bytes | None:
        if apdu[1] == Ins.READ_BINARY and apdu[2] == 0x8F:
            return SW_6A82
        if apdu[1] == Ins.SELECT and apdu[2] == 0x02:
            return SW_6A82  # every protected SELECT of an EF here is DG15's
        return None

    chip, _ = faulty_chip(no_dg15)
    result = read(backend, chip, store)
    assert result.outcomes["DG15"].status == "absent"
    assert result.read_again is None


def test_card_pulled_is_not_read_again(backend: SimBackend, store: TrustStore) -> None:
    def pull(apdu: bytes, process: Callable[[bytes], bytes]) -> bytes | None:
        if apdu[1] == Ins.READ_BINARY and apdu[2] == SFI_DG2:
            backend.remove(DEFAULT_READER)
        return None

    chip, seen = faulty_chip(pull)
    with pytest.raises(ReadInterruptedError, match="DG2") as info:
        read(backend, chip, store)
    assert seen.count(Ins.MSE) == 2  # PACE, CA: no second PACE on a card that left
    # the error names the file, never its content; the card laid down again reads
    assert info.value.file_name == "DG2" and info.value.exit_code == 6
    assert "001099012345" not in str(info.value)
    again = read(backend, virtual_chip(load_profile("nguyen-van-an")), store)
    assert again.complete and again.verified
