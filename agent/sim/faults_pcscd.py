"""The fault cases over the real PC/SC stack (``bench/fault_matrix.py --pcscd``): a
private pcscd with the vpcd driver in its own mount namespace (the machine's pcscd and
other users are untouched); pcscd killed and started again, or the vpcd card client
stopped, just before APDU ``index``. ``run_pcscd_matrix`` runs this module as a child
process (``python -m agent.sim.faults_pcscd OUT``) inside ``unshare -m``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from agent.errors import IdAgentError
from agent.icao.chip_read import ChipRead
from agent.icao.read import read_chip
from agent.icao.trust import TrustStore
from agent.identity.from_chip import identity_of
from agent.readers.apdu import ApduChannel
from agent.readers.base import CardConnection, WrappedConnection
from agent.sim.faults import (
    BOUND_SECONDS,
    HANG_SECONDS,
    PCSCD_KINDS,
    PROFILES,
    ROOT,
    TODAY,
    Card,
    Case,
    CaseResult,
    judge,
    key_for,
    load_store,
    watchdog,
)
from agent.sim.profile import load_profile, virtual_chip

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
        from concurrent.futures import ThreadPoolExecutor

        # a random start: two test runs on one machine rarely pick the same ports
        self.port = PRIVATE_PORT + 2 * random.randrange(128) - 2
        self.proc: Any = None
        #: the thread that starts every pcscd of ours. The process dies with the thread
        #: that started it (_die_with_parent: PR_SET_PDEATHSIG acts on the parent
        #: *thread*), and a restart mid-read is asked for from whichever thread sends
        #: the read's commands, which ends with the read (agent.icao.deadline)
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="private-pcscd")

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
        self.proc = self._spawner.submit(
            subprocess.Popen, [str(self._binary()), "--foreground", "-c", str(conf)], stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent).result()
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
    ever left behind (prctl PR_SET_PDEATHSIG). Linux sends it when the thread that
    started the child ends, not only the process: PrivatePcscd starts it from a thread
    of its own."""
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
        self.key = key_for(PCSC_PROFILE, profile)
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
               sys.executable, "-m", "agent.sim.faults_pcscd", str(out), "--step", str(step)]
        if indices:
            cmd += ["--indices", ",".join(map(str, indices))]
        # this tree's agent package, whatever the caller's working directory
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"pcscd worker failed ({proc.returncode}): {proc.stderr[-2000:]}")
        rows = json.loads(out.read_text())
    return [CaseResult(Case(r["protocol"], r["kind"], r["index"]), r["outcome"], r["seconds"], r["passed"],
                       r["why"], r["next_tap"]) for r in rows]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m agent.sim.faults_pcscd")
    parser.add_argument("out", type=Path)
    parser.add_argument("--step", type=int, default=8)
    parser.add_argument("--indices", help="comma-separated APDU indices")
    cli = parser.parse_args()
    pcscd_worker(cli.step, cli.out, [int(i) for i in cli.indices.split(",")] if cli.indices else None)
