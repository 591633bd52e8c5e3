"""The keyboard wedge for real: XTest key events on Xvfb into Chromium showing a desk
application's QR-scan screen; refusals type nothing; uinput plan and doctor errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from desk_browser import CTRL_ALT_K, XServer

from agent.cli.doctor import check_wedge
from agent.config import Config
from agent.icao.checks import CheckResult, Status
from agent.icao.verify import Verification, VerificationStatus
from agent.identity import Identity
from agent.pipeline import Verdict
from agent.wedge.qrtext import WedgeRefused, qr_text
from agent.wedge.uinput import check_device, plan
from agent.wedge.wedge import Wedge, WedgeConfigError, WedgeSettings
from agent.wedge.x11 import X11Keyboard

CHIP = {f: "chip" for f in ("id_number", "old_id_number", "full_name", "date_of_birth", "sex",
                            "place_of_residence", "date_of_issue")}
OK = CheckResult(Status.VALID, "ok")


def _verdict(status: VerificationStatus) -> Verdict:
    return Verdict.of(Verification(OK, OK, OK, status, "r"))


VERIFIED = _verdict(VerificationStatus.VERIFIED)


def citizen() -> Identity:
    """A synthetic person whose name and address use many Vietnamese letters."""
    return Identity(id_number="001099012345", old_id_number="012345678", full_name="Nguyễn Thị Ánh Tuyết",
                    date_of_birth=dt.date(1990, 12, 31), sex="F",
                    place_of_residence="Số 7 Ngõ Đường Ưởng, Phường Ba Đình, Thành phố Hà Nội",
                    date_of_issue=dt.date(2021, 4, 1), sources=dict(CHIP))


def wedge(xserver: XServer, **changes: Any) -> Wedge:
    values: dict[str, Any] = dict(enabled=True, window_title=r"^Tiếp nhận hồ sơ", display=xserver.display)
    values.update(changes)
    return Wedge(WedgeSettings(**values))


def fields(page: Any) -> list[str]:
    return [page.input_value(f"#{i}") for i in ("cccd", "cmnd", "hoten", "ngaysinh", "gioitinh", "diachi", "ngaycap")]


def wait_for_scan(page: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not page.evaluate("window.scans.length") and time.monotonic() < deadline:
        time.sleep(0.05)


# --------------------------------------------------------------------------- the text

def test_qr_text_is_the_seven_fields_from_the_chip() -> None:
    assert qr_text(citizen(), VERIFIED) == ("001099012345|012345678|Nguyễn Thị Ánh Tuyết|31121990|Nữ|"
                                            "Số 7 Ngõ Đường Ưởng, Phường Ba Đình, Thành phố Hà Nội|01042021")


def test_a_separator_inside_a_field_cannot_shift_the_fields() -> None:
    person = dataclasses.replace(citizen(), place_of_residence="Số 7 | Thôn\nMới, Hà Nội")
    assert qr_text(person, VERIFIED).split("|")[5] == "Số 7 Thôn Mới, Hà Nội"


@pytest.mark.parametrize("verification", [_verdict(VerificationStatus.NOT_VERIFIED),
                                          _verdict(VerificationStatus.PROBABLE_CLONE), Verdict.of(None)])
def test_unverified_reads_are_refused(verification: Verdict) -> None:
    with pytest.raises(WedgeRefused, match="not verified"):
        qr_text(citizen(), verification)


def test_fields_from_the_printed_qr_are_refused() -> None:
    person = dataclasses.replace(citizen(), sources={**CHIP, "full_name": "qr"})
    with pytest.raises(WedgeRefused, match="full_name"):
        qr_text(person, VERIFIED)


# --------------------------------------------------------------------------- typing for real

def test_types_the_verified_card_into_the_desk_app(xserver: XServer, desk_app: Any) -> None:
    result = wedge(xserver).type_identity(citizen(), VERIFIED)
    wait_for_scan(desk_app)
    assert result["status"] == "typed" and result["window"].startswith("Tiếp nhận hồ sơ")
    assert fields(desk_app) == ["001099012345", "012345678", "Nguyễn Thị Ánh Tuyết", "31/12/1990", "Nữ",
                                "Số 7 Ngõ Đường Ưởng, Phường Ba Đình, Thành phố Hà Nội", "01/04/2021"]


def test_keymap_is_restored_after_typing(xserver: XServer, desk_app: Any) -> None:
    x11 = X11Keyboard(xserver.display)
    first, count = x11._d.display.info.min_keycode, x11._d.display.info.max_keycode
    before = x11._d.get_keyboard_mapping(first, count - first + 1)
    x11.close()
    wedge(xserver).type_identity(citizen(), VERIFIED)
    x11 = X11Keyboard(xserver.display)
    after = x11._d.get_keyboard_mapping(first, count - first + 1)
    x11.close()
    assert after == before


def test_nothing_is_typed_for_an_unverified_read(xserver: XServer, desk_app: Any) -> None:
    with pytest.raises(WedgeRefused):
        wedge(xserver).type_identity(citizen(), _verdict(VerificationStatus.NOT_VERIFIED))
    time.sleep(0.3)
    assert desk_app.evaluate("window.keydowns") == 0 and desk_app.input_value("#scan") == ""


def test_nothing_is_typed_when_no_window_matches(xserver: XServer, desk_app: Any) -> None:
    with pytest.raises(WedgeRefused, match="no window"):
        wedge(xserver, window_title="^Phần mềm khác$").type_identity(citizen(), VERIFIED)
    time.sleep(0.3)
    assert desk_app.evaluate("window.keydowns") == 0


def test_nothing_is_typed_when_two_windows_match(xserver: XServer, browser: Any, desk_app: Any) -> None:
    other = browser.new_context()
    page = other.new_page()
    page.goto(Path(__file__).with_name("desk_app.html").as_uri())
    x11 = X11Keyboard(xserver.display)
    deadline = time.monotonic() + 5
    while len(x11.find(re.compile("^Tiếp nhận hồ sơ"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # the second window is mapped and titled
    x11.close()
    try:
        with pytest.raises(WedgeRefused, match="2 windows"):
            wedge(xserver).type_identity(citizen(), VERIFIED)
        time.sleep(0.3)
        assert desk_app.evaluate("window.keydowns") == 0 and page.evaluate("window.keydowns") == 0
    finally:
        other.close()


def test_nothing_is_typed_when_the_wedge_is_off_or_has_no_title(xserver: XServer, desk_app: Any) -> None:
    with pytest.raises(WedgeRefused, match="off"):
        wedge(xserver, enabled=False).type_identity(citizen(), VERIFIED)
    with pytest.raises(WedgeConfigError):
        wedge(xserver, window_title="").type_identity(citizen(), VERIFIED)
    assert desk_app.evaluate("window.keydowns") == 0


# --------------------------------------------------------------------------- uinput, doctor

def test_uinput_plan_types_ascii_keys_and_unicode_entry() -> None:
    strokes = plan("Aữ")
    assert strokes[0] == (("KEY_LEFTSHIFT",), "KEY_A")
    # ữ = U+1EEF: Ctrl+Shift+U, 1 e e f, Space
    assert strokes[1:] == [(("KEY_LEFTCTRL", "KEY_LEFTSHIFT"), "KEY_U"), ((), "KEY_1"), ((), "KEY_E"),
                           ((), "KEY_E"), ((), "KEY_F"), ((), "KEY_SPACE")]


def test_uinput_device_problems_are_named(tmp_path: Path) -> None:
    assert "does not exist" in check_device(str(tmp_path / "uinput"))
    node = tmp_path / "uinput"
    node.write_bytes(b"")
    os.chmod(node, 0o400)
    if os.geteuid() != 0:  # root may write anything
        assert "not writable" in check_device(str(node))


def test_doctor_fails_without_an_x_display() -> None:
    config = Config.defaults().replace("wedge", enabled=True, window_title="HIS", display=":987")
    check = check_wedge(config)
    assert check.status == "fail" and "no X display" in check.detail and "nothing will be typed" in check.detail


def test_doctor_fails_without_uinput(xserver: XServer) -> None:
    config = Config.defaults().replace("wedge", enabled=True, window_title="HIS", display=xserver.display,
                                       backend="uinput")
    check = check_wedge(config)
    expected = check_device()  # "/dev/uinput does not exist" on a machine without the module
    assert (check.status == "fail") == bool(expected) and expected in check.detail


def test_doctor_ok_with_x11(xserver: XServer) -> None:
    config = Config.defaults().replace("wedge", enabled=True, window_title="HIS", display=xserver.display)
    check = check_wedge(config)
    assert check.status == "ok" and "Unicode keysym" in check.detail


# --------------------------------------------------------------------------- the clerk's triggers

class _Current:
    def __init__(self, identity: Identity, verification: Verdict) -> None:
        self.identity, self.verification, self.read_id = identity, verification, 7


def test_hotkey_types_the_verified_card(xserver: XServer, desk_app: Any) -> None:
    from agent.wedge.trigger import WedgeTrigger

    events: list[dict[str, Any]] = []
    settings = WedgeSettings(enabled=True, window_title=r"^Tiếp nhận hồ sơ", display=xserver.display,
                             hotkey="ctrl+alt+k")
    trigger = WedgeTrigger(settings, lambda: _Current(citizen(), VERIFIED), publish=events.append).start()
    try:
        xserver.press(*CTRL_ALT_K)
        wait_for_scan(desk_app)
    finally:
        trigger.stop()
    assert fields(desk_app)[2] == "Nguyễn Thị Ánh Tuyết"
    assert [(e["status"], e["source"]) for e in events] == [("typed", "hotkey")]


def test_hotkey_on_an_unverified_read_types_nothing_and_says_why(xserver: XServer, desk_app: Any) -> None:
    from agent.wedge.trigger import WedgeTrigger

    events: list[dict[str, Any]] = []
    settings = WedgeSettings(enabled=True, window_title=r"^Tiếp nhận hồ sơ", display=xserver.display,
                             hotkey="ctrl+alt+k")
    current = _Current(citizen(), _verdict(VerificationStatus.NOT_VERIFIED))
    trigger = WedgeTrigger(settings, lambda: current, publish=events.append).start()
    try:
        xserver.press(*CTRL_ALT_K)
        deadline = time.monotonic() + 3
        while not events and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        trigger.stop()
    assert events and events[0]["status"] == "refused" and "not verified" in events[0]["message"]
    assert desk_app.evaluate("window.keydowns") == 0
