"""How the chip was opened, as the desk emits it: the ``access`` of the ``identity_ready``
frame and of ``GET /identity``, pinned byte for byte (issue 15: the desk carries the
chip read's typed record and only the API writes it as JSON; the bytes stay these).
Values are text, absent fields are left out."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
import websockets.sync.client as ws_client
from api_fakes import Harness, wait_for

from agent.demo import DeskStack, desk_stack

PACE_GM = ('{"protocol":"PACE","cipher":"AES-128","key_type":"CAN","oid":"0.4.0.127.0.7.2.2.4.2.2",'
           '"mapping":"ECDH-GM","parameter_id":"13"}')
BAC_ONLY = '{"protocol":"BAC","cipher":"3DES","key_type":"MRZ","pace_failure":"the chip has no EF.CardAccess"}'


def _access(text: str) -> str:
    """The ``access`` object of a JSON text, as written (it nests nothing)."""
    found = re.search(r'"access":\s*(\{[^{}]*\})', text)
    assert found, text[:200]
    return found.group(1)


def _tapped(stack: DeskStack) -> tuple[str, str]:
    """Tap the card (QR first); the identity_ready frame and GET /identity, as text."""
    url = f"ws://127.0.0.1:{stack.daemon.port}/events"
    headers = {"Authorization": f"Bearer {stack.token}"}
    with ws_client.connect(url, additional_headers=headers, open_timeout=5) as conn:
        conn.recv(timeout=5)  # hello
        stack.tap()
        frame = ""
        while '"type":"identity_ready"' not in frame:
            received = conn.recv(timeout=30)
            frame = received if isinstance(received, str) else received.decode()
    return frame, requests.get(stack.base + "/identity", headers=headers, timeout=5).text


@pytest.fixture(params=[("nguyen-van-an", PACE_GM), ("le-hoang-duc", BAC_ONLY)], ids=["pace", "bac"])
def tapped(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, str]]:
    profile, expected = request.param
    with desk_stack(backend="sim", profile=profile, intake=False) as stack:
        frame, body = _tapped(stack)
        yield frame, body, expected


def test_the_access_of_a_chip_read_is_emitted_as_before(tapped: tuple[str, str, str]) -> None:
    frame, body, expected = tapped
    assert _access(frame) == expected
    # GET /identity: the same object, written by aiohttp's json_response (", " and ": ")
    assert _access(body) == expected.replace('","', '", "').replace('":"', '": "')


def test_a_pipeline_that_does_not_say_how_leaves_the_kind_of_key(harness: Harness) -> None:
    conn = harness.ws()
    harness.backend.insert("Reader A")
    wait_for(conn, lambda m: m.get("type") == "need_access")
    harness.post("/read", {"can": "012345"})
    assert wait_for(conn, lambda m: m.get("type") == "identity_ready")["access"] == {"key": "can"}
    assert _access(harness.get("/identity").text) == '{"key": "can"}'
    conn.close()


def test_a_cam_read_writes_its_chip_authentication_data_in_upper_hex() -> None:
    from agent.api.render import access_body
    from agent.icao.access import AccessInfo

    info = AccessInfo("PACE", "AES-128", "CAN", oid="0.4.0.127.0.7.2.2.4.6.2", mapping="ECDH-CAM",
                      parameter_id=13, cam_data=bytes.fromhex("0a1b2c"), cam_ca_ic=b"\x04" * 65,
                      chip_mapping_key=b"\x04" * 65)
    # what the chip gave for the trust layer (CA_IC, PK_map,IC) is not emitted
    assert access_body(info) == {"protocol": "PACE", "cipher": "AES-128", "key_type": "CAN",
                                 "oid": "0.4.0.127.0.7.2.2.4.6.2", "mapping": "ECDH-CAM", "parameter_id": "13",
                                 "cam_data": "0A1B2C"}
