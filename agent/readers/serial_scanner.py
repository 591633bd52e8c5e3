"""Handheld QR scanner in USB-CDC mode (a virtual COM port, /dev/ttyACM*).

domain.md: keyboard-wedge (HID) mode cannot type Vietnamese reliably; USB-CDC mode
delivers the payload's raw bytes, commonly at 9600 or 115200 8N1 with a CR or CRLF
suffix. Port, speed and terminator are configurable (config ``qr.serial_*``).

The bytes are kept raw (text repair happens in ``agent.qr``). A scanner that is
unplugged is reopened with exponential backoff; every wait is on the stop event, so
there is no busy loop and ``stop.set()`` ends the loop at once.

This is the only module that imports pyserial for QR scanners (design.md layers).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import serial

from agent.errors import ConfigError

logger = logging.getLogger(__name__)

TERMINATORS: dict[str, bytes] = {"CR": b"\r", "CRLF": b"\r\n", "LF": b"\n"}
#: a code longer than this without a terminator is garbage (a real card QR is ~150 B)
MAX_PAYLOAD = 8192


class SerialConfigError(ConfigError):
    exit_code = 3


class Port(Protocol):
    def read(self, size: int = 1) -> bytes: ...

    @property
    def in_waiting(self) -> int: ...

    def close(self) -> None: ...


def _open_serial(port: str, baud: int, timeout: float) -> Port:
    return serial.Serial(port, baudrate=baud, timeout=timeout)  # type: ignore[no-any-return]


class SerialScanner:
    """Payloads from a USB-CDC scanner, terminator removed, bytes untouched."""

    def __init__(self, port: str, *, baud: int = 9600, terminator: str = "CR",
                 read_timeout: float = 0.2, idle_flush: float = 0.0,
                 backoff: tuple[float, float] = (0.5, 10.0),
                 opener: Callable[[str, int, float], Port] = _open_serial,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not port:
            raise SerialConfigError("no serial scanner port configured", hint="Set qr.serial_port, e.g. /dev/ttyACM0.")
        if terminator.upper() not in TERMINATORS:
            raise SerialConfigError(f"qr.serial_terminator must be one of {', '.join(TERMINATORS)}")
        self.port = port
        self.baud = baud
        self.terminator = TERMINATORS[terminator.upper()]
        self.read_timeout = read_timeout
        #: emit a buffer without terminator after this many idle seconds (0: never),
        #: for scanners configured with no suffix
        self.idle_flush = idle_flush
        self.backoff = backoff
        self.opener = opener
        self.clock = clock
        self.reconnects = 0
        self.connected = False

    def payloads(self, stop: threading.Event) -> Iterator[bytes]:
        """Yield raw payloads until ``stop`` is set; survive unplugging."""
        delay = self.backoff[0]
        while not stop.is_set():
            try:
                port = self.opener(self.port, self.baud, self.read_timeout)
            except (serial.SerialException, OSError) as exc:
                logger.info("QR scanner %s not available (%s); retrying in %.1f s", self.port,
                            type(exc).__name__, delay)
                stop.wait(delay)
                delay = min(delay * 2, self.backoff[1])
                continue
            logger.info("QR scanner %s connected", self.port)
            self.connected = True
            delay = self.backoff[0]
            try:
                yield from self._read(port, stop)
            except (serial.SerialException, OSError) as exc:
                logger.warning("QR scanner %s lost (%s); reconnecting", self.port, type(exc).__name__)
                self.reconnects += 1
                stop.wait(delay)
            finally:
                self.connected = False
                _close(port)

    def _read(self, port: Port, stop: threading.Event) -> Iterator[bytes]:
        buffer = bytearray()
        last_data = self.clock()
        while not stop.is_set():
            chunk = port.read(max(1, port.in_waiting))
            if chunk:
                buffer += chunk
                last_data = self.clock()
                while (end := buffer.find(self.terminator)) >= 0:
                    payload = bytes(buffer[:end])
                    del buffer[:end + len(self.terminator)]
                    if payload:
                        yield _strip_stray(payload, self.terminator)
                if len(buffer) > MAX_PAYLOAD:
                    logger.warning("QR scanner sent %d bytes without terminator; discarded", len(buffer))
                    buffer.clear()
            elif buffer and self.idle_flush and self.clock() - last_data >= self.idle_flush:
                yield _strip_stray(bytes(buffer), self.terminator)
                buffer.clear()


def _strip_stray(payload: bytes, terminator: bytes) -> bytes:
    """A scanner set to CRLF while we expect CR leaves a leading LF on the next code."""
    if terminator == b"\r":
        return payload.lstrip(b"\n")
    return payload.rstrip(b"\r")


def _close(port: Any) -> None:
    try:
        port.close()
    except (serial.SerialException, OSError):
        logger.debug("closing a vanished serial port failed")
