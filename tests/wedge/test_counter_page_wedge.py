"""The counter page's "Gõ vào ứng dụng" for real (issue 16): the whole desk (real chip
pipeline, the in-process virtual reader) with [wedge] on the Xvfb display; the counter
page and a desk application's "scan the CCCD QR" screen (desk_app.html) in two Chromium
windows there. The clerk's click types the verified card, as the card's 7-field QR text,
into the window whose title matches, through XTest; so does the hotkey. Refusals (no
matching window, a cloned chip, the wedge off) type nothing, and the page says why."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from desk_browser import (
    CTRL_ALT_K,
    TIMEOUT_MS,
    VIEWPORT,
    XServer,
    assert_plain_vietnamese,
    open_counter_page,
    wait_js,
)

from agent.demo import qr_text_for

PROFILE = "nguyen-van-an"
DESK_APP_TITLE = "^Tiếp nhận hồ sơ"


@pytest.fixture
def counter(browser: Any) -> Iterator[Any]:
    """The counter page's window (opened on a desk by ``open_counter_page``)."""
    context = browser.new_context(viewport=VIEWPORT, locale="vi-VN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    context.close()
    assert not errors, errors


def _wedge(xserver: XServer, **changes: Any) -> dict[str, Any]:
    return {"enabled": True, "window_title": DESK_APP_TITLE, "display": xserver.display, **changes}


def _status(page: Any) -> str:
    return "document.getElementById('wedge-status').dataset.status"


def test_the_key_types_the_verified_card_into_the_desk_application(xserver: XServer, desk_app: Any, counter: Any,
                                                                   desk_factory: Any) -> None:
    desk = desk_factory(PROFILE, wedge=_wedge(xserver, hotkey="ctrl+alt+k"))
    open_counter_page(counter, desk)
    assert counter.locator("#wedge-row").is_hidden()  # no card on show yet
    desk.tap()
    counter.wait_for_selector("#badge[data-status=verified]", timeout=TIMEOUT_MS)
    button = counter.locator("#wedge")
    assert button.is_visible() and button.is_enabled() and button.inner_text() == "Gõ vào ứng dụng"
    assert desk_app.evaluate("window.keydowns") == 0  # a read by itself types nothing
    button.click()
    wait_js(counter, f"{_status(counter)} === 'typed'")
    wait_js(desk_app, "window.scans.length === 1")
    text = qr_text_for(PROFILE)  # what the printed QR of this synthetic card says
    assert len(text.split("|")) == 7
    assert desk_app.evaluate("window.scans") == [text]
    assert desk_app.input_value("#hoten") == "Nguyễn Văn An"
    said = counter.locator("#wedge-status").inner_text()
    assert said.startswith("Đã gõ thông tin thẻ vào \u201cTiếp nhận hồ sơ"), said
    assert_plain_vietnamese(counter)
    assert counter.evaluate("document.documentElement.scrollHeight") <= VIEWPORT["height"]
    counter.screenshot(path="/tmp/idagent-e2e-wedge-typed.png")  # for a human look
    # the hotkey, pressed from inside the desk application, types the same text again
    counter.evaluate("document.getElementById('wedge-status').dataset.status = 'seen'")
    xserver.press(*CTRL_ALT_K)
    wait_js(desk_app, "window.scans.length === 2")
    assert desk_app.evaluate("window.scans[1]") == text
    wait_js(counter, f"{_status(counter)} === 'typed'")  # told through the wedge_result event


def test_no_matching_window_types_nothing_and_the_page_says_why(xserver: XServer, desk_app: Any, counter: Any,
                                                                desk_factory: Any) -> None:
    desk = desk_factory(PROFILE, wedge=_wedge(xserver, window_title="^Phần mềm chưa mở$"))
    open_counter_page(counter, desk)
    desk.tap()
    counter.wait_for_selector("#badge[data-status=verified]", timeout=TIMEOUT_MS)
    counter.click("#wedge")
    wait_js(counter, f"{_status(counter)} === 'refused'")
    status = counter.locator("#wedge-status")
    assert status.get_attribute("data-code") == "wedge_no_window"
    assert status.inner_text() == ("Không gõ: chưa thấy cửa sổ phần mềm tiếp nhận. "
                                   "Mở phần mềm đó rồi bấm lại.")
    assert counter.locator("#wedge").is_enabled()  # the clerk may open the application and press again
    assert_plain_vietnamese(counter)
    counter.wait_for_timeout(300)
    assert desk_app.evaluate("window.keydowns") == 0


def test_a_cloned_chip_cannot_be_typed(xserver: XServer, desk_app: Any, counter: Any, desk_factory: Any) -> None:
    desk = desk_factory(f"{PROFILE}+cloned", wedge=_wedge(xserver))
    open_counter_page(counter, desk)
    desk.tap()
    counter.wait_for_selector("#badge[data-status=probable_clone]", timeout=TIMEOUT_MS)
    assert counter.locator("#wedge").is_visible() and counter.locator("#wedge").is_disabled()
    assert counter.locator("#wedge-status").inner_text() == "Chỉ gõ được thông tin của thẻ đã xác thực."
    assert desk_app.evaluate("window.keydowns") == 0


def test_no_key_when_the_wedge_is_off(desk_app: Any, counter: Any, desk_factory: Any) -> None:
    desk = desk_factory(PROFILE)  # [wedge] enabled = false (the default)
    open_counter_page(counter, desk)
    desk.tap()
    counter.wait_for_selector("#badge[data-status=verified]", timeout=TIMEOUT_MS)
    assert counter.locator("#wedge-row").is_hidden()
    assert desk_app.evaluate("window.keydowns") == 0
