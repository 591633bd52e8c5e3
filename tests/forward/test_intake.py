"""Dossier intake: body, signature, FHIR Patient, sender outcomes against the local receiver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest
import requests
from forward_helpers import HMAC_KEY, person

from agent.config import Config
from agent.forward.fhir import DEFAULT_CCCD_SYSTEM, identity_to_patient, split_vietnamese_name
from agent.forward.intake import (
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    IntakeConfigError,
    IntakeSender,
    IntakeSettings,
    build_dossier,
    sign,
    verify,
)
from agent.forward.keyfile import KeyFileError
from agent.forward.outbox import OutboxItem
from agent.sim.services.intake import IntakeTestService


def _item(body: bytes, key: str = "5f0c6a4e-8d5b-4b8e-9a51-0d6c1f3e2a10",
          content_type: str = "application/json") -> OutboxItem:
    return OutboxItem(1, key, "intake", content_type, body, 1)


def test_signature_is_hmac_sha256_over_timestamp_key_and_body() -> None:
    body = b'{"a":1}'
    idem = "5f0c6a4e-8d5b-4b8e-9a51-0d6c1f3e2a10"
    expected = hmac.new(HMAC_KEY, b"1764000000." + idem.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert sign(HMAC_KEY, "1764000000", idem, body) == "sha256=" + expected
    assert verify(HMAC_KEY, "1764000000", idem, body, "sha256=" + expected, now=1764000100)
    assert not verify(HMAC_KEY, "1764000000", idem, body + b" ", "sha256=" + expected, now=1764000100)
    # the same request replayed under another idempotency key does not verify
    assert not verify(HMAC_KEY, "1764000000", "another-key", body, "sha256=" + expected, now=1764000100)
    assert not verify(HMAC_KEY, "1764000000", idem, body, "sha256=" + expected, now=1764000000 + 301)  # stale
    assert not verify(b"other-key-other-key-other-key!!", "1764000000", idem, body, "sha256=" + expected,
                      now=1764000000)


def test_json_dossier_has_only_configured_fields_and_no_photo_by_default() -> None:
    ident = person(7)
    ident.photo_jpeg = b"\xff\xd8\xff\xe0fake-jpeg"
    settings = IntakeSettings(url="http://x", hmac_key=HMAC_KEY, fields=("id_number", "full_name", "date_of_birth"))
    doc = json.loads(build_dossier(ident, settings, "key-1"))
    assert doc["dossier_id"] == "key-1"
    assert doc["identity"] == {"id_number": "001099500007", "full_name": "Nguyễn Văn Thử 7",
                               "date_of_birth": "1999-03-15"}
    assert "photo_jpeg_base64" not in doc and "place_of_residence" not in json.dumps(doc)
    with_photo = json.loads(build_dossier(ident, IntakeSettings(url="http://x", hmac_key=HMAC_KEY,
                                                                include_photo=True), "key-2"))
    assert base64.b64decode(with_photo["photo_jpeg_base64"]) == ident.photo_jpeg


def test_fhir_patient_resource() -> None:
    ident = person(3)
    patient = identity_to_patient(ident)
    assert patient["resourceType"] == "Patient"
    cccd = patient["identifier"][0]
    assert cccd["system"] == DEFAULT_CCCD_SYSTEM and cccd["value"] == "001099500003"
    assert cccd["type"]["coding"][0] == {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NI",
                                         "display": "National unique individual identifier"}
    assert patient["identifier"][1]["value"] == "100000003"
    assert patient["name"] == [{"use": "official", "text": "Nguyễn Văn Thử 3", "family": "Nguyễn",
                                "given": ["Văn", "Thử", "3"]}]
    assert patient["gender"] == "male" and patient["birthDate"] == "1999-03-15"
    assert patient["address"][0]["text"] == "Số 3 Phố Thử Nghiệm, Hà Nội" and patient["address"][0]["country"] == "VN"
    assert "photo" not in patient
    assert split_vietnamese_name("  Tôn Nữ  Thị Hà ") == ("Tôn", ["Nữ", "Thị", "Hà"])


def test_fhir_dossier_uses_configured_system_and_fields() -> None:
    settings = IntakeSettings(url="http://x", hmac_key=HMAC_KEY, format="fhir", fields=("id_number", "sex"),
                              fhir_identifier_system="https://hospital.example/fhir/sid/cccd")
    doc = json.loads(build_dossier(person(1), settings, "key-9"))
    assert settings.content_type == "application/fhir+json"
    assert doc["id"] == "key-9"
    assert doc["identifier"][0]["system"] == "https://hospital.example/fhir/sid/cccd"
    assert "name" not in doc and "birthDate" not in doc and doc["gender"] == "male"
    unknown = person(2)
    unknown.sex = None
    assert identity_to_patient(unknown)["gender"] == "unknown"


def test_sender_outcomes_against_the_receiver(intake: IntakeTestService) -> None:
    sender = IntakeSender(IntakeSettings(url=intake.intake_url, hmac_key=HMAC_KEY))
    item = _item(b'{"dossier":1}')
    assert sender(item).ok
    assert sender(item).ok  # a replay is answered 2xx and changes nothing
    stats = intake.state.stats()
    assert (stats["accepted"], stats["replays"], stats["unique_dossiers"]) == (1, 1, 1)

    intake.state.control({"fail_before": 1.0})
    outcome = sender(_item(b"{}", key="k-503"))
    assert (outcome.ok, outcome.permanent, outcome.error) == (False, False, "HTTP 503")
    intake.state.control({"fail_before": 0.0})

    wrong_key = IntakeSender(IntakeSettings(url=intake.intake_url, hmac_key=b"not-the-shared-secret-000000000"))
    outcome = wrong_key(_item(b"{}", key="k-401"))
    assert (outcome.ok, outcome.permanent, outcome.error) == (False, True, "HTTP 401")
    assert intake.state.stats()["bad_signature"] == 1

    dead = IntakeSender(IntakeSettings(url="http://127.0.0.1:9/dossiers", hmac_key=HMAC_KEY, timeout=0.5))
    outcome = dead(_item(b"{}"))
    assert not outcome.ok and not outcome.permanent and outcome.error.startswith("connection failed")


def test_receiver_refuses_unsigned_and_keyless_requests(intake: IntakeTestService) -> None:
    assert requests.post(intake.intake_url, data=b"{}", timeout=5).status_code == 400
    headers = {"Idempotency-Key": "k", HEADER_TIMESTAMP: "1", HEADER_SIGNATURE: sign(HMAC_KEY, "1", "k", b"{}")}
    assert requests.post(intake.intake_url, data=b"{}", headers=headers, timeout=5).status_code == 401  # stale


def test_settings_from_config(tmp_path: Path, hmac_key_file: Path) -> None:
    config = Config.defaults().replace("intake", url="http://127.0.0.1:1/dossiers",
                                       hmac_key_file=str(hmac_key_file), format="fhir")
    settings = IntakeSettings.from_config(config)
    assert settings.hmac_key == HMAC_KEY and settings.format == "fhir"
    with pytest.raises(IntakeConfigError):
        IntakeSettings.from_config(Config.defaults())
    assert not settings.include_photo
    assert IntakeSettings.from_config(config.replace("intake", include_photo=True)).include_photo
    system = "urn:oid:2.16.704.1"
    assert IntakeSettings.from_config(
        config.replace("intake", fhir_identifier_system=system)).fhir_identifier_system == system
    hmac_key_file.chmod(0o644)
    with pytest.raises(KeyFileError, match="0644"):
        IntakeSettings.from_config(config)


def test_a_redirect_is_not_delivery() -> None:
    """A receiver answering 302 (an http→https move, a login page) must not count as
    delivered: requests would follow it with a GET, drop the dossier, and the 200 of
    the GET would delete the only copy from the outbox."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            seen.append("POST " + self.path)
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(302)
            self.send_header("Location", "/moved")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802
            seen.append("GET " + self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/dossiers"
        outcome = IntakeSender(IntakeSettings(url=url, hmac_key=HMAC_KEY))(_item(b'{"dossier":1}'))
    finally:
        server.shutdown()
        server.server_close()
    assert (outcome.ok, outcome.permanent, outcome.error) == (False, True, "HTTP 302")
    assert seen == ["POST /dossiers"]
