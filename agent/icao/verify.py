"""One verification result for a chip read: passive, chip and active authentication
and what they add up to.

Entry point (``agent.icao.read.read_chip`` calls it at the end of a read, while the
session is alive)::

    result = verify(session, read.files, trust_store=store, rng=rng, pace_cam=pace_result)
    session = result.channel   # CA restarts secure messaging: use this one from now on

``read_chip`` runs Chip Authentication itself, right after EF.COM, EF.SOD and DG14,
so that the other data groups are read under the CA session keys (9303-11 §6.2,
9303-10 reading order); it then passes its result as ``chip=`` and ``verify`` does
not run CA again (only passive and active authentication). Other callers leave
``chip`` out and get CA run here, confirmed with one READ BINARY under the new keys.

* ``files``: the raw files read, keyed ``"SOD"``, ``"DG1"`` … ``"DG16"`` (``"COM"`` and
  ``"CardAccess"`` are ignored).
* ``channel``: the live secure-messaging channel (``None`` when the chip is gone: CA/AA
  are then ``not_checked``). Chip Authentication re-keys secure messaging
  (9303-11 §6.2); ``Verification.channel`` is the channel valid afterwards (the
  re-keyed one after a successful CA; after a failed CA the session is dead).
* ``pace_cam``: the access result when PACE ran with Chip Authentication Mapping: a ``PaceCam``,
  an object with ``cam_ca_ic``, ``chip_mapping_key`` and ``parameter_id``
  (``agent.icao.pace.PaceResult``, ``AccessInfo``). A valid PACE-CAM replaces CA
  (9303-11 §4.4, CAM); its key is the one ``files["CardSecurity"]`` (EF.CardSecurity)
  publishes for the PACE parameter id (``agent.icao.cardsecurity``).

Per check the status is one of valid, invalid, untrusted, not_supported, not_checked,
error, with a human reason. Overall:

* ``verified``: passive authentication valid against a trusted anchor, and CA (or
  PACE-CAM) or AA valid where the chip supports them (a chip with neither DG14 nor
  DG15 passes on passive authentication alone). ``require_chip_auth=False`` also
  accepts passive alone when CA/AA could not run (error, not_checked); an *invalid*
  CA/AA is never accepted;
* ``probable_clone``: the data verify (valid or untrusted) but CA or AA failed;
* ``error``: EF.SOD could not be parsed or checked at all;
* ``not_verified``: everything else (altered data, unknown CSCA, revoked DSC …).

Never raises on a forged card; a reader failure during CA/AA is an ``error`` check.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from agent.errors import IdAgentError, ParseError
from agent.icao import aa, ca, cardsecurity, securityinfo
from agent.icao import issuer as issuer_mod
from agent.icao.certs import SignatureError
from agent.icao.checks import CheckResult, Status
from agent.icao.pa import PassiveResult, passive_authentication
from agent.icao.securityinfo import SecurityInfos
from agent.icao.sod import Sod
from agent.icao.trust import TrustStore
from agent.readers.apdu import Channel
from agent.rng import Rng

logger = logging.getLogger(__name__)


class VerificationStatus(StrEnum):
    """What a read's checks add up to (rules in the module docstring). The one
    definition: the daemon, the counter page, the reader-kit service, the wedge and
    the exit codes key on it. A ``StrEnum``, so JSON carries the plain value."""

    VERIFIED = "verified"
    NOT_VERIFIED = "not_verified"
    PROBABLE_CLONE = "probable_clone"
    ERROR = "error"


class PaceCam(Protocol):
    """What verification needs of a PACE-CAM access (``agent.icao.pace.PaceResult``,
    ``agent.icao.access.AccessInfo``)."""

    @property
    def cam_ca_ic(self) -> bytes | None: ...

    @property
    def chip_mapping_key(self) -> bytes | None: ...

    @property
    def parameter_id(self) -> int | None: ...


@dataclass
class Verification:
    passive: CheckResult
    chip: CheckResult
    active: CheckResult
    status: VerificationStatus
    reason: str
    notes: list[str] = field(default_factory=list)
    #: the channel to use after verification (re-keyed by Chip Authentication)
    channel: Channel | None = field(default=None, repr=False)
    #: DG1's issuing state against the signer's country and [trust] accepted_issuers
    issuer: CheckResult = field(default_factory=lambda: CheckResult.not_checked("issuer not compared"))

    @property
    def verified(self) -> bool:
        return self.status == VerificationStatus.VERIFIED

    def to_dict(self) -> dict[str, Any]:
        """The ``verification`` object of ``idagent read --json``."""
        out: dict[str, Any] = {
            "status": self.status,
            "reason": self.reason,
            "passive": self.passive.to_dict(),
            "chip": self.chip.to_dict(),
            "active": self.active.to_dict(),
            "issuer": self.issuer.to_dict(),
        }
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def verify(channel: Channel | None, files: Mapping[str, bytes], *, trust_store: TrustStore | None,
           rng: Rng = os.urandom, pace_cam: PaceCam | None = None, now: dt.datetime | None = None,
           check_crl: bool = True, require_chip_auth: bool = True,
           chip: CheckResult | None = None, accepted_issuers: Sequence[str] | None = None,
           sod: Sod | None = None, security_infos: SecurityInfos | None = None) -> Verification:
    """Verify a read (see the module docstring). ``chip``: the Chip Authentication
    result when the caller already ran CA (``channel`` is then the session after it).
    ``accepted_issuers``: the MRZ issuing states this desk takes (None: any); DG1's
    issuing state is always compared with the signer's country (``agent.icao.issuer``).
    ``sod`` / ``security_infos``: EF.SOD and DG14 as the caller already parsed them
    (``agent.icao.read`` parses each file once); parsed here from ``files`` when not
    given, once each."""
    notes: list[str] = []
    if trust_store is None:
        trust_store = TrustStore()
        notes.append("no trust store configured: no CSCA is trusted")
    passive = _passive(files, trust_store, now, check_crl, sod)
    passive, issuer = _issuer(files, passive, accepted_issuers)
    dg14 = files.get("DG14")
    dg15 = files.get("DG15")
    if security_infos is None and dg14 is not None:
        security_infos = _parse_dg14(dg14)
    for number, content in ((14, dg14), (15, dg15)):
        if content is not None and passive.check.ok and number not in passive.verified_dgs:
            notes.append(f"DG{number} is not covered by passive authentication")
    # EF.COM is not signed: a clone can hide DG14/DG15 from the terminal. When EF.SOD
    # lists them, the chip is meant to support CA/AA, so an unread one is not_checked,
    # never not_supported (which would pass as "no clone detection offered").
    signed = set(passive.sod.dg_hashes) if passive.sod is not None else set()
    if chip is None and pace_cam is not None and pace_cam.cam_ca_ic is not None:
        chip = _pace_cam(files, security_infos, pace_cam, trust_store, now, check_crl)
    if chip is None:
        chip, channel = _chip(channel, dg14, security_infos, rng, 14 in signed)
    active = _active(channel, security_infos, dg15, rng, chip, 15 in signed)
    status, reason = overall(passive.check, chip, active, require_chip_auth)
    if status == VerificationStatus.VERIFIED and issuer.status is Status.NOT_SUPPORTED:
        status, reason = VerificationStatus.NOT_VERIFIED, f"genuine, but not accepted here: {issuer.reason}"
    logger.info("verification: %s (passive=%s chip=%s active=%s)", status, passive.check.status,
                chip.status, active.status)
    return Verification(passive.check, chip, active, status, reason, notes, channel, issuer)


def _issuer(files: Mapping[str, bytes], passive: PassiveResult,
            accepted: Sequence[str] | None) -> tuple[PassiveResult, CheckResult]:
    """The issuer check when the chain holds; a DG1 claiming another country than the
    signer's makes passive authentication invalid (issue 11 item 4)."""
    if not passive.check.ok:
        return passive, CheckResult.not_checked("not compared: passive authentication did not succeed")
    details = passive.check.details
    result = issuer_mod.check_issuer(files.get("DG1"), str(details.get("signer_country", "")),
                                     str(details.get("csca_country", "")), accepted)
    if result.status is Status.INVALID:
        check = CheckResult(Status.INVALID, result.reason, passive.check.notes, {**details, **result.details})
        passive = PassiveResult(check, passive.sod, passive.verified_dgs)
    return passive, result


def _passive(files: Mapping[str, bytes], store: TrustStore, now: dt.datetime | None,
             check_crl: bool, sod: Sod | None) -> PassiveResult:
    try:
        return passive_authentication(files, store, now=now, check_crl=check_crl, sod=sod)
    except (ParseError, SignatureError, ValueError, TypeError, KeyError) as exc:
        # asn1crypto parses lazily: a malformed certificate extension deep in EF.SOD
        # surfaces here. A damaged card is a result, not a crash.
        logger.info("passive authentication could not complete: %s", type(exc).__name__)
        return PassiveResult(CheckResult(Status.ERROR, f"EF.SOD could not be checked: {exc}"))


def _parse_dg14(dg14: bytes) -> SecurityInfos | None:
    """DG14 parsed once for CA, PACE-CAM and AA; None when malformed (CA then parses the
    bytes itself to say why, ``ca.chip_authentication``)."""
    try:
        return securityinfo.parse_security_infos(dg14, source="DG14")
    except ParseError:
        return None


def _chip(channel: Channel | None, dg14: bytes | None, infos: SecurityInfos | None, rng: Rng,
          signed: bool = False) -> tuple[CheckResult, Channel | None]:
    if dg14 is None and signed:
        return CheckResult.not_checked("EF.SOD lists DG14 but it was not read: Chip Authentication not run"), channel
    if dg14 is None:
        return CheckResult.not_supported("no DG14: the chip offers no Chip Authentication"), channel
    if channel is None:
        return CheckResult.not_checked("no live session with the chip: Chip Authentication not run"), channel
    try:
        outcome = ca.chip_authentication(channel, dg14, rng=rng, infos=infos)
    except IdAgentError as exc:
        return CheckResult(Status.ERROR, f"Chip Authentication interrupted: {exc.message}"), channel
    return outcome.check, outcome.channel


def _pace_cam(files: Mapping[str, bytes], infos: SecurityInfos | None, pace_cam: PaceCam, store: TrustStore,
              now: dt.datetime | None, check_crl: bool) -> CheckResult | None:
    """PACE-CAM replaces CA (9303-11 §4.4): its answer is checked with the key that
    EF.CardSecurity publishes for the PACE parameter id (``agent.icao.cardsecurity``).
    Without EF.CardSecurity, DG14's key (proven by passive authentication) is tried; a
    mismatch proves nothing there (the CAM key need not be DG14's): None, and the
    caller runs Chip Authentication with DG14's key instead, which does decide."""
    ca_ic, mapping_key = pace_cam.cam_ca_ic, pace_cam.chip_mapping_key
    raw = files.get("CardSecurity")
    if raw is not None:
        return cardsecurity.cam_check(raw, pace_cam.parameter_id, ca_ic, mapping_key, store,
                                      now=now, check_crl=check_crl)
    dg14 = files.get("DG14")
    if dg14 is not None:
        result = ca.verify_pace_cam(ca_ic, mapping_key, infos if infos is not None else dg14)
        if result.status is not Status.INVALID:
            return result
    logger.info("PACE-CAM answer does not match DG14's key and EF.CardSecurity was not read: running CA")
    return None


def _active(channel: Channel | None, dg14: SecurityInfos | None, dg15: bytes | None, rng: Rng,
            chip: CheckResult, signed: bool = False) -> CheckResult:
    if dg15 is None and signed:
        return CheckResult.not_checked("EF.SOD lists DG15 but it was not read: Active Authentication not run")
    if dg15 is None:
        return CheckResult.not_supported("no DG15: the chip offers no Active Authentication")
    if channel is None:
        return CheckResult.not_checked("no live session with the chip: Active Authentication not run")
    if chip.status is Status.INVALID and chip.details.get("protocol") != "PACE-CAM":
        return CheckResult.not_checked("not run: the secure channel ended when Chip Authentication failed")
    try:
        return aa.active_authentication(channel, dg15, rng=rng, aa_info=aa.info_from_dg14(dg14))
    except IdAgentError as exc:
        # the exchange broke (a MAC that does not verify, the card moved): no signature
        # was judged; agent.icao.read asks once more on a fresh session
        return CheckResult(Status.ERROR, f"Active Authentication interrupted: {exc.message}",
                           details={"retry": "fresh session"})


def overall(passive: CheckResult, chip: CheckResult, active: CheckResult,
            require_chip_auth: bool = True) -> tuple[VerificationStatus, str]:
    """The overall status and its one-line reason (rules in the module docstring)."""
    failed = [name for name, check in (("Chip Authentication", chip), ("Active Authentication", active))
              if check.status is Status.INVALID]
    if passive.status is Status.ERROR:
        return VerificationStatus.ERROR, f"passive authentication failed to run: {passive.reason}"
    if failed and passive.status in (Status.VALID, Status.UNTRUSTED):
        return VerificationStatus.PROBABLE_CLONE, (f"the data carry a genuine signature but {' and '.join(failed)} "
                                                   "failed: the chip is probably a copy")
    if passive.status is not Status.VALID:
        return VerificationStatus.NOT_VERIFIED, f"passive authentication {passive.status.value}: {passive.reason}"
    if failed:
        return VerificationStatus.NOT_VERIFIED, f"{' and '.join(failed)} failed"
    supported = [c for c in (chip, active) if c.status is not Status.NOT_SUPPORTED]
    if any(c.status is Status.VALID for c in supported):
        return VerificationStatus.VERIFIED, "data signed by a trusted issuer and the chip proved its key"
    if not supported:
        return VerificationStatus.VERIFIED, ("data signed by a trusted issuer; the chip offers no clone detection "
                                             "(no CA/AA)")
    if not require_chip_auth:
        return VerificationStatus.VERIFIED, ("data signed by a trusted issuer; chip authentication could not run "
                                             "(not required)")
    return VerificationStatus.NOT_VERIFIED, "the chip supports Chip/Active Authentication but it could not be completed"
