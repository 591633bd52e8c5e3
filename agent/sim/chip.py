"""The virtual eMRTD/CCCD chip: files, BAC, PACE and secure messaging, card side.

``VirtualChip(profile, rng=os.urandom)`` is a ``VirtualCard`` (agent.sim.card) with:

* an MF holding EF.CardAccess (011C, SFI 1C) and the eMRTD application
  (AID A0000002471001) holding EF.COM (011E), EF.SOD (011D) and DG1..DG16
  (0101..0110, SFI = the DG number) from ``ChipProfile.files``;
* SELECT and READ BINARY (B0 with SFI/offset, B1 with DO54) from ``FileSystemCard``;
* GET CHALLENGE + EXTERNAL AUTHENTICATE (BAC), MSE:Set AT + GENERAL AUTHENTICATE
  (PACE: ECDH-GM, DH-GM, ECDH-IM, DH-IM, ECDH-CAM) and secure messaging (agent.sim.chip_access);
* access conditions: files of the eMRTD application need SM (6982 otherwise), DG3
  always answers 6982 (it needs Terminal Authentication), absent files 6A82, a wrong
  key 6300, a bad SM MAC 6988 and the session is dropped;
* real-chip quirks as switches (``ChipQuirks``).

Handler hook (for Chip Authentication, Active Authentication, ...)
-------------------------------------------------------------------
``chip.add_handler(handler)`` registers an object with
``handle(cmd: Command, state: ChipState) -> Response | None``. Handlers are tried, in
the order added, for every command the core does not answer itself: MSE other than
Set AT for PACE (e.g. MSE:Set AT for CA ``00 22 41 A4``, MSE:Set KAT ``00 22 41 A6``),
GENERAL AUTHENTICATE when no PACE run is in progress, INTERNAL AUTHENTICATE, and any
unknown INS. The first non-None answer wins; if all return None the chip answers 6D00.

* ``cmd`` is the plain command: when it came under SM it has been unwrapped already,
  and the handler's ``Response`` (plain data + SW) is wrapped by the core with the
  current session keys.
* ``state.profile`` (the ``ChipProfile``: ``ca_private_key``, ``aa_private_key``,
  files), ``state.rng``, ``state.authenticated_with`` ("PACE", "BAC" or None),
  ``state.session`` (the current ``CardSession``, None in the clear).
* ``state.set_session_after_response(new_session)``: Chip Authentication re-keys; its
  answer must still go out under the old keys, so the core installs ``new_session``
  right after wrapping the answer. Build it as
  ``CardSession(SessionKeys(ks_enc, ks_mac, cipher), ssc=0)``.
* ``state.extra`` is a dict for handlers to keep their own state between commands; it
  is cleared on power-off.

Why one module of ~420 lines: the virtual chip's command core, its file tree, quirks
and profile are one card; the protocol handlers (PACE, CA, AA, BAC) are in their own
modules beside it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Protocol

from agent.errors import ParseError
from agent.icao import pace
from agent.icao import tlv as ber
from agent.icao.keys import CanKey, MrzKey
from agent.icao.lds.files import CARD_ACCESS, CARD_SECURITY, COM, DATA_GROUPS, SOD
from agent.icao.params import STANDARD
from agent.icao.securityinfo import (
    Mapping,
    PaceInfo,
    SecurityInfos,
    encode_security_infos,
    pace_oid,
    parse_security_infos,
)
from agent.icao.select import Aid
from agent.readers.apdu import LE_MAX, SHORT_LE_MAX, SW, Command, Ins, Response
from agent.rng import Rng
from agent.sim.card import (
    MF_FID,
    DedicatedFile,
    ElementaryFile,
    FileSystemCard,
    sw_bytes,
)
from agent.sim.chip_access import CardSession, ChipPace, SmFault, bac_answer

logger = logging.getLogger(__name__)


# the files' identifiers are defined once, in agent.icao.lds.files
FID_CARD_ACCESS, SFI_CARD_ACCESS = CARD_ACCESS.fid, CARD_ACCESS.sfi
FID_COM, SFI_COM = COM.fid, COM.sfi
FID_SOD, SFI_SOD = SOD.fid, SOD.sfi
FID_CARD_SECURITY, SFI_CARD_SECURITY = CARD_SECURITY.fid, CARD_SECURITY.sfi
DG3 = 3
CHALLENGE_LEN = 8
#: ISO 7816-4: a chained command whose chain was not closed
CLA_CHAIN = 0x10


def dg_fid(number: int) -> int:
    """FID of DGn: 0101 … 0110 (9303-10 §3.6.2)."""
    return DATA_GROUPS[number].fid


def default_card_access() -> bytes:
    """The CCCD's EF.CardAccess as domain.md describes it: PACE ECDH-GM AES-128 on
    brainpoolP256r1 (param 13)."""
    from agent.icao.crypto import Cipher

    return encode_security_infos([PaceInfo(pace_oid(Mapping.ECDH_GM, Cipher.AES128), 2, 13)])


@dataclass
class ChipQuirks:
    """Behaviour of real chips the terminal must survive (domain.md)."""

    #: SELECT of the MF answers 6D00 (select EF.CardAccess directly instead)
    mf_select_6d00: bool = False
    #: largest READ BINARY Le the chip serves; above it answers ``too_large_sw``
    max_le: int = LE_MAX
    #: 6700, 6282 or 6B00, as chips variously answer an over-large chunk
    too_large_sw: int = SW.WRONG_LENGTH
    #: READ BINARY with Le = 00 (256) / 0000 (65536) answers 6700
    rejects_le_zero: bool = False
    #: under SM, error status words come back unprotected (plain SW, no DO99/DO8E) and,
    #: like errors raised before the SM layer (6700 to an extended APDU), uncounted in
    #: the SSC; the terminal (agent.icao.sm) follows the same rule
    plain_error_sw: bool = False
    #: after a failed PACE inside a command chain, answer 6883 until a command with
    #: CLA 00 closes the chain (domain.md, reported pitfalls)
    unclosed_chain_6883: bool = False
    #: READ BINARY by SFI in the MF (EF.CardAccess without SELECT) answers this status
    #: word instead (e.g. 6A82, 6986, 6D00: no SFI addressing at MF level); 0 = served
    card_access_sfi_sw: int = 0
    #: GET CHALLENGE / EXTERNAL AUTHENTICATE (BAC) answer 6985 unless the eMRTD
    #: application is selected (9303-11 §4.3; real chips after a PACE attempt in the MF)
    bac_needs_application: bool = False


@dataclass(repr=False)
class ChipProfile:
    """What a virtual chip serves. ``files`` maps FID → content: 011C (EF.CardAccess),
    011E (EF.COM), 011D (EF.SOD), 0101..0110 (DG1..DG16). ``ca_private_key`` and
    ``aa_private_key`` are opaque to the core (used by handlers); for PACE-CAM the
    core needs the CA private scalar: an int, or an object with
    ``private_numbers().private_value`` (a ``cryptography`` EC private key)."""

    files: dict[int, bytes]
    mrz_key: MrzKey | None = None
    can: str | None = None
    pace_enabled: bool = True
    bac_enabled: bool = True
    extended_length: bool = True
    quirks: ChipQuirks = field(default_factory=ChipQuirks)
    ca_private_key: object | None = None
    aa_private_key: object | None = None
    #: EF.CardSecurity (in the MF, FID 011D, SFI 1D; readable under secure messaging):
    #: the signed SecurityInfos that publish the PACE-CAM key (BSI TR-03110-3 A.1.1.2)
    card_security: bytes | None = None
    #: the PACE-CAM private key when it is not DG14's Chip Authentication key
    cam_private_key: object | None = None

    def __repr__(self) -> str:
        return f"ChipProfile(files={sorted(self.files)}, pace={self.pace_enabled}, bac={self.bac_enabled})"


class ChipHandler(Protocol):
    def handle(self, cmd: Command, state: ChipState) -> Response | None: ...


@dataclass
class ChipState:
    """What handlers see of the chip (see the module docstring)."""

    profile: ChipProfile
    rng: Rng
    session: CardSession | None = None
    authenticated_with: str | None = None
    extra: dict[str, object] = field(default_factory=dict)
    pending_session: CardSession | None = None

    def set_session_after_response(self, new_session: CardSession) -> None:
        self.pending_session = new_session

    def drop_session(self) -> None:
        self.session = None
        self.pending_session = None
        self.authenticated_with = None


def _private_scalar(key: object | None) -> int | None:
    if isinstance(key, int):
        return key
    numbers = getattr(key, "private_numbers", None)
    if callable(numbers):
        value = getattr(numbers(), "private_value", None)
        return value if isinstance(value, int) else None
    return None


def _build_tree(files: dict[int, bytes], card_security: bytes | None = None) -> DedicatedFile:
    mf = DedicatedFile(MF_FID)
    if FID_CARD_ACCESS in files:
        mf.add(ElementaryFile(FID_CARD_ACCESS, files[FID_CARD_ACCESS], SFI_CARD_ACCESS))
    if card_security is not None:
        mf.add(ElementaryFile(FID_CARD_SECURITY, card_security, SFI_CARD_SECURITY))
    app = DedicatedFile(None, Aid.EMRTD.value)
    mf.add(app)
    for fid, sfi in ((FID_COM, SFI_COM), (FID_SOD, SFI_SOD)):
        if fid in files:
            app.add(ElementaryFile(fid, files[fid], sfi))
    for number in range(1, 17):
        if dg_fid(number) in files:
            app.add(ElementaryFile(dg_fid(number), files[dg_fid(number)], number))
    return mf


class VirtualChip(FileSystemCard):
    """An ICAO 9303 chip; see the module docstring."""

    def __init__(self, profile: ChipProfile, *, rng: Rng = os.urandom, atr: bytes | None = None) -> None:
        files = dict(profile.files)
        if profile.pace_enabled and FID_CARD_ACCESS not in files:
            files[FID_CARD_ACCESS] = default_card_access()
        super().__init__(_build_tree(files, profile.card_security), extended_length=profile.extended_length, atr=atr)
        self.profile = profile
        self.rng = rng
        self.card_access: SecurityInfos | None = (
            parse_security_infos(files[FID_CARD_ACCESS]) if FID_CARD_ACCESS in files else None)
        self.handlers: list[ChipHandler] = []
        self.state = ChipState(profile, rng)
        self._challenge = b""
        self._pace: ChipPace | None = None
        self._chain_open = False

    def add_handler(self, handler: ChipHandler) -> None:
        self.handlers.append(handler)

    @property
    def app(self) -> DedicatedFile:
        return next(c for c in self.mf.children if isinstance(c, DedicatedFile))

    # -- power --
    def _clear_state(self) -> None:
        super()._clear_state()
        if hasattr(self, "state"):
            self.state = ChipState(self.profile, self.rng)
            self._challenge, self._pace, self._chain_open = b"", None, False

    # -- dispatch --
    def process(self, apdu: bytes) -> bytes:
        command = self.decode(apdu)
        if command is None:
            return sw_bytes(SW.WRONG_LENGTH)
        if self._chain_open and self._pace is None:
            refusal = self._broken_chain(command)
            if refusal is not None:
                return refusal.to_bytes()
        if command.cla & 0x0C:
            return self._process_protected(command).to_bytes()
        if self.state.session is not None:
            # 9303-11 §9.8.4: a plain command ends secure messaging
            logger.debug("plain command under SM: session dropped")
            self.state.drop_session()
        return self.execute(command).to_bytes()

    def _broken_chain(self, command: Command) -> Response | None:
        """A PACE run ended inside a GENERAL AUTHENTICATE chain. Most chips forget the
        chain on the next command; with ``unclosed_chain_6883`` the chip answers 6883
        until a last-of-chain (CLA 00) GENERAL AUTHENTICATE closes it."""
        if not self.profile.quirks.unclosed_chain_6883:
            self._chain_open = False
            return None
        if command.ins == Ins.GENERAL_AUTHENTICATE and command.cla == 0x00:
            self._chain_open = False
            return Response(b"", SW.CONDITIONS_NOT_SATISFIED)
        return Response(b"", SW.LAST_COMMAND_EXPECTED)

    def _process_protected(self, command: Command) -> Response:
        session = self.state.session
        if session is None:
            return Response(b"", SW.SM_DATA_OBJECTS_INCORRECT)
        try:
            plain = session.unwrap(command)
        except SmFault as exc:
            logger.info("secure messaging failure (%s): session dropped", exc)
            self.state.drop_session()
            return Response(b"", SW.SM_DATA_OBJECTS_INCORRECT)
        response = self.execute(plain)
        if self.state.session is not session:  # the command itself ended the session
            return response
        if response.sw != SW.OK and not response.data and self.profile.quirks.plain_error_sw:
            session.ssc -= 1  # answered as if before the SM layer: the command is not counted
            wrapped = response
        else:
            wrapped = session.wrap(response, plain.ins)
        if self.state.pending_session is not None:
            self.state.session, self.state.pending_session = self.state.pending_session, None
        return wrapped

    def execute(self, command: Command) -> Response:
        """Answer a plain (or unwrapped) command."""
        if command.cla & ~CLA_CHAIN & 0xFF not in (0x00,):
            return Response(b"", SW.CLA_NOT_SUPPORTED)
        ins = command.ins
        if ins == Ins.SELECT:
            return self._chip_select(command)
        if ins in (Ins.READ_BINARY, Ins.READ_BINARY_ODD):
            return self._chip_read(command)
        if ins in (Ins.GET_CHALLENGE, Ins.EXTERNAL_AUTHENTICATE) and self.profile.quirks.bac_needs_application \
                and self.current_df is self.mf:
            return Response(b"", SW.CONDITIONS_NOT_SATISFIED)
        if ins == Ins.GET_CHALLENGE:
            return self._get_challenge(command)
        if ins == Ins.EXTERNAL_AUTHENTICATE and self.profile.bac_enabled and self._challenge:
            return self._external_authenticate(command)
        if ins == Ins.MSE and (command.p1, command.p2) == (pace.MSE_SET_AT_P1, pace.MSE_SET_AT_P2) \
                and self.profile.pace_enabled:
            return self._set_at(command)
        if ins == Ins.GENERAL_AUTHENTICATE and self._pace is not None:
            return self._general_authenticate(command)
        for handler in self.handlers:
            answer = handler.handle(command, self.state)
            if answer is not None:
                return answer
        return Response(b"", SW.INS_NOT_SUPPORTED)

    # -- files --
    def _chip_select(self, command: Command) -> Response:
        if self.profile.quirks.mf_select_6d00 and command.p1 == 0x00 and command.data in (b"", b"\x3f\x00"):
            return Response(b"", SW.INS_NOT_SUPPORTED)
        return Response.from_bytes(self._select(command))

    def _target(self, command: Command) -> ElementaryFile | None:
        """The EF a READ BINARY addresses (by SFI/FID or the current EF)."""
        if command.ins == Ins.READ_BINARY and command.p1 & 0x80:
            return self.current_df.by_sfi(command.p1 & 0x1F)
        p1p2 = (command.p1 << 8) | command.p2
        if command.ins == Ins.READ_BINARY_ODD and p1p2:
            found = self.current_df.by_sfi(p1p2) if p1p2 < 0x20 else self.current_df.child(p1p2)
            return found if isinstance(found, ElementaryFile) else None
        return self.current_ef

    def _chip_read(self, command: Command) -> Response:
        sfi_sw = self.profile.quirks.card_access_sfi_sw
        if sfi_sw and command.ins == Ins.READ_BINARY and command.p1 & 0x80 and self.current_df is self.mf:
            return Response(b"", sfi_sw)
        target = self._target(command)
        if target is not None and target.fid != FID_CARD_ACCESS:
            if self.state.session is None or target.fid == dg_fid(DG3):
                return Response(b"", SW.SECURITY_STATUS_NOT_SATISFIED)
        quirks = self.profile.quirks
        le = command.le
        if quirks.rejects_le_zero and le in (SHORT_LE_MAX, LE_MAX):
            return Response(b"", SW.WRONG_LENGTH)
        if le is not None and le > quirks.max_le:
            return Response(b"", quirks.too_large_sw)
        handler = self._read_binary if command.ins == Ins.READ_BINARY else self._read_binary_odd
        return Response.from_bytes(handler(command))

    # -- BAC --
    def _get_challenge(self, command: Command) -> Response:
        if command.le != CHALLENGE_LEN:
            return Response(b"", SW.WRONG_LENGTH)
        self._challenge = self.rng(CHALLENGE_LEN)
        return Response(self._challenge, SW.OK)

    def _external_authenticate(self, command: Command) -> Response:
        challenge, self._challenge = self._challenge, b""
        if self.profile.mrz_key is None:
            return Response(b"", SW.WARNING_AUTH_FAILED)
        k_ic = self.rng(16)
        result = bac_answer(self.profile.mrz_key, challenge, k_ic, command.data)
        if result is None:
            return Response(b"", SW.WARNING_AUTH_FAILED)
        answer, session = result
        self.state.drop_session()
        self.state.session, self.state.authenticated_with = session, "BAC"
        return Response(answer, SW.OK)

    # -- PACE --
    def _set_at(self, command: Command) -> Response:
        self._pace = None
        try:
            objects = dict(ber.pairs(command.data, source="MSE:Set AT"))
        except ParseError:
            return Response(b"", SW.WRONG_DATA)
        info = self._offered(objects.get(pace.TAG_PROTOCOL, b""), objects.get(pace.TAG_PARAMETER_ID))
        secret = self._secret(objects.get(pace.TAG_KEY_REFERENCE, b""))
        if info is None or secret is None:
            return Response(b"", SW.REFERENCED_DATA_NOT_FOUND)
        cam_key = _private_scalar(self.profile.cam_private_key or self.profile.ca_private_key)
        if info.mapping is Mapping.ECDH_CAM and cam_key is None:
            return Response(b"", SW.REFERENCED_DATA_NOT_FOUND)
        self._pace = ChipPace(info, secret, self.rng, cam_key)
        return Response(b"", SW.OK)

    def _offered(self, oid_value: bytes, parameter: bytes | None) -> PaceInfo | None:
        if self.card_access is None:
            return None
        for info in self.card_access.pace:
            if info.mapping not in pace.SUPPORTED_MAPPINGS or info.parameter_id not in STANDARD:
                continue
            if info.mapping in pace.INTEGRATED_MAPPINGS and not pace.im_supported(STANDARD[info.parameter_id]):
                continue
            if pace.oid_value(info.protocol) != oid_value:
                continue
            if parameter is None or parameter == bytes((info.parameter_id,)):
                return info
        return None

    def _secret(self, reference: bytes) -> bytes | None:
        if reference == bytes((pace.KEY_REF_MRZ,)) and self.profile.mrz_key is not None:
            return pace.password(self.profile.mrz_key)
        if reference == bytes((pace.KEY_REF_CAN,)) and self.profile.can:
            return pace.password(CanKey(self.profile.can))
        return None

    def _general_authenticate(self, command: Command) -> Response:
        assert self._pace is not None
        self._chain_open = bool(command.cla & CLA_CHAIN)
        outcome = self._pace.handle(command)
        if outcome.finished:
            self._pace = None
        if outcome.session is not None:
            self.state.drop_session()
            self.state.session, self.state.authenticated_with = outcome.session, "PACE"
        return outcome.response
