"""Access control, end to end: read EF.CardAccess, run the strongest PACE the chip
offers, fall back to BAC where that is allowed, and hand back secure messaging.

Public API (used by agent.icao.read / files):

* ``read_card_access(channel) -> bytes | None``: EF.CardAccess from the MF, or None
  when the chip has none (a BAC-only document).
* (the eMRTD application is selected by ``agent.icao.select.select_application``)
  (establish does it before BAC).
* ``choose_pace(infos) -> PaceInfo | None``: the preferred PACEInfo (see
  ``PACE_PREFERENCE`` below).
* ``establish(channel, key, *, card_access, rng=os.urandom, prefer="pace")
  -> (SecureMessaging, AccessInfo)``.
* ``AccessInfo``: what was negotiated; ``to_dict()`` for the ``read --json`` output.
* Errors: ``AccessDeniedError`` (exit 5: wrong CAN/MRZ; never retried with BAC, but
  only raised when a second, fresh run of the same protocol was refused too: a nonce or
  challenge corrupted on the way makes the chip answer 6300 exactly as a wrong password
  does, issue 14), ``CanNotAcceptedError`` (exit 5: a CAN
  for a chip without PACE), ``PaceInterruptedError`` (exit 6: PACE with the CAN started
  and broke off, usually a moved card), ``PaceError``/``ApduError`` for other failures.

Preference (9303-11 §4.2 leaves the choice to the terminal; we take the strongest):
mapping CAM > ECDH-GM > ECDH-IM > DH-GM > DH-IM (CAM authenticates the chip within
PACE; ECDH is faster than DH at equal strength; GM before IM because GM is what
deployed chips and peers exercise most), then the cipher's key length (AES-256 > 192 >
128 > 3DES), then the size of the group order. Explicit (non-standardized) domain
parameters are not implemented and never picked, nor IM on P-224.

Fallback: when PACE is absent, or fails for a reason other than the password (an
unsupported protocol, a malformed answer, a status word other than 6300), BAC is run
with MRZ data, after selecting the eMRTD application (9303-11 §4.3: BAC runs inside
the application; PACE runs in the MF, so after a PACE attempt real chips refuse GET
CHALLENGE until the application is selected). Some chips answer 6883 to the first command after a PACE run that ended
inside a GENERAL AUTHENTICATE chain (domain.md): we then close the chain with a final
(CLA 00) GENERAL AUTHENTICATE and retry once.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from agent.errors import ParseError, ProtocolError
from agent.icao import bac, pace
from agent.icao import tlv as ber
from agent.icao.keys import AccessKey, CanKey, MrzKey
from agent.icao.params import STANDARD, UnsupportedParametersError
from agent.icao.securityinfo import Mapping, PaceInfo, SecurityInfos, parse_security_infos
from agent.icao.select import SelectBy, select_application, select_command
from agent.icao.sm import AccessDeniedError, SecureMessaging, SecureMessagingError
from agent.readers.apdu import SW, ApduError, Channel, Command, Ins, Response
from agent.rng import Rng

logger = logging.getLogger(__name__)


MF_FID = b"\x3f\x00"
CARD_ACCESS_FID = b"\x01\x1c"
#: first READ BINARY of EF.CardAccess: enough for the tag and a long-form length
HEADER_READ = 4
#: chunk size in the clear; 0xDF is accepted by every chip peers report (domain.md)
PLAIN_CHUNK = 0xDF
#: EF.CardAccess is a few hundred bytes; refuse absurd lengths instead of looping
CARD_ACCESS_MAX = 0x4000
#: READ BINARY P1 = 80 | SFI: EF.CardAccess (SFI 1C) read without selecting it
#: (9303-10 §3.11.3, ISO/IEC 7816-4 §11.2.3)
CARD_ACCESS_SFI_P1 = 0x80 | 0x1C
#: answers to a READ BINARY by SFI meaning "the chip takes SFI, but not this Le"
LENGTH_REFUSED_SW = frozenset({SW.WRONG_LENGTH, SW.WRONG_P1P2, SW.WARNING_END_OF_FILE})

#: mapping preference, strongest first
PACE_PREFERENCE: tuple[Mapping, ...] = (Mapping.ECDH_CAM, Mapping.ECDH_GM, Mapping.ECDH_IM, Mapping.DH_GM,
                                         Mapping.DH_IM)

__all__ = ["AccessDeniedError", "AccessInfo", "CanNotAcceptedError", "PACE_PREFERENCE", "PaceInterruptedError",
           "choose_pace", "establish", "read_card_access"]


class PaceInterruptedError(ProtocolError):
    """PACE with the CAN started but broke off (an error status word, a garbled or
    missing answer): most often the card moved. Not a verdict on the CAN."""

    code = "pace_interrupted"
    exit_code = 6
    hint = ("The card did not finish opening: lay it flat on the reader, keep it still and try again. "
            "If this repeats with the right number, the card may be damaged.")


class CanNotAcceptedError(AccessDeniedError):
    """The chip has no (working) PACE, so the CAN cannot open it; BAC needs MRZ data."""

    code = "can_not_accepted"
    hint = "This card does not accept the CAN: enter the document number, birth date and expiry date instead."


@dataclass(frozen=True)
class AccessInfo:
    protocol: str  # "PACE" or "BAC"
    cipher: str  # "3DES", "AES-128", ...
    key_type: str  # "MRZ" or "CAN"
    oid: str | None = None
    mapping: str | None = None  # "ECDH-GM", "DH-GM", "ECDH-CAM"
    parameter_id: int | None = None
    cam_data: bytes | None = None  # encrypted Chip Authentication data (PACE-CAM)
    cam_ca_ic: bytes | None = None  # its decryption, CA_IC, for the trust layer
    chip_mapping_key: bytes | None = None  # PK_map,IC, needed to verify CAM
    pace_failure: str | None = None  # why PACE was not used when BAC was

    def to_dict(self) -> dict[str, object]:
        return {
            "protocol": self.protocol, "cipher": self.cipher, "key_type": self.key_type, "oid": self.oid,
            "mapping": self.mapping, "parameter_id": self.parameter_id,
            "cam_data": self.cam_data.hex().upper() if self.cam_data else None,
            "pace_failure": self.pace_failure,
        }


# ---- EF.CardAccess ----

def _select(channel: Channel, by: SelectBy, fid: bytes) -> int:
    return channel.send(select_command(by, fid)).sw


def _total_length(header: bytes) -> int:
    """Tag + length + value of the DER element whose first bytes are ``header``."""
    return ber.read_header(header, source="EF.CardAccess", check_bounds=False).total_len


def read_card_access(channel: Channel) -> bytes | None:
    """EF.CardAccess in the clear (9303-10 §3.11.3: readable without access control),
    None when the chip has none.

    First one READ BINARY by short file identifier (SFI 1C) from the MF, no SELECT:
    the whole file in one APDU on most chips. 6Cxx gets exactly xx; a chip refusing
    the length (6700, 6B00) gets a header read by SFI; any other refusal (6A82, 6986,
    6D00, 6A81 ...: no SFI addressing here) falls back to SELECT MF + SELECT EF +
    READ BINARY (``_read_selected``)."""
    first = _sfi_read(channel, PLAIN_CHUNK)
    if first.sw1 == SW_WRONG_LE_HIGH and not first.data and 0 < first.sw2:
        first = _sfi_read(channel, first.sw2)
    elif first.sw in LENGTH_REFUSED_SW and not first.data:
        logger.debug("EF.CardAccess by SFI: %04X to Le=%d, reading its header", first.sw, PLAIN_CHUNK)
        first = _sfi_read(channel, HEADER_READ)
    if first.sw in (SW.OK, SW.WARNING_END_OF_FILE) and first.data:
        # the SFI read made EF.CardAccess the current EF: the rest by offset
        return _read_rest(channel, first.data)
    logger.debug("EF.CardAccess by SFI answered %04X: selecting it", first.sw)
    return _read_selected(channel)


#: SW1 of "wrong Le, SW2 gives the right one" (ISO/IEC 7816-4 §5.1.3)
SW_WRONG_LE_HIGH = 0x6C


def _sfi_read(channel: Channel, le: int) -> Response:
    return channel.send(Command(0x00, Ins.READ_BINARY, CARD_ACCESS_SFI_P1, 0x00, le=le))


def _read_selected(channel: Channel) -> bytes | None:
    """SELECT MF, SELECT EF.CardAccess, READ BINARY. On 6D00/6A82 to the MF (some
    stacks, domain.md) the EF is selected directly."""
    sw = _select(channel, SelectBy.FID, MF_FID)
    if sw not in (SW.OK, SW.INS_NOT_SUPPORTED, SW.FILE_NOT_FOUND):
        logger.debug("SELECT MF answered %04X; selecting EF.CardAccess anyway", sw)
    sw = _select(channel, SelectBy.EF, CARD_ACCESS_FID)
    if sw != SW.OK:
        logger.info("no EF.CardAccess (SELECT answered %04X)", sw)
        return None
    first = channel.send(Command(0x00, Ins.READ_BINARY, 0, 0, le=HEADER_READ))
    if first.sw not in (SW.OK, SW.WARNING_END_OF_FILE) or not first.data:
        logger.info("EF.CardAccess unreadable (READ BINARY answered %04X)", first.sw)
        return None
    return _read_rest(channel, first.data)


def _read_rest(channel: Channel, start: bytes) -> bytes:
    """The whole of EF.CardAccess, given its first bytes (the current EF)."""
    total = _total_length(start)
    if total > CARD_ACCESS_MAX:
        raise ParseError(f"EF.CardAccess claims {total} bytes", source="EF.CardAccess", offset=1)
    data = bytearray(start[:total])
    while len(data) < total:
        chunk = min(total - len(data), PLAIN_CHUNK)
        offset = len(data)
        response = channel.send(Command(0x00, Ins.READ_BINARY, offset >> 8, offset & 0xFF, le=chunk))
        if response.sw not in (SW.OK, SW.WARNING_END_OF_FILE) or not response.data:
            raise ParseError(f"EF.CardAccess ends early (READ BINARY answered {response.sw:04X})",
                             source="EF.CardAccess", offset=offset)
        data += response.data
    return bytes(data[:total])


# ---- choice ----

def _rank(info: PaceInfo) -> tuple[int, int, int]:
    assert info.mapping is not None and info.cipher is not None and info.parameter_id is not None
    mapping_rank = len(PACE_PREFERENCE) - PACE_PREFERENCE.index(info.mapping)
    return mapping_rank, info.cipher.key_len * (2 if info.cipher.is_aes else 1), \
        STANDARD[info.parameter_id].order.bit_length()


def _usable(info: PaceInfo) -> bool:
    if info.mapping not in PACE_PREFERENCE or info.cipher is None or info.parameter_id not in STANDARD:
        return False
    group = STANDARD[info.parameter_id]
    if info.mapping in pace.INTEGRATED_MAPPINGS and not pace.im_supported(group):
        return False
    return group.kind == info.mapping.agreement


def choose_pace(infos: SecurityInfos) -> PaceInfo | None:
    """The strongest usable PACEInfo, or None (module docstring: preference order)."""
    usable = [info for info in infos.pace if _usable(info)]
    return max(usable, key=_rank) if usable else None


# ---- establish ----

def _close_chain(channel: Channel) -> None:
    """End a GENERAL AUTHENTICATE chain left open by a failed PACE (domain.md: 6883)."""
    response = channel.send(Command(0x00, Ins.GENERAL_AUTHENTICATE, 0, 0, pace.dynamic_auth(), le=256))
    logger.debug("closing the PACE command chain answered %04X", response.sw)


def _bac(channel: Channel, key: MrzKey, rng: Rng) -> SecureMessaging:
    try:
        return _bac_once(channel, key, rng)
    except AccessDeniedError as exc:
        # BAC's GET CHALLENGE answer travels unprotected: one flipped bit and the chip
        # refuses our cryptogram (6300) as it would refuse wrong MRZ data
        logger.info("BAC refused the MRZ data (%s): running it once more before calling the data wrong",
                    exc.message)
    return _bac_once(channel, key, rng)


def _bac_once(channel: Channel, key: MrzKey, rng: Rng) -> SecureMessaging:
    try:
        return bac.authenticate(channel, key, rng)
    except ApduError as exc:
        if exc.sw != SW.LAST_COMMAND_EXPECTED:
            raise
    logger.info("chip answered 6883 after PACE: closing the command chain and retrying BAC")
    _close_chain(channel)
    return bac.authenticate(channel, key, rng)


def _bac_info(key: MrzKey, pace_failure: str | None) -> AccessInfo:
    return AccessInfo("BAC", "3DES", "MRZ", pace_failure=pace_failure)


class _PaceBrokeOff(str):
    """Why PACE failed, when it was started and broke off (rather than not offered)."""


def _pace_twice(channel: Channel, key: AccessKey, infos: SecurityInfos | str | None, rng: Rng,
                send_parameter_id: bool = True) -> tuple[SecureMessaging, AccessInfo] | str:
    """PACE, run a second time when the first run was refused (6300) or broke off.

    A nonce, public key or token corrupted on the way (or another program's APDU in the
    middle) makes the chip answer 6300 exactly as a wrong CAN does: the clerk is told
    the CAN is wrong only when an uninterrupted second run is refused too (issue 14).
    The second run starts with MSE:Set AT, which restarts PACE on the chip (9303-11
    §4.4.4); a chip still inside the first run's GENERAL AUTHENTICATE chain is asked to
    close it first (domain.md: 6883)."""
    try:
        outcome = _try_pace(channel, key, infos, rng, send_parameter_id)
    except AccessDeniedError as exc:
        logger.info("PACE refused the password (%s): running it once more before calling it wrong", exc.message)
    else:
        if not isinstance(outcome, _PaceBrokeOff):
            return outcome
        logger.info("PACE broke off (%s): running it once more", outcome)
    _close_chain(channel)
    return _try_pace(channel, key, infos, rng, send_parameter_id)


def _try_pace(channel: Channel, key: AccessKey, infos: SecurityInfos | str | None, rng: Rng,
              send_parameter_id: bool = True) -> tuple[SecureMessaging, AccessInfo] | str:
    """Run PACE; return the session, or why it could not be used (BAC may follow).
    ``infos`` is the parsed EF.CardAccess, None when absent, or why it is unusable.
    A ``_PaceBrokeOff`` reason means PACE was attempted and did not finish."""
    if infos is None:
        return "the chip has no EF.CardAccess"
    if isinstance(infos, str):
        return infos
    choice = choose_pace(infos)
    if choice is None:
        return "EF.CardAccess lists no PACE variant this terminal supports"
    # DO 84 may be left out when one parameter set is offered (9303-11 §4.4.4.1), but
    # real chips were only ever seen receiving it (shared/real-emrtd/README.md): it is
    # sent always unless the config leaves it out; with several sets it is required.
    ambiguous = len({info.parameter_id for info in infos.pace}) > 1
    try:
        result = pace.authenticate(channel, key, choice, rng=rng, send_parameter_id=send_parameter_id or ambiguous)
    except (pace.PaceError, UnsupportedParametersError, ApduError, SecureMessagingError) as exc:
        logger.info("PACE failed: %s", exc)
        if isinstance(exc, UnsupportedParametersError):
            return f"PACE failed: {exc}"
        return _PaceBrokeOff(f"PACE failed: {exc}")
    info = AccessInfo("PACE", result.cipher.label, result.key_type, result.oid, result.mapping.label,
                      result.parameter_id, result.cam_data, result.cam_ca_ic, result.chip_mapping_key)
    return result.sm, info


def establish(channel: Channel, key: AccessKey, *, card_access: bytes | None, rng: Rng = os.urandom,
              prefer: str = "pace", send_parameter_id: bool = True) -> tuple[SecureMessaging, AccessInfo]:
    """Open the chip with ``key``; ``card_access`` is EF.CardAccess (None if absent).
    ``send_parameter_id=False`` leaves DO 84 out of PACE's MSE:Set AT when EF.CardAccess
    offers one parameter set (``[reader] pace_parameter_id = "when_ambiguous"``).

    ``prefer="bac"`` runs BAC first when MRZ data is given (PACE if BAC is refused
    for a reason other than the key). Raises ``AccessDeniedError`` on a wrong key."""
    if prefer not in ("pace", "bac"):
        raise ValueError("prefer must be 'pace' or 'bac'")
    infos: SecurityInfos | str | None = None
    if card_access:
        try:
            infos = parse_security_infos(card_access, source="EF.CardAccess")
        except ParseError as exc:
            logger.info("EF.CardAccess is malformed: %s", exc.message)
            infos = f"EF.CardAccess is malformed ({exc.message})"
    if prefer == "bac" and isinstance(key, MrzKey):
        try:
            select_application(channel)
            return _bac(channel, key, rng), _bac_info(key, None)
        except ApduError as exc:
            logger.info("BAC refused (%04X); trying PACE", exc.sw)
    outcome = _pace_twice(channel, key, infos, rng, send_parameter_id)
    if not isinstance(outcome, str):
        return outcome
    if isinstance(key, CanKey):
        if isinstance(outcome, _PaceBrokeOff):
            raise PaceInterruptedError(f"PACE with the CAN broke off: {outcome}")
        raise CanNotAcceptedError(f"cannot use the CAN: {outcome}")
    try:
        select_application(channel)
        return _bac(channel, key, rng), _bac_info(key, outcome)
    except (ProtocolError, ApduError) as exc:
        raise ProtocolError(f"neither PACE nor BAC worked ({outcome}; BAC: {exc.message})") from exc
