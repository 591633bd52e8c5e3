"""Linux uinput keyboard backend (python-evdev): a virtual USB keyboard in the kernel,
seen by X11, Wayland and the console alike.

How characters are typed: the kernel carries key codes, not characters; the desktop's
layout turns them into characters. So
- ASCII is typed as the key codes of a US layout (Shift for capitals and symbols): the
  desk's layout must be US (or a Latin layout that agrees on those keys);
- any other character (Vietnamese letters) is typed by the Unicode entry sequence of
  GTK and IBus (ISO/IEC 14755 style): Ctrl+Shift+U, the code point in hex, Space. It
  works in GTK applications and wherever IBus is the input method (Chromium, Firefox,
  LibreOffice under IBus); an application outside both gets the hex digits instead, so
  ``[wedge] backend = "x11"`` is the right choice on an X11 desktop. Never Alt-codes.

uinput has no notion of windows: the window title is checked (and the window
activated) through X11 when a display is available; without one (Wayland, console)
nothing is typed, since the target window cannot be checked.
"""

from __future__ import annotations

import os
import time
from typing import Any

from agent.wedge.x11 import WedgeUnavailable

DEVICE = "/dev/uinput"

#: US layout: character → (evdev key name, Shift)
_US_ROWS = [("1234567890-=", "!@#$%^&*()_+", ["KEY_1", "KEY_2", "KEY_3", "KEY_4", "KEY_5", "KEY_6", "KEY_7",
                                               "KEY_8", "KEY_9", "KEY_0", "KEY_MINUS", "KEY_EQUAL"]),
            ("[]\\;',./`", "{}|:\"<>?~", ["KEY_LEFTBRACE", "KEY_RIGHTBRACE", "KEY_BACKSLASH", "KEY_SEMICOLON",
                                         "KEY_APOSTROPHE", "KEY_COMMA", "KEY_DOT", "KEY_SLASH", "KEY_GRAVE"])]


def us_layout() -> dict[str, tuple[str, bool]]:
    keys: dict[str, tuple[str, bool]] = {" ": ("KEY_SPACE", False), "\n": ("KEY_ENTER", False),
                                         "\t": ("KEY_TAB", False)}
    for c in "abcdefghijklmnopqrstuvwxyz":
        keys[c] = (f"KEY_{c.upper()}", False)
        keys[c.upper()] = (f"KEY_{c.upper()}", True)
    for plain, shifted, names in _US_ROWS:
        for p, s, n in zip(plain, shifted, names, strict=True):
            keys[p] = (n, False)
            keys[s] = (n, True)
    return keys


US = us_layout()

Stroke = tuple[tuple[str, ...], str]  # (modifiers held, key)


def plan(text: str) -> list[Stroke]:
    """The key strokes that type ``text``: US-layout keys, or Ctrl+Shift+U hex Space."""
    strokes: list[Stroke] = []
    for ch in text:
        if ch in US:
            name, shift = US[ch]
            strokes.append((("KEY_LEFTSHIFT",) if shift else (), name))
            continue
        strokes.append((("KEY_LEFTCTRL", "KEY_LEFTSHIFT"), "KEY_U"))
        for digit in f"{ord(ch):x}":
            strokes.append(((), US[digit][0]))
        strokes.append(((), "KEY_SPACE"))
    return strokes


def check_device(path: str = DEVICE) -> str:
    """'' when uinput is usable, else what is wrong (for ``doctor``)."""
    if not os.path.exists(path):
        return f"{path} does not exist (load the module: modprobe uinput)"
    if not os.access(path, os.W_OK):
        return f"{path} is not writable by this user (see udev/60-idagent.rules: group idagent, mode 0660)"
    try:
        import evdev  # noqa: F401
    except ImportError:
        return "python-evdev is not installed (pip install 'idagent[evdev]')"
    return ""


class UInputKeyboard:
    name = "uinput"
    method = ("uinput key codes of a US layout; other characters by Ctrl+Shift+U, hex code point, Space "
              "(GTK/IBus Unicode entry)")

    def __init__(self, *, device: str = DEVICE, key_delay_s: float = 0.004) -> None:
        problem = check_device(device)
        if problem:
            raise WedgeUnavailable(f"virtual keyboard unavailable: {problem}")
        from evdev import UInput, ecodes

        self._ecodes = ecodes
        names = {n for n, _ in US.values()} | {"KEY_LEFTSHIFT", "KEY_LEFTCTRL", "KEY_U"}
        self._ui: Any = UInput({ecodes.EV_KEY: [ecodes.ecodes[n] for n in sorted(names)]},
                               name="idagent virtual keyboard", devnode=device)
        self._delay = key_delay_s
        time.sleep(0.2)  # the desktop discovers the new keyboard

    def close(self) -> None:
        self._ui.close()

    def _key(self, name: str, value: int) -> None:
        self._ui.write(self._ecodes.EV_KEY, self._ecodes.ecodes[name], value)
        self._ui.syn()

    def type_strokes(self, strokes: list[Stroke], before_each: Any = None) -> int:
        for i, (mods, key) in enumerate(strokes):
            if before_each is not None:
                before_each(i)
            for m in mods:
                self._key(m, 1)
            self._key(key, 1)
            self._key(key, 0)
            for m in reversed(mods):
                self._key(m, 0)
            time.sleep(self._delay)
        return len(strokes)
