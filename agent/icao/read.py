"""A whole chip read: access control, the files, parsing, verification, in one session.

``read_chip(channel, key)``:

1. read EF.CardAccess in the clear and open secure messaging with PACE or BAC
   (``agent.icao.access.establish``);
2. read EF.COM, EF.SOD and DG14 (when listed) first, run Chip Authentication at once
   (9303-11 §6.2; 9303-10 reading order) and read every other data group EF.COM lists
   under the CA session keys, except the ones in ``skip`` (DG3 by default: it needs
   terminal authentication, domain.md). CA is confirmed by the first file read under
   the new keys (a response MAC that verifies), so it costs no extra APDU;
3. parse each file: a malformed file gives a typed error recorded for that file, and
   the others are still read and parsed;
4. verify (passive authentication, then active authentication while the session is
   alive, ``agent.icao.verify``) with the CA result of step 2;
5. return a ``ChipRead``: the raw files, the parsed records, per-file outcomes, the
   identity, the verification and the timing.

A read that breaks off (a lost secure-messaging session: 6987/6988, a MAC that does
not verify, an unprotected 6A82 to READ BINARY; a PACE that broke off; a malformed
answer) starts again once from access control on a fresh session (``_read_twice``):
another program's APDU between ours, a flipped byte or a chip reset must not cost a
genuine card its verdict (issue 14). A file whose read ends in an error status word is
read once more in the same session; Active Authentication that got no signature to
judge runs once more on a fresh session; PACE refused or broken off runs once more
(``agent.icao.access``). A card taken away or a refused key is not retried.

After a failed Chip Authentication on that second read the chip has left secure
messaging (on a real chip the session is dead: it derived other keys). The read then
opens access again (PACE or BAC with the same key) and reads the remaining files under
the access keys, once: the clerk still sees the data, and the verification says
``probable_clone`` (CA invalid, passive authentication valid) or, for a CA that broke
off, whatever Active Authentication says on that recovered session (it is a live
session with the same chip); a note says the files were read after access was
re-opened (only ``require_chip_auth=False`` accepts a CA that broke off without AA).
Stopping instead would leave the clerk with nothing to compare against the person at
the desk. A session lost AFTER CA was proven is never re-opened (files are not read
under weaker keys than CA gave): the read starts again with CA, or fails (exit 6).

A read whose required files (DG1, and DG13/DG2 when EF.COM lists them) did not all
read and parse says ``complete: false``: no partial identity passes as a complete one.
A card pulled out mid-read raises ``ReadInterruptedError`` naming the file; nothing
partial is returned. Nothing here logs personal data: file names, sizes and status
words only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from agent.errors import CardRemovedError, IdAgentError, ParseError, ProtocolError
from agent.icao import access as access_mod
from agent.icao.access import AccessInfo
from agent.icao.ca import CaOutcome
from agent.icao.checks import CheckResult, Status
from agent.icao.deadline import DEFAULT_APDU_TIMEOUT, DEFAULT_READ_TIMEOUT, DeadlineChannel
from agent.icao.files import (
    FileAbsentError,
    FileAccessDeniedError,
    FileReader,
    FileReadError,
    ProgressCallback,
    ReadInterruptedError,
)
from agent.icao.keys import AccessKey
from agent.icao.lds import (
    parse_com,
    parse_dg1,
    parse_dg2,
    parse_dg11,
    parse_dg12,
    parse_dg13,
)
from agent.icao.lds.files import CARD_SECURITY, COM, DATA_GROUPS, SOD, LdsFile
from agent.icao.mrz import DEFAULT_NO_EXPIRY_YEAR
from agent.icao.securityinfo import SecurityInfos
from agent.icao.sm import SecureMessaging, SecureMessagingError
from agent.icao.sod import Sod
from agent.icao.trust import TrustStore
from agent.icao.verify import Verification, VerificationStatus
from agent.readers.apdu import ApduError, Channel, Command, Response
from agent.rng import Rng

logger = logging.getLogger(__name__)


#: data groups without which the identity is not complete, when EF.COM lists them
REQUIRED_DGS = (1, 2, 13)
#: the files that need terminal authentication (Extended Access Control, 9303-11 §7.1)
EAC_PROTECTED = frozenset({"DG3", "DG4"})
#: what a skipped or refused file is reported as
REASON_TERMINAL_AUTH = "needs terminal authentication"
REASON_SKIPPED = "skipped by configuration"


class ChipProtocolError(ProtocolError):
    """The chip (or the link to it) broke the protocol during the read."""

    code = "protocol"
    exit_code = 6


class Outcome(StrEnum):
    """What became of one file (``files`` of ``idagent read --json``)."""

    READ = "read"
    ABSENT = "absent"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass
class FileOutcome:
    name: str
    status: Outcome
    size: int | None = None
    seconds: float = 0.0
    reason: str | None = None
    error: IdAgentError | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.size is not None:
            out["size"] = self.size
        if self.reason:
            out["reason"] = self.reason
        if self.error is not None:
            out["error"] = self.error.to_dict()
        return out


@dataclass
class Timing:
    apdus: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    seconds: float = 0.0
    access_seconds: float = 0.0
    verify_seconds: float = 0.0
    #: APDUs by phase: access control (incl. EF.CardAccess), files, verification
    access_apdus: int = 0
    verify_apdus: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"apdus": self.apdus, "bytes_sent": self.bytes_sent, "bytes_received": self.bytes_received,
                "seconds": round(self.seconds, 4), "access_seconds": round(self.access_seconds, 4),
                "verify_seconds": round(self.verify_seconds, 4), "access_apdus": self.access_apdus,
                "verify_apdus": self.verify_apdus}


@dataclass(repr=False)
class ChipRead:
    access: AccessInfo
    files: dict[str, bytes] = field(default_factory=dict)
    records: dict[str, Any] = field(default_factory=dict)
    outcomes: dict[str, FileOutcome] = field(default_factory=dict)
    #: None when the read ran with ``verify=False``
    verification: Verification | None = None
    timing: Timing = field(default_factory=Timing)
    #: extended length was used for the reads
    extended_length: bool = False
    #: Chip Authentication run during the read (None: not run, verification runs it)
    chip_authentication: CheckResult | None = field(default=None, repr=False)
    #: why secure messaging had to be opened again mid-read (a failed CA), if it was
    reopened: str | None = None
    #: why the whole read started again on a fresh session (read_chip), if it did
    read_again: str | None = None

    @property
    def sod(self) -> Sod | None:
        """EF.SOD as parsed during the read (None: not read, or malformed)."""
        sod: Sod | None = self.records.get(SOD.name)
        return sod

    @property
    def security_infos(self) -> SecurityInfos | None:
        """DG14 as parsed during the read (None: not read, or malformed)."""
        infos: SecurityInfos | None = self.records.get("DG14")
        return infos

    @property
    def errors(self) -> dict[str, IdAgentError]:
        return {name: o.error for name, o in self.outcomes.items() if o.error is not None}

    def _listed(self) -> set[int] | None:
        """The data groups EF.COM or EF.SOD list; None when neither parsed. EF.SOD
        counts too: EF.COM is not signed (9303-10 §4.6.1) and could hide a group."""
        com = self.records.get("COM")
        sod = self.records.get("SOD")
        if com is None and sod is None:
            return None
        return set(com.data_groups if com is not None else ()) | set(sod.dg_hashes if sod is not None else ())

    @property
    def complete(self) -> bool:
        """Every required data group the card lists was read and parsed."""
        listed = self._listed()
        for number in REQUIRED_DGS:
            name = f"DG{number}"
            if name in self.records:
                continue
            if number == 1 or (listed is not None and number in listed):
                return False
            outcome = self.outcomes.get(name)
            # without EF.COM, a required group that is there but failed still counts
            if listed is None and outcome is not None and outcome.status == Outcome.FAILED:
                return False
        return True

    @property
    def verified(self) -> bool:
        # a signature over the files that were read says nothing of those that were not
        return self.complete and self.verification is not None and self.verification.verified

    def missing(self) -> list[str]:
        """The required data groups (see ``complete``) that were not read and parsed."""
        listed = self._listed()
        return [f"DG{n}" for n in REQUIRED_DGS
                if f"DG{n}" not in self.records and (n == 1 or listed is None or n in listed)]

    def __repr__(self) -> str:
        return f"ChipRead(files={sorted(self.files)}, complete={self.complete})"

    def to_dict(self) -> dict[str, Any]:
        """The ``idagent read --json`` contract but its identity (``agent.identity.from_chip.read_json``
        adds that: the record is built above this layer)."""
        return {
            "complete": self.complete,
            "access": dict(self.access.to_dict()),
            "files": {name: outcome.to_dict() for name, outcome in self.outcomes.items()},
            "verification": self.verification.to_dict() if self.verification is not None else None,
            "timing": {**self.timing.to_dict(), "extended_length": self.extended_length},
        }




# -- parsing ------------------------------------------------------------------------


Parser = Callable[[bytes], Any]


def parsers(today: dt.date | None, no_expiry_year: int) -> dict[str, Parser]:
    """File name → pure parser. DG14 and EF.SOD are parsed by their owners' modules
    (securityinfo, sod), once: Chip Authentication and verification take these records."""
    from agent.icao.securityinfo import parse_security_infos
    from agent.icao.sod import parse_sod

    return {
        "COM": parse_com,
        "SOD": parse_sod,
        "DG1": lambda data: parse_dg1(data, today=today, no_expiry_year=no_expiry_year),
        "DG2": parse_dg2,
        "DG11": parse_dg11,
        "DG12": parse_dg12,
        "DG13": parse_dg13,
        "DG14": lambda data: parse_security_infos(data, source="DG14"),
    }


def _parse_into(read: ChipRead, name: str, table: Mapping[str, Parser]) -> None:
    parser = table.get(name)
    if parser is None:
        return
    try:
        read.records[name] = parser(read.files[name])
    except ParseError as exc:
        logger.info("%s does not parse: %s", name, exc.message)
        outcome = read.outcomes[name]
        outcome.status = Outcome.FAILED
        outcome.error = exc


# -- reading ------------------------------------------------------------------------


class _Counters:
    """APDU and byte counts of the bottom channel, if it keeps them (ApduChannel)."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.start = self.now()

    def apdus(self) -> int:
        return int(getattr(self.channel, "apdu_count", 0)) - self.start[0]

    def now(self) -> tuple[int, int, int]:
        return (getattr(self.channel, "apdu_count", 0), getattr(self.channel, "bytes_sent", 0),
                getattr(self.channel, "bytes_received", 0))

    def fill(self, timing: Timing) -> None:
        end = self.now()
        timing.apdus, timing.bytes_sent, timing.bytes_received = (e - s for e, s in zip(end, self.start, strict=True))


def _read_file(reader: FileReader, ef: LdsFile) -> bytes:
    """The file, read a second time when the first read ended in an error status word
    or a file cut short: a status word from the link (the chip never saw the command,
    so the session is intact) must not leave a required file unread (issue 14)."""
    try:
        return reader.read(ef)
    except FileAccessDeniedError as exc:
        if ef.name in EAC_PROTECTED:
            raise
        # only DG3/DG4 need terminal authentication (9303-11 §7.1): 6982 to another
        # file is the link (or a relay), not the file's access rule
        logger.info("%s: %s; reading it once more", ef.name, exc.message)
    except (FileReadError, ParseError) as exc:
        logger.info("%s: %s; reading it once more", ef.name, exc.message)
    return reader.read(ef)


def _read_one(reader: FileReader, ef: LdsFile, read: ChipRead, clock: Callable[[], float]) -> None:
    started = clock()
    outcome = FileOutcome(ef.name, Outcome.READ)
    read.outcomes[ef.name] = outcome
    try:
        data = _read_file(reader, ef)
    except FileAbsentError:
        outcome.status = Outcome.ABSENT
    except FileAccessDeniedError:
        outcome.status, outcome.reason = Outcome.SKIPPED, REASON_TERMINAL_AUTH
    except (FileReadError, ParseError) as exc:
        logger.info("%s could not be read: %s", ef.name, exc.message)
        outcome.status, outcome.error = Outcome.FAILED, exc
    else:
        read.files[ef.name] = data
        outcome.size = len(data)
    outcome.seconds = clock() - started


def _listed_groups(read: ChipRead) -> list[int]:
    com = read.records.get("COM")
    # without a usable EF.COM, try the groups a Vietnamese card carries (domain.md)
    groups = list(com.data_groups) if com is not None else [1, 2, 13, 14, 15]
    # EF.COM is not signed (9303-10 §4.6.1): what the signed EF.SOD lists is read too,
    # so a chip cannot hide its photo or its CA/AA keys (DG14/DG15) from the terminal
    sod = read.records.get("SOD")
    if sod is not None:
        groups += sorted(set(sod.dg_hashes) - set(groups))
    return groups


class ChipAuthStep:
    """Chip Authentication in the middle of a read (module docstring, step 2).

    ``start`` runs CA once EF.COM, EF.SOD and DG14 are read and switches the reader to
    the re-keyed session; ``read`` reads a file under it, turning the first failure
    under the new keys into an invalid CA and re-opening access (``reopen``) once;
    ``finish`` confirms a CA that no file read has confirmed yet (one APDU)."""

    def __init__(self, rng: Rng, reopen: Callable[[FileReader], None], counters: _Counters,
                 clock: Callable[[], float], *, read_again: bool = False) -> None:
        self.rng = rng
        self.reopen = reopen
        #: the whole read may still start again on a fresh session (read_chip): a lost
        #: session is then handed up instead of judged here
        self.read_again = read_again
        self.counters = counters
        self.clock = clock
        self.outcome: CaOutcome | None = None
        self.check: CheckResult | None = None
        self.reopened: str | None = None
        self.apdus = 0
        self.seconds = 0.0

    def _timed(self, fn: Callable[[], None]) -> None:
        started, before = self.clock(), self.counters.apdus()
        try:
            fn()
        finally:
            self.seconds += self.clock() - started
            self.apdus += self.counters.apdus() - before

    def start(self, reader: FileReader, read: ChipRead) -> None:
        from agent.icao import ca

        dg14 = read.files.get("DG14")
        if dg14 is None:
            return

        def run() -> None:
            self.outcome = ca.chip_authentication(reader.channel, dg14, rng=self.rng, confirm=False,
                                                  infos=read.security_infos)
            if self.outcome.pending:
                reader.rekey(self.outcome.channel)
                return
            check = self.outcome.check
            if check.status is Status.INVALID and self.read_again and getattr(reader.channel, "last_unprotected",
                                                                              False):
                # a refusal outside secure messaging is not the chip's SM layer speaking
                # (a glitch, a relay): CA is judged on a fresh session first (issue 14)
                raise SecureMessagingError(f"Chip Authentication: {check.reason}, outside secure messaging")
            self.check = check
            logger.info("chip authentication: %s", self.check.status.value)

        try:
            self._timed(run)
        except CardRemovedError as exc:
            # files remain to be read: like a pull during a file read, nothing partial
            raise ReadInterruptedError("", stage="chip authentication") from exc

    @property
    def _pending(self) -> CaOutcome | None:
        """The CA run that no file read has confirmed yet, if any."""
        if self.outcome is not None and self.outcome.pending and self.check is None:
            return self.outcome
        return None

    def read(self, reader: FileReader, ef: LdsFile, read: ChipRead, clock: Callable[[], float]) -> None:
        from agent.icao import ca

        try:
            _read_one(reader, ef, read, clock)
        except SecureMessagingError as exc:
            if reader.extended_refused or self.reopened is not None or self.read_again:
                # the short-APDU retry of read_chip, a session lost twice, or a first
                # loss: one glitch on the first exchange under the CA keys looks just like
                # a chip without DG14's private key, so the read starts again on a fresh
                # session before CA is judged (issue 14)
                raise
            if (pending := self._pending) is not None:
                self.check = ca.failed_under_new_keys(pending, exc)
            elif self.check is None or self.check.status is Status.VALID:
                # no CA ran, or CA was proven and the session broke later (the link):
                # files are never read under weaker keys than CA gave; the read fails
                raise
            logger.info("secure messaging ended after chip authentication failed: opening access again")
            self.reopened = f"access opened again after Chip Authentication failed ({exc.message})"
            self._timed(lambda: self.reopen(reader))
            _read_one(reader, ef, read, clock)
            return
        channel = reader.channel
        pending = self._pending
        if pending is not None and isinstance(channel, SecureMessaging) and channel.macs_verified:
            self.check = ca.confirm_chip_authentication(pending, read.files.get("DG14", b""))
            logger.info("chip authentication confirmed by the read of %s", ef.name)

    def finish(self, read: ChipRead) -> None:
        from agent.icao import ca

        pending = self._pending
        if pending is not None:
            def run() -> None:
                self.check = ca.confirm_chip_authentication(pending, read.files.get("DG14", b""))

            try:
                self._timed(run)
            except IdAgentError as exc:
                # every file is read: a failure now leaves CA unconfirmed, not the read lost
                self.check = CheckResult(Status.ERROR, f"Chip Authentication interrupted: {exc.message}")
        read.chip_authentication = self.check
        read.reopened = self.reopened


def _read_listed(reader: FileReader, read: ChipRead, number: int, *, skip: tuple[int, ...] | list[int],
                 table: Mapping[str, Parser], clock: Callable[[], float], chip_auth: ChipAuthStep | None) -> None:
    group = DATA_GROUPS[number]
    if number in skip:
        reason = REASON_TERMINAL_AUTH if number in (3, 4) else REASON_SKIPPED
        read.outcomes[group.name] = FileOutcome(group.name, Outcome.SKIPPED, reason=reason)
        return
    if chip_auth is not None:
        chip_auth.read(reader, group, read, clock)
    else:
        _read_one(reader, group, read, clock)
    if group.name in read.files:
        _parse_into(read, group.name, table)


def _in_order(read: ChipRead, groups: list[int]) -> None:
    """Outcomes and files in EF.COM's order, whatever order they were read in."""
    names = [COM.name, SOD.name, *(DATA_GROUPS[n].name for n in groups)]
    rank = {name: i for i, name in enumerate(names)}
    read.outcomes = dict(sorted(read.outcomes.items(), key=lambda item: rank.get(item[0], len(rank))))
    read.files = dict(sorted(read.files.items(), key=lambda item: rank.get(item[0], len(rank))))


def read_files(reader: FileReader, read: ChipRead, *, skip: tuple[int, ...] | list[int],
               table: Mapping[str, Parser], clock: Callable[[], float] = time.perf_counter,
               chip_auth: ChipAuthStep | None = None) -> None:
    """EF.COM and EF.SOD first, then the listed data groups (9303-10 §3.6). With
    ``chip_auth``, DG14 comes right after EF.SOD, Chip Authentication runs, and the
    other data groups are read under its keys (9303-11 §6.2)."""
    for ef in (COM, SOD):
        _read_one(reader, ef, read, clock)
        if ef.name in read.files:
            _parse_into(read, ef.name, table)
    groups = [n for n in _listed_groups(read) if n in DATA_GROUPS]
    early = [14] if chip_auth is not None and 14 in groups else []
    for number in early:
        _read_listed(reader, read, number, skip=skip, table=table, clock=clock, chip_auth=None)
    if chip_auth is not None:
        chip_auth.start(reader, read)
    for number in groups:
        if number not in early:
            _read_listed(reader, read, number, skip=skip, table=table, clock=clock, chip_auth=chip_auth)
    if chip_auth is not None:
        chip_auth.finish(read)
    _in_order(read, groups)


def _verify(read: ChipRead, session: Channel | None, trust: TrustStore | None, rng: Rng,
            options: Mapping[str, Any]) -> Verification:
    """Passive, chip and active authentication (agent.icao.verify) on the live session."""
    from agent.icao.verify import verify

    info = read.access
    pace_cam = info if info.cam_ca_ic is not None else None
    chip = read.chip_authentication
    # after access was opened again (CA broke off), AA runs on that recovered session:
    # it is a live session with the same chip on the same connection, and a genuine
    # card must not lose its verdict to a glitch (issue 14); an invalid CA keeps its own
    # "secure channel ended" reason in verify
    result = verify(session, read.files, trust_store=trust, rng=rng, pace_cam=pace_cam, chip=chip,
                    sod=read.sod, security_infos=read.security_infos, **options)
    if read.reopened:
        result.notes.append(f"{read.reopened}: the files after DG14 were read under the access keys")
    if read.read_again:
        result.notes.append(f"read again on a fresh session after: {read.read_again}")
    return result


def _note_pace_downgrade(read: ChipRead) -> None:
    """EF.CardAccess travels unsigned, so someone between card and reader can hide its
    PACE entry and push the terminal to BAC (weaker session keys: an eavesdropping
    risk, not an authenticity one, since passive and chip authentication still run).
    DG14 is signed: when it lists PACE (9303-11 §9.2.7: the PACE SecurityInfos are
    repeated in DG14) and passive authentication vouched for it, a BAC read is noted
    for the clerk and the log."""
    result = read.verification
    dg14 = read.security_infos
    if result is None or dg14 is None or read.access.protocol != "BAC" or not result.passive.ok:
        return
    if dg14.pace:
        why = read.access.pace_failure or "PACE was not tried"
        result.notes.append(f"the chip's signed DG14 lists PACE but this read used BAC ({why}): "
                            "EF.CardAccess may have been altered on the way, or PACE failed")
        logger.warning("PACE listed in the signed DG14 but the read used BAC")


def _not_verified_if_incomplete(read: ChipRead, result: Verification) -> Verification:
    """A read missing a required data group is never "verified", even when every file
    that was read checks out (e.g. an error status word answered to a READ BINARY of
    DG2 leaves DG2 unread while EF.SOD, DG1 and DG13 verify)."""
    if read.complete or result.status is not VerificationStatus.VERIFIED:
        return result
    missing = ", ".join(read.missing()) or "a required data group"
    return dataclasses.replace(result, status=VerificationStatus.NOT_VERIFIED,
                               reason=f"incomplete read: {missing} not read; lay the card down again")


class LengthPolicy:
    """The channel under secure messaging, with extended length switchable off.

    The connection says whether reader and chip announce extended length; when the
    chip then refuses it, every later command (Chip/Active Authentication included)
    must stay short, so the session is built over this switch."""

    def __init__(self, inner: Channel, allow_extended: bool = True) -> None:
        self.inner = inner
        self.allow_extended = allow_extended

    @property
    def extended_length(self) -> bool:
        return self.allow_extended and bool(self.inner.extended_length)

    def send(self, command: Command) -> Response:
        return self.inner.send(command)


class ExtendedLengthMemory:
    """ATRs of chips that refused the extended length their reader announced, so the
    next read of such a card goes short at once instead of losing a session to it
    ("try once, remember"). Bounded: an ATR identifies a chip model, not a person."""

    LIMIT = 64

    def __init__(self) -> None:
        self._refused: dict[bytes, None] = {}

    def refused(self, atr: bytes) -> bool:
        return bool(atr) and atr in self._refused

    def remember(self, atr: bytes) -> None:
        if not atr:
            return
        self._refused[atr] = None
        while len(self._refused) > self.LIMIT:
            self._refused.pop(next(iter(self._refused)))


#: process-wide: the daemon reads many cards through one reader
EXTENDED_MEMORY = ExtendedLengthMemory()


def _atr_of(channel: Channel) -> bytes:
    connection = getattr(channel, "connection", None)
    return bytes(getattr(connection, "atr", b"") or b"")


@dataclass
class _Attempt:
    """One session's reader, kept to see why a session failed."""

    reader: FileReader | None = None


def _reopen_access(policy: LengthPolicy, key: AccessKey, card_access: bytes | None, rng: Rng,
                   prefer: str, send_parameter_id: bool = True) -> Callable[[FileReader], None]:
    """Open access again on the same chip and point ``reader`` at the new session."""

    def reopen(reader: FileReader) -> None:
        session, info = access_mod.establish(policy, key, card_access=card_access, rng=rng, prefer=prefer,
                                             send_parameter_id=send_parameter_id)
        reader.rekey(session)
        if info.protocol == "PACE":
            reader.select_application()

    return reopen


def _read_card_security(reader: FileReader, info: AccessInfo) -> bytes | None:
    """EF.CardSecurity after PACE-CAM, still in the MF: it publishes the key that
    checks the chip's CAM answer (BSI TR-03110-3 A.1.1.2; ``agent.icao.cardsecurity``).
    A chip that does not give it leaves CAM to be settled by Chip Authentication."""
    if info.cam_ca_ic is None:
        return None
    try:
        return reader.read(CARD_SECURITY)
    except (FileAbsentError, FileAccessDeniedError, FileReadError) as exc:
        logger.info("EF.CardSecurity not read after PACE-CAM: %s", exc.code)
        return None


def _read_session(channel: Channel, key: AccessKey, attempt: _Attempt, *, rng: Rng, prefer: str,
                  extended: str, chunk: int, on_progress: ProgressCallback | None,
                  skip: tuple[int, ...] | list[int], table: Mapping[str, Parser],
                  clock: Callable[[], float], counters: _Counters, chip_auth: bool,
                  read_again: bool = False, send_parameter_id: bool = True
                  ) -> tuple[ChipRead, Channel, Callable[[], Channel]]:
    started = clock()
    policy = LengthPolicy(channel, allow_extended=extended != "off")
    try:
        card_access = access_mod.read_card_access(policy)
        # without EF.CardAccess, establish() selects the eMRTD application before BAC
        session, info = access_mod.establish(policy, key, card_access=card_access, rng=rng, prefer=prefer,
                                             send_parameter_id=send_parameter_id)
        reader = attempt.reader = FileReader(session, extended=extended, chunk=chunk, on_progress=on_progress)
        card_security = _read_card_security(reader, info)
        if info.protocol == "PACE":
            # PACE runs in the MF: select the application under SM (9303-11 §4.4);
            # BAC ran with the application already selected (9303-11 §4.3)
            reader.select_application()
    except CardRemovedError as exc:
        if isinstance(exc, ReadInterruptedError):
            raise
        raise ReadInterruptedError("", stage="access control (before any file was read)") from exc
    except ParseError as exc:
        # EF.CardAccess cut short in the clear (an error status word mid-file): the link,
        # not "malformed data on the card", and worth another tap (exit 6, not 1)
        raise ChipProtocolError(f"access control: {exc.message}") from exc
    read = ChipRead(access=info)
    if card_security is not None:
        read.files[CARD_SECURITY.name] = card_security
    read.timing.access_seconds = clock() - started
    read.timing.access_apdus = counters.apdus()
    # PACE-CAM already authenticated the chip (9303-11 §4.4): no CA run, verification
    # checks the CAM data against DG14
    step = None
    if chip_auth and info.cam_ca_ic is None:
        step = ChipAuthStep(rng, _reopen_access(policy, key, card_access, rng, prefer, send_parameter_id),
                            counters, clock, read_again=read_again)
    read_files(reader, read, skip=skip, table=table, clock=clock, chip_auth=step)
    if step is not None:
        read.timing.verify_apdus, read.timing.verify_seconds = step.apdus, step.seconds
    read.extended_length = reader.extended_in_use
    if reader.extended_refused:
        policy.allow_extended = False
    return read, reader.channel, _fresh_session(policy, key, card_access, rng, prefer, send_parameter_id)


def _fresh_session(policy: LengthPolicy, key: AccessKey, card_access: bytes | None, rng: Rng,
                   prefer: str, send_parameter_id: bool = True) -> Callable[[], Channel]:
    """A new secure-messaging session with the same chip, the eMRTD application selected."""

    def open_session() -> Channel:
        holder = FileReader(policy)
        _reopen_access(policy, key, card_access, rng, prefer, send_parameter_id)(holder)
        return holder.channel

    return open_session


#: a read that ends in one of these starts again once, from access control, on a fresh
#: session: a lost secure-messaging session (6987/6988, a MAC that does not verify, an
#: unprotected 6A82 to READ BINARY), a PACE that broke off, a malformed or missing answer.
#: A card taken away, a reader unplugged, a refused key (access retries that itself) or
#: a deadline are not retried.
READ_AGAIN_ON = (SecureMessagingError, ProtocolError, ApduError)


def _read_twice(channel: Channel, key: AccessKey, extended: str, options: dict[str, Any],
                memory: ExtendedLengthMemory, atr: bytes) -> tuple[ChipRead, Channel, Callable[[], Channel]]:
    """``_read_session``, and once more on a fresh session when the first broke off
    (``READ_AGAIN_ON``): another program's APDU slipped in between ours, a flipped byte,
    a chip reset. A chip that refused extended length goes short the second time."""
    attempt = _Attempt()
    try:
        read, session, fresh = _read_session(channel, key, attempt, extended=extended, read_again=True,
                                             **options)
    except READ_AGAIN_ON as exc:
        why = getattr(exc, "message", str(exc))
        if attempt.reader is not None and attempt.reader.extended_refused:
            memory.remember(atr)
            extended = "off"
            logger.info("secure messaging ended after the chip refused extended length: reading again, short APDUs")
        else:
            logger.info("the read broke off (%s): reading again on a fresh session", why)
        read, session, fresh = _read_session(channel, key, _Attempt(), extended=extended, **options)
        read.read_again = why
    if attempt.reader is not None and attempt.reader.extended_refused:
        memory.remember(atr)
    return read, session, fresh


def _active_authentication_again(read: ChipRead, result: Verification, fresh: Callable[[], Channel], rng: Rng,
                                 require_chip_auth: bool) -> Verification:
    """Active Authentication once more, on a fresh session, when it ended without a
    signature to judge (the chip refused INTERNAL AUTHENTICATE, or the exchange broke):
    an unprotected 6A82 under secure messaging is the link, not a bad signature, and
    only a signature that verifiably fails makes a probable clone (issue 14)."""
    from agent.icao import aa
    from agent.icao.verify import overall

    if result.active.status is not Status.ERROR \
            or not result.active.details.get("retry") or "DG15" not in read.files:
        return result
    logger.info("active authentication ended without a signature (%s): once more on a fresh session",
                result.active.reason)
    try:
        session = fresh()
        active = aa.active_authentication(session, read.files["DG15"], rng=rng,
                                          aa_info=aa.info_from_dg14(read.security_infos))
    except IdAgentError as exc:
        # the card left, or the fresh session failed: the read is complete, AA stays
        # without a verdict (CA, where it ran, still speaks for the chip)
        active = CheckResult(Status.ERROR, f"{result.active.reason}; on a fresh session: {exc.message}")
    status, reason = overall(result.passive, result.chip, active, require_chip_auth)
    notes = [*result.notes, "Active Authentication ran again on a fresh session"]
    return dataclasses.replace(result, active=active, status=status, reason=reason, notes=notes, channel=session
                               if active.status is not Status.ERROR else result.channel)


def read_chip(channel: Channel, key: AccessKey, *, rng: Rng = os.urandom, trust: TrustStore | None = None,
              skip: tuple[int, ...] | list[int] = (3,), on_progress: ProgressCallback | None = None,
              prefer: str = "pace", extended: str = "auto", chunk: int = 0,
              today: dt.date | None = None, no_expiry_year: int = DEFAULT_NO_EXPIRY_YEAR,
              verify: bool = True, check_crl: bool = True, require_chip_auth: bool = True,
              now: dt.datetime | None = None, clock: Callable[[], float] = time.perf_counter,
              memory: ExtendedLengthMemory = EXTENDED_MEMORY, accepted_issuers: Sequence[str] | None = None,
              send_parameter_id: bool = True, apdu_timeout: float | None = DEFAULT_APDU_TIMEOUT,
              read_timeout: float | None = DEFAULT_READ_TIMEOUT) -> ChipRead:
    """Open, read, parse and verify the chip behind ``channel`` (see module docstring).

    Raises AccessDeniedError (wrong key, exit 5), ReadInterruptedError (card pulled,
    exit 6), SecureMessagingError (exit 6); per-file problems are recorded instead.

    A chip that refuses extended length although the connection announced it may drop
    secure messaging over it (the two sides' send sequence counters no longer agree):
    the read then starts again once, from access control, with short APDUs only, and
    ``memory`` keeps the chip's ATR so that its next reads go short from the start.

    ``accepted_issuers``: MRZ issuing states this desk takes (``[trust] accepted_issuers``;
    None: any). ``send_parameter_id=False`` leaves DO 84 out of PACE's MSE:Set AT when one
    parameter set is offered (``[card] pace_parameter_id``).

    ``apdu_timeout`` / ``read_timeout`` (seconds; None: none): each command waits at
    most that long for its answer, the whole read no longer than that
    (``agent.icao.deadline``, ``[card]`` in the config); past either, the read fails
    with ``ReaderTimeoutError`` (exit 6)."""
    connection = getattr(channel, "connection", None)
    hold = connection.exclusive() if connection is not None and hasattr(connection, "exclusive") \
        else contextlib.nullcontext()
    counters, atr = _Counters(channel), _atr_of(channel)
    deadlines = None
    if apdu_timeout is not None and read_timeout is not None and getattr(connection, "can_stall", True):
        channel = deadlines = DeadlineChannel(channel, apdu_timeout=apdu_timeout, read_timeout=read_timeout)
    try:
        # the card is ours for the whole read: access control, files, CA/AA and any retry
        with hold:
            return _read_chip(channel, key, rng=rng, trust=trust, skip=skip, on_progress=on_progress,
                              prefer=prefer, extended=extended, chunk=chunk, today=today,
                              no_expiry_year=no_expiry_year, verify=verify, check_crl=check_crl,
                              require_chip_auth=require_chip_auth, now=now, clock=clock, memory=memory,
                              accepted_issuers=accepted_issuers, send_parameter_id=send_parameter_id,
                              counters=counters, atr=atr)
    finally:
        if deadlines is not None:
            deadlines.close()  # its worker thread ends with the read


def _read_chip(channel: Channel, key: AccessKey, *, rng: Rng, trust: TrustStore | None,
               skip: tuple[int, ...] | list[int], on_progress: ProgressCallback | None, prefer: str,
               extended: str, chunk: int,
               today: dt.date | None, no_expiry_year: int, verify: bool, check_crl: bool,
               require_chip_auth: bool, now: dt.datetime | None, clock: Callable[[], float],
               memory: ExtendedLengthMemory, counters: _Counters, atr: bytes,
               accepted_issuers: Sequence[str] | None = None, send_parameter_id: bool = True) -> ChipRead:
    started = clock()
    options = {"rng": rng, "prefer": prefer, "chunk": chunk, "on_progress": on_progress, "skip": skip,
               "table": parsers(today, no_expiry_year), "clock": clock, "counters": counters,
               "chip_auth": verify, "send_parameter_id": send_parameter_id}
    if extended == "auto" and memory.refused(atr):
        extended = "off"
    read, session, fresh = _read_twice(channel, key, extended, options, memory, atr)
    if verify:
        verify_started, before = clock(), counters.apdus()
        verify_options = {"check_crl": check_crl, "require_chip_auth": require_chip_auth, "now": now,
                          "accepted_issuers": accepted_issuers}
        result = _verify(read, session, trust, rng, verify_options)
        result = _active_authentication_again(read, result, fresh, rng, require_chip_auth)
        read.verification = _not_verified_if_incomplete(read, result)
        _note_pace_downgrade(read)
        # Chip Authentication ran during the read (ChipAuthStep): its share is added
        read.timing.verify_seconds += clock() - verify_started
        read.timing.verify_apdus += counters.apdus() - before
    read.timing.seconds = clock() - started
    counters.fill(read.timing)
    logger.info("chip read: %d files, complete=%s, %d APDUs", len(read.files), read.complete, read.timing.apdus)
    return read
