"""Fault injection on the card path (issue 8): one case is one full read of a synthetic
card on the virtual chip, in process, with ONE fault injected at APDU number ``index``
(the card removed, the reader unplugged, a flipped byte, an unexpected status word, a
reset), judged by the contract of ``bench/fault_matrix.py`` (which documents the cases
and runs the whole matrix). The test doubles live here, importable, so that the tests
(``tests/robustness``) and the bench share them; the same cases over the real pcscd +
vpcd are in ``agent.sim.faults_pcscd``.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import IdAgentError
from agent.icao.chip_read import ChipRead
from agent.icao.keys import AccessKey, CanKey
from agent.icao.read import read_chip
from agent.icao.trust import TrustStore
from agent.identity.from_chip import identity_of
from agent.readers.apdu import ApduChannel
from agent.readers.base import CardConnection, WrappedConnection
from agent.readers.sim import DEFAULT_READER, SimBackend
from agent.sim.card import sw_bytes
from agent.sim.chip import VirtualChip
from agent.sim.profile import load_profile, virtual_chip

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 1, 15)
#: a faulted read must end (error or result) within this many seconds
BOUND_SECONDS = 5.0
#: ... and within this much wall-clock time, whatever else the machine is doing
WALL_BOUND_SECONDS = 20.0
#: a read still running after this long is a hang (the watchdog interrupts it)
HANG_SECONDS = 30.0
#: synthetic cards (fixtures/profiles): one opened with PACE (CAN), one BAC-only (MRZ)
PROFILES = {"PACE": "nguyen-van-an", "BAC": "le-hoang-duc"}
IN_PROCESS_KINDS = ("remove", "detach", "corrupt", "sw", "reset")
PCSCD_KINDS = ("pcscd-restart", "unplug")
UNEXPECTED_SWS = (0x6F00, 0x6A82, 0x6982, 0x6700, 0x6988, 0x6300, 0x6D00, 0x9000)
#: exit code of "unexpected error" (TEAM.md): never acceptable as the user's answer
UNEXPECTED_EXIT = 1


@dataclass(frozen=True)
class Case:
    protocol: str
    kind: str
    index: int
    sw: int | None = None

    @property
    def label(self) -> str:
        extra = f" sw={self.sw:04X}" if self.sw is not None else ""
        return f"{self.protocol} {self.kind}@{self.index}{extra}"


@dataclass
class CaseResult:
    case: Case
    outcome: str
    seconds: float
    passed: bool
    why: str = ""
    next_tap: str = ""
    #: CPU time of the read (in-process cases; the wall-clock ``seconds`` otherwise)
    cpu_seconds: float = 0.0


class Hang(Exception):
    """Raised by the watchdog in the middle of a read that does not end."""


@contextlib.contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """Interrupt a read that hangs (main thread only; elsewhere a no-op)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def fire(signum: int, frame: object) -> None:
        raise Hang(f"no answer after {seconds:.0f} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class FaultyConnection(WrappedConnection):
    """Wraps the connection to a virtual card and injects ``case``'s fault at APDU
    number ``case.index`` (1-based). ``chip`` and ``backend`` are the card and the
    virtual reader behind ``inner`` (the fault acts on them, as a hand or a cable would)."""

    def __init__(self, inner: CardConnection, case: Case | None, chip: VirtualChip, backend: SimBackend,
                 reader: str = DEFAULT_READER) -> None:
        super().__init__(inner)
        self.case = case
        self.chip = chip
        self.backend = backend
        self.reader = reader
        self.count = 0
        self.fired = False

    def transmit(self, apdu: bytes) -> bytes:
        self.count += 1
        case = self.case
        if case is None or self.count != case.index:
            return self.inner.transmit(apdu)
        self.fired = True
        if case.kind == "remove":
            self.backend.remove(self.reader)
        elif case.kind == "detach":
            self.backend.detach(self.reader)
        elif case.kind == "reset":
            self.chip.reset()
        elif case.kind == "sw":
            assert case.sw is not None
            return sw_bytes(case.sw)
        elif case.kind == "corrupt":
            return corrupt(self.inner.transmit(apdu), case.index)
        return self.inner.transmit(apdu)


def corrupt(response: bytes, index: int) -> bytes:
    """Flip bit 0 of one byte: a data byte when there is data (position varies with the
    index), else one of the status bytes."""
    out = bytearray(response)
    data_len = len(out) - 2
    at = (index * 7) % data_len if data_len > 0 else index % 2
    out[at] ^= 0x01
    return bytes(out)


# -- one read --------------------------------------------------------------------------


@dataclass
class Card:
    """A synthetic card on an in-process reader, and what a clean read of it gives."""

    protocol: str
    chip: VirtualChip
    key: AccessKey
    backend: SimBackend
    store: TrustStore | None
    clean_identity: dict[str, Any] = field(default_factory=dict)
    clean_apdus: int = 0


def key_for(protocol: str, profile: Any) -> AccessKey:
    if protocol == "PACE":
        return CanKey(profile.can)
    key: AccessKey = profile.mrz_key  # a profile (untyped here) holds an MrzKey
    return key


def load_store() -> TrustStore:
    return TrustStore.load(ROOT / "fixtures" / "pki" / "store")


def make_card(protocol: str, store: TrustStore | None = None) -> Card:
    profile = load_profile(PROFILES[protocol])
    card = Card(protocol, virtual_chip(profile), key_for(protocol, profile), SimBackend(extended_length="auto"),
                store if store is not None else load_store())
    read, apdus = tap(card, None)
    if not (read.complete and read.verified):
        raise RuntimeError(f"{protocol}: the clean read of {PROFILES[protocol]} does not verify")
    card.clean_identity = identity_of(read).to_dict(photo=True)
    card.clean_apdus = apdus
    return card


def tap(card: Card, case: Case | None) -> tuple[ChipRead, int]:
    """Lay the card on the reader (power-up), read it with the fault of ``case``."""
    card.backend.attach(DEFAULT_READER)
    card.backend.insert(DEFAULT_READER, card.chip)
    conn = FaultyConnection(card.backend.connect(DEFAULT_READER), case, card.chip, card.backend)
    try:
        read = read_chip(ApduChannel(conn), card.key, trust=card.store, today=TODAY)
    finally:
        _lift(card, conn)
    return read, conn.count


def _lift(card: Card, conn: FaultyConnection) -> None:
    """Take the card off (the reader may already be gone, or the card)."""
    try:
        conn.close()
    except IdAgentError:
        pass
    if any(r.name == DEFAULT_READER for r in card.backend.list_readers()):
        card.backend.remove(DEFAULT_READER)


def judge(card: Card, read: ChipRead | None, error: BaseException | None) -> tuple[str, bool, str]:
    """(outcome label, passed, why not) for what a faulted read ended in."""
    if error is not None:
        if isinstance(error, Hang):
            return "hang", False, str(error)
        if not isinstance(error, IdAgentError):
            return f"crash:{type(error).__name__}", False, repr(error)
        code = getattr(error, "exit_code", UNEXPECTED_EXIT)
        label = f"error:{error.code}/{code}"
        if not error.hint:
            return label, False, "error without a hint"
        if error.code == IdAgentError.code:
            return label, False, f"generic error: {type(error).__name__}: {error.message}"
        return label, True, ""
    assert read is not None
    if not read.verified:
        return ("read:not-verified" if read.complete else "read:incomplete"), True, ""
    same = identity_of(read).to_dict(photo=True) == card.clean_identity
    if not read.complete or not same:
        return "read:verified", False, "marked verified but incomplete or not the card's identity"
    return "read:verified", True, ""


def run_case(card: Card, case: Case) -> CaseResult:
    read: ChipRead | None = None
    error: BaseException | None = None
    started, cpu_started = time.monotonic(), time.process_time()
    try:
        with watchdog(HANG_SECONDS):
            read, _ = tap(card, case)
    except Exception as exc:  # the judge decides which exceptions are acceptable
        error = exc
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu_started
    outcome, passed, why = judge(card, read, error)
    if passed and (cpu > BOUND_SECONDS or seconds > WALL_BOUND_SECONDS):
        passed, why = False, (f"took {cpu:.1f} s CPU, {seconds:.1f} s wall clock (bounds {BOUND_SECONDS} s, "
                              f"{WALL_BOUND_SECONDS} s)")
    next_tap = next_tap_result(card)
    if next_tap != "verified":
        passed, why = False, (why + "; " if why else "") + f"next tap: {next_tap}"
    return CaseResult(case, outcome, seconds, passed, why, next_tap, cpu)


def next_tap_result(card: Card) -> str:
    """Read the same card again, no fault: it must verify and give the clean identity."""
    try:
        with watchdog(HANG_SECONDS):
            read, _ = tap(card, None)
    except Exception as exc:  # reported, never swallowed: the case fails on it
        return f"{type(exc).__name__}: {exc}"
    if not (read.complete and read.verified):
        return "not verified"
    if identity_of(read).to_dict(photo=True) != card.clean_identity:
        return "different identity"
    return "verified"


# -- the matrix ------------------------------------------------------------------------


def cases(card: Card, kinds: Iterable[str], step: int = 1, sws: Iterable[int] = UNEXPECTED_SWS,
          offset: int = 0) -> Iterator[Case]:
    """Every ``step``-th APDU index of a clean read (starting at 1 + ``offset``) for each
    kind; ``sw`` cases once per status word."""
    indices = range(1 + offset % step, card.clean_apdus + 1, step)
    sws = tuple(sws)
    for kind in kinds:
        for index in indices:
            if kind == "sw":
                for sw in sws:
                    yield Case(card.protocol, kind, index, sw)
            else:
                yield Case(card.protocol, kind, index)


def run_matrix(protocols: Iterable[str] = ("BAC", "PACE"), kinds: Iterable[str] = IN_PROCESS_KINDS,
               step: int = 1, sws: Iterable[int] = UNEXPECTED_SWS,
               progress: Callable[[CaseResult], None] | None = None) -> list[CaseResult]:
    store = load_store()
    results: list[CaseResult] = []
    kinds = tuple(kinds)
    for protocol in protocols:
        card = make_card(protocol, store)
        for case in cases(card, kinds, step, sws):
            result = run_case(card, case)
            results.append(result)
            if progress is not None:
                progress(result)
    return results


@dataclass
class Row:
    cases: int = 0
    passed: int = 0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    max_seconds: float = 0.0


def summarize(results: Iterable[CaseResult]) -> dict[tuple[str, str], Row]:
    rows: dict[tuple[str, str], Row] = {}
    for r in results:
        row = rows.setdefault((r.case.protocol, r.case.kind), Row())
        row.cases += 1
        row.passed += r.passed
        row.outcomes[r.outcome] += 1
        row.max_seconds = max(row.max_seconds, r.seconds)
    return rows


def render(results: list[CaseResult]) -> str:
    rows = summarize(results)
    lines = [f"{'protocol':<8} {'fault':<14} {'cases':>5} {'passed':>6} {'failed':>6} {'max s':>6}  outcomes"]
    for (protocol, kind), row in sorted(rows.items()):
        outcomes = ", ".join(f"{k} ×{v}" for k, v in row.outcomes.most_common())
        lines.append(f"{protocol:<8} {kind:<14} {row.cases:>5} {row.passed:>6} {row.cases - row.passed:>6} "
                     f"{row.max_seconds:>6.2f}  {outcomes}")
    total, passed = len(results), sum(r.passed for r in results)
    lines.append(f"total: {passed}/{total} cases passed; bound {BOUND_SECONDS} s CPU per read, "
                 "next tap verified after every case")
    exit1 = collections.Counter(r.outcome for r in results if r.outcome.startswith("error:") and
                                r.outcome.endswith(f"/{UNEXPECTED_EXIT}"))
    if exit1:
        lines.append("errors without an exit code of their own ('idagent read' would exit 1): "
                     + ", ".join(f"{k} ×{v}" for k, v in exit1.items()))
    failed = [r for r in results if not r.passed]
    for r in failed[:40]:
        lines.append(f"  FAILED {r.case.label}: {r.outcome} ({r.seconds:.2f} s) {r.why}")
    return "\n".join(lines)


def to_json(results: list[CaseResult]) -> dict[str, Any]:
    rows = summarize(results)
    return {
        "total": len(results), "passed": sum(r.passed for r in results),
        "rows": [{"protocol": p, "fault": k, "cases": row.cases, "passed": row.passed,
                  "outcomes": dict(row.outcomes), "max_seconds": round(row.max_seconds, 3)}
                 for (p, k), row in sorted(rows.items())],
        "failed": [{"case": r.case.label, "outcome": r.outcome, "why": r.why} for r in results if not r.passed],
    }
