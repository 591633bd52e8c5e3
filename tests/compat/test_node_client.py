"""The npm socket.io-client (what kit desk software uses), in Node, against the
agent's reader-kit service: http and https, the read events, /input_data, /get_aa,
the Origin allow-list and the unverified-card rule."""

from __future__ import annotations

import base64
import datetime as dt
import os

from agent.sim.kit_client import kit_event


def _input_data() -> dict[str, str]:
    return {"idCode": "001099012345", "dateOfBirth": "15031999", "expiryDate": "15032039", "clientId": "desk-1"}


def test_info_then_read_after_input_data(kit_desk, node_client) -> None:  # type: ignore[no-untyped-def]
    desk = kit_desk(send_raw=True)
    client = node_client(desk.url)
    info = client.wait_for(lambda m: m["event"] == "/info")["data"]
    assert set(info) == {"version", "serial_nfc", "serial_device", "date"}
    assert dt.datetime.fromisoformat(info["date"]).utcoffset() == dt.timedelta(0)
    desk.tap()
    assert client.wait_for(kit_event(1))["data"]["message"] == "new card!"
    # no QR scanned, no number typed: the kit way is /input_data with the card's data
    assert "CCCD" in client.wait_for(kit_event(3))["data"]["message"]
    client.emit("/input_data", _input_data())
    card = client.wait_for(kit_event(2))["data"]
    assert card["message"] == "read card successfully!"
    data = card["data"]
    assert data["idCode"] == "001099012345" and data["personName"] == "Nguyễn Văn An"
    assert data["dateOfBirth"] == "15031999" and data["expiryDate"] == "15032039"
    assert data["issueDate"] == "01072024" and data["gender"] == "Nam" and data["oldIdCode"] == "012345678"
    assert data["verified"] is True and data["verification"]["status"] == "verified"
    raw = client.wait_for(kit_event(4))["data"]["data"]
    assert base64.b64decode(raw["img_data"])[:2] == b"\xff\xd8"
    assert base64.b64decode(raw["dg1"])[:1] == b"\x61" and base64.b64decode(raw["sod"])[:1] == b"\x77"
    security = client.wait_for(kit_event(5))["data"]["data"]
    assert security["CA"] == "1" and security["verified"] is True
    assert len(base64.b64decode(security["AA"]["aa_signature"])) == 128  # RSA-1024 AA answer
    assert len(base64.b64decode(security["PA"]["hash_dg1"])) == 32  # SHA-256, as EF.SOD signs it
    assert base64.b64decode(security["PA"]["cert"])[:1] == b"\x30"


def test_get_aa_signs_the_clients_challenge(kit_desk, node_client) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric import padding  # noqa: F401 - RSA raw recovery below

    from agent.icao.aa import iso9796_2_verify

    desk = kit_desk()
    client = node_client(desk.url)
    client.wait_for(lambda m: m["event"] == "/info")
    desk.tap()
    client.wait_for(kit_event(3))
    client.emit("/input_data", _input_data())
    client.wait_for(kit_event(5))
    challenge = os.urandom(8)
    client.emit("/get_aa", {"clientId": "desk-1", "challenge": base64.b64encode(challenge).decode()})
    answer = client.wait_for(kit_event(7))["data"]["data"]
    assert base64.b64decode(answer["aa_challege"]) == challenge
    signature = base64.b64decode(answer["aa_signature"])
    # the desk verifies it itself with DG15's key: RSA "decrypt" then ISO/IEC 9796-2
    from agent.icao.aa import parse_dg15
    from agent.icao.certs import load_public_key
    from agent.sim.profile import load_profile

    key = load_public_key(parse_dg15(load_profile("nguyen-van-an").files[0x010F]))  # EF.DG15
    numbers = key.public_numbers()  # type: ignore[union-attr]
    recovered = pow(int.from_bytes(signature, "big"), numbers.e, numbers.n).to_bytes(128, "big")
    assert iso9796_2_verify(recovered, challenge) == "sha1"
    # clientId names another connected client (its Socket.IO id): the answer goes there
    other = node_client(desk.url)
    other_id = other.wait_for(lambda m: m["event"] == "connect")["data"]["id"]
    other.wait_for(lambda m: m["event"] == "/info")
    client.emit("/get_aa", {"clientId": other_id, "challenge": base64.b64encode(challenge).decode()})
    assert base64.b64decode(other.wait_for(kit_event(7))["data"]["data"]["aa_challege"]) == challenge
    # a malformed challenge is a clear failure, not a crash
    client.emit("/get_aa", {"clientId": "desk-1", "challenge": "AAAA"})
    assert "không hợp lệ" in client.wait_for(kit_event(3))["data"]["message"]


def test_https_with_the_self_signed_certificate(kit_desk, node_client) -> None:  # type: ignore[no-untyped-def]
    desk = kit_desk(tls=True)
    assert desk.url.startswith("https://")
    client = node_client(desk.url, ca=desk.cert)  # certificate verified against our CA, not ignored
    assert client.wait_for(lambda m: m["event"] == "/info")["data"]["serial_device"]
    desk.daemon.submit_key(__import__("agent.icao.keys", fromlist=["CanKey"]).CanKey("012345"))
    desk.tap()
    assert client.wait_for(kit_event(2))["data"]["data"]["idCode"] == "001099012345"
    untrusting = node_client(desk.url)  # no CA given: the self-signed certificate is refused
    assert untrusting.wait_for(lambda m: m["event"] == "connect_error")


def test_origin_allow_list(kit_desk, node_client) -> None:  # type: ignore[no-untyped-def]
    desk = kit_desk(allowed_origins=["https://his.benhvien.example"])
    allowed = node_client(desk.url, {"extraHeaders": {"Origin": "https://his.benhvien.example"}})
    assert allowed.wait_for(lambda m: m["event"] == "/info")
    refused = node_client(desk.url, {"extraHeaders": {"Origin": "https://evil.example"}})
    assert refused.wait_for(lambda m: m["event"] in ("connect_error", "/info"))["event"] == "connect_error"


def test_unverified_card_sends_no_data(kit_desk, node_client) -> None:  # type: ignore[no-untyped-def]
    from agent.icao.keys import CanKey

    desk = kit_desk(send_raw=True)
    client = node_client(desk.url)
    client.wait_for(lambda m: m["event"] == "/info")
    desk.daemon.submit_key(CanKey("012345"))
    desk.tap("nguyen-van-an+cloned")
    refusal = client.wait_for(kit_event(3))["data"]
    assert refusal["data"]["verified"] is False and refusal["data"]["verification"]["status"] == "probable_clone"
    desk.remove()
    desk.daemon.submit_key(CanKey("012345"))
    desk.tap()  # the next, genuine card is sent: nothing of the clone came before it
    seen = []
    while True:
        message = client.wait_for(lambda m: m["event"] == "/event")["data"]
        seen.append(message["id"])
        if message["id"] == 2:
            break
    assert 4 not in seen and 5 not in seen
