"""X11 keyboard backend: XTest key events (python-xlib).

How characters are typed (never Alt-codes, never the clipboard):
- a character whose keysym is on the current keymap at level 1 or 2 (plain or Shift) is
  typed with that key, Shift pressed as needed;
- any other character (every Vietnamese letter with a tone mark, đ/Đ, ư, ơ … on a US
  layout) is typed by mapping a spare keycode to its Unicode keysym (``0x01000000 + code
  point``, X11 keysymdef.h "Unicode" range) for the time of the key press, then restoring
  the keycode. The application receives a real key event whose keysym is the precomposed
  character, as from a keyboard with that character on it.

The target window is found by its title (``_NET_WM_NAME``, else ``WM_NAME``), given the
input focus (and ``_NET_ACTIVE_WINDOW`` for a window manager that supports it), and the
focus is checked again before every chunk: when it moves elsewhere, typing stops.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agent.errors import IdAgentError

UNICODE_KEYSYM = 0x01000000
CHUNK = 8  # characters typed between two checks of the focus
#: time the application may take per key to catch up before a keycode changes meaning
DRAIN_PER_KEY_S = 0.002


class WedgeUnavailable(IdAgentError):
    """The virtual keyboard cannot work here (no X display, no XTest, no /dev/uinput)."""

    code = "wedge_unavailable"
    http_status = 503
    exit_code = 3
    hint = "Run the agent in the clerk's desktop session (DISPLAY set), or give it /dev/uinput (see README)."


class WedgeFocusLost(IdAgentError):
    code = "wedge_focus_lost"
    http_status = 409
    exit_code = 3
    hint = "Typing stopped because another window took the focus; press the key again."

    def __init__(self, message: str, *, hint: str | None = None, typed: int = 0, window: str | None = None) -> None:
        super().__init__(message, hint=hint)
        #: characters already typed when typing stopped (the application holds a partial text)
        self.typed = typed
        #: the title of the window typing was meant for
        self.window = window


@dataclass(frozen=True)
class Target:
    window: Any
    title: str


#: every Vietnamese letter with its other case: mapped all at once on the first typing, so
#: card texts need no keymap change between them (each change is a race with the
#: application re-reading the keymap)
VIETNAMESE = ("aàáảãạăằắẳẵặâầấẩẫậeèéẻẽẹêềếểễệiìíỉĩịoòóỏõọôồốổỗộơờớởỡợuùúủũụưừứửữựyỳýỷỹỵđ")


def _borrowable(sym: int) -> bool:
    """Keysyms of keys a desk does not type with: XF86 media keys, F13-F35."""
    return 0x1008FF00 <= sym <= 0x1008FFFF or 0xFFCA <= sym <= 0xFFE0


def keysym_for(char: str) -> int:
    """The keysym of a character: Latin-1 keysyms equal their code point, others are in
    the Unicode range."""
    cp = ord(char)
    if 0x20 <= cp <= 0x7E or 0xA0 <= cp <= 0xFF:
        return cp
    if char == "\n":
        return 0xFF0D  # Return
    if char == "\t":
        return 0xFF09  # Tab
    return UNICODE_KEYSYM | cp


class X11Keyboard:
    name = "x11"
    method = ("XTest key events; characters missing from the keymap (Vietnamese letters) by remapping a spare "
              "keycode to the character's Unicode keysym")

    def __init__(self, display: str | None = None, *, settle_s: float = 0.03, key_delay_s: float = 0.0) -> None:
        try:
            from Xlib import X  # noqa: F401
            from Xlib import display as xdisplay
            from Xlib import error as xerror
            from Xlib.ext import xtest  # noqa: F401
        except ImportError as exc:
            raise WedgeUnavailable("python-xlib is not installed", hint="pip install python-xlib") from exc
        try:
            self._d = xdisplay.Display(display)
        except (xerror.DisplayError, xerror.ConnectionClosedError, OSError) as exc:
            raise WedgeUnavailable(f"no X display ({display or 'DISPLAY not set'}): {exc}") from exc
        if not self._d.has_extension("XTEST"):
            self._d.close()
            raise WedgeUnavailable("the X server has no XTEST extension")
        self._settle = settle_s
        self._key_delay = key_delay_s
        self._load_keymap()

    def close(self) -> None:
        """Give the spare keycodes their original (empty) mapping back, then disconnect."""
        try:
            self._restore()
        finally:
            self._d.close()

    # ------------------------------------------------------------------ keymap

    def _load_keymap(self) -> None:
        first, last = self._d.display.info.min_keycode, self._d.display.info.max_keycode
        rows = self._d.get_keyboard_mapping(first, last - first + 1)
        self._keys: dict[int, tuple[int, bool]] = {}
        self._spare: list[int] = []
        borrowable: list[int] = []
        for i, row in enumerate(rows):
            code = first + i
            if code <= 8:
                continue  # keycode 8 is evdev's KEY_RESERVED: applications drop its events
            if not any(row):
                self._spare.append(code)
                continue
            if all(_borrowable(sym) for sym in row if sym):
                borrowable.append(code)
                continue
            for level, sym in enumerate(row[:2]):
                if sym and sym not in self._keys:
                    self._keys[sym] = (code, level == 1)
        self._shift = self._d.keysym_to_keycode(0xFFE1)  # Shift_L
        # unused keycodes first, then media and F13+ keys, borrowed while typing (a clerk
        # pressing such a key during those seconds gets a letter) and restored by close()
        self._spare += borrowable
        if not self._spare:
            self._spare = list(range(last - CHUNK + 1, last + 1))
        first_spare = min(self._spare)
        self._saved = self._d.get_keyboard_mapping(first_spare, max(self._spare) - first_spare + 1)
        #: (plain, Shift) keysyms → spare keycode carrying them, least recently used first
        self._assigned: dict[tuple[int, int], int] = {}
        self._since_remap = 0

    # ------------------------------------------------------------------ windows

    def _title(self, window: Any) -> str:
        d = self._d
        try:
            prop = window.get_full_property(d.intern_atom("_NET_WM_NAME"), d.intern_atom("UTF8_STRING"))
            if prop and prop.value:
                value = prop.value
                return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            name = window.get_wm_name()
            return name.decode("latin-1") if isinstance(name, bytes) else (name or "")
        except Exception:  # a window that went away while we looked
            return ""

    def _walk(self, window: Any, depth: int = 0) -> Iterator[Any]:
        try:
            children = window.query_tree().children
        except Exception:
            return
        for child in children:
            yield child
            if depth < 3:
                yield from self._walk(child, depth + 1)

    def windows(self) -> list[Target]:
        """Viewable windows that have a title."""
        from Xlib import X

        out = []
        for w in self._walk(self._d.screen().root):
            try:
                if w.get_attributes().map_state != X.IsViewable:
                    continue
            except Exception:
                continue
            title = self._title(w)
            if title:
                out.append(Target(w, title))
        return out

    def find(self, pattern: re.Pattern[str]) -> list[Target]:
        return [t for t in self.windows() if pattern.search(t.title)]

    def focused(self) -> Target | None:
        """The titled window that holds the focus (or contains the window that does)."""
        w = self._d.get_input_focus().focus
        root = self._d.screen().root
        while w and not isinstance(w, int) and w != root:
            title = self._title(w)
            if title:
                return Target(w, title)
            try:
                w = w.query_tree().parent
            except Exception:
                return None
        return None

    def activate(self, target: Target, timeout: float = 1.0) -> None:
        from Xlib import X, protocol

        d = self._d
        root = d.screen().root
        net_active = d.intern_atom("_NET_ACTIVE_WINDOW")
        supported = root.get_full_property(d.intern_atom("_NET_SUPPORTED"), X.AnyPropertyType)
        if supported is not None and net_active in supported.value:
            event = protocol.event.ClientMessage(window=target.window, client_type=net_active,
                                                 data=(32, [2, X.CurrentTime, 0, 0, 0]))
            root.send_event(event, event_mask=X.SubstructureRedirectMask | X.SubstructureNotifyMask)
        target.window.raise_window()
        target.window.set_input_focus(X.RevertToParent, X.CurrentTime)
        d.sync()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.focused()
            if now is not None and now.window.id == target.window.id:
                return
            time.sleep(0.02)
        raise WedgeFocusLost(f"the window {target.title!r} did not take the focus", window=target.title)

    # ------------------------------------------------------------------ typing

    def _tap(self, code: int, shift: bool) -> None:
        from Xlib import X
        from Xlib.ext import xtest

        if shift:
            xtest.fake_input(self._d, X.KeyPress, self._shift)
        xtest.fake_input(self._d, X.KeyPress, code)
        xtest.fake_input(self._d, X.KeyRelease, code)
        if shift:
            xtest.fake_input(self._d, X.KeyRelease, self._shift)
        if self._key_delay:
            self._d.sync()
            time.sleep(self._key_delay)

    @staticmethod
    def _pair(sym: int) -> tuple[int, int]:
        """The keysyms a spare keycode carries for ``sym``: a letter with its other case
        (plain level lower case, Shift level upper case), else ``sym`` at both levels."""
        ch = chr(sym - UNICODE_KEYSYM if sym >= UNICODE_KEYSYM else sym)
        lower, upper = ch.lower(), ch.upper()
        if len(lower) == 1 and len(upper) == 1 and lower != upper:
            return keysym_for(lower), keysym_for(upper)
        return sym, sym

    def _segments(self, text: str) -> Iterator[tuple[str, list[tuple[int, int]]]]:
        """Pieces of ``text`` whose characters missing from the keymap fit on the spare
        keycodes at once (one remapping per piece; most card texts are one piece)."""
        piece = ""
        pairs: list[tuple[int, int]] = []
        for ch in text:
            sym = keysym_for(ch)
            if sym not in self._keys:
                pair = self._pair(sym)
                if pair not in pairs:
                    if len(pairs) == len(self._spare):
                        yield piece, pairs
                        piece, pairs = "", []
                    pairs.append(pair)
            piece += ch
        if piece:
            yield piece, pairs

    def _drain(self) -> None:
        """Wait until the application has likely handled the keys typed so far. It reads
        keycodes through the keymap as it finds it when it gets to them: remapping a
        keycode before that would turn an earlier character into the new one."""
        self._d.sync()
        time.sleep(self._settle + DRAIN_PER_KEY_S * self._since_remap)
        self._since_remap = 0

    def _ensure(self, pairs: list[tuple[int, int]]) -> None:
        """Map every pair onto a spare keycode, keeping pairs already mapped."""
        missing = [p for p in pairs if p not in self._assigned]
        if not missing:
            return
        keep = set(pairs)
        free = [c for c in self._spare if c not in self._assigned.values()]
        reusable = [c for p, c in self._assigned.items() if p not in keep]  # least recently used first
        # while codes are free, map the whole Vietnamese alphabet too: one change for many texts
        wanted = dict.fromkeys(self._pair(keysym_for(c)) for c in VIETNAMESE if keysym_for(c) not in self._keys)
        extra = [p for p in wanted if p not in self._assigned and p not in missing]
        missing += extra[:max(0, len(free) - len(missing))]
        self._drain()
        for pair, code in zip(missing, free + reusable, strict=False):
            for old, c in list(self._assigned.items()):
                if c == code:
                    del self._assigned[old]
            width = len(self._d.get_keyboard_mapping(code, 1)[0])
            self._d.change_keyboard_mapping(code, [[pair[0], pair[1]] + [0] * (width - 2)])
            self._assigned[pair] = code
        self._d.sync()
        # the application sees the new meaning (MappingNotify) before our next key event
        time.sleep(self._settle)

    def type_text(self, text: str, target: Target) -> int:
        """Type ``text`` into ``target`` (which must hold the focus); returns characters typed.
        The focus is checked before every ``CHUNK`` characters. Remapped keycodes stay
        mapped for the next call and are restored by ``close()``."""
        typed = 0
        self._wait_modifiers_released()
        try:
            for piece, pairs in self._segments(text):
                self._ensure(pairs)
                for pair in pairs:  # most recently used last
                    self._assigned[pair] = self._assigned.pop(pair)
                for ch in piece:
                    if typed % CHUNK == 0:
                        self._check_focus(target, typed)
                    sym = keysym_for(ch)
                    if sym in self._keys:
                        code, shift = self._keys[sym]
                    else:
                        pair = self._pair(sym)
                        code, shift = self._assigned[pair], pair[0] != pair[1] and sym == pair[1]
                    self._tap(code, shift)
                    self._since_remap += 1
                    typed += 1
        finally:
            self._d.sync()
        return typed

    def _check_focus(self, target: Target, typed: int) -> None:
        now = self.focused()
        if now is None or now.window.id != target.window.id:
            raise WedgeFocusLost(f"the focus left {target.title!r} after {typed} characters; typing stopped",
                                 typed=typed, window=target.title)

    def _wait_modifiers_released(self, timeout: float = 2.0) -> None:
        """A clerk's hotkey (Ctrl+Alt+…) may still be held: typing under it would send
        Ctrl+letters, so wait until every modifier key is up."""
        # Shift, Control, Alt, Super (left and right), ISO_Level3_Shift (AltGr)
        syms = (0xFFE1, 0xFFE2, 0xFFE3, 0xFFE4, 0xFFE9, 0xFFEA, 0xFFEB, 0xFFEC, 0xFE03)
        codes = [c for c in (self._d.keysym_to_keycode(s) for s in syms) if c]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            down = self._d.query_keymap()
            if not any(down[c // 8] & (1 << (c % 8)) for c in codes):
                return
            time.sleep(0.02)
        raise WedgeFocusLost("a modifier key (Ctrl, Alt, Shift) is held down: nothing typed",
                             hint="Release the keys and press the hotkey again.")

    def _restore(self) -> None:
        if self._assigned and self._spare:
            self._drain()
            first = min(self._spare)
            # only the keycodes we changed: others may have changed meanwhile (a layout switch)
            for code in self._assigned.values():
                self._d.change_keyboard_mapping(code, [list(self._saved[code - first])])
            self._d.sync()
        self._assigned = {}
