"""A real X server (Xvfb) and a real Chromium window on it, showing a desk application's
"scan the CCCD QR" screen (desk_app.html) that parses the typed text as those screens do."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from wedge_helpers import XServer

CHROMIUM = "/usr/bin/chromium"
APP = Path(__file__).with_name("desk_app.html")


@pytest.fixture(scope="module")
def xserver() -> Iterator[XServer]:
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is not installed: run scripts/setup.sh (Debian package xvfb)")
    server = XServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(xserver: XServer) -> Iterator[object]:
    import asyncio

    from playwright.sync_api import sync_playwright

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        # a test earlier in this process left its event loop marked as running in this
        # thread (we are in a plain function, so none can really be running here); the
        # sync API refuses to start under that mark (seen in the full suite run)
        asyncio.events._set_running_loop(None)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=False,
                                     args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                                           "--disable-background-networking", "--disable-component-update"],
                                     env={**os.environ, "DISPLAY": xserver.display})
        yield browser
        browser.close()


@pytest.fixture
def desk_app(browser: object) -> Iterator[object]:
    """The desk application's page in its own window, its scan field focused."""
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(APP.as_uri())
    page.focus("#scan")
    yield page
    context.close()
