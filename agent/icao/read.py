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
from dataclasses import dataclass
from typing import Any

from agent.errors import CardRemovedError, IdAgentError, ParseError, ProtocolError
from agent.icao import access as access_mod
from agent.icao.access import AccessInfo
from agent.icao.checks import CheckResult, Status
from agent.icao.chip_read import ChipRead
from agent.icao.deadline import DEFAULT_APDU_TIMEOUT, DEFAULT_READ_TIMEOUT, DeadlineChannel
from agent.icao.extended_length import EXTENDED_MEMORY, ExtendedLengthMemory, LengthPolicy, atr_of, start_mode
from agent.icao.file_reader import (
    FileAbsentError,
    FileAccessDeniedError,
    FileReader,
    FileReadError,
    ProgressCallback,
    ReadInterruptedError,
)
from agent.icao.keys import AccessKey
from agent.icao.lds.files import CARD_SECURITY
from agent.icao.mrz import DEFAULT_NO_EXPIRY_YEAR
from agent.icao.session_files import ChipAuthStep, Counters, Parser, parsers, read_files
from agent.icao.sm import SecureMessagingError
from agent.icao.trust import TrustStore
from agent.icao.verify import Verification, VerificationStatus
from agent.readers.apdu import ApduError, Channel
from agent.rng import Rng

logger = logging.getLogger(__name__)


class ChipProtocolError(ProtocolError):
    """The chip (or the link to it) broke the protocol during the read."""

    code = "protocol"
    exit_code = 6


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
                  clock: Callable[[], float], counters: Counters, chip_auth: bool,
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
    counters, atr = Counters(channel), atr_of(channel)
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
               memory: ExtendedLengthMemory, counters: Counters, atr: bytes,
               accepted_issuers: Sequence[str] | None = None, send_parameter_id: bool = True) -> ChipRead:
    started = clock()
    options = {"rng": rng, "prefer": prefer, "chunk": chunk, "on_progress": on_progress, "skip": skip,
               "table": parsers(today, no_expiry_year), "clock": clock, "counters": counters,
               "chip_auth": verify, "send_parameter_id": send_parameter_id}
    extended = start_mode(extended, memory, atr)
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
