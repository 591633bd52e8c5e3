"""What the counter page needs from the daemon (issue 13): the dossier's delivery
state from the outbox (queued → delivered with the receiver's receipt number, or
failed and sent again on request), no BHYT lookup for data that fail their signature,
and "Đọc lại" for a card still on the reader after "Xóa"."""

from __future__ import annotations

import time
from typing import Any

import requests
from api_fakes import FakePipeline, Harness, wait_for

from agent.forward.worker import DeliveryReport


def _type(name: str):  # type: ignore[no-untyped-def]
    return lambda m: m.get("type") == name


def _read(harness: Harness, conn: Any) -> dict[str, Any]:
    harness.post("/read", {"can": "012345"})
    harness.backend.insert("Reader A")
    return wait_for(conn, _type("identity_ready"))


def test_intake_queued_then_delivered_with_the_receipt(harness: Harness) -> None:
    conn = harness.ws()
    ready = _read(harness, conn)
    answer = harness.post("/intake")
    assert answer.status_code == 202 and answer.json()["status"] == "queued"
    key = answer.json()["idempotency_key"]
    queued = wait_for(conn, _type("intake_result"))
    assert (queued["read_id"], queued["status"], queued["idempotency_key"]) == (ready["read_id"], "queued", key)
    assert harness.get("/identity").json()["intake"]["status"] == "queued"  # never "delivered" while queued
    harness.forwards.report(DeliveryReport(key, "intake", "retrying", 1, None, "HTTP 503"))
    retrying = wait_for(conn, _type("intake_status"))
    assert (retrying["status"], retrying["attempts"], retrying["receipt"]) == ("retrying", 1, None)
    harness.forwards.report(DeliveryReport(key, "intake", "delivered", 2, "TN-000042"))
    delivered = wait_for(conn, _type("intake_status"))
    assert (delivered["read_id"], delivered["status"], delivered["receipt"]) == (ready["read_id"], "delivered",
                                                                                 "TN-000042")
    intake = harness.get("/identity").json()["intake"]
    assert (intake["status"], intake["receipt"], intake["idempotency_key"]) == ("delivered", "TN-000042", key)
    # asking again for a delivered dossier sends nothing new
    assert harness.post("/intake").json()["status"] == "delivered" and len(harness.forwards.intakes) == 1
    conn.close()


def test_a_failed_dossier_is_sent_again_on_request(harness: Harness) -> None:
    conn = harness.ws()
    _read(harness, conn)
    key = harness.post("/intake").json()["idempotency_key"]
    harness.forwards.report(DeliveryReport(key, "intake", "failed", 50, None, "HTTP 400"))
    failed = wait_for(conn, _type("intake_status"))
    assert (failed["status"], failed["error"]) == ("failed", "HTTP 400")
    again = harness.post("/intake")
    assert again.status_code == 202 and again.json()["status"] == "queued"
    assert again.json()["idempotency_key"] == key and "error" not in again.json()
    assert harness.forwards.retried == [key] and len(harness.forwards.intakes) == 1  # the same dossier
    assert wait_for(conn, _type("intake_result"))["status"] == "queued"
    conn.close()


def test_a_report_for_a_dossier_of_an_identity_gone_is_still_announced(harness: Harness) -> None:
    conn = harness.ws()
    ready = _read(harness, conn)
    key = harness.post("/intake").json()["idempotency_key"]
    harness.backend.remove("Reader A")
    wait_for(conn, _type("identity_cleared"))
    harness.forwards.report(DeliveryReport(key, "intake", "delivered", 1, "TN-1"))
    assert wait_for(conn, _type("intake_status"))["read_id"] == ready["read_id"]
    harness.forwards.report(DeliveryReport("unknown-key", "intake", "delivered", 1, "TN-2"))
    harness.forwards.report(DeliveryReport(key, "intake", "delivered", 1, "TN-1"))
    # the unknown dossier (an earlier run's) is not announced: the next event is key's again
    assert wait_for(conn, _type("intake_status"))["receipt"] == "TN-1"
    conn.close()


def test_no_bhyt_lookup_for_altered_data(harness_factory) -> None:  # type: ignore[no-untyped-def]
    h = harness_factory(pipeline=FakePipeline(status="not_verified", passive="invalid"))
    conn = h.ws()
    ready = _read(h, conn)
    assert ready["lookup_pending"] is False
    wait_for(conn, _type("verification"))
    refused = h.post("/bhyt/lookup")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "altered_data"
    time.sleep(0.3)
    assert h.forwards.lookups == 0
    conn.close()


def test_a_probable_clone_is_still_looked_up(harness_factory) -> None:  # type: ignore[no-untyped-def]
    """The page shows that lookup as "chưa đáng tin" beside the verdict; the agent does it."""
    h = harness_factory(pipeline=FakePipeline(status="probable_clone"))
    conn = h.ws()
    assert _read(h, conn)["lookup_pending"] is True
    assert wait_for(conn, _type("lookup_result"))["status"] == "valid"
    conn.close()


def test_read_again_while_the_card_is_still_on_the_reader(harness: Harness) -> None:
    conn = harness.ws()
    first = _read(harness, conn)
    assert requests.delete(harness.base + "/identity", headers=harness.headers(), timeout=5).json() == {
        "cleared": True}
    again = harness.post("/read/again", {"reader": "Reader A"})
    assert again.status_code == 202 and again.json() == {"status": "reading", "readers": ["Reader A"]}
    second = wait_for(conn, _type("identity_ready"))  # the same keys: no need_access on the way
    assert second["read_id"] > first["read_id"] and second["identity"]["full_name"] == "Nguyễn Văn An"
    assert harness.pipeline.calls == ["Reader A", "Reader A"]
    harness.backend.remove("Reader A")
    wait_for(conn, _type("card_removed"))
    time.sleep(0.1)
    gone = harness.post("/read/again", {"reader": "Reader A"})
    assert gone.status_code == 409 and gone.json()["error"]["code"] == "no_card"
    assert harness.post("/read/again", {"reader": 3}).status_code == 400
    conn.close()


def test_read_again_while_the_last_read_is_still_finishing(harness_factory) -> None:  # type: ignore[no-untyped-def]
    """'Đọc lại' pressed while the worker is still busy with the card (here: a slow
    read) is queued after it, not refused (it was refused under load: 409 no_card)."""
    h = harness_factory(pipeline=FakePipeline(delay=1.0))
    conn = h.ws()
    h.post("/read", {"can": "012345"})
    h.backend.insert("Reader A")
    wait_for(conn, _type("read_started"))
    time.sleep(0.2)  # the worker is inside the (slow) read: busy
    again = h.post("/read/again", {"reader": "Reader A"})
    assert again.status_code == 202, again.text
    first = wait_for(conn, _type("identity_ready"))
    second = wait_for(conn, _type("identity_ready"), timeout=10)
    assert second["read_id"] > first["read_id"] and h.pipeline.calls == ["Reader A", "Reader A"]
    conn.close()
