"""Fault injection on the card path (issue 8, part 2): the matrix of cases × outcomes.

Every case is one full read (``agent.icao.read.read_chip``: access control, every
file, parsing, passive + chip + active authentication) of a synthetic card on the
virtual chip (``agent.sim``), in process through ``agent.readers.sim.SimBackend``,
with ONE fault injected at APDU number ``index`` (1-based, counted at the
connection, so GET RESPONSEs count too):

* ``remove``  the card leaves the reader just before APDU ``index``;
* ``detach``  the reader itself is unplugged just before APDU ``index``;
* ``corrupt`` one byte of the answer to APDU ``index`` is flipped (bit 0), a data
              byte when there is data, else a status byte;
* ``sw``      APDU ``index`` is answered with an unexpected status word and no data
              (the chip never sees the command): 6F00, 6A82, 6982, 6700, 6988, 6300,
              6D00, and a bare 9000;
* ``reset``   the card is reset (power cycle: sessions and selection lost) just
              before APDU ``index``.

plus, over the real PC/SC stack (``--pcscd``: a private pcscd with the vpcd driver in
its own mount namespace, so the machine's pcscd and other users are untouched):

* ``pcscd-restart``  pcscd is killed just before APDU ``index`` and started again;
* ``unplug``         the vpcd card client is stopped (the reader loses its card
                     link) just before APDU ``index``.

A case PASSES when all of these hold:

1. the read costs at most ``BOUND_SECONDS`` of CPU time (in process the read never
   waits on anything: on a machine shared with other jobs its wall-clock time measures
   them, not the read) and ends within ``WALL_BOUND_SECONDS``;
2. it ends either in an ``IdAgentError`` with a hint and a specific error code (what
   the daemon shows the clerk: not the base class's generic "error"), or in a returned
   read that, if it says
   ``verified``, is complete and carries exactly the identity of a clean read (no
   half-read or altered identity passes as verified);
3. the NEXT tap (the same card laid down again) reads cleanly and verifies.

    .venv/bin/python bench/fault_matrix.py                  # full in-process matrix
    .venv/bin/python bench/fault_matrix.py --step 3         # every 3rd APDU index
    .venv/bin/python bench/fault_matrix.py --pcscd          # + pcscd restart / unplug
    .venv/bin/python bench/fault_matrix.py --pcscd-only --pcscd-step 4
    .venv/bin/python bench/fault_matrix.py --json           # machine-readable

tests/robustness/test_robust_faults.py runs a reduced matrix in CI.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import json
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from agent.errors import IdAgentError  # noqa: E402
from agent.icao.keys import AccessKey, CanKey  # noqa: E402
from agent.icao.read import ChipRead, read_chip  # noqa: E402
from agent.icao.trust import TrustStore  # noqa: E402
from agent.identity.chip import identity_of  # noqa: E402
from agent.readers.apdu import ApduChannel  # noqa: E402
from agent.readers.base import CardConnection, WrappedConnection  # noqa: E402
from agent.readers.sim import DEFAULT_READER, SimBackend  # noqa: E402
from agent.sim.card import sw_bytes  # noqa: E402
from agent.sim.chip import VirtualChip  # noqa: E402
from agent.sim.profile import load_profile, virtual_chip  # noqa: E402

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


def _key_for(protocol: str, profile: Any) -> AccessKey:
    if protocol == "PACE":
        return CanKey(profile.can)
    return profile.mrz_key


def load_store() -> TrustStore:
    return TrustStore.load(ROOT / "fixtures" / "pki" / "store")


def make_card(protocol: str, store: TrustStore | None = None) -> Card:
    profile = load_profile(PROFILES[protocol])
    card = Card(protocol, virtual_chip(profile), _key_for(protocol, profile), SimBackend(extended_length="auto"),
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


# -- over the real PC/SC stack: pcscd + vpcd --------------------------------------------

#: the vpcd driver Debian's vsmartcard-vpcd installs (domain.md)
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
#: first TCP port of our private vpcd slots (the system's are 0x8C7B/0x8C7C)
PRIVATE_PORT = 0x8D10
PRIVATE_PORT_LAST = 0x8FFF
PCSC_READER = "Virtual PCD 00 00"
PCSC_PROFILE = "PACE"
#: how long pcscd (and vpcd's 400 ms presence poll) may take to show the card
CARD_WAIT = 15.0


def pcscd_prerequisites() -> list[str]:
    """What is missing to run the pcscd cases (empty when all is there)."""
    import os
    import shutil

    missing = []
    if shutil.which("pcscd") is None and not Path("/usr/sbin/pcscd").exists():
        missing.append("pcscd")
    if not VPCD_DRIVER.exists():
        missing.append("vsmartcard-vpcd")
    if shutil.which("unshare") is None or os.geteuid() != 0:
        missing.append("root + unshare (a private pcscd in its own mount namespace)")
    return missing


class PrivatePcscd:
    """A pcscd of our own, with the vpcd driver on private ports. It runs inside the
    worker's mount namespace, where /run/pcscd is a private tmpfs (run_pcscd_matrix):
    the machine's pcscd, and whoever uses it, never notice. Each start takes the next
    pair of vpcd ports: a pcscd stopped while a card was connected leaves its
    listening ports in TIME_WAIT for 60 s (agent/sim/pcscd.py)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        import random

        # a random start: two test runs on one machine rarely pick the same ports
        self.port = PRIVATE_PORT + 2 * random.randrange(128) - 2
        self.proc: Any = None

    def start(self, timeout: float = 10.0, attempts: int = 5) -> None:
        """Start on the next free pair of ports (another test run may use some: TCP
        ports are not part of the mount namespace)."""
        for _ in range(attempts):
            self.port = _free_port_pair(self.port + 2)
            try:
                self._start_on_port(timeout)
                return
            except RuntimeError:
                self.stop()
        raise RuntimeError(f"private pcscd did not come up with the vpcd reader in {attempts} attempts")

    def _start_on_port(self, timeout: float) -> None:
        import subprocess

        from agent.readers.pcsc import pcscd_answers, reader_names

        conf = self.workdir / f"conf-{self.port}"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "vpcd").write_text(f'FRIENDLYNAME "Virtual PCD"\nDEVICENAME   /dev/null:0x{self.port:X}\n'
                                   f"LIBPATH      {VPCD_DRIVER}\nCHANNELID    0x{self.port:X}\n")
        log = open(self.workdir / "pcscd.log", "ab")  # noqa: SIM115 - kept open for the daemon's life
        self.proc = subprocess.Popen([str(self._binary()), "--foreground", "-c", str(conf)],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"private pcscd exited with {self.proc.returncode}")
            try:
                if pcscd_answers() and PCSC_READER in reader_names():
                    return
            except IdAgentError:
                pass
            time.sleep(0.05)
        raise RuntimeError("private pcscd did not show the vpcd reader")

    def _binary(self) -> Path:
        """pcscd under another name: agent.sim.pcscd (other test runs) looks for live
        processes named "pcscd" and would take ours, which they cannot reach, for a
        system daemon that does not answer."""
        import shutil

        link = self.workdir / "faultpcscd"
        if not link.exists():
            link.symlink_to(shutil.which("pcscd") or "/usr/sbin/pcscd")
        return link

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except Exception:  # noqa: BLE001 - a pcscd that ignores SIGTERM is killed
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the worker dies, so no private pcscd is
    ever left behind (prctl PR_SET_PDEATHSIG)."""
    import ctypes
    import signal as signals

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signals.SIGTERM), 0, 0, 0)


def _free_port_pair(start: int) -> int:
    """The first even port >= ``start`` where both it and the next one can be bound
    (no listener, no TIME_WAIT: vpcd binds without SO_REUSEADDR)."""
    import random
    import socket

    port = start + (start % 2)
    for _ in range(200):
        if port + 1 > PRIVATE_PORT_LAST:
            port = PRIVATE_PORT + 2 * random.randrange(64)
        socks = []
        try:
            for candidate in (port, port + 1):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(sock)
                sock.bind(("0.0.0.0", candidate))
            return port
        except OSError:
            port += 2
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free pair of TCP ports for a private vpcd")


class PcscDesk:
    """The worker's desk: the private pcscd, a vpcd card client, one PcscBackend kept
    across cases (as the daemon keeps it), the synthetic PACE card."""

    def __init__(self, workdir: Path, store: TrustStore) -> None:
        from agent.readers.pcsc import PcscBackend

        profile = load_profile(PROFILES[PCSC_PROFILE])
        self.chip = virtual_chip(profile)
        self.key = _key_for(PCSC_PROFILE, profile)
        self.store = store
        self.pcscd = PrivatePcscd(workdir)
        self.pcscd.start()
        self.client: Any = None
        self.backend = PcscBackend()
        try:
            self.plug()
        except BaseException:
            self.close()
            raise

    def plug(self) -> None:
        """(Re)connect the card client to the current pcscd's vpcd port."""
        from agent.readers.pcsc import wait_for_card
        from agent.sim.vpcd import VpcdClient

        if self.client is not None:
            self.client.stop()
        self.client = VpcdClient(self.chip, port=self.pcscd.port).start()
        if not wait_for_card(PCSC_READER, present=True, timeout=CARD_WAIT):
            raise RuntimeError("the virtual card did not show up in the private pcscd")

    def unplug(self) -> None:
        self.client.stop()
        self.client = None

    def restart_pcscd(self) -> None:
        self.pcscd.stop()
        if self.client is not None:
            self.client.stop()
            self.client = None
        self.pcscd.start()
        self.plug()

    def tap(self, case: Case | None) -> tuple[ChipRead, int]:
        conn = _PcscFault(self.backend.connect(PCSC_READER), case, self)
        try:
            read = read_chip(ApduChannel(conn), self.key, trust=self.store, today=TODAY)
        finally:
            try:
                conn.close()
            except IdAgentError:
                pass
        return read, conn.count

    def close(self) -> None:
        if self.client is not None:
            self.client.stop()
        self.backend.close()
        self.pcscd.stop()


class _PcscFault(WrappedConnection):
    def __init__(self, inner: CardConnection, case: Case | None, desk: PcscDesk) -> None:
        super().__init__(inner)
        self.case = case
        self.desk = desk
        self.count = 0

    def transmit(self, apdu: bytes) -> bytes:
        self.count += 1
        if self.case is not None and self.count == self.case.index:
            if self.case.kind == "pcscd-restart":
                self.desk.restart_pcscd()
            elif self.case.kind == "unplug":
                self.desk.unplug()
        return self.inner.transmit(apdu)


def _pcsc_case(desk: PcscDesk, clean: dict[str, Any], case: Case) -> CaseResult:
    card = Card(case.protocol, desk.chip, desk.key, None, desk.store, clean)  # type: ignore[arg-type]
    read: ChipRead | None = None
    error: BaseException | None = None
    started = time.monotonic()
    try:
        with watchdog(HANG_SECONDS):
            read, _ = desk.tap(case)
    except Exception as exc:  # judged below
        error = exc
    seconds = time.monotonic() - started
    outcome, passed, why = judge(card, read, error)
    # the restart itself (pcscd up again, vpcd's presence poll) is part of the case's
    # time, not the agent's: the bound is on the read, so allow for it
    if passed and seconds > BOUND_SECONDS + CARD_WAIT:
        passed, why = False, f"took {seconds:.1f} s"
    if desk.client is None:
        desk.plug()  # the card laid down again (reader plugged back)
    next_tap = _pcsc_next_tap(desk, clean)
    if next_tap != "verified":
        passed, why = False, (why + "; " if why else "") + f"next tap: {next_tap}"
        # diagnosis: does a backend made now (a restarted agent) read the card?
        from agent.readers.pcsc import PcscBackend

        desk.backend.close()
        desk.backend = PcscBackend()
        why += f" (a new PcscBackend: {_pcsc_next_tap(desk, clean)})"
    return CaseResult(case, outcome, seconds, passed, why, next_tap)


def _pcsc_next_tap(desk: PcscDesk, clean: dict[str, Any]) -> str:
    """The next tap through the desk's long-lived PcscBackend, as the daemon does it."""
    try:
        with watchdog(HANG_SECONDS):
            again, _ = desk.tap(None)
    except Exception as exc:  # reported: the case fails on it
        return f"{type(exc).__name__}: {exc}"
    ok = again.complete and again.verified and identity_of(again).to_dict(photo=True) == clean
    return "verified" if ok else "not verified"


def pcscd_worker(step: int, out: Path, indices: list[int] | None = None) -> None:
    """Runs inside the private mount namespace (see run_pcscd_matrix)."""
    import tempfile

    store = load_store()
    with tempfile.TemporaryDirectory(prefix="idagent-faults-pcscd-") as tmp:
        desk = PcscDesk(Path(tmp), store)
        try:
            clean_read, total = desk.tap(None)
            if not clean_read.verified:
                raise RuntimeError("clean read over the private pcscd does not verify")
            clean = identity_of(clean_read).to_dict(photo=True)
            chosen = indices or list(range(1, total + 1, step))
            results = []
            for kind in PCSCD_KINDS:
                for index in chosen:
                    results.append(_pcsc_case(desk, clean, Case(f"{PCSC_PROFILE}/pcscd", kind, index)))
        finally:
            desk.close()
    out.write_text(json.dumps([{"protocol": r.case.protocol, "kind": r.case.kind, "index": r.case.index,
                                "outcome": r.outcome, "seconds": r.seconds, "passed": r.passed, "why": r.why,
                                "next_tap": r.next_tap} for r in results]))


def run_pcscd_matrix(step: int = 8, indices: list[int] | None = None, timeout: float = 900.0) -> list[CaseResult]:
    """The pcscd-restart and unplug cases, in a child process that has its own mount
    namespace with a private /run/pcscd (unshare -m): the private pcscd's socket is
    only visible there, so the machine's pcscd is never restarted."""
    import subprocess
    import tempfile

    missing = pcscd_prerequisites()
    if missing:
        raise RuntimeError("cannot run the pcscd cases: missing " + ", ".join(missing))
    with tempfile.TemporaryDirectory(prefix="idagent-faults-") as tmp:
        out = Path(tmp) / "results.json"
        cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c",
               'mount -t tmpfs tmpfs /run/pcscd && exec "$0" "$@"',
               sys.executable, str(Path(__file__).resolve()), "--pcscd-worker", str(out), "--pcscd-step", str(step)]
        if indices:
            cmd += ["--pcscd-indices", ",".join(map(str, indices))]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"pcscd worker failed ({proc.returncode}): {proc.stderr[-2000:]}")
        rows = json.loads(out.read_text())
    return [CaseResult(Case(r["protocol"], r["kind"], r["index"]), r["outcome"], r["seconds"], r["passed"],
                       r["why"], r["next_tap"]) for r in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--step", type=int, default=1, help="inject at every N-th APDU index (default 1: all)")
    parser.add_argument("--protocol", action="append", choices=sorted(PROFILES), help="default: both")
    parser.add_argument("--kind", action="append", choices=IN_PROCESS_KINDS, help="default: all in-process kinds")
    parser.add_argument("--pcscd", action="store_true", help="also restart pcscd / unplug vpcd mid-read")
    parser.add_argument("--pcscd-only", action="store_true", help="only the pcscd restart / unplug cases")
    parser.add_argument("--pcscd-step", type=int, default=8, help="APDU index step for the pcscd cases")
    parser.add_argument("--pcscd-indices", help=argparse.SUPPRESS)
    parser.add_argument("--pcscd-worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    indices = [int(i) for i in args.pcscd_indices.split(",")] if args.pcscd_indices else None
    if args.pcscd_worker is not None:
        pcscd_worker(args.pcscd_step, args.pcscd_worker, indices)
        return 0
    started = time.monotonic()
    results: list[CaseResult] = []
    if not args.pcscd_only:
        results += run_matrix(args.protocol or ("BAC", "PACE"), args.kind or IN_PROCESS_KINDS, args.step)
    if args.pcscd or args.pcscd_only:
        results += run_pcscd_matrix(step=args.pcscd_step, indices=indices)
    if args.json:
        print(json.dumps(to_json(results), indent=2))
    else:
        print(render(results))
        print(f"({time.monotonic() - started:.0f} s)")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
