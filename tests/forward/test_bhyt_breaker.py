"""Gateway down: lookups fail fast with a clear status, and nothing else waits.

Also the code table: every maKetQua listed in domain.md ("BHYT card check") has a
machine status and a Vietnamese and an English message.
"""

from __future__ import annotations

import threading
import time

import pytest
from forward_helpers import FakeClock, make_settings

from agent.forward.bhyt import BhytClient
from agent.forward.bhyt_codes import CODES, BhytStatus, lookup
from agent.forward.bhyt_lookups import BhytLookups
from agent.forward.breaker import BreakerState, CircuitBreaker
from agent.sim.services.bhyt import BhytTestService

# domain.md: "maKetQua: 000 valid · 001 … · 500 server error"
DOMAIN_CODES = ["000", "001", "002", "003", "004", "010", "050", "051", "052", "053", "054", "055", "060",
                "061", "070", "090", "100", "101", "110", "120", "121", "122", "123", "124", "130", "205",
                "401", "500"]


def test_every_domain_code_is_mapped() -> None:
    assert sorted(CODES) == sorted(DOMAIN_CODES)
    for code in DOMAIN_CODES:
        info = lookup(code)
        assert info.status is not BhytStatus.UNKNOWN
        assert info.message_vi and info.message_en and info.message_vi != info.message_en
    assert {lookup(c).status for c in ("000", "001", "002", "004")} <= {BhytStatus.VALID,
                                                                         BhytStatus.VALID_OTHER_MINISTRY,
                                                                         BhytStatus.REPLACED}
    assert [c for c in DOMAIN_CODES if lookup(c).usable] == ["000", "001", "002", "004"]
    assert lookup("999").status is BhytStatus.UNKNOWN and "999" in lookup("999").message_en


def test_breaker_opens_fails_fast_then_half_opens(clock: FakeClock) -> None:
    breaker = CircuitBreaker(3, 10.0, clock=clock)
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.advance(10.0)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.advance(10.0)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()


def test_gateway_down_lookups_fail_fast_with_clear_status(gateway: BhytTestService, clock: FakeClock) -> None:
    client = BhytClient(make_settings(gateway.url, retries=2, breaker_threshold=5, breaker_reset=30.0),
                        clock=clock, sleep=clock.sleep, jitter=lambda: 0.0)
    gateway.state.control({"outage": True})
    first = client.check("001099012345", "Nguyễn Văn An", "15/03/1999")
    assert first.status is BhytStatus.GATEWAY_ERROR and first.attempts == 3
    second = client.check("001099012345", "Nguyễn Văn An", "15/03/1999")
    # two more failures reach the threshold of 5; the third retry is refused by the breaker
    assert second.status is BhytStatus.GATEWAY_UNAVAILABLE and client.breaker.state is BreakerState.OPEN
    before = gateway.state.snapshot()["counters"]["outage_answers"]
    results = [client.check("001099012345", "Nguyễn Văn An", "15/03/1999") for _ in range(50)]
    assert all(r.status is BhytStatus.GATEWAY_UNAVAILABLE and r.upstream_failure for r in results)
    assert "unreachable" in results[0].message_en and results[0].message_vi
    # nothing went out: an open breaker answers without touching the network (the time
    # this takes is measured by bench/bench_forward.py, not asserted here)
    assert gateway.state.snapshot()["counters"]["outage_answers"] == before
    # the gateway comes back: after breaker_reset one trial goes through and closes it
    gateway.state.control({"outage": False})
    clock.advance(30.0)
    assert client.check("001099012345", "Nguyễn Văn An", "15/03/1999").status is BhytStatus.VALID
    assert client.breaker.state is BreakerState.CLOSED


def test_slow_gateway_never_blocks_the_reading_loop(gateway: BhytTestService) -> None:
    """The daemon submits lookups to BhytLookups; a card-reading loop keeps its pace
    while the gateway hangs, and excess lookups fail at once instead of piling up.

    Judged by order of events, not by wall-clock thresholds that a loaded CI machine
    breaks: every submit returns while the gateway still holds the first request
    (a blocking submit would return only after it), the refused ones are already
    complete, and the reading loop ticks while every accepted lookup is in flight
    (a loop blocked by a lookup could not tick before the gateway answered)."""
    delay_s = 1.5
    client = BhytClient(make_settings(gateway.url, timeout=10.0, retries=0, breaker_threshold=100))
    lookups = BhytLookups(client, workers=2, max_pending=4)
    gateway.state.control({"delay_ms": int(delay_s * 1000)})
    ticks: list[float] = []
    stop = threading.Event()

    def reading_loop() -> None:  # stands for the card reader: ticks every 10 ms
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.01)

    reader = threading.Thread(target=reading_loop)
    reader.start()
    try:
        futures = [lookups.submit("001099012345", "Nguyễn Văn An", "15/03/1999") for _ in range(10)]
        pending_after_submit = [not f.done() for f in futures[:4]]
        refused_at_once = [f.done() for f in futures[4:]]
        done_at: list[float] = []
        for f in futures[:4]:
            f.add_done_callback(lambda _f: done_at.append(time.perf_counter()))
        submitted = time.perf_counter()
        overflow = [f.result(timeout=0) for f in futures[4:]]
        slow = [f.result(timeout=30) for f in futures[:4]]
    finally:
        stop.set()
        reader.join()
        lookups.close()
    assert all(pending_after_submit), "submit waited for the gateway"
    assert all(refused_at_once), "an excess lookup queued instead of failing at once"
    assert all(r.status is BhytStatus.GATEWAY_UNAVAILABLE for r in overflow)
    assert all(r.status is BhytStatus.VALID for r in slow)
    first_answer = min(done_at)
    assert first_answer - submitted >= delay_s * 0.9  # the gateway did hold the lookups
    during = [t for t in ticks if submitted <= t <= first_answer]
    # the loop kept ticking while the gateway held every lookup; a blocked loop shows
    # no tick for the whole delay. Ten ticks out of ~150 leaves room for a loaded machine.
    assert len(during) >= 10
    gaps = [b - a for a, b in zip(during, during[1:], strict=False)]
    assert max(gaps) < delay_s * 0.6


@pytest.mark.parametrize("mode", ["503", "drop"])
def test_outage_modes_trip_the_breaker(gateway: BhytTestService, clock: FakeClock, mode: str) -> None:
    client = BhytClient(make_settings(gateway.url, retries=0, breaker_threshold=2),
                        clock=clock, sleep=clock.sleep)
    gateway.state.control({"outage": True, "outage_mode": mode})
    statuses = [client.check("001099012345", "Nguyễn Văn An", "1999").status for _ in range(4)]
    assert statuses == [BhytStatus.GATEWAY_ERROR, BhytStatus.GATEWAY_ERROR,
                        BhytStatus.GATEWAY_UNAVAILABLE, BhytStatus.GATEWAY_UNAVAILABLE]
