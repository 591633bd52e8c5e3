"""Ordering API answers against events (issue 13, the counter page's refresh race):
every API answer carries ``X-Event-Seq``, the seq of the last event published before
the request was handled, and clients receive events in seq order even when several
threads publish at once."""

from __future__ import annotations

import json
import threading

from api_fakes import Harness, wait_for

from agent.eventhub import EventHub, EventType, Shape


def _seq(response: object) -> int:
    return int(response.headers["X-Event-Seq"])  # type: ignore[attr-defined]


def test_identity_answers_carry_the_seq_they_reflect(harness: Harness) -> None:
    conn = harness.ws()
    assert harness.post("/read", {"can": "012345"}).status_code == 202
    harness.backend.insert("Reader A")
    ready = wait_for(conn, lambda m: m.get("type") == "identity_ready")
    held = harness.get("/identity")
    assert held.status_code == 200 and _seq(held) >= ready["seq"]
    harness.daemon.clear_identity("api")
    cleared = wait_for(conn, lambda m: m.get("type") == "identity_cleared")
    gone = harness.get("/identity")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "no_identity"
    # a page that saw identity_ready (seq S) may drop a 404 stamped < S as stale; this
    # 404 comes after the clearing event, so it is stamped at least with that event's seq
    assert _seq(gone) >= cleared["seq"] > ready["seq"]
    assert _seq(harness.get("/readers")) >= cleared["seq"]
    conn.close()


def test_cross_origin_clients_may_read_the_seq_header(harness: Harness) -> None:
    resp = harness.get("/identity", headers=harness.headers(Origin=harness.base))
    assert "X-Event-Seq" in resp.headers["Access-Control-Expose-Headers"]


def test_events_reach_clients_in_seq_order_with_concurrent_publishers() -> None:
    import asyncio
    import sys

    hub = EventHub(queue_max=10_000)
    loop = asyncio.new_event_loop()
    hub.bind(loop)
    client = hub.add_client(Shape.NATIVE, "test")
    assert client is not None
    start = threading.Barrier(8)

    def publisher() -> None:
        start.wait()
        for _ in range(400):
            hub.publish(EventType.READ_PROGRESS, {"reader": "r"})

    threads = [threading.Thread(target=publisher) for _ in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: without the hub's lock, 9 runs in 10 failed
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    loop.call_soon(loop.stop)
    loop.run_forever()
    seqs = []
    while not client.queue.empty():
        seqs.append(json.loads(client.queue.get_nowait())["seq"])
    loop.close()
    assert len(seqs) == 3200 and seqs == sorted(seqs) and hub.last_seq == 3200
