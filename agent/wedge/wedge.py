"""Type the verified card's QR text into the desk application, on the clerk's request.

Rules (issue 16, "Type the verified card into any app"):
- opt-in: ``[wedge] enabled``;
- only a verified chip read, only fields read from the chip (agent/wedge/qrtext.py);
- only when the clerk asks (the counter page's key, or ``[wedge] hotkey``), never on a read;
- only into a window whose title matches ``[wedge] window_title`` (a regular expression):
  exactly one such window, activated and checked to hold the focus before and while
  typing; no match, several matches, or the focus moving away: nothing (more) is typed.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.errors import ConfigError
from agent.identity import Identity
from agent.pipeline import Verdict
from agent.wedge.qrtext import WedgeRefused, qr_text
from agent.wedge.x11 import Target, WedgeFocusLost, WedgeUnavailable, X11Keyboard

logger = logging.getLogger(__name__)

SUFFIXES = {"enter": "\n", "tab": "\t", "none": ""}


class WedgeDisabled(WedgeRefused):
    code = "wedge_disabled"
    http_status = 403
    hint = "Typing into desk applications is off on this desk ([wedge] enabled = false)."


class WedgeNoWindow(WedgeRefused):
    code = "wedge_no_window"
    hint = "Open the desk application, then press the key again."


class WedgeSeveralWindows(WedgeRefused):
    code = "wedge_several_windows"
    hint = "Close the extra window of the desk application, or make [wedge] window_title match one window only."


class WedgeConfigError(ConfigError):
    code = "wedge_config"
    http_status = 503
    exit_code = 3
    hint = "Set [wedge] window_title to a regular expression matching the desk application's window title."


@dataclass(frozen=True)
class WedgeSettings:
    enabled: bool = False
    backend: str = "x11"
    window_title: str = ""
    display: str = ""
    hotkey: str = ""
    submit: str = "enter"
    settle_ms: int = 100

    @classmethod
    def from_config(cls, config: Any) -> WedgeSettings:
        w = config.wedge
        return cls(enabled=w.enabled, backend=w.backend, window_title=w.window_title, display=w.display,
                   hotkey=w.hotkey, submit=w.submit, settle_ms=w.settle_ms)

    def pattern(self) -> re.Pattern[str]:
        if not self.window_title:
            raise WedgeConfigError("[wedge] window_title is empty: the agent never types into whatever has focus")
        try:
            return re.compile(self.window_title)
        except re.error as exc:
            raise WedgeConfigError(f"[wedge] window_title is not a valid regular expression: {exc}") from exc


class Wedge:
    def __init__(self, settings: WedgeSettings, *,
                 x11_factory: Callable[[str | None, float], X11Keyboard] | None = None) -> None:
        self.settings = settings
        self._x11_factory = x11_factory or (lambda display, settle: X11Keyboard(display, settle_s=settle))
        self._lock = threading.Lock()  # one typing at a time

    def status(self) -> dict[str, Any]:
        """Whether typing is possible now (for ``GET /health`` and the counter page): no
        personal data, no window list; opens and closes an X connection."""
        out: dict[str, Any] = {"enabled": self.settings.enabled, "backend": self.settings.backend,
                               "window_title": self.settings.window_title, "hotkey": self.settings.hotkey or None,
                               "available": False, "problem": None, "method": None}
        if not self.settings.enabled:
            return {**out, "problem": "disabled in [wedge]"}
        try:
            self.settings.pattern()
        except WedgeConfigError as err:
            return {**out, "problem": err.message}
        state = describe(self.settings, x11_factory=self._x11_factory)
        return {**out, "available": bool(state["ok"]), "problem": state.get("problem"), "method": state.get("method")}

    def _x11(self) -> X11Keyboard:
        return self._x11_factory(self.settings.display or None, self.settings.settle_ms / 1000)

    def _target(self, x11: X11Keyboard) -> Target:
        matches = x11.find(self.settings.pattern())
        if not matches:
            raise WedgeNoWindow(f"no window's title matches [wedge] window_title {self.settings.window_title!r}: "
                                "nothing typed")
        if len({m.window.id for m in matches}) > 1:
            raise WedgeSeveralWindows(f"{len(matches)} windows match [wedge] window_title: nothing typed")
        return matches[0]

    def type_identity(self, identity: Identity, verification: Verdict) -> dict[str, Any]:
        """Type the QR text of a verified read into the configured window."""
        if not self.settings.enabled:
            raise WedgeDisabled("the keyboard wedge is off ([wedge] enabled = false): nothing typed")
        text = qr_text(identity, verification) + SUFFIXES.get(self.settings.submit, "")
        self.settings.pattern()
        with self._lock:
            try:
                x11 = self._x11()
            except WedgeUnavailable as err:
                raise WedgeUnavailable(f"{err.message}: nothing typed", hint=err.hint) from err
            try:
                target = self._target(x11)
                x11.activate(target)
                typed = self._type(x11, target, text)
            finally:
                x11.close()
        logger.info("wedge: typed %d characters into the window matching [wedge] window_title", typed)
        return {"status": "typed", "backend": self.settings.backend, "characters": typed, "window": target.title}

    def _type(self, x11: X11Keyboard, target: Target, text: str) -> int:
        if self.settings.backend != "uinput":
            return x11.type_text(text, target)
        from agent.wedge.uinput import UInputKeyboard, plan

        try:
            keyboard = UInputKeyboard()
        except WedgeUnavailable as err:
            raise WedgeUnavailable(f"{err.message}: nothing typed", hint=err.hint) from err
        # stroke index → characters completed before it (one character is 1 or several strokes)
        done_before: list[int] = []
        for n, ch in enumerate(text):
            done_before += [n] * len(plan(ch))
        try:
            def check(i: int) -> None:
                if i % 8 == 0:
                    now = x11.focused()
                    if now is None or now.window.id != target.window.id:
                        raise WedgeFocusLost(f"the focus left {target.title!r}; typing stopped",
                                             typed=done_before[i] if i < len(done_before) else len(text),
                                             window=target.title)
            keyboard.type_strokes(plan(text), before_each=check)
        finally:
            keyboard.close()
        return len(text)


def describe(settings: WedgeSettings, *,
             x11_factory: Callable[[str | None, float], X11Keyboard] | None = None) -> dict[str, Any]:
    """For ``doctor`` and the page: is typing possible here, and by which method."""
    try:
        x11 = (x11_factory(settings.display or None, settings.settle_ms / 1000) if x11_factory is not None
               else X11Keyboard(settings.display or None))
    except WedgeUnavailable as exc:
        return {"ok": False, "problem": exc.message}
    method = x11.method
    x11.close()
    if settings.backend == "uinput":
        from agent.wedge.uinput import UInputKeyboard, check_device

        problem = check_device()
        if problem:
            return {"ok": False, "problem": problem}
        method = UInputKeyboard.method
    return {"ok": True, "method": method}


__all__ = ["Wedge", "WedgeConfigError", "WedgeDisabled", "WedgeFocusLost", "WedgeNoWindow", "WedgeRefused",
           "WedgeSettings", "WedgeSeveralWindows", "WedgeUnavailable", "describe"]
