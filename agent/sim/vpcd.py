"""The card side of the vpcd socket protocol: puts a ``VirtualCard`` "on" a reader of
the real PC/SC stack (pcscd + Debian's vsmartcard-vpcd driver).

Protocol (domain.md, "The virtual PC/SC reader"): the card is a TCP client of vpcd
(localhost:35963 for "Virtual PCD 00 00", 35964 for "... 00 01"). Every message is a
2-byte big-endian length + payload. A 1-byte payload from vpcd is a control (0 power
off, 1 power on, 2 reset, 4 get ATR, answered with the ATR); a longer one is a command
APDU, answered with response data + SW. Disconnecting = card removed; connecting again
= card inserted.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import IO

from agent.errors import ReaderError
from agent.readers.apdu import SW
from agent.sim.card import VirtualCard
from agent.sim.statedir import open_private, state_dir

logger = logging.getLogger(__name__)

VPCD_HOST = "localhost"
#: port of "Virtual PCD 00 00" (reader.conf: CHANNELID 0x8C7B); slot n listens on 35963 + n
VPCD_PORT = 0x8C7B
VPCD_READER = "Virtual PCD 00 00"


class Control(enum.IntEnum):
    POWER_OFF = 0
    POWER_ON = 1
    RESET = 2
    GET_ATR = 4


def reader_name(port: int = VPCD_PORT) -> str:
    """The PC/SC name vpcd gives the slot listening on ``port``."""
    return f"Virtual PCD 00 {port - VPCD_PORT:02X}"


class VpcdClient:
    """Serves one virtual card to vpcd, in the calling thread (``run``) or a background
    thread (``start``/``stop``). ``remove()`` disconnects (the reader sees the card
    leave); ``insert()`` connects again, optionally with another card.

    While running it holds a per-port lock file so that two processes on this machine
    (two test runs, a test run and ``idagent sim``) do not both put a card on one slot:
    vpcd would queue the second connection and hand it the first one's reader."""

    def __init__(self, card: VirtualCard, host: str = VPCD_HOST, port: int = VPCD_PORT, *,
                 inserted: bool = True, backoff_initial: float = 0.05, backoff_max: float = 2.0,
                 lock_timeout: float = 60.0, lock: bool = True) -> None:
        self.card = card
        self.host = host
        self.port = port
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.lock_timeout = lock_timeout
        #: hold the per-machine slot lock (off only for private test servers on random ports)
        self.lock = lock
        self._cond = threading.Condition()
        self._inserted = inserted
        self._stopping = False
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock_file: IO[str] | None = None
        self._atr = b""
        #: set while a TCP connection to vpcd is up
        self.connected = threading.Event()
        #: set once vpcd has spoken to the current connection (it polls with GET ATR)
        self.seen = threading.Event()

    @property
    def reader(self) -> str:
        return reader_name(self.port)

    # -- lifecycle --
    def start(self) -> VpcdClient:
        """Take the slot lock (raises ReaderError if another process keeps it) and serve
        in a daemon thread."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._acquire_slot()
        with self._cond:
            self._stopping = False
        self._thread = threading.Thread(target=self._serve_forever, name=f"vpcd-{self.port}", daemon=True)
        self._thread.start()
        return self

    def run(self) -> None:
        """Serve in this thread until ``stop()`` (from another thread or a signal handler)."""
        self._acquire_slot()
        try:
            self._serve_forever()
        finally:
            self._release_slot()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._drop_socket()
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._release_slot()

    def __enter__(self) -> VpcdClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- card in / out --
    def insert(self, card: VirtualCard | None = None) -> None:
        with self._cond:
            if card is not None:
                self.card = card
            self._inserted = True
            self._cond.notify_all()

    def remove(self, timeout: float = 2.0) -> None:
        """Take the card off: returns once the connection is closed (vpcd then reports
        the card gone at its next presence poll)."""
        with self._cond:
            self._inserted = False
            self._drop_socket()
            self._cond.notify_all()
            if threading.current_thread() is not self._thread:
                self._cond.wait_for(lambda: self._sock is None, timeout=timeout)

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    # -- slot lock --
    def _lock_path(self) -> Path:
        # the per-user private folder (agent.sim.statedir), not a shared /tmp/idagent-vpcd
        return state_dir() / f"vpcd-{self.port}.lock"

    def _acquire_slot(self) -> None:
        if self._lock_file is not None or not self.lock:
            return
        # held for the client's lifetime; never through a symbolic link
        handle = os.fdopen(open_private(self._lock_path(), os.O_RDWR | os.O_CREAT), "a+")
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    handle.close()
                    raise ReaderError(
                        f"{self.reader} (port {self.port}) is in use by another virtual card (pid {holder})",
                        hint="Stop the other 'idagent sim' or test run, then try again.",
                    ) from None
                time.sleep(0.1)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    def _release_slot(self) -> None:
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                self._lock_file.truncate(0)
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    # -- the loop --
    def _serve_forever(self) -> None:
        backoff = self.backoff_initial
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or self._inserted)
                if self._stopping:
                    return
            sock = self._connect()
            if sock is None:
                # vpcd not listening (pcscd down or starting): back off, interruptibly
                with self._cond:
                    self._cond.wait_for(lambda: self._stopping or not self._inserted, timeout=backoff)
                backoff = min(backoff * 2, self.backoff_max)
                continue
            backoff = self.backoff_initial
            try:
                self._serve(sock)
            finally:
                self._disconnected(sock)

    def _connect(self) -> socket.socket | None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=2.0)
        except OSError as exc:
            logger.debug("vpcd at %s:%d not reachable: %s", self.host, self.port, exc)
            return None
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._cond:
            if self._stopping or not self._inserted:
                sock.close()
                return None
            self._sock = sock
            self._atr = self.card.power_on()
        self.connected.set()
        logger.info("virtual card connected to vpcd %s:%d (%s)", self.host, self.port, self.reader)
        return sock

    def _disconnected(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.close()
        self.connected.clear()
        self.seen.clear()
        self.card.power_off()
        with self._cond:
            if self._sock is sock:
                self._sock = None
            self._cond.notify_all()
        logger.info("virtual card disconnected from vpcd %s:%d", self.host, self.port)

    def _drop_socket(self) -> None:
        """Wake the serving thread: shutting the socket down makes its recv return."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    def _serve(self, sock: socket.socket) -> None:
        while True:
            message = _recv_message(sock)
            if message is None:
                return
            self.seen.set()
            answer = self._handle(message)
            if answer is not None:
                try:
                    sock.sendall(len(answer).to_bytes(2, "big") + answer)
                except OSError:
                    return

    def _handle(self, message: bytes) -> bytes | None:
        if len(message) == 1:
            return self._control(message[0])
        try:
            response = self.card.process(message)
        except Exception:  # a bug in a card model must not take the reader down with it
            logger.exception("virtual card failed on a command (header %s)", message[:4].hex())
            return SW.NO_PRECISE_DIAGNOSIS.to_bytes(2, "big")
        return bytes(response)

    def _control(self, code: int) -> bytes | None:
        if code == Control.POWER_OFF:
            self.card.power_off()
        elif code == Control.POWER_ON:
            self._atr = self.card.power_on()
        elif code == Control.RESET:
            self._atr = self.card.reset()
        elif code == Control.GET_ATR:
            return self._atr
        else:
            logger.warning("vpcd sent unknown control byte %d", code)
        return None


def _quickack(sock: socket.socket) -> None:
    """Acknowledge at once. vpcd writes the 2-byte length and the payload in separate
    sends; with Nagle on its side and delayed ACKs on ours, each command would stall
    about 40 ms waiting for our ACK. Linux resets TCP_QUICKACK, so it is set per read."""
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if quickack is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < size:
        _quickack(sock)
        try:
            chunk = sock.recv(size - len(buf))
        except OSError:
            return None
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _recv_message(sock: socket.socket) -> bytes | None:
    header = _recv_exact(sock, 2)
    if header is None:
        return None
    size = int.from_bytes(header, "big")
    if size == 0:
        return b""
    return _recv_exact(sock, size)
