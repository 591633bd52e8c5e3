"""A bounded pool for BHYT lookups, so the desk never waits on the gateway."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from agent.forward.bhyt import BhytClient, BhytConfigError
from agent.forward.bhyt_result import BhytResult, refused_result

T = TypeVar("T")


class BhytLookups:
    """Runs lookups on a small thread pool so the caller (the daemon's card-reading
    loop) never waits on the gateway. At most ``max_pending`` lookups wait or run;
    beyond that a lookup is refused at once (``gateway_unavailable``,
    :func:`refused_result`) rather than queueing without bound behind a dead gateway.

    ``submit`` checks a card with ``client``; ``run`` runs any lookup job (the desk's
    ``agent.desk.forwarding``, which also stores and announces each result)."""

    def __init__(self, client: BhytClient | None = None, *, workers: int = 2, max_pending: int = 16) -> None:
        self.client = client
        self.max_pending = max_pending
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bhyt")
        self._slots = threading.BoundedSemaphore(max_pending)

    def submit(self, card: str, full_name: str, dob: dt.date | str) -> Future[BhytResult]:
        client = self.client
        if client is None:
            raise BhytConfigError("BhytLookups.submit needs a client", hint="Pass the BhytClient to BhytLookups.")
        future = self.run(lambda: client.check(card, full_name, dob))
        if future is None:
            done: Future[BhytResult] = Future()
            done.set_result(refused_result())
            return done
        return future

    def run(self, job: Callable[[], T]) -> Future[T] | None:
        """``job`` on the pool; None, at once, when ``max_pending`` lookups already wait or run."""
        if not self._slots.acquire(blocking=False):
            return None
        try:
            future = self._pool.submit(job)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _f: self._slots.release())
        return future

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
