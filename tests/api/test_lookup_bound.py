"""The daemon's BHYT lookups are bounded (issue 15 item 2): behind a gateway that
hangs, at most ``MAX_PENDING_LOOKUPS`` wait or run; the next one is refused at once
with ``gateway_unavailable`` instead of queueing. Judged by order of events (which
futures are done before the gateway answers), never by wall-clock time."""

from __future__ import annotations

import threading

from api_fakes import FakeForwards, FakePipeline, fake_verdict, synthetic_identity

from agent.config import Config
from agent.daemon import Daemon
from agent.desk.forwarding import LOOKUP_WORKERS, MAX_PENDING_LOOKUPS
from agent.desk.session import Current
from agent.forward.bhyt_codes import BhytStatus
from agent.forward.bhyt_result import BhytResult, Lookup
from agent.identity import Identity


class HangingGateway(FakeForwards):
    """Every lookup blocks until ``answer`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = threading.Event()
        self.started = threading.Semaphore(0)
        self.asked = 0

    def bhyt(self, identity: Identity) -> BhytResult:
        self.asked += 1
        self.started.release()
        assert self.answer.wait(30), "the test never let the gateway answer"
        return super().bhyt(identity)


def status_of(result: Lookup) -> BhytStatus:
    assert isinstance(result, BhytResult), result
    return result.status


def test_the_daemon_refuses_lookups_beyond_the_bound_instead_of_queueing() -> None:
    gateway = HangingGateway()
    daemon = Daemon(Config.defaults(), pipeline=FakePipeline(), backends=[], forwards=gateway, port=0)
    try:
        current = Current(read_id=daemon.store.next_id(), reader="r", identity=synthetic_identity(),
                          verification=fake_verdict("verified"), created=0.0)
        daemon.session.show(current)
        accepted = [daemon.start_lookup(current) for _ in range(MAX_PENDING_LOOKUPS)]
        for _ in range(LOOKUP_WORKERS):  # the pool's workers hold the gateway's first requests
            assert gateway.started.acquire(timeout=10)
        refused = [daemon.start_lookup(current) for _ in range(3)]
        # the refused ones answered before the gateway did; the accepted ones wait for it
        assert all(f.done() for f in refused), "a lookup beyond the bound was queued"
        assert [status_of(f.result()) for f in refused] == [BhytStatus.GATEWAY_UNAVAILABLE] * 3
        assert not any(f.done() for f in accepted)
        assert gateway.asked == LOOKUP_WORKERS  # the rest wait in the pool, not at the gateway
        assert current.lookup is not None and status_of(current.lookup) is BhytStatus.GATEWAY_UNAVAILABLE
        gateway.answer.set()
        assert [status_of(f.result(timeout=30)) for f in accepted] == [BhytStatus.VALID] * MAX_PENDING_LOOKUPS
        assert gateway.asked == MAX_PENDING_LOOKUPS
        # the slots are free again: the next lookup goes to the gateway
        assert status_of(daemon.start_lookup(current).result(timeout=30)) is BhytStatus.VALID
    finally:
        gateway.answer.set()
        daemon.session.forget("test", announce=False)  # its names leave the log filter's list
        daemon.forwarding.close()
