"""The keyboard wedge through the daemon's API (issue 16): ``POST /wedge/type`` types the
verified read on show into the one window whose title matches ``[wedge] window_title``,
and refuses, typing nothing, for every other case, each with its own code; every attempt
is told to the page as a ``wedge_result`` event without the typed text. The X11 backend
is a recording double (the real one types into Chromium on Xvfb: tests/wedge)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import requests
from api_fakes import FakePipeline, Harness, RecordingKeyboard, synthetic_identity, wait_for

from agent.config import Config

WEDGE = {"enabled": True, "window_title": "^Tiếp nhận hồ sơ"}
DESK_APP = "Tiếp nhận hồ sơ - Một cửa điện tử"
COUNTER_PAGE = "Đọc thẻ CCCD - Chromium"
CHIP = {f: "chip" for f in ("id_number", "old_id_number", "full_name", "date_of_birth", "sex",
                            "place_of_residence", "date_of_issue")}
#: synthetic_identity() as the card's QR text, ended by Enter ([wedge] submit = "enter")
TEXT = ("001099012345|123456789|Nguyễn Văn An|15031999|Nam|"
        "Số 12 phố Hàng Bài, Phường Tràng Tiền, Hoàn Kiếm, Hà Nội|10052021\n")
#: personal data of synthetic_identity() that must reach neither events nor logs
PERSONAL = ("001099012345", "123456789", "Nguyễn Văn An", "15031999", "Hàng Bài", "10052021")


def _chip_read() -> Any:
    return synthetic_identity(sources=dict(CHIP))


def _type(name: str):  # type: ignore[no-untyped-def]
    return lambda m: m.get("type") == name


def _desk(harness_factory: Any, keyboard: RecordingKeyboard, *, status: str = "verified",
          identity: Any = _chip_read, wedge: dict[str, Any] | None = WEDGE) -> Harness:
    return harness_factory(pipeline=FakePipeline(status=status, identity_factory=identity), wedge=wedge,
                           wedge_keyboard=keyboard.factory)


def _read(harness: Harness, conn: Any) -> dict[str, Any]:
    harness.post("/read", {"can": "012345"})
    harness.backend.insert("Reader A")
    return wait_for(conn, _type("identity_ready"))


def _refused(harness: Harness, conn: Any, status: int, code: str, read_id: int | None) -> dict[str, Any]:
    """POST /wedge/type is refused with ``status`` and ``code``; the page is told so."""
    answer = harness.post("/wedge/type")
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and "nothing" in error["message"] and error["hint"]
    event = wait_for(conn, _type("wedge_result"))
    assert (event["ok"], event["status"], event["code"], event["read_id"]) == (False, "refused", code, read_id)
    assert event["characters"] == 0 and event["source"] == "page"
    return event


def test_types_the_verified_read_into_the_matching_window(harness_factory: Any,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    keyboard = RecordingKeyboard([COUNTER_PAGE, DESK_APP])
    h = _desk(harness_factory, keyboard)
    conn = h.ws()
    ready = _read(h, conn)
    assert keyboard.typed == []  # a read by itself types nothing
    with caplog.at_level(logging.DEBUG):
        answer = h.post("/wedge/type")
        event = wait_for(conn, _type("wedge_result"))
    assert answer.status_code == 200, answer.text
    assert keyboard.activated == [DESK_APP] and keyboard.typed == [TEXT]
    body = answer.json()
    assert (body["ok"], body["status"], body["characters"], body["window"], body["read_id"], body["source"]) == (
        True, "typed", len(TEXT), DESK_APP, ready["read_id"], "page")
    assert (event["ok"], event["code"], event["characters"], event["window"], event["read_id"]) == (
        True, None, len(TEXT), DESK_APP, ready["read_id"])
    # neither the answer, the event nor the log carries what was typed
    for said in (answer.text, json.dumps(event, ensure_ascii=False)):
        assert not [p for p in PERSONAL if p in said], said
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"typed {len(TEXT)} characters" in logged
    assert not [p for p in PERSONAL if p in logged]


def test_refused_when_the_wedge_is_off(harness_factory: Any) -> None:
    keyboard = RecordingKeyboard([DESK_APP])
    h = _desk(harness_factory, keyboard, wedge=None)  # the default config: [wedge] enabled = false
    conn = h.ws()
    ready = _read(h, conn)
    _refused(h, conn, 403, "wedge_disabled", ready["read_id"])
    assert keyboard.opened == 0 and keyboard.typed == []
    wedge = h.get("/health").json()["wedge"]
    assert (wedge["enabled"], wedge["available"]) == (False, False)


@pytest.mark.parametrize("status", ["not_verified", "probable_clone"])
def test_refused_for_a_read_that_is_not_verified(harness_factory: Any, status: str) -> None:
    keyboard = RecordingKeyboard([DESK_APP])
    h = _desk(harness_factory, keyboard, status=status)
    conn = h.ws()
    ready = _read(h, conn)
    event = _refused(h, conn, 409, "wedge_unverified", ready["read_id"])
    assert status in event["message"]
    assert keyboard.opened == 0 and keyboard.activated == [] and keyboard.typed == []


def test_refused_when_a_field_is_not_from_the_chip(harness_factory: Any) -> None:
    keyboard = RecordingKeyboard([DESK_APP])
    h = _desk(harness_factory, keyboard, identity=synthetic_identity)  # only the name is marked "chip"
    conn = h.ws()
    ready = _read(h, conn)
    _refused(h, conn, 409, "wedge_not_from_chip", ready["read_id"])
    assert keyboard.opened == 0 and keyboard.typed == []


def test_refused_when_no_window_matches(harness_factory: Any) -> None:
    keyboard = RecordingKeyboard([COUNTER_PAGE, "Phần mềm kế toán"])
    h = _desk(harness_factory, keyboard)
    conn = h.ws()
    ready = _read(h, conn)
    event = _refused(h, conn, 409, "wedge_no_window", ready["read_id"])
    assert event["window"] is None
    assert keyboard.opened == 1 and keyboard.activated == [] and keyboard.typed == []


def test_refused_when_two_windows_match(harness_factory: Any) -> None:
    keyboard = RecordingKeyboard([DESK_APP, DESK_APP + " (2)"])
    h = _desk(harness_factory, keyboard)
    conn = h.ws()
    ready = _read(h, conn)
    _refused(h, conn, 409, "wedge_several_windows", ready["read_id"])
    assert keyboard.activated == [] and keyboard.typed == []


def test_refused_when_the_virtual_keyboard_is_unavailable(harness_factory: Any) -> None:
    keyboard = RecordingKeyboard([DESK_APP], unavailable="no X display (:99): connection refused")
    h = _desk(harness_factory, keyboard)
    conn = h.ws()
    ready = _read(h, conn)
    _refused(h, conn, 503, "wedge_unavailable", ready["read_id"])
    assert keyboard.typed == []
    wedge = h.get("/health").json()["wedge"]
    assert (wedge["enabled"], wedge["available"]) == (True, False) and "no X display" in wedge["problem"]


def test_refused_without_a_window_title(harness_factory: Any) -> None:
    keyboard = RecordingKeyboard([DESK_APP])
    h = _desk(harness_factory, keyboard, wedge={"enabled": True, "window_title": ""})
    conn = h.ws()
    ready = _read(h, conn)
    answer = h.post("/wedge/type")
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "wedge_config"
    assert wait_for(conn, _type("wedge_result"))["read_id"] == ready["read_id"]
    assert keyboard.opened == 0 and keyboard.typed == []
    assert "window_title is empty" in h.get("/health").json()["wedge"]["problem"]


def test_refused_without_an_identity(harness_factory: Any) -> None:
    keyboard = RecordingKeyboard([DESK_APP])
    h = _desk(harness_factory, keyboard)
    answer = h.post("/wedge/type")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "no_identity"
    assert keyboard.opened == 0 and keyboard.typed == []


def test_the_token_and_the_origin_are_checked_before_anything_is_typed(harness_factory: Any) -> None:
    keyboard = RecordingKeyboard([DESK_APP])
    h = _desk(harness_factory, keyboard)
    conn = h.ws()
    _read(h, conn)
    assert requests.post(h.base + "/wedge/type", timeout=5).status_code == 401
    foreign = h.post("/wedge/type", headers=h.headers(Origin="https://evil.example"))
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "bad_origin"
    assert keyboard.opened == 0 and keyboard.typed == []
    # the page's own origin is allowed
    assert h.post("/wedge/type", headers=h.headers(Origin=h.base)).status_code == 200
    assert keyboard.typed == [TEXT]


def test_health_says_the_wedge_is_on_and_available(harness_factory: Any) -> None:
    h = _desk(harness_factory, RecordingKeyboard([DESK_APP]))
    wedge = h.get("/health").json()["wedge"]
    assert (wedge["enabled"], wedge["available"], wedge["backend"], wedge["method"], wedge["problem"]) == (
        True, True, "x11", "recording double", None)
    assert wedge["window_title"] == WEDGE["window_title"] and wedge["hotkey"] is None


def test_a_reload_that_turns_the_wedge_off_refuses_the_next_request(harness_factory: Any) -> None:
    keyboard = RecordingKeyboard([DESK_APP])
    h = _desk(harness_factory, keyboard)
    conn = h.ws()
    ready = _read(h, conn)
    off: Config = h.daemon.config.replace("wedge", enabled=False)
    h.daemon._config_loader = lambda: off
    h.daemon.reload()
    _refused(h, conn, 403, "wedge_disabled", ready["read_id"])
    assert keyboard.typed == []


def test_refused_by_the_real_x11_backend_without_a_display(harness_factory: Any) -> None:
    """No double: the real XTest keyboard on a display that does not exist."""
    h = harness_factory(pipeline=FakePipeline(identity_factory=_chip_read),
                        wedge={**WEDGE, "display": ":987"})
    conn = h.ws()
    ready = _read(h, conn)
    event = _refused(h, conn, 503, "wedge_unavailable", ready["read_id"])
    assert "no X display (:987)" in event["message"]
    wedge = h.get("/health").json()["wedge"]
    assert (wedge["available"], wedge["method"]) == (False, None) and "no X display" in wedge["problem"]
