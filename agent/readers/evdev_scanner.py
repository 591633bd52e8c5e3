"""Keyboard-wedge (USB HID) QR scanners read through Linux evdev, grabbed so the
keystrokes do not also land in whatever window has focus.

A wedge scanner types the payload as key presses in a keyboard layout (US here). It
cannot type Vietnamese: letters with diacritics are dropped or typed as "?" (domain.md),
so what arrives is flagged by ``agent.qr.repair``. One thing is recoverable: scanners in
"Alt mode" type each non-ASCII byte as Alt + keypad decimal code (Windows convention:
a leading 0 means the CP1252 code page). We decode those to the characters they stand
for; the UTF-8-read-as-CP1252 repair then restores the text.

python-evdev is imported lazily: without it, only this source is unavailable, with a
clear error. Key codes are the kernel's (linux/input-event-codes.h), so the keymap is
testable without the library.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from agent.errors import ReaderError

logger = logging.getLogger(__name__)

# linux/input-event-codes.h
EV_KEY = 1
KEY_ENTER, KEY_KPENTER, KEY_TAB = 28, 96, 15
KEY_LEFTSHIFT, KEY_RIGHTSHIFT, KEY_LEFTALT, KEY_RIGHTALT, KEY_CAPSLOCK = 42, 54, 56, 100, 58
KEY_DOWN, KEY_UP, KEY_HOLD = 1, 0, 2

#: US layout: key code → (plain, shifted)
US_KEYMAP: dict[int, tuple[str, str]] = {
    2: ("1", "!"), 3: ("2", "@"), 4: ("3", "#"), 5: ("4", "$"), 6: ("5", "%"), 7: ("6", "^"),
    8: ("7", "&"), 9: ("8", "*"), 10: ("9", "("), 11: ("0", ")"), 12: ("-", "_"), 13: ("=", "+"),
    16: ("q", "Q"), 17: ("w", "W"), 18: ("e", "E"), 19: ("r", "R"), 20: ("t", "T"), 21: ("y", "Y"),
    22: ("u", "U"), 23: ("i", "I"), 24: ("o", "O"), 25: ("p", "P"), 26: ("[", "{"), 27: ("]", "}"),
    30: ("a", "A"), 31: ("s", "S"), 32: ("d", "D"), 33: ("f", "F"), 34: ("g", "G"), 35: ("h", "H"),
    36: ("j", "J"), 37: ("k", "K"), 38: ("l", "L"), 39: (";", ":"), 40: ("'", '"'), 41: ("`", "~"),
    43: ("\\", "|"), 44: ("z", "Z"), 45: ("x", "X"), 46: ("c", "C"), 47: ("v", "V"), 48: ("b", "B"),
    49: ("n", "N"), 50: ("m", "M"), 51: (",", "<"), 52: (".", ">"), 53: ("/", "?"), 57: (" ", " "),
    55: ("*", "*"), 74: ("-", "-"), 78: ("+", "+"), 83: (".", "."), 98: ("/", "/"),
}
#: keypad digits (for Alt codes and NumLock typing)
KEYPAD_DIGITS: dict[int, str] = {82: "0", 79: "1", 80: "2", 81: "3", 75: "4", 76: "5", 77: "6",
                                 71: "7", 72: "8", 73: "9"}


class EvdevUnavailableError(ReaderError):
    code = "evdev_unavailable"
    hint = ("Install python-evdev (pip install evdev) for keyboard-wedge scanners, or switch the "
            "scanner to USB-CDC (virtual COM) mode and set qr.serial_port instead.")
    exit_code = 4


@dataclass(frozen=True, repr=False)
class TypedLine:
    """One scanned code as typed. ``lost`` counts keys the keymap could not type."""

    text: str
    lost: int = 0
    alt_codes: int = 0

    def __repr__(self) -> str:
        return f"TypedLine(chars={len(self.text)}, lost={self.lost}, alt_codes={self.alt_codes})"


class KeyDecoder:
    """Turns key events into text lines, US layout, with Alt+keypad codes."""

    def __init__(self, keymap: dict[int, tuple[str, str]] | None = None) -> None:
        self.keymap = keymap or US_KEYMAP
        self._shift = False
        self._alt = False
        self._caps = False
        self._alt_digits = ""
        self._chars: list[str] = []
        self._lost = 0
        self._alt_codes = 0

    def feed(self, code: int, value: int) -> TypedLine | None:
        """One EV_KEY event; returns a line when Enter ends it."""
        if code in (KEY_LEFTSHIFT, KEY_RIGHTSHIFT):
            self._shift = value != KEY_UP
            return None
        if code in (KEY_LEFTALT, KEY_RIGHTALT):
            self._alt = value != KEY_UP
            if value == KEY_UP and self._alt_digits:
                self._chars.append(_alt_code_char(self._alt_digits))
                self._alt_codes += 1
                self._alt_digits = ""
            return None
        if value != KEY_DOWN:
            return None
        if code == KEY_CAPSLOCK:
            self._caps = not self._caps
            return None
        if code in (KEY_ENTER, KEY_KPENTER):
            line = TypedLine("".join(self._chars), self._lost, self._alt_codes)
            self._chars, self._lost, self._alt_codes = [], 0, 0
            return line
        if self._alt and code in KEYPAD_DIGITS:
            self._alt_digits += KEYPAD_DIGITS[code]
            return None
        if code in KEYPAD_DIGITS:
            self._chars.append(KEYPAD_DIGITS[code])
        elif code == KEY_TAB:
            self._chars.append("\t")
        elif code in self.keymap:
            plain, shifted = self.keymap[code]
            upper = self._shift != (self._caps and plain.isalpha())
            self._chars.append(shifted if upper else plain)
        else:
            self._lost += 1
        return None


def _alt_code_char(digits: str) -> str:
    """Windows Alt codes: "0nnn" is the ANSI code page (CP1252), "nnn" the OEM one
    (CP437)."""
    number = int(digits) % 256
    codec = "cp1252" if digits.startswith("0") else "cp437"
    try:
        return bytes([number]).decode(codec)
    except UnicodeDecodeError:
        return chr(number)  # CP1252's undefined bytes, as a Latin-1 decoder would


def decode_events(events: Iterable[tuple[int, int, int]]) -> Iterator[TypedLine]:
    """(type, code, value) triples → lines; for tests and replays."""
    decoder = KeyDecoder()
    for etype, code, value in events:
        if etype == EV_KEY:
            line = decoder.feed(code, value)
            if line is not None:
                yield line


def _evdev() -> Any:
    try:
        import evdev
    except ImportError:
        raise EvdevUnavailableError("python-evdev is not installed") from None
    return evdev


class EvdevScanner:
    """Lines typed by the scanner at ``device`` (e.g. /dev/input/by-id/…-event-kbd)."""

    def __init__(self, device: str, *, grab: bool = True) -> None:
        self.device_path = device
        self.grab = grab

    def lines(self, stop: threading.Event) -> Iterator[TypedLine]:
        evdev = _evdev()
        try:
            device = evdev.InputDevice(self.device_path)
        except OSError as exc:
            raise EvdevUnavailableError(f"cannot open input device {self.device_path!r}: {exc.strerror}",
                                        hint="Check qr.evdev_device and that the agent may read /dev/input "
                                             "(the udev rule in udev/).") from None
        if self.grab:
            device.grab()
        decoder = KeyDecoder()
        import select

        try:
            while not stop.is_set():
                ready, _, _ = select.select([device.fd], [], [], 0.5)
                if not ready:
                    continue
                for event in device.read():
                    if event.type == EV_KEY:
                        line = decoder.feed(event.code, event.value)
                        if line is not None:
                            if line.lost:
                                logger.warning("keyboard-wedge scanner: %d keys not typeable in the US "
                                               "layout were lost", line.lost)
                            yield line
        finally:
            if self.grab:
                try:
                    device.ungrab()
                except OSError:
                    logger.debug("ungrab failed on a vanished device")
            device.close()
