"""The counter page in real Chromium at 1366×768: a genuine card, a tampered card,
a cloned chip, the CAN prompt, and HTML in a payload. Screenshots are saved under the
test's tmp dir and checked by pixel colour (the badge) and layout (no scrolling)."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path
from typing import Any

from PIL import Image

from agent.daemon import Current
from agent.eventhub import EventType
from agent.identity import Identity

#: the badge colours of app.css (--ok, --warn, --bad)
GREEN = (0x1E, 0x7B, 0x34)
AMBER = (0xB4, 0x53, 0x09)
RED = (0xB3, 0x26, 0x1E)
TIMEOUT_MS = 15000


def _wait_js(page: Any, expression: str, timeout: float = TIMEOUT_MS / 1000) -> None:
    """Poll a JS expression from Python: the page's CSP forbids eval, which
    Playwright's wait_for_function uses when it has to poll."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(50)


def _near(rgb: tuple[int, ...], want: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(rgb[:3], want, strict=True))


def _badge_colour(page: Any, shot: Path) -> tuple[int, ...]:
    """The colour of the badge's left margin (no text there) in the screenshot."""
    box = page.locator("#badge").bounding_box()
    image = Image.open(shot).convert("RGB")
    assert image.size == (1366, 768)
    x, y = int(box["x"] + 6), int(box["y"] + box["height"] / 2)
    return image.getpixel((x, y))  # type: ignore[no-any-return]


def _shot(page: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path))
    shutil.copy(path, Path("/tmp") / f"idagent-e2e-{name}.png")  # for a human look
    return path


def _open(page: Any, desk: Any) -> None:
    page.goto(desk.page_url)
    page.wait_for_selector("#link.link-on", timeout=TIMEOUT_MS)
    # the token left the address bar at once (it stays in this tab's session storage)
    assert "token" not in page.url


def test_happy_path_verified_with_bhyt(page: Any, desk_factory: Any, tmp_path: Path) -> None:
    desk = desk_factory()
    _open(page, desk)
    assert page.locator(".idle-title").inner_text() == "Mời đặt thẻ Căn cước lên đầu đọc"
    desk.tap()
    page.wait_for_selector("#result:not([hidden])", timeout=TIMEOUT_MS)
    page.wait_for_selector("#bhyt-status.ok", timeout=TIMEOUT_MS)
    _wait_js(page, "document.getElementById('photo').naturalWidth > 0")
    assert page.locator("dd[data-field=full_name]").inner_text() == "Nguyễn Văn An"
    assert page.locator("dd[data-field=date_of_birth]").inner_text() == "15/03/1999"
    assert page.locator("dd[data-field=sex]").inner_text() == "Nam"
    assert page.locator("dd[data-field=place_of_origin]").inner_text() == "Xã Đông Hội, Đông Anh, Hà Nội"
    labels = page.locator("#fields dt").all_inner_texts()
    for label in ("Họ và tên", "Số CCCD", "Số CMND cũ", "Ngày sinh", "Giới tính", "Quốc tịch", "Dân tộc",
                  "Tôn giáo", "Quê quán", "Nơi thường trú", "Đặc điểm nhận dạng", "Ngày cấp", "Có giá trị đến",
                  "Họ tên cha", "Họ tên mẹ"):
        assert label in labels
    assert page.locator("#badge").inner_text() == "Đã xác thực"
    assert page.locator("#badge").get_attribute("data-status") == "verified"
    assert page.locator("#send").is_enabled()
    assert page.locator("#bhyt-status").inner_text() == "Thẻ BHYT còn giá trị"
    detail = page.locator("#bhyt-detail").inner_text()
    assert "Hiệu lực từ" in detail and "Khớp ngày sinh đầy đủ" in detail
    # fits the screen: nothing to scroll at 1366×768
    assert page.evaluate("document.documentElement.scrollHeight") <= 768
    shot = _shot(page, tmp_path, "verified")
    assert _near(_badge_colour(page, shot), GREEN)
    # the photo is really drawn: the frame is not the empty grey background
    box = page.locator("#photo").bounding_box()
    image = Image.open(shot).convert("RGB")
    centre = image.getpixel((int(box["x"] + box["width"] / 2), int(box["y"] + box["height"] / 2)))
    assert not _near(centre, (0xE9, 0xEC, 0xEF), 4)
    # send to intake, then clear
    page.click("#send")
    _wait_js(page, "document.getElementById('action-status').textContent === 'Đã gửi hồ sơ'")
    page.click("#clear")
    page.wait_for_selector("#idle:not([hidden])", timeout=TIMEOUT_MS)
    assert page.locator("#fields dd").count() == 0
    assert page.js_errors == []


def test_tampered_card_not_verified_with_reason(page: Any, desk_factory: Any, tmp_path: Path) -> None:
    desk = desk_factory("nguyen-van-an+tampered-dg13")
    _open(page, desk)
    desk.tap()
    page.wait_for_selector("#badge[data-status=not_verified]", timeout=TIMEOUT_MS)
    assert page.locator("#badge").inner_text() == "Chưa xác thực"
    reason = page.locator("#badge-reason").inner_text()
    assert "không khớp chữ ký số" in reason
    assert page.locator("#send").is_disabled()  # altered data are not sent on as a dossier
    shot = _shot(page, tmp_path, "tampered")
    assert _near(_badge_colour(page, shot), AMBER)
    assert page.js_errors == []


def test_cloned_chip_probable_clone(page: Any, desk_factory: Any, tmp_path: Path) -> None:
    desk = desk_factory("nguyen-van-an+cloned")
    _open(page, desk)
    desk.tap()
    page.wait_for_selector("#badge[data-status=probable_clone]", timeout=TIMEOUT_MS)
    assert page.locator("#badge").inner_text() == "Nghi thẻ giả (chip sao chép)"
    assert "sao chép" in page.locator("#badge-reason").inner_text()
    shot = _shot(page, tmp_path, "cloned")
    assert _near(_badge_colour(page, shot), RED)
    assert page.locator("#send").is_disabled()  # a copied chip is not sent on as a dossier


def test_can_prompt_when_no_qr(page: Any, desk_factory: Any, tmp_path: Path) -> None:
    desk = desk_factory()
    _open(page, desk)
    desk.tap(with_qr=False)
    page.wait_for_selector("#access:not([hidden])", timeout=TIMEOUT_MS)
    _shot(page, tmp_path, "can-prompt")
    page.fill("#can", "12345")
    page.click("#can-form button")
    assert "6 chữ số" in page.locator("#error-message").inner_text()
    page.fill("#can", "012345")  # the last 6 digits of the synthetic ID 001099012345
    page.click("#can-form button")
    page.wait_for_selector("#badge[data-status=verified]", timeout=TIMEOUT_MS)


def _show_identity(desk: Any, identity: Identity, verification: dict[str, Any]) -> int:
    """What the daemon does when a card was read: hold the identity, then publish it.
    (An event for an identity the agent does not hold would be contradicted, rightly,
    by the page's GET /identity.)"""
    daemon = desk.daemon
    current = Current(read_id=daemon.store.next_id(), reader="x", identity=identity,
                      verification=verification, created=daemon.clock())
    daemon.store.put(current)
    daemon.hub.publish(EventType.IDENTITY_READY, {**current.to_dict(), "lookup_pending": False})
    return current.read_id


def test_html_in_payload_is_shown_as_text(page: Any, desk_factory: Any, tmp_path: Path) -> None:
    desk = desk_factory()
    _open(page, desk)
    evil = '<img src=x onerror="window.__pwned=1">Trần <b>Bình</b>'
    identity = Identity(full_name=evil, id_number="001099012345", date_of_birth=dt.date(1999, 3, 15),
                        place_of_residence="<script>window.__pwned=2</script>")
    _show_identity(desk, identity, {"status": "not_verified", "plain": "<i>lý do</i>"})
    page.wait_for_selector("#result:not([hidden])", timeout=TIMEOUT_MS)
    assert page.locator("dd[data-field=full_name]").inner_text() == evil
    assert page.locator("#badge-reason").inner_text() == "<i>lý do</i>"
    assert page.locator("#fields img, #fields b, #fields script, #badge-reason i").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_page_without_token_says_so(page: Any, desk_factory: Any) -> None:
    desk = desk_factory()
    page.goto(desk.base + "/")
    page.wait_for_selector("#error:not([hidden])", timeout=TIMEOUT_MS)
    assert "chưa được cấp quyền" in page.locator("#error-message").inner_text()


def test_progress_bar_while_reading(page: Any, desk_factory: Any, tmp_path: Path) -> None:
    desk = desk_factory()
    _open(page, desk)
    reader = "idagent virtual reader 0"
    desk.daemon.hub.publish(EventType.READ_STARTED, {"reader": reader})
    desk.daemon.hub.publish(EventType.READ_PROGRESS, {"reader": reader, "file": "DG2", "done": 4500, "total": 9000})
    page.wait_for_selector("#reading:not([hidden])", timeout=TIMEOUT_MS)
    _wait_js(page, "document.getElementById('progress-bar').style.width === '50%'")
    assert page.locator("#progress-text").inner_text() == "Đang đọc ảnh chân dung: 4500 / 9000 byte"
    assert page.locator(".progress").get_attribute("aria-valuenow") == "50"
    _shot(page, tmp_path, "reading")


def test_identity_dropped_while_disconnected_leaves_the_screen(page: Any, desk_factory: Any) -> None:
    """The identity is dropped (TTL, card removed, another desk's DELETE) while the
    page's WebSocket is down: the identity_cleared event is lost, so on reconnecting
    the page must clear what GET /identity no longer has, not show the last person on."""
    desk = desk_factory()
    _open(page, desk)
    desk.tap()
    page.wait_for_selector("#result:not([hidden])", timeout=TIMEOUT_MS)
    api = desk.daemon._api
    for client in list(api._sockets):
        api._loop.call_soon_threadsafe(desk.daemon.hub.remove_client, client)
    page.wait_for_selector("#link.link-off", timeout=TIMEOUT_MS)
    assert desk.daemon.clear_identity("ttl")
    page.wait_for_selector("#link.link-on", timeout=TIMEOUT_MS)
    page.wait_for_selector("#idle:not([hidden])", timeout=TIMEOUT_MS)
    assert page.locator("#fields dd").count() == 0
    assert page.js_errors == []


def test_refresh_answer_older_than_the_identity_event_does_not_clear_it(page: Any, desk_factory: Any) -> None:
    """The race of issue 13, made deterministic: the page's GET /identity on connect is
    answered 404 by the agent, a card is read and its identity_ready reaches the page,
    and only then does the stale 404 arrive. The page must keep the identity (the
    answer's X-Event-Seq is older than the event), not clear it."""
    desk = desk_factory()
    held: list[Any] = []

    def hold(route: Any) -> None:
        if route.request.method == "GET" and not held:
            held.append((route, route.fetch()))  # answered by the agent now, delivered later
        else:
            route.continue_()

    page.route("**/identity", hold)
    _open(page, desk)
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(20)
    assert held, "the page did not ask GET /identity on connect"
    route, stale = held[0]
    assert stale.status == 404 and int(stale.headers["x-event-seq"]) >= 0
    identity = Identity(full_name="Trần Thị Bình", id_number="001199054321", date_of_birth=dt.date(1999, 1, 2))
    _show_identity(desk, identity, {"status": "verified", "plain": "Chip thật"})
    page.wait_for_selector("#result:not([hidden])", timeout=TIMEOUT_MS)
    with page.expect_response("**/identity"):
        route.fulfill(response=stale)
    # the old page cleared the screen within milliseconds of this answer
    for _ in range(20):
        page.wait_for_timeout(50)
        assert page.locator("#result").is_visible(), "a stale GET /identity answer cleared a newer identity"
    assert page.locator("dd[data-field=full_name]").inner_text() == "Trần Thị Bình"
    assert page.js_errors == []
