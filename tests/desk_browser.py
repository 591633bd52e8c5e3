"""Helpers shared by the browser tests (tests/e2e, tests/wedge) and bench/bench_wedge.py:
Debian's Chromium launched by Playwright (headless, or in windows on a real X server),
Xvfb on a free display, the whole desk (``agent.demo.desk_stack``) on the in-process
virtual reader, and the counter page's small helpers. Importable as ``desk_browser``:
pytest puts tests/ on sys.path for tests/conftest.py."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: the counter page's screen in the e2e tests
VIEWPORT = {"width": 1366, "height": 768}
TIMEOUT_MS = 15000


class XServer:
    """A real X server (Xvfb) on a display number it picks itself."""

    def __init__(self) -> None:
        read_fd, write_fd = os.pipe()
        # -displayfd: the server picks a free display number and writes it to us
        self.proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24",
                                      "-nolisten", "tcp"], pass_fds=(write_fd,), stderr=subprocess.DEVNULL)
        os.close(write_fd)
        with os.fdopen(read_fd) as f:
            number = f.readline().strip()
        if not number:
            self.proc.kill()
            raise RuntimeError("Xvfb did not start")
        self.display = f":{number}"

    def press(self, *keysyms: int) -> None:
        """Press the keys together, as a person does a hotkey (e.g. Control_L, Alt_L, k),
        and release them in reverse order, through XTest."""
        from Xlib import X
        from Xlib import display as xdisplay
        from Xlib.ext import xtest

        d = xdisplay.Display(self.display)
        try:
            codes = [d.keysym_to_keycode(s) for s in keysyms]
            for c in codes:
                xtest.fake_input(d, X.KeyPress, c)
            for c in reversed(codes):
                xtest.fake_input(d, X.KeyRelease, c)
            d.sync()
        finally:
            d.close()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


#: Control_L, Alt_L, k: the hotkey "ctrl+alt+k"
CTRL_ALT_K = (0xFFE3, 0xFFE9, ord("k"))


def launch_chromium(pw: Any, *, display: str | None = None) -> Any:
    """Debian's Chromium (never a downloaded browser): headless, or with ``display`` in
    real windows on that X server (what the keyboard wedge types into)."""
    if display is None:
        return pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", *CHROMIUM_ARGS])
    return pw.chromium.launch(executable_path=CHROMIUM, headless=False, args=CHROMIUM_ARGS,
                              env={**os.environ, "DISPLAY": display})


@contextmanager
def chromium(display: str | None = None) -> Iterator[Any]:
    """Debian's Chromium under Playwright for the length of the block
    (``launch_chromium``: headless, or in windows on ``display``), closed after. A
    machine without it fails the test rather than skipping it: scripts/setup.sh
    installs it, and a skipped browser test would hide that no page was checked."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail("Debian's chromium is not installed: run scripts/setup.sh (Debian package chromium)")
    from playwright.sync_api import sync_playwright

    allow_sync_playwright()
    with sync_playwright() as pw:
        browser = launch_chromium(pw, display=display)
        try:
            yield browser
        finally:
            browser.close()


def allow_sync_playwright() -> None:
    """A test earlier in this process may have left its event loop marked as running in
    this thread (we are in a plain function, so none can really be running here); the
    sync API refuses to start under that mark (seen in the full suite run)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    asyncio.events._set_running_loop(None)


@pytest.fixture
def desk_factory(tmp_path: Path) -> Iterator[Any]:
    """``desk_factory(profile, **options)``: the whole desk (agent.demo.desk_stack with the
    in-process virtual reader) holding that synthetic card; stopped after the test."""
    from agent.demo import desk_stack

    stack = ExitStack()

    def make(profile: str = "nguyen-van-an", **options: Any) -> Any:
        state = tmp_path / f"state-{profile.replace('+', '-')}"
        return stack.enter_context(desk_stack(backend="sim", profile=profile, port=0, state_dir=state, **options))

    with stack:
        yield make


def wait_js(page: Any, expression: str, timeout: float = TIMEOUT_MS / 1000) -> None:
    """Poll a JS expression from Python: the counter page's CSP forbids eval, which
    Playwright's wait_for_function uses when it has to poll."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(50)


def open_counter_page(page: Any, desk: Any) -> None:
    """Open the counter page with the agent's token; wait until it is connected."""
    page.goto(desk.page_url)
    page.wait_for_selector("#link.link-on", timeout=TIMEOUT_MS)
    # the token left the address bar at once (it stays in this tab's session storage)
    assert "token" not in page.url


#: protocol words a clerk must never read (the reader's device name in the top bar is
#: left out: it is the name printed on the device)
JARGON = re.compile(r"\b(PACE|BAC|CAN|SOD|MRZ|APDU|DG\d+|6300|63C\d|status|error|failed|verified|token)\b",
                    re.IGNORECASE)


def assert_plain_vietnamese(page: Any) -> None:
    """What the clerk reads on the counter page has no protocol or English words."""
    text = str(page.evaluate("document.querySelector('main').innerText + '\\n' + "
                             "document.getElementById('error').innerText"))
    found = JARGON.findall(text)
    assert not found, f"protocol/English words on screen: {found} in {text!r}"
