"""A circuit breaker: after ``threshold`` consecutive failures, fail fast for ``reset``
seconds, then let one trial call through (half-open); its outcome closes or re-opens
the circuit. Thread-safe; the clock is injected.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from enum import StrEnum

logger = logging.getLogger(__name__)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, threshold: int, reset: float, *,
                 clock: Callable[[], float] = time.monotonic, name: str = "breaker") -> None:
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.threshold = threshold
        self.reset = reset
        self._clock = clock
        self._name = name
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state_locked()

    def _state_locked(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.reset:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """May a call go out now? In half-open state only one trial call is let through
        at a time; the others keep failing fast until it reports."""
        with self._lock:
            state = self._state_locked()
            if state is BreakerState.CLOSED:
                return True
            if state is BreakerState.HALF_OPEN and not self._trial_running:
                self._trial_running = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            if self._opened_at is not None:
                logger.info("%s closed: the service answers again", self._name)
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            was_trial = self._trial_running
            self._trial_running = False
            if was_trial or (self._opened_at is None and self._failures >= self.threshold):
                self._opened_at = self._clock()
                logger.warning("%s open after %d consecutive failures; failing fast for %.1f s",
                               self._name, self._failures, self.reset)
