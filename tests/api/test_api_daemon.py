"""The daemon through its API: card → need_access → key → identity events; QR merge;
removal and TTL drop; a stuck reader; the BHYT gateway down; malformed requests."""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest
import requests
from api_fakes import FakeForwards, FakePipeline, Harness, wait_for

from agent.eventhub import EventType

QR_TEXT = "001099012345|123456789|Nguyễn Văn An|15031999|Nam|Số 12 phố Hàng Bài, Hà Nội|10052021"


def _type(name: str):  # type: ignore[no-untyped-def]
    return lambda m: m.get("type") == name


def test_card_needs_key_then_reads_verifies_and_looks_up(harness: Harness) -> None:
    conn = harness.ws()
    harness.backend.insert("Reader A")
    assert wait_for(conn, _type("card_present"))["reader"] == "Reader A"
    need = wait_for(conn, _type("need_access"))
    assert need["reason"] == "no_key" and "6 số cuối" in need["message"]
    assert harness.post("/read", {"can": "012345"}).json() == {"status": "reading", "readers": ["Reader A"]}
    progress = wait_for(conn, _type("read_progress"))
    assert {"file", "done", "total"} <= progress.keys()
    ready = wait_for(conn, _type("identity_ready"))
    assert ready["identity"]["full_name"] == "Nguyễn Văn An"
    assert ready["identity"]["date_of_birth"] == "1999-03-15"
    assert ready["photo_url"] == "/identity/photo.jpg" and "photo_jpeg_base64" not in ready["identity"]
    assert ready["timings"]["read_ms"] >= 0
    assert wait_for(conn, _type("verification"))["status"] == "verified"
    lookup = wait_for(conn, _type("lookup_result"))
    assert lookup["status"] == "valid" and lookup["read_id"] == ready["read_id"]
    current = harness.get("/identity").json()
    assert current["verification"]["status"] == "verified" and current["lookup"]["code"] == "000"
    with_photo = harness.get("/identity?photo=1").json()
    photo = harness.get("/identity/photo.jpg")
    assert photo.headers["Content-Type"] == "image/jpeg" and photo.content[:2] == b"\xff\xd8"
    assert base64.b64decode(with_photo["identity"]["photo_jpeg_base64"]) == photo.content
    conn.close()


def test_key_given_before_the_card_is_kept_for_it(harness: Harness) -> None:
    conn = harness.ws()
    assert harness.post("/read", {"id_number": "001099012345"}).json()["status"] == "waiting_for_card"
    harness.backend.insert("Reader B")
    ready = wait_for(conn, _type("identity_ready"))
    assert ready["reader"] == "Reader B" and ready["access"]["key"] == "can"
    conn.close()


def test_qr_before_card_gives_the_key_and_merges_with_conflicts(harness: Harness) -> None:
    conn = harness.ws()
    qr = QR_TEXT.replace("Nguyễn Văn An", "Nguyễn Văn Ân")  # QR disagrees on the name
    assert harness.post("/qr", {"text": qr}).json()["status"] == "waiting_for_card"
    assert wait_for(conn, _type("qr_scanned"))["keys"] == 1
    harness.backend.insert("Reader A")
    ready = wait_for(conn, _type("identity_ready"))
    assert ready["identity"]["full_name"] == "Nguyễn Văn An"  # the chip's value wins
    assert ready["identity"]["conflicts"] == [{"field": "full_name", "chip": "Nguyễn Văn An", "qr": "Nguyễn Văn Ân"}]
    conn.close()


def test_qr_after_card_unblocks_a_waiting_reader(harness: Harness) -> None:
    conn = harness.ws()
    harness.backend.insert("Reader A")
    wait_for(conn, _type("need_access"))
    assert harness.post("/qr", {"text": QR_TEXT}).json()["status"] == "reading"
    assert wait_for(conn, _type("identity_ready"))["reader"] == "Reader A"
    conn.close()


def test_wrong_can_reports_error_and_asks_again(harness: Harness) -> None:
    conn = harness.ws()
    harness.backend.insert("Reader A")
    wait_for(conn, _type("need_access"))
    harness.post("/read", {"can": "999999"})
    err = wait_for(conn, _type("error"))
    assert err["code"] == "access_denied" and err["hint"]
    assert wait_for(conn, _type("need_access"))["reason"] == "key_refused"
    harness.post("/read", {"can": "012345"})
    wait_for(conn, _type("identity_ready"))
    assert harness.daemon.metrics.read_failures.value(reason="access_denied") == 1
    conn.close()


def test_removal_drops_the_identity(harness: Harness) -> None:
    conn = harness.ws()
    harness.post("/read", {"can": "012345"})
    harness.backend.insert("Reader A")
    wait_for(conn, _type("identity_ready"))
    identity = harness.daemon.store.get().identity  # type: ignore[union-attr]
    harness.backend.remove("Reader A")
    cleared = wait_for(conn, _type("identity_cleared"))
    assert cleared["reason"] == "removed"
    assert harness.get("/identity").status_code == 404
    assert identity.full_name is None and identity.photo_jpeg is None  # wiped, not just unreferenced
    conn.close()


def test_ttl_drops_the_identity(harness_factory) -> None:  # type: ignore[no-untyped-def]
    now = [1000.0]
    h = harness_factory(clock=lambda: now[0], identity_ttl=30.0)
    conn = h.ws()
    h.post("/read", {"can": "012345"})
    h.backend.insert("Reader A")
    wait_for(conn, _type("identity_ready"))
    now[0] += 29.0
    assert h.daemon.expire() is False and h.get("/identity").status_code == 200
    now[0] += 2.0
    cleared = wait_for(conn, _type("identity_cleared"))  # the housekeeping thread does it
    assert cleared["reason"] == "ttl"
    assert h.get("/identity").status_code == 404
    assert h.daemon.metrics.identity_drops.value(reason="ttl") == 1
    conn.close()


def test_ttl_still_enforced_after_a_config_reload(harness_factory) -> None:  # type: ignore[no-untyped-def]
    """SIGHUP restarts the readers and QR sources; the housekeeping thread that drops
    an identity past its TTL must survive it (it used to be joined with the watchers
    and never started again, so after a reload no identity expired)."""
    now = [1000.0]
    h = harness_factory(clock=lambda: now[0], identity_ttl=30.0)
    config = h.daemon.config
    h.daemon._config_loader = lambda: config
    h.daemon.reload()
    conn = h.ws()
    h.post("/read", {"can": "012345"})
    h.backend.insert("Reader A")
    wait_for(conn, _type("identity_ready"))
    now[0] += 31.0
    cleared = wait_for(conn, _type("identity_cleared"))  # the housekeeping thread, not a call here
    assert cleared["reason"] == "ttl"
    conn.close()


def test_delete_identity(harness: Harness) -> None:
    harness.post("/read", {"can": "012345"})
    harness.backend.insert("Reader A")
    deadline = time.monotonic() + 5
    while harness.get("/identity").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert harness.post("/intake").json() == {"status": "queued", "outbox_id": 1, "idempotency_key": "key-1"}
    assert requests.delete(harness.base + "/identity", headers=harness.headers(), timeout=5).json() == {"cleared": True}
    assert harness.get("/identity").status_code == 404
    assert harness.post("/intake").status_code == 404


def test_stuck_reader_does_not_block_the_other(harness: Harness) -> None:
    harness.pipeline.stuck.add("Reader A")
    conn = harness.ws()
    harness.post("/read", {"can": "012345"})
    harness.backend.insert("Reader A")
    wait_for(conn, _type("read_started"))
    harness.post("/read", {"can": "012345"})
    harness.backend.insert("Reader B")
    ready = wait_for(conn, _type("identity_ready"), timeout=3)
    assert ready["reader"] == "Reader B"
    readers = {r["name"]: r for r in harness.get("/readers").json()["readers"]}
    assert readers["Reader A"]["busy"] is True and readers["Reader B"]["busy"] is False
    harness.pipeline.release.set()
    conn.close()


def test_bhyt_down_does_not_block_reading(harness_factory) -> None:  # type: ignore[no-untyped-def]
    # the gateway holds the lookup until the test lets it answer: the identity event
    # must arrive while the lookup is still held (it runs beside the read, not before
    # the event); judged by that order, not by a time the event took
    gate = threading.Event()
    forwards = FakeForwards(fail=True, gate=gate)
    h = harness_factory(forwards=forwards)
    conn = h.ws()
    h.post("/read", {"can": "012345"})
    try:
        h.backend.insert("Reader A")
        wait_for(conn, _type("identity_ready"))
        assert forwards.lookup_entered.wait(10), "no BHYT lookup was started for the read"
    finally:
        gate.set()
    lookup = wait_for(conn, _type("lookup_result"), timeout=3)
    assert lookup["status"] == "error" and lookup["error"]["code"] == "bhyt_unavailable"
    resp = h.post("/bhyt/lookup")
    assert resp.status_code == 200 and resp.json()["status"] == "error"
    conn.close()


def test_not_verified_and_clone_statuses_pass_through(harness_factory) -> None:  # type: ignore[no-untyped-def]
    h = harness_factory(pipeline=FakePipeline(status="probable_clone", reasons=["chip authentication failed"]))
    conn = h.ws()
    h.post("/read", {"can": "012345"})
    h.backend.insert("Reader A")
    ver = wait_for(conn, _type("verification"))
    assert ver["status"] == "probable_clone" and ver["notes"] == ["chip authentication failed"]
    assert ver["passive"]["status"] == "valid" and "sao chép" in ver["plain"] and ver["complete"] is True
    refused = h.post("/intake")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "probable_clone"
    assert h.forwards.intakes == []
    conn.close()


def test_altered_data_are_not_sent_to_intake(harness_factory) -> None:  # type: ignore[no-untyped-def]
    h = harness_factory(pipeline=FakePipeline(status="not_verified", passive="invalid",
                                              reasons=["DG13 does not match its hash"]))
    conn = h.ws()
    h.post("/read", {"can": "012345"})
    h.backend.insert("Reader A")
    wait_for(conn, _type("verification"))
    refused = h.post("/intake")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "altered_data"
    assert h.forwards.intakes == []
    conn.close()


def test_pace_broken_off_says_lay_the_card_again_not_wrong_number(harness_factory) -> None:  # type: ignore[no-untyped-def]
    from agent.icao.access import PaceInterruptedError

    class MovedCard(FakePipeline):
        def read(self, connection, key, on_progress):  # type: ignore[no-untyped-def]
            self.calls.append(connection.reader)
            raise PaceInterruptedError("PACE with the CAN broke off: PACE failed: 6F00")

    h = harness_factory(pipeline=MovedCard())
    conn = h.ws()
    h.post("/read", {"can": "012345"})
    h.backend.insert("Reader A")
    err = wait_for(conn, _type("error"))
    assert err["code"] == "pace_interrupted" and "keep it still" in err["hint"]
    with pytest.raises((AssertionError, TimeoutError)):
        wait_for(conn, lambda m: m.get("type") == "need_access" and m.get("reason") == "key_refused", timeout=0.5)
    assert h.daemon.metrics.read_failures.value(reason="pace_interrupted") == 1
    conn.close()


def test_malformed_requests_get_4xx_with_reason(harness: Harness) -> None:
    cases = [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (json.dumps({"can": "12ab56"}).encode(), 400, "6 digits"),
        (json.dumps({"can": 123456}).encode(), 400, "6 digits"),
        (json.dumps({"id_number": "12345"}).encode(), 400, "12-digit"),
        (json.dumps({"mrz": "IDVNM"}).encode(), 400, "30 characters"),
        (json.dumps({"document_number": "099012345", "birth_date": "1999-02-30",
                     "expiry_date": "390315"}).encode(), 400, "birth_date"),
        (json.dumps({"nothing": 1}).encode(), 400, "give one of"),
        (b"x" * 70000, 413, "too large"),
    ]
    for body, status, reason in cases:
        resp = requests.post(harness.base + "/read", data=body,
                             headers=harness.headers(**{"Content-Type": "application/json"}), timeout=5)
        assert resp.status_code == status, body[:40]
        assert reason in resp.json()["error"]["message"]
    assert harness.post("/qr", {"text": "not a card"}).status_code == 400
    assert harness.post("/qr", {"text": 5}).status_code == 400
    assert harness.post("/read", {"can": "012345", "reader": "No Such Reader"}).status_code == 404
    assert harness.get("/identity").json()["error"]["code"] == "no_identity"
    assert harness.get("/events?shape=xml").status_code == 400


def test_mrz_key_with_check_digits(harness: Harness) -> None:
    # synthetic TD1 MRZ from domain.md
    mrz = "IDVNM0990123459001099012345<<0\n9903159M3903157VNM<<<<<<<<<<<0\nNGUYEN<<VAN<AN<<<<<<<<<<<<<<<<"
    assert harness.post("/read", {"mrz": mrz}).status_code == 202
    bad = mrz.replace("0990123459", "0990123458")
    assert "check digit" in harness.post("/read", {"mrz": bad}).json()["error"]["message"]


def test_compat_shape_events(harness_factory) -> None:  # type: ignore[no-untyped-def]
    h = harness_factory(compat_events=True)
    import websockets.sync.client as ws_client

    with ws_client.connect(f"ws://127.0.0.1:{h.daemon.port}/events", additional_headers=h.headers()) as raw:
        assert json.loads(raw.recv(timeout=5))["event"] == "connected"
    conn = h.ws()
    native = h.ws(shape="native")
    h.post("/read", {"can": "012345"})
    h.backend.insert("Reader A")
    assert wait_for(conn, lambda m: m.get("event") == "new_card")["data"]["reader"] == "Reader A"
    data = wait_for(conn, lambda m: m.get("event") == "card_data")["data"]
    assert data["idCode"] == "001099012345" and data["personName"] == "Nguyễn Văn An"
    assert data["dateOfBirth"] == "15031999" and data["gender"] == "Nam"  # the kits' ddMMyyyy
    assert base64.b64decode(data["faceImage"])[:2] == b"\xff\xd8"
    assert wait_for(native, _type("identity_ready"))["identity"]["id_number"] == "001099012345"
    assert h.get("/identity?compat=1").json()["compat"]["oldIdCode"] == "123456789"
    conn.close()
    native.close()


def test_metrics_exposition(harness: Harness) -> None:
    conn = harness.ws()
    harness.post("/read", {"can": "012345"})
    harness.backend.insert("Reader A")
    wait_for(conn, _type("lookup_result"))
    harness.get("/identity", headers={})
    text = harness.get("/metrics").text
    assert 'idagent_reads_total{outcome="verified"} 1' in text
    assert "idagent_read_duration_seconds_bucket{le=\"+Inf\"} 1" in text
    assert "idagent_overhead_seconds_count 1" in text
    assert 'idagent_bhyt_lookups_total{result="valid"} 1' in text
    assert 'idagent_api_refusals_total{reason="no_token"} 1' in text
    assert "idagent_ws_clients 1" in text
    assert "001099012345" not in text
    conn.close()


def test_events_are_well_formed(harness: Harness) -> None:
    conn = harness.ws()
    harness.post("/read", {"can": "012345"})
    harness.backend.insert("Reader A")
    seen = []
    msg = wait_for(conn, lambda m: seen.append(m) or m.get("type") == "lookup_result")
    assert msg["type"] == EventType.LOOKUP_RESULT.value
    seqs = [m["seq"] for m in seen]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(isinstance(m["ts"], float) for m in seen)
    conn.close()


def test_qr_of_another_person_is_not_merged(harness: Harness) -> None:
    conn = harness.ws()
    harness.post("/read", {"can": "012345"})
    other = "079199054321|987654321|Lê Thị Mai|01021999|Nữ|Quận 1, TP HCM|01012022"
    harness.post("/qr", {"text": other})
    harness.backend.insert("Reader A")
    ready = wait_for(conn, _type("identity_ready"))
    assert ready["identity"]["id_number"] == "001099012345"
    assert ready["identity"]["conflicts"] == []
    conn.close()


def test_unused_qr_and_key_expire(harness_factory) -> None:  # type: ignore[no-untyped-def]
    from agent.daemon import KEY_WINDOW

    now = [500.0]
    h = harness_factory(clock=lambda: now[0])
    h.post("/qr", {"text": QR_TEXT})
    h.post("/read", {"can": "012345"})
    now[0] += KEY_WINDOW + 1
    h.daemon.expire()
    assert h.daemon.keys.last_qr is None and h.daemon.keys.pending_key is None
    assert h.daemon.keys_for_card() == []


def test_a_bug_in_the_pipeline_does_not_kill_the_reader(harness: Harness) -> None:
    real_read = harness.pipeline.read
    calls = []

    def broken_once(connection, key, on_progress):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real_read(connection, key, on_progress)

    harness.pipeline.read = broken_once  # type: ignore[method-assign]
    conn = harness.ws()
    harness.post("/read", {"can": "012345"})
    harness.backend.insert("Reader A")
    assert wait_for(conn, _type("error"))["code"] == "internal"
    harness.backend.remove("Reader A")
    harness.post("/read", {"can": "012345"})
    harness.backend.insert("Reader A")
    assert wait_for(conn, _type("identity_ready"))["reader"] == "Reader A"
    conn.close()


def test_a_bug_in_a_route_is_a_json_500(harness: Harness) -> None:
    def broken() -> dict[str, object]:
        raise KeyError("boom")

    harness.daemon.health = broken  # type: ignore[method-assign]
    resp = harness.get("/health")
    assert resp.status_code == 500
    assert resp.json()["error"]["code"] == "internal" and "boom" not in resp.text


def test_reader_detached_and_attached_events(harness: Harness) -> None:
    from agent.readers.base import EventKind, ReaderEvent

    conn = harness.ws()
    harness.post("/read", {"can": "012345"})
    harness.backend.insert("Reader B")
    wait_for(conn, _type("identity_ready"))
    harness.backend._events.put(ReaderEvent(EventKind.READER_DETACHED, "Reader B"))
    assert wait_for(conn, _type("identity_cleared"))["reason"] == "reader_detached"
    assert wait_for(conn, _type("reader_detached"))["reader"] == "Reader B"
    harness.backend._events.put(ReaderEvent(EventKind.READER_ATTACHED, "Reader C"))
    attached = wait_for(conn, _type("reader_attached"))
    assert attached == {**attached, "reader": "Reader C", "backend": "fake"}
    conn.close()


def test_every_qr_key_is_tried_in_order(harness: Harness) -> None:
    from agent.icao.keys import CanKey
    from agent.identity import Identity
    from agent.pipeline import QrScan

    class TwoKeys:
        def decode(self, text: str | bytes) -> QrScan:
            return QrScan(keys=[CanKey("999999"), CanKey("012345")], identity=Identity(id_number="001099012345"))

    harness.daemon.qr_decoder = TwoKeys()
    conn = harness.ws()
    harness.backend.insert("Reader A")
    wait_for(conn, _type("need_access"))
    harness.post("/qr", {"text": "anything"})
    assert wait_for(conn, _type("identity_ready"))["reader"] == "Reader A"
    assert harness.pipeline.calls == ["Reader A", "Reader A"]  # refused, then opened
    conn.close()


def test_a_bug_in_a_qr_source_does_not_stop_qr_scanning(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Like the reader monitor: an unexpected exception out of a scanner or camera
    (a decoder bug on an odd frame) must not end that source's thread for good."""
    from api_fakes import FakeBackend, FakeQrDecoder

    from agent.config import Config
    from agent.daemon import Daemon

    class FlakySource:
        name = "flaky"

        def __init__(self) -> None:
            self.calls = 0

        def payloads(self, stop: threading.Event):  # type: ignore[no-untyped-def]
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("decoder bug on an odd frame")
            yield QR_TEXT
            stop.wait(10)

    source = FlakySource()
    config = Config.defaults().replace("api", token_file=str(tmp_path / "api.token"))
    config = config.replace("readers", backends=["sim"], poll_interval=0.05)
    daemon = Daemon(config, pipeline=FakePipeline(), backends=[FakeBackend(["Reader A"])],
                    qr_decoder=FakeQrDecoder(), qr_sources=[source], forwards=FakeForwards(), port=0)
    daemon.start()
    try:
        deadline = time.monotonic() + 8
        while daemon.metrics.qr_scans.value(result="ok") < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert daemon.metrics.qr_scans.value(result="ok") == 1
    finally:
        daemon.stop()


def test_intake_twice_for_one_read_is_one_dossier(harness: Harness) -> None:
    """Desk software retrying POST /intake (its request timed out) must not queue a
    second dossier for the same read: the receiver dedups by idempotency key, and a
    new request used to get a new key."""
    import concurrent.futures

    harness.post("/read", {"can": "012345"})
    harness.backend.insert("Reader A")
    deadline = time.monotonic() + 5
    while harness.get("/identity").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: harness.post("/intake"), range(4)))
    assert [a.status_code for a in answers] == [202] * 4
    assert len({json.dumps(a.json(), sort_keys=True) for a in answers}) == 1
    assert len(harness.forwards.intakes) == 1
