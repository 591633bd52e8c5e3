"""Start pcscd (with the vpcd driver) when it is not running, and stop only what we
started: for tests, the demo and ``idagent sim``.

Several processes may want pcscd at once (two test runs, the demo and a test run). A
lease file records who uses a pcscd that one of us started; the last user to leave
stops it. A pcscd that was already running (systemd's) is never touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.errors import PcscUnavailableError
from agent.readers.pcsc import PCSCD_SOCKET, pcscd_answers, reader_names
from agent.sim.statedir import open_private, state_dir

logger = logging.getLogger(__name__)

VPCD_CONFIG = Path("/etc/reader.conf.d/vpcd")
#: a private 0700 folder per user (agent.sim.statedir), not fixed names in the shared /tmp
STATE_DIR = state_dir()
LOCK_FILE = STATE_DIR / "pcscd.lock"
LEASE_FILE = STATE_DIR / "pcscd.json"
LOG_FILE = STATE_DIR / "pcscd.log"
#: foreground: a child we can stop (logs go to LOG_FILE); the default config dir
#: /etc/reader.conf.d holds the vpcd driver's reader.conf
PCSCD_ARGS: tuple[str, ...] = ("--foreground",)
#: /proc/net/tcp state codes
TCP_TIME_WAIT = "06"
TCP_LISTEN = "0A"
VPCD_NAME_PREFIX = "Virtual PCD"


@dataclass(frozen=True)
class PcscdHandle:
    #: True when this context (or another idagent process) started the daemon
    managed: bool
    pid: int | None


def pcscd_binary() -> str | None:
    return shutil.which("pcscd") or next((p for p in ("/usr/sbin/pcscd", "/sbin/pcscd") if os.access(p, os.X_OK)), None)


def missing_prerequisites() -> list[str]:
    """What is missing to run pcscd with the virtual reader (empty when all is there)."""
    missing = []
    if pcscd_binary() is None:
        missing.append("pcscd (apt install pcscd)")
    if not VPCD_CONFIG.exists():
        missing.append(f"{VPCD_CONFIG} (apt install vsmartcard-vpcd)")
    return missing


@contextlib.contextmanager
def ensure_pcscd(timeout: float = 10.0) -> Iterator[PcscdHandle]:
    """Make sure a pcscd answers on its socket for the duration of the block."""
    token = f"{os.getpid()}:{uuid.uuid4().hex}"
    with _locked() as state:
        handle = _join(state, token, timeout)
    try:
        yield handle
    finally:
        with _locked() as state:
            _leave(state, token)


# --- lease bookkeeping (all under the lock file) ---------------------------------------------------

@contextlib.contextmanager
def _locked() -> Iterator[dict[str, object]]:
    with os.fdopen(open_private(LOCK_FILE, os.O_RDWR | os.O_CREAT), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            state = _load()
            yield state
            _save(state)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _load() -> dict[str, object]:
    try:
        with os.fdopen(open_private(LEASE_FILE, os.O_RDONLY), encoding="utf-8") as handle:
            data = json.loads(handle.read())
    except FileNotFoundError:
        data = {}
    except ValueError:
        data = {}
    users = [u for u in data.get("users", []) if isinstance(u, str) and _alive(int(u.split(":")[0]))]
    owner = data.get("pid")
    if not (isinstance(owner, int) and _is_pcscd(owner)):
        owner = None
    return {"pid": owner, "users": users}


def _save(state: dict[str, object]) -> None:
    tmp = LEASE_FILE.with_suffix(".tmp")
    with os.fdopen(open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w", encoding="utf-8") as handle:
        handle.write(json.dumps(state))
    tmp.replace(LEASE_FILE)


def _join(state: dict[str, object], token: str, timeout: float) -> PcscdHandle:
    users = state["users"]
    assert isinstance(users, list)
    owner = state["pid"]
    if pcscd_answers() or (_running_pcscd() and _answers_within(timeout)):
        # a daemon that exists but is slow to answer (busy, starting) is waited for: a
        # second pcscd would fail on the first one's pid file
        if isinstance(owner, int) and not _vpcd_readers_loaded():
            # ours, but it came up without the virtual readers (vpcd could not bind
            # its port): useless to everyone, so start it again once the port is free
            logger.warning("pcscd (pid %d) has no vpcd readers; restarting it", owner)
            _stop(owner)
            state["pid"] = owner = _start(timeout)
        users.append(token)
        return PcscdHandle(managed=owner is not None, pid=owner if isinstance(owner, int) else None)
    running = _running_pcscd()
    if running:
        raise PcscUnavailableError(f"pcscd (pid {running[0]}) is running but does not answer",
                                   hint="Restart it: sudo systemctl restart pcscd (or kill that process).")
    pid = _start(timeout)
    state["pid"] = pid
    users.append(token)
    return PcscdHandle(managed=True, pid=pid)


def _leave(state: dict[str, object], token: str) -> None:
    users = state["users"]
    assert isinstance(users, list)
    if token in users:
        users.remove(token)
    pid = state["pid"]
    if not users and isinstance(pid, int):
        _stop(pid)
        state["pid"] = None


# --- process control -------------------------------------------------------------------------------

def _start(timeout: float) -> int:
    binary = pcscd_binary()
    if binary is None:
        raise PcscUnavailableError("pcscd is not installed", hint="Install it: sudo apt install pcscd")
    _remove_stale_socket()
    _wait_vpcd_ports_free()
    with os.fdopen(open_private(LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND), "ab") as log:
        # its own session: a Ctrl-C in a test run must not kill the daemon under other users
        proc = subprocess.Popen([binary, *PCSCD_ARGS], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PcscUnavailableError(
                f"pcscd exited at start with status {proc.returncode} (log: {LOG_FILE})",
                hint="Another pcscd may be starting; run 'idagent doctor'.")
        if pcscd_answers() and _vpcd_readers_loaded():
            logger.info("started pcscd (pid %d)", proc.pid)
            return proc.pid
        time.sleep(0.05)
    _stop(proc.pid)
    raise PcscUnavailableError(f"pcscd did not answer with its readers within {timeout:.0f} s (log: {LOG_FILE})")


def vpcd_ports() -> list[int]:
    """The TCP ports vpcd listens on: the one in reader.conf's DEVICENAME
    (``/dev/null:0x8C7B``) and the next, one per slot ("Virtual PCD 00 00", "00 01")."""
    try:
        text = VPCD_CONFIG.read_text()
    except OSError:
        return []
    match = re.search(r"^\s*DEVICENAME\s+\S*:(0x[0-9A-Fa-f]+|\d+)\s*$", text, re.MULTILINE)
    if match is None:
        return []
    port = int(match.group(1), 0)
    return [port, port + 1]


def _ports_busy(ports: list[int]) -> bool:
    """True while one of ``ports`` cannot be bound: a closed connection lingering in
    TIME_WAIT, or a listener (a pcscd of another mount namespace sharing this network
    namespace: its vpcd holds the ports)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if (len(fields) > 3 and fields[3] in (TCP_TIME_WAIT, TCP_LISTEN)
                    and int(fields[1].rsplit(":", 1)[1], 16) in ports):
                return True
    return False


def _wait_vpcd_ports_free(limit: float = 70.0) -> None:
    """vpcd binds its ports without SO_REUSEADDR: when a daemon that had a virtual card
    connected stops, its side of the connection stays in TIME_WAIT (60 s on Linux), and
    a pcscd started meanwhile comes up without the virtual readers. Wait that out.
    (Measured: stopping pcscd with a card connected leaves 35964 in TIME_WAIT; a card
    that disconnects first leaves nothing.)"""
    ports = vpcd_ports()
    deadline = time.monotonic() + limit
    if ports and _ports_busy(ports):
        logger.warning("vpcd ports %s are busy (TIME_WAIT or another listener); waiting up to %.0f s", ports, limit)
    while ports and _ports_busy(ports) and time.monotonic() < deadline:
        time.sleep(0.25)


def _vpcd_readers_loaded() -> bool:
    """With the vpcd driver configured, pcscd is ready once it lists its readers."""
    if not VPCD_CONFIG.exists():
        return True
    try:
        return any(name.startswith(VPCD_NAME_PREFIX) for name in reader_names())
    except PcscUnavailableError:
        return False


def _answers_within(timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pcscd_answers():
            return True
        time.sleep(0.1)
    return False


def _running_pcscd() -> list[int]:
    """Pids of live pcscd processes (ours or the system's)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _is_pcscd(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def _remove_stale_socket() -> None:
    """pcscd refuses to start over a socket left by a killed daemon with no pid file.
    Only removed when no pcscd process is alive: a live daemon's socket is never touched."""
    socket_path = Path(PCSCD_SOCKET)
    if socket_path.exists() and not _running_pcscd() and not pcscd_answers():
        with contextlib.suppress(OSError):
            socket_path.unlink()
            logger.info("removed stale %s", socket_path)


def _stop(pid: int, timeout: float = 5.0) -> None:
    if not _is_pcscd(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        _reap(pid)
        time.sleep(0.02)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    _reap(pid)  # our own child: collect it so no zombie is left behind
    logger.info("stopped pcscd (pid %d)", pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _proc_stat(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None


def _alive(pid: int) -> bool:
    stat = _proc_stat(pid)
    if stat is None:
        return False
    # field 3, after the parenthesised command name: Z = zombie, X = dead
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _is_pcscd(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and "(pcscd)" in stat and _alive(pid)
