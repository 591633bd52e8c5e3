"""The counter page in real Chromium at 1366×768, as a clerk reads it (issue 13): a
genuine card with its BHYT card and a dossier delivered with the receiver's receipt
number, a tampered card and a cloned chip (one verdict, no green BHYT, "Gửi hồ sơ"
refused with the reason), the 6-digit prompt, a dossier that fails and is sent again,
"Đọc lại" after "Xóa", one progress bar for the whole read, Vietnamese words only, and
HTML in a payload. Screenshots are saved under the test's tmp dir (and /tmp for a human
look) and checked by pixel colour (badge, BHYT line) and layout (no scrolling)."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path
from typing import Any

from desk_browser import JARGON, TIMEOUT_MS, assert_plain_vietnamese, open_counter_page, wait_js
from PIL import Image

from agent.daemon import Current
from agent.desk.events import IdentityShown
from agent.eventhub import EventType
from agent.icao.checks import CheckResult, Status
from agent.icao.verify import Verification, VerificationStatus
from agent.identity import Identity
from agent.pipeline import Verdict

#: the badge colours of app.css (--ok, --warn, --bad)
GREEN = (0x1E, 0x7B, 0x34)
AMBER = (0xB4, 0x53, 0x09)
RED = (0xB3, 0x26, 0x1E)


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


def _colour_of(page: Any, shot: Path, selector: str) -> tuple[int, ...]:
    """The colour of the text of ``selector`` (its darkest pixel) in the screenshot."""
    box = page.locator(selector).bounding_box()
    image = Image.open(shot).convert("RGB")
    pixels = [image.getpixel((x, y)) for x in range(int(box["x"]), int(box["x"] + box["width"]))
              for y in range(int(box["y"]), int(box["y"] + box["height"]))]
    return min(pixels, key=sum)  # type: ignore[no-any-return]


def test_happy_path_verified_with_bhyt(page: Any, desk_factory: Any, tmp_path: Path) -> None:
    desk = desk_factory()
    open_counter_page(page, desk)
    assert page.locator(".idle-title").inner_text() == "Mời đặt thẻ Căn cước lên đầu đọc"
    desk.tap()
    page.wait_for_selector("#result:not([hidden])", timeout=TIMEOUT_MS)
    page.wait_for_selector("#bhyt-status.ok", timeout=TIMEOUT_MS)
    wait_js(page, "document.getElementById('photo').naturalWidth > 0")
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
    # what a hospital desk needs from the BHYT card
    bhyt = {f: page.locator(f"#bhyt-fields dd[data-field={f}]").inner_text()
            for f in ("bhyt_card_code", "bhyt_validity", "bhyt_facility", "bhyt_five_years", "bhyt_dob")}
    assert bhyt == {"bhyt_card_code": "DN4010199012345", "bhyt_validity": "01/01/2026 – 31/12/2027",
                    "bhyt_facility": "01001", "bhyt_five_years": "01/01/2024",
                    "bhyt_dob": "đủ ngày, tháng, năm (15/03/1999)"}
    assert page.locator("#bhyt-fields dt").all_inner_texts() == [
        "Mã thẻ", "Hạn thẻ", "Nơi ĐK KCB ban đầu", "Đủ 5 năm liên tục từ", "Ngày sinh khớp"]
    assert page.locator("#send-why").inner_text() == ""
    assert_plain_vietnamese(page)
    # fits the screen: nothing to scroll at 1366×768
    assert page.evaluate("document.documentElement.scrollHeight") <= 768
    shot = _shot(page, tmp_path, "verified")
    assert _near(_badge_colour(page, shot), GREEN)
    # the photo is really drawn: the frame is not the empty grey background
    box = page.locator("#photo").bounding_box()
    image = Image.open(shot).convert("RGB")
    centre = image.getpixel((int(box["x"] + box["width"] / 2), int(box["y"] + box["height"] / 2)))
    assert not _near(centre, (0xE9, 0xEC, 0xEF), 4)
    assert _near(_colour_of(page, shot, "#bhyt-status"), GREEN, 40)
    # send to intake: queued, then delivered with the receiver's own receipt number
    page.click("#send")
    wait_js(page, "document.getElementById('action-status').dataset.status === 'delivered'")
    assert page.locator("#action-status").inner_text() == "Đã gửi hồ sơ. Số biên nhận: TN-000001"
    assert page.locator("#send").is_disabled()  # one read is one dossier
    assert desk.intake.state.stats()["unique_dossiers"] == 1
    _shot(page, tmp_path, "delivered")
    desk.lift()  # the card leaves: no "Đọc lại" after "Xóa"
    page.wait_for_selector("#idle:not([hidden])", timeout=TIMEOUT_MS)
    assert page.locator("#still-there").is_hidden()
    desk.tap()
    page.wait_for_selector("#result:not([hidden])", timeout=TIMEOUT_MS)
    page.click("#clear")
    page.wait_for_selector("#idle:not([hidden])", timeout=TIMEOUT_MS)
    assert page.locator("#fields dd").count() == 0
    assert page.js_errors == []


def test_tampered_card_not_verified_with_reason(page: Any, desk_factory: Any, tmp_path: Path) -> None:
    desk = desk_factory("nguyen-van-an+tampered-dg13")
    open_counter_page(page, desk)
    desk.tap()
    page.wait_for_selector("#badge[data-verdict=altered]", timeout=TIMEOUT_MS)
    assert page.locator("#badge").inner_text() == "Thông tin chip không hợp lệ"
    assert "không khớp chữ ký số" in page.locator("#badge-reason").inner_text()
    assert "giấy tờ khác" in page.locator("#badge-action").inner_text()
    # one verdict: no BHYT lookup is sent for altered data, and the panel says so
    page.wait_for_selector("#bhyt-status[data-status=skipped]", timeout=TIMEOUT_MS)
    assert page.locator("#bhyt-status").inner_text() == "Không tra cứu BHYT"
    assert page.locator("#bhyt-fields dd").count() == 0
    assert desk.gateway.state.counters.checks == 0
    # altered data are not sent on as a dossier; the button says why and what to do
    assert page.locator("#send").is_disabled()
    why = page.locator("#send-why").inner_text()
    assert why.startswith("Không gửi được hồ sơ: thông tin trên chip không hợp lệ") and "giấy tờ khác" in why
    assert_plain_vietnamese(page)
    shot = _shot(page, tmp_path, "tampered")
    assert _near(_badge_colour(page, shot), RED)
    assert page.evaluate("document.documentElement.scrollHeight") <= 768
    assert page.js_errors == []


def test_cloned_chip_probable_clone(page: Any, desk_factory: Any, tmp_path: Path) -> None:
    desk = desk_factory("nguyen-van-an+cloned")
    open_counter_page(page, desk)
    desk.tap()
    page.wait_for_selector("#badge[data-status=probable_clone]", timeout=TIMEOUT_MS)
    assert page.locator("#badge").inner_text() == "Nghi thẻ giả (chip sao chép)"
    assert "sao chép" in page.locator("#badge-reason").inner_text()
    # the lookup is made, but shown as not to be trusted, never green
    page.wait_for_selector("#bhyt-status[data-status=untrusted]", timeout=TIMEOUT_MS)
    status = page.locator("#bhyt-status").inner_text()
    assert status.startswith("Kết quả tra cứu BHYT chưa đáng tin") and "còn giá trị" in status
    assert "sao chép" in page.locator("#bhyt-hint").inner_text()
    assert page.locator("#send").is_disabled()  # a copied chip is not sent on as a dossier
    assert "chip nghi là chip sao chép" in page.locator("#send-why").inner_text()
    assert_plain_vietnamese(page)
    shot = _shot(page, tmp_path, "cloned")
    assert _near(_badge_colour(page, shot), RED)
    assert not _near(_colour_of(page, shot, "#bhyt-status"), GREEN, 60)
    assert _near(_colour_of(page, shot, "#bhyt-status"), AMBER, 40)
    assert page.evaluate("document.documentElement.scrollHeight") <= 768


def test_can_prompt_when_no_qr(page: Any, desk_factory: Any, tmp_path: Path) -> None:
    desk = desk_factory()
    open_counter_page(page, desk)
    desk.tap(with_qr=False)
    page.wait_for_selector("#access:not([hidden])", timeout=TIMEOUT_MS)
    _shot(page, tmp_path, "can-prompt")
    assert page.locator("#access-message").inner_text() == "Nhập 6 số cuối của số CCCD (in trên thẻ)"
    page.fill("#can", "12345")
    page.click("#can-form button")
    assert page.locator("#error-message").inner_text() == "Cần nhập đúng 6 chữ số"
    assert_plain_vietnamese(page)
    page.fill("#can", "999999")  # a wrong number: the chip refuses it
    page.click("#can-form button")
    wait_js(page, "document.getElementById('access-message').textContent.startsWith('Số vừa nhập')")
    assert page.locator("#access-message").inner_text() == (
        "Số vừa nhập không mở được chip. Kiểm tra lại 6 số cuối của số CCCD.")
    assert page.locator("#error").is_hidden()  # said once, in the prompt
    assert_plain_vietnamese(page)
    _shot(page, tmp_path, "can-refused")
    page.fill("#can", "012345")  # the last 6 digits of the synthetic ID 001099012345
    page.click("#can-form button")
    page.wait_for_selector("#badge[data-status=verified]", timeout=TIMEOUT_MS)


def _show_identity(desk: Any, identity: Identity, status: VerificationStatus, plain: str,
                   passive: Status = Status.VALID) -> int:
    """What the daemon does when a card was read: hold the identity, then publish it.
    (An event for an identity the agent does not hold would be contradicted, rightly,
    by the page's GET /identity.) ``plain``: the clerk's sentence, as given."""
    ok = CheckResult(Status.VALID, "ok")
    verification = Verdict(Verification(CheckResult(passive, "p"), ok, ok, status, "r"), plain=plain)
    daemon = desk.daemon
    current = Current(read_id=daemon.store.next_id(), reader="x", identity=identity,
                      verification=verification, created=daemon.clock())
    daemon.store.put(current)
    daemon.hub.publish(EventType.IDENTITY_READY, IdentityShown(current, lookup_pending=False))
    return current.read_id


def test_html_in_payload_is_shown_as_text(page: Any, desk_factory: Any, tmp_path: Path) -> None:
    desk = desk_factory()
    open_counter_page(page, desk)
    evil = '<img src=x onerror="window.__pwned=1">Trần <b>Bình</b>'
    identity = Identity(full_name=evil, id_number="001099012345", date_of_birth=dt.date(1999, 3, 15),
                        place_of_residence="<script>window.__pwned=2</script>")
    # a passive status the page has no words for: it shows the agent's own sentence
    _show_identity(desk, identity, VerificationStatus.NOT_VERIFIED, "<i>lý do</i>", passive=Status.NOT_SUPPORTED)
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
    open_counter_page(page, desk)
    reader = "idagent virtual reader 0"
    desk.daemon.hub.publish(EventType.READ_STARTED, {"reader": reader})
    desk.daemon.hub.publish(EventType.READ_PROGRESS, {"reader": reader, "file": "DG2", "done": 4500, "total": 9000})
    page.wait_for_selector("#reading:not([hidden])", timeout=TIMEOUT_MS)
    # one bar for the whole read: half of DG2 (9000 bytes) and the typical sizes of the
    # files not seen yet (30 + 1700 + 300 + 95 + 600 + 200): 4500 / 11925 = 37 %
    wait_js(page, "document.getElementById('progress-bar').style.width === '37%'")
    assert page.locator("#progress-text").inner_text() == "Đang đọc ảnh chân dung…"
    assert page.locator(".progress").get_attribute("aria-valuenow") == "37"
    assert_plain_vietnamese(page)
    _shot(page, tmp_path, "reading")


def test_progress_of_a_real_read_only_moves_forward(page: Any, desk_factory: Any) -> None:
    """Tap the virtual card: every width the bar takes is recorded in the page; it
    never goes back, passes through the photo, and ends on the result."""
    desk = desk_factory()
    open_counter_page(page, desk)
    page.evaluate("""() => {
        window.__widths = []; window.__steps = [];
        const bar = document.getElementById('progress-bar');
        const text = document.getElementById('progress-text');
        new MutationObserver(() => window.__widths.push(parseInt(bar.style.width || '0', 10)))
            .observe(bar, {attributes: true});
        new MutationObserver(() => window.__steps.push(text.textContent))
            .observe(text, {childList: true, characterData: true, subtree: true});
    }""")
    desk.tap()
    page.wait_for_selector("#result:not([hidden])", timeout=TIMEOUT_MS)
    widths = [w for w in page.evaluate("window.__widths") if w > 0]
    steps = page.evaluate("window.__steps")
    assert widths and widths == sorted(widths) and widths[-1] >= 90, widths
    assert "Đang đọc ảnh chân dung…" in steps and "Đang đọc thông tin công dân…" in steps, steps
    assert not any(JARGON.search(step) for step in steps), steps


def test_identity_dropped_while_disconnected_leaves_the_screen(page: Any, desk_factory: Any) -> None:
    """The identity is dropped (TTL, card removed, another desk's DELETE) while the
    page's WebSocket is down: the identity_cleared event is lost, so on reconnecting
    the page must clear what GET /identity no longer has, not show the last person on."""
    desk = desk_factory()
    open_counter_page(page, desk)
    desk.tap()
    page.wait_for_selector("#result:not([hidden])", timeout=TIMEOUT_MS)
    api = desk.daemon._api
    for client in list(api.sockets.open):
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
    open_counter_page(page, desk)
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(20)
    assert held, "the page did not ask GET /identity on connect"
    route, stale = held[0]
    assert stale.status == 404 and int(stale.headers["x-event-seq"]) >= 0
    identity = Identity(full_name="Trần Thị Bình", id_number="001199054321", date_of_birth=dt.date(1999, 1, 2))
    _show_identity(desk, identity, VerificationStatus.VERIFIED, "Chip thật")
    page.wait_for_selector("#result:not([hidden])", timeout=TIMEOUT_MS)
    with page.expect_response("**/identity"):
        route.fulfill(response=stale)
    # the old page cleared the screen within milliseconds of this answer
    for _ in range(20):
        page.wait_for_timeout(50)
        assert page.locator("#result").is_visible(), "a stale GET /identity answer cleared a newer identity"
    assert page.locator("dd[data-field=full_name]").inner_text() == "Trần Thị Bình"
    assert page.js_errors == []


def test_a_failed_dossier_is_shown_failed_and_sent_again(page: Any, desk_factory: Any, tmp_path: Path) -> None:
    """The receiver refuses the first 2 deliveries (503) and the outbox gives up after
    2 attempts: the page goes retrying → failed with "Gửi lại"; sent again, the
    dossier is delivered with its receipt number. Never "Đã gửi" before that."""
    desk = desk_factory(intake_fails=2)
    open_counter_page(page, desk)
    desk.tap()
    page.wait_for_selector("#badge[data-status=verified]", timeout=TIMEOUT_MS)
    page.evaluate("""() => {
        window.__said = [];
        const status = document.getElementById('action-status');
        new MutationObserver(() => window.__said.push(status.textContent))
            .observe(status, {childList: true, characterData: true, subtree: true});
    }""")
    page.click("#send")
    wait_js(page, "document.getElementById('action-status').dataset.status === 'failed'", timeout=30)
    assert page.locator("#send").inner_text() == "Gửi lại" and page.locator("#send").is_enabled()
    assert page.locator("#action-status").inner_text().startswith("Gửi hồ sơ không thành công")
    said = page.evaluate("window.__said")
    assert "Chưa gửi được, máy đang tự gửi lại (lần 1)…" in said, said
    assert not any(text.startswith("Đã gửi hồ sơ") for text in said), said
    assert_plain_vietnamese(page)
    _shot(page, tmp_path, "intake-failed")
    page.click("#send")
    wait_js(page, "document.getElementById('action-status').dataset.status === 'delivered'", timeout=30)
    assert page.locator("#action-status").inner_text() == "Đã gửi hồ sơ. Số biên nhận: TN-000001"
    assert desk.intake.state.stats()["unique_dossiers"] == 1  # the same dossier, not a second one
    assert page.js_errors == []


def test_clear_with_the_card_still_on_the_reader_offers_read_again(page: Any, desk_factory: Any,
                                                                   tmp_path: Path) -> None:
    desk = desk_factory()
    open_counter_page(page, desk)
    desk.tap()
    page.wait_for_selector("#badge[data-status=verified]", timeout=TIMEOUT_MS)
    first = page.locator("dd[data-field=full_name]").inner_text()
    page.click("#clear")
    page.wait_for_selector("#idle:not([hidden])", timeout=TIMEOUT_MS)
    page.wait_for_selector("#still-there:not([hidden])", timeout=TIMEOUT_MS)
    assert page.locator("#reread").inner_text() == "Đọc lại"
    _shot(page, tmp_path, "still-there")
    page.click("#reread")
    page.wait_for_selector("#badge[data-status=verified]", timeout=TIMEOUT_MS)
    assert page.locator("dd[data-field=full_name]").inner_text() == first
    assert page.js_errors == []


def test_errors_are_shown_in_the_clerks_words_never_in_english(page: Any, desk_factory: Any) -> None:
    desk = desk_factory()
    open_counter_page(page, desk)
    hub = desk.daemon.hub
    hub.publish(EventType.ERROR, {"reader": "idagent virtual reader 0", "code": "pace_interrupted",
                                  "message": "PACE broke off (6300): the card moved", "hint": "Lay the card again."})
    wait_js(page, "document.getElementById('error').dataset.code === 'pace_interrupted'")
    assert page.locator("#error-message").inner_text() == "Thẻ bị xê dịch khi đang đọc"
    assert page.locator("#error-hint").inner_text() == "Đặt thẻ nằm yên giữa đầu đọc; máy sẽ tự đọc lại."
    assert_plain_vietnamese(page)
    hub.publish(EventType.ERROR, {"reader": "", "code": "some_new_code", "message": "an English message",
                                  "hint": "An English hint."})
    wait_js(page, "document.getElementById('error').dataset.code === 'some_new_code'")
    assert page.locator("#error-message").inner_text() == "Có lỗi xảy ra"
    assert "English" not in page.locator("#error").inner_text()
    # an API refusal too: "Gửi hồ sơ" with nothing on show answers 404 no_identity
    desk.tap()
    page.wait_for_selector("#badge[data-status=verified]", timeout=TIMEOUT_MS)
    desk.daemon.store.drop()
    page.click("#send")
    wait_js(page, "document.getElementById('error').dataset.code === 'no_identity'")
    assert page.locator("#error-message").inner_text() == "Chưa có thông tin thẻ trên màn hình"
    assert page.js_errors == []


def test_send_says_why_when_this_desk_has_no_intake(page: Any, desk_factory: Any) -> None:
    desk = desk_factory(intake=False)
    open_counter_page(page, desk)
    desk.tap()
    page.wait_for_selector("#badge[data-status=verified]", timeout=TIMEOUT_MS)
    wait_js(page, "document.getElementById('send-why').textContent !== ''")
    assert page.locator("#send").is_disabled()
    assert page.locator("#send-why").inner_text() == "Máy này chưa được cài đặt gửi hồ sơ; báo bộ phận CNTT."
    assert page.js_errors == []
