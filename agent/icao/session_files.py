"""The files of one secure-messaging session, in order, each parsed (9303-10 §3.6).

EF.COM and EF.SOD first, then every data group EF.COM or the signed EF.SOD lists,
except those in ``skip``. With Chip Authentication (``ChipAuthStep``), DG14 comes right
after EF.SOD, CA runs, and the other groups are read under its keys (9303-11 §6.2).
A file whose read ends in an error status word is read once more; a malformed file is
recorded as failed and the others are still read. Used by ``agent.icao.read``, which
opens the session and verifies the result.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from agent.errors import CardRemovedError, IdAgentError, ParseError
from agent.icao.ca import CaOutcome
from agent.icao.checks import CheckResult, Status
from agent.icao.chip_read import ChipRead, FileOutcome, Outcome, Timing
from agent.icao.file_reader import (
    FileAbsentError,
    FileAccessDeniedError,
    FileReader,
    FileReadError,
    ReadInterruptedError,
)
from agent.icao.lds import (
    parse_com,
    parse_dg1,
    parse_dg2,
    parse_dg11,
    parse_dg12,
    parse_dg13,
)
from agent.icao.lds.files import COM, DATA_GROUPS, SOD, LdsFile
from agent.icao.sm import SecureMessaging, SecureMessagingError
from agent.readers.apdu import Channel
from agent.rng import Rng

logger = logging.getLogger(__name__)

#: the files that need terminal authentication (Extended Access Control, 9303-11 §7.1)
EAC_PROTECTED = frozenset({"DG3", "DG4"})
#: what a skipped or refused file is reported as
REASON_TERMINAL_AUTH = "needs terminal authentication"
REASON_SKIPPED = "skipped by configuration"


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


class Counters:
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

    def __init__(self, rng: Rng, reopen: Callable[[FileReader], None], counters: Counters,
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
