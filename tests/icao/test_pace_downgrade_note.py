"""A BAC read of a chip whose signed DG14 lists PACE is noted: EF.CardAccess is not
signed and may have been altered to push the terminal to BAC (9303-11 §9.2.7)."""

from __future__ import annotations

from agent.icao import read as read_mod
from agent.icao.access import AccessInfo
from agent.icao.checks import CheckResult, Status
from agent.icao.chip_read import ChipRead
from agent.icao.crypto import Cipher
from agent.icao.securityinfo import Mapping, PaceInfo, encode_security_infos, pace_oid, parse_security_infos
from agent.icao.verify import Verification, VerificationStatus


def _read(protocol: str, dg14_lists_pace: bool, passive: Status = Status.VALID) -> ChipRead:
    infos = [PaceInfo(pace_oid(Mapping.ECDH_GM, Cipher.AES128), 2, 13)] if dg14_lists_pace else []
    dg14 = b"\x6e" + bytes([len(body := encode_security_infos(infos))]) + body
    access = AccessInfo(protocol, "3DES" if protocol == "BAC" else "AES-128", "MRZ",
                        pace_failure="the chip has no EF.CardAccess" if protocol == "BAC" else None)
    ok = CheckResult(Status.VALID, "ok")
    verification = Verification(CheckResult(passive, "p"), ok, ok, VerificationStatus.VERIFIED, "ok")
    return ChipRead(access, files={"DG14": dg14}, records={"DG14": parse_security_infos(dg14)},
                             verification=verification)


def test_bac_when_the_signed_dg14_lists_pace_is_noted() -> None:
    read = _read("BAC", dg14_lists_pace=True)
    read_mod._note_pace_downgrade(read)
    assert read.verification.notes and "lists PACE but this read used BAC" in read.verification.notes[0]
    assert "no EF.CardAccess" in read.verification.notes[0]
    assert read.verification.status is VerificationStatus.VERIFIED  # authenticity is unaffected: PA and CA still ran


def test_no_note_for_pace_reads_bac_only_chips_or_unverified_dg14() -> None:
    for read in (_read("PACE", True), _read("BAC", False), _read("BAC", True, passive=Status.INVALID)):
        read_mod._note_pace_downgrade(read)
        assert read.verification.notes == []
