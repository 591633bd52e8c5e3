"""Real Chromium (Debian's /usr/bin/chromium) driven by Playwright against the whole
desk: the agent with the real chip pipeline, the in-process virtual reader, the local
BHYT test gateway and intake receiver (agent.demo.desk_stack). The helpers are shared
with tests/wedge (tests/desk_browser.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from desk_browser import VIEWPORT, chromium, desk_factory  # noqa: F401 (fixture)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport=VIEWPORT, locale="vi-VN")  # type: ignore[attr-defined]
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()
