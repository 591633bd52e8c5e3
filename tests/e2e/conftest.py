"""Real Chromium (Debian's /usr/bin/chromium) driven by Playwright against the whole
desk: the agent with the real chip pipeline, the in-process virtual reader, the local
BHYT test gateway and intake receiver (agent.demo.desk_stack)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1366, "height": 768}


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("Debian's chromium is not installed (apt install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport=VIEWPORT, locale="vi-VN")  # type: ignore[attr-defined]
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()


@pytest.fixture
def desk_factory(tmp_path: Path) -> Iterator[object]:
    from contextlib import ExitStack

    from agent.demo import desk_stack

    stack = ExitStack()

    def make(profile: str = "nguyen-van-an", **options: object) -> object:
        state = tmp_path / f"state-{profile.replace('+', '-')}"
        return stack.enter_context(desk_stack(backend="sim", profile=profile, port=0, state_dir=state,
                                              **options))  # type: ignore[arg-type]

    with stack:
        yield make
