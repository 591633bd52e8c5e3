"""The configured hotkey (``[wedge] hotkey``, e.g. ``"ctrl+alt+k"``): a passive grab on the
X11 root window, so the clerk can press it from inside the desk application. Each press
calls the callback on this listener's thread (the callback types, or refuses)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from agent.wedge.wedge import WedgeConfigError
from agent.wedge.x11 import WedgeUnavailable

logger = logging.getLogger(__name__)

MODIFIERS = {"ctrl": "ControlMask", "control": "ControlMask", "shift": "ShiftMask", "alt": "Mod1Mask",
             "super": "Mod4Mask"}


def parse_hotkey(spec: str) -> tuple[list[str], str]:
    parts = [p.strip().lower() for p in spec.split("+") if p.strip()]
    if len(parts) < 2 or any(p not in MODIFIERS for p in parts[:-1]):
        raise WedgeConfigError(f"[wedge] hotkey {spec!r}: expected modifiers and a key, e.g. \"ctrl+alt+k\"",
                               hint="Modifiers: ctrl, shift, alt, super; at least one, so typing never fires it.")
    return [MODIFIERS[p] for p in parts[:-1]], parts[-1]


class HotkeyListener:
    def __init__(self, spec: str, callback: Callable[[], None], display: str | None = None) -> None:
        from Xlib import XK, X
        from Xlib import display as xdisplay
        from Xlib import error as xerror

        masks, key = parse_hotkey(spec)
        try:
            self._d = xdisplay.Display(display)
        except (xerror.DisplayError, xerror.ConnectionClosedError, OSError) as exc:
            raise WedgeUnavailable(f"no X display for the hotkey ({display or 'DISPLAY not set'})") from exc
        keysym = XK.string_to_keysym(key)
        code = self._d.keysym_to_keycode(keysym) if keysym else 0
        if not code:
            self._d.close()
            raise WedgeConfigError(f"[wedge] hotkey {spec!r}: no key {key!r} on this keyboard")
        self._mask = 0
        for m in masks:
            self._mask |= getattr(X, m)
        self._code = code
        self._callback = callback
        self._stop = threading.Event()
        root = self._d.screen().root
        # also with CapsLock / NumLock on, which the X server counts as modifiers
        for extra in (0, X.LockMask, X.Mod2Mask, X.LockMask | X.Mod2Mask):
            root.grab_key(code, self._mask | extra, True, X.GrabModeAsync, X.GrabModeAsync)
        self._d.sync()
        self._thread = threading.Thread(target=self._run, name="wedge-hotkey", daemon=True)

    def start(self) -> HotkeyListener:
        self._thread.start()
        return self

    def _run(self) -> None:
        from Xlib import X

        while not self._stop.is_set():
            if not self._d.pending_events():
                self._stop.wait(0.05)
                continue
            event = self._d.next_event()
            if event.type == X.KeyPress and event.detail == self._code:
                try:
                    self._callback()
                except Exception:  # a refusal or a bug must not end the listener
                    logger.exception("wedge: hotkey action failed")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._d.close()
