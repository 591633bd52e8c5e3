"""A real X server (Xvfb) and real Chromium windows on it: a desk application's "scan the
CCCD QR" screen (desk_app.html) that parses the typed text as those screens do, and (for
the counter page's key) the whole desk. The helpers are shared with tests/e2e
(tests/desk_browser.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from desk_browser import XServer, chromium, desk_factory  # noqa: F401 (fixture)

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
    with chromium(display=xserver.display) as browser:
        yield browser


@pytest.fixture
def desk_app(browser: object) -> Iterator[object]:
    """The desk application's page in its own window, its scan field focused."""
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(APP.as_uri())
    page.focus("#scan")
    yield page
    context.close()
