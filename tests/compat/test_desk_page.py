"""An unmodified desk page written for the kit protocol (tests/compat/desk/index.html,
the npm socket.io-client in the browser) shows our card's data in Debian's Chromium,
over http and https; a page from an origin not allowed cannot connect."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from desk_browser import chromium

from agent.icao.keys import CanKey
from agent.sim.kit_client import SOCKET_IO_JS

DESK_PAGE = Path(__file__).parent / "desk" / "index.html"


class _DeskSite(http.server.BaseHTTPRequestHandler):
    files = {"/": (DESK_PAGE, "text/html; charset=utf-8"),
             "/socket.io.min.js": (SOCKET_IO_JS, "text/javascript")}

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path, content_type = self.files.get(self.path.split("?")[0], (None, ""))
        if path is None:
            self.send_error(404)
            return
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def desk_site() -> Iterator[str]:
    """The hospital's web server, serving the desk page (its origin: this address)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _DeskSite)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_desk_page_shows_our_card(kit_desk, desk_site, browser, tls: bool) -> None:  # type: ignore[no-untyped-def]
    desk = kit_desk(tls=tls, allowed_origins=[desk_site])
    # https: the desk PC was told to trust the service's certificate (here: the context)
    context = browser.new_context(ignore_https_errors=tls)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{desk_site}/?device={desk.url}")
    page.wait_for_function("document.getElementById('device').textContent.includes('phiên bản')", timeout=30000)
    desk.tap()
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Lỗi')", timeout=30000)
    # the clerk types the card's data, as with a kit that could not open the chip
    page.fill("#m_idCode", "001099012345")
    page.fill("#m_dob", "15031999")
    page.fill("#m_expiry", "15032039")
    page.click("text=Đọc lại")
    page.wait_for_function("document.getElementById('idCode').value !== ''", timeout=30000)
    assert page.input_value("#idCode") == "001099012345"
    assert page.input_value("#personName") == "Nguyễn Văn An"
    assert page.input_value("#dateOfBirth") == "15/03/1999"
    assert page.input_value("#gender") == "Nam"
    page.wait_for_function("document.getElementById('photo').naturalWidth > 0", timeout=30000)
    page.wait_for_function("document.getElementById('chip').textContent === 'Chip xác thực'", timeout=30000)
    assert errors == []
    context.close()


def test_page_from_another_origin_cannot_connect(kit_desk, desk_site, browser) -> None:  # type: ignore[no-untyped-def]
    desk = kit_desk(allowed_origins=["https://his.benhvien.example"])
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{desk_site}/?device={desk.url}")
    page.wait_for_function("document.getElementById('device').textContent.startsWith('lỗi')", timeout=30000)
    desk.daemon.submit_key(CanKey("012345"))
    desk.tap()
    page.wait_for_timeout(1500)
    assert page.input_value("#idCode") == ""  # nothing reached the page
    context.close()
