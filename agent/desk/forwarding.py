"""Forward orchestration: the BHYT lookup and the dossier intake of the identity on
show, off the readers' threads, so a gateway that is slow or down never delays the
next read. Results are stored with the identity and announced to the counter page.

Lookups run on a bounded pool (``agent.forward.bhyt_lookups.BhytLookups``): behind a gateway
that hangs, at most ``MAX_PENDING_LOOKUPS`` wait; the next one is answered at once with
``gateway_unavailable`` instead of queueing without bound.

A lookup ends in a typed ``agent.forward.bhyt_result.Lookup``: the gateway's result, or a
``LookupFailure`` holding the error that stopped it. The API writes its JSON."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from typing import Any

from agent.desk.errors import AlteredDataRefusedError, CloneRefusedError, InternalError, NotConfiguredError
from agent.desk.events import LookupDone
from agent.desk.intake_status import IntakeTracker
from agent.desk.session import Current, IdentityStore
from agent.errors import IdAgentError
from agent.eventhub import EventHub, EventType
from agent.forward.bhyt_lookups import BhytLookups
from agent.forward.bhyt_result import Lookup, LookupFailure, refused_result
from agent.icao.verify import VerificationStatus
from agent.identity import Identity
from agent.metrics import Metrics
from agent.pipeline import Forwards, Verdict

logger = logging.getLogger(__name__)

#: BHYT lookups waiting or running at once (the config has no key for it). One desk
#: reads a card every few seconds and a lookup takes under a second when the gateway
#: is up (its own deadline is [bhyt] deadline, 8 s): 16 covers a minute of cards
#: behind a gateway that hangs, then a lookup is refused at once, never queued
MAX_PENDING_LOOKUPS = 16
#: lookups running at once (what the executor had before it was bounded)
LOOKUP_WORKERS = 2


class ForwardOrchestrator:
    def __init__(self, forwards: Forwards | None, store: IdentityStore, hub: EventHub, metrics: Metrics) -> None:
        self.forwards = forwards
        self._store = store
        self._hub = hub
        self._metrics = metrics
        self._intake_lock = threading.Lock()
        self._lookups = BhytLookups(workers=LOOKUP_WORKERS, max_pending=MAX_PENDING_LOOKUPS)
        self.intake_status = IntakeTracker(store, hub)
        if forwards is not None:
            forwards.watch_intake(self.intake_status.on_report)

    def lookup_enabled(self) -> bool:
        return bool(self.forwards and self.forwards.bhyt_enabled())

    def lookup_wanted(self, verification: Verdict) -> bool:
        """A lookup is made for this read: configured, and not for data that fail their
        signature (one verdict per card: their BHYT answer would look trustworthy)."""
        return self.lookup_enabled() and not verification.data_altered

    def intake_enabled(self) -> bool:
        return bool(self.forwards and self.forwards.intake_enabled())

    def replace(self, forwards: Forwards | None) -> None:
        """New forwards (a reloaded config); the old ones are closed."""
        old, self.forwards = self.forwards, forwards
        if forwards is not None and forwards is not old:
            forwards.watch_intake(self.intake_status.on_report)
        if old is not None and old is not forwards:
            old.close()

    def close(self) -> None:
        self._lookups.close()
        if self.forwards is not None:
            self.forwards.close()

    # ---------------------------------------------------------------- BHYT
    def start_lookup(self, current: Current) -> concurrent.futures.Future[Lookup]:
        if not self.lookup_enabled():
            raise NotConfiguredError("BHYT lookup is not configured",
                                     hint="Set [bhyt] enabled = true and base_url in the config.")
        if current.verification.data_altered:
            raise AlteredDataRefusedError("the card's data were altered after signing: no BHYT lookup is sent for them")
        self._hub.publish(EventType.LOOKUP_STARTED, {"read_id": current.read_id, "kind": "bhyt"})
        read_id, identity = current.read_id, current.identity
        future = self._lookups.run(lambda: self._lookup(read_id, identity))
        if future is None:
            logger.warning("BHYT lookup refused: %d lookups already wait for the gateway", MAX_PENDING_LOOKUPS)
            future = concurrent.futures.Future()
            future.set_result(self._announce(read_id, refused_result(), None))
        return future

    def _lookup(self, read_id: int, identity: Identity) -> Lookup:
        forwards = self.forwards
        assert forwards is not None
        started = time.monotonic()
        result: Lookup
        try:
            result = forwards.bhyt(identity)
        except IdAgentError as err:
            result = LookupFailure(err)
        except Exception as err:  # noqa: BLE001 - a forward bug must not kill the executor silently
            logger.exception("BHYT lookup crashed")
            # the class name only, as before (an unexpected exception's text may carry
            # anything, personal data included), and the generic hint this path has always given
            result = LookupFailure(InternalError(type(err).__name__, hint=IdAgentError.hint))
        return self._announce(read_id, result, time.monotonic() - started)

    def _announce(self, read_id: int, result: Lookup, seconds: float | None) -> Lookup:
        """Count the result (its time, when the gateway was asked), keep it with the
        identity and tell the counter page."""
        if seconds is not None:
            self._metrics.lookup_seconds.observe(seconds)
        self._metrics.count_lookup(result)
        if self._store.update(read_id, lookup=result) is not None:
            self._hub.publish(EventType.LOOKUP_RESULT, LookupDone(read_id, result))
        return result

    # ---------------------------------------------------------------- intake
    def submit_intake(self, current: Current) -> dict[str, Any]:
        forwards = self.forwards
        if forwards is None or not forwards.intake_enabled():
            raise NotConfiguredError("intake is not configured",
                                     hint="Set [intake] enabled = true and url in the config.")
        if current.verification.status is VerificationStatus.PROBABLE_CLONE:
            raise CloneRefusedError("the chip is probably a copy: its data are not sent on as a dossier")
        if current.verification.data_altered:
            raise AlteredDataRefusedError("the card's data were altered after signing: they are not sent on "
                                          "as a dossier")
        with self._intake_lock, self.intake_status.lock:
            # one read is one dossier: a client retrying POST /intake gets the first
            # receipt (same idempotency key), not a second dossier the receiver cannot dedup
            previous = current.intake
            if previous is not None and previous.get("status") != "failed":
                return previous
            try:
                if previous is not None:  # failed for good: the clerk asks to send it again
                    forwards.retry_intake(str(previous.get("idempotency_key")))
                    receipt = {k: v for k, v in previous.items() if k not in ("attempts", "error", "receipt")}
                else:
                    receipt = forwards.intake(current.identity)
            except IdAgentError:
                self._metrics.intakes.inc(result="error")
                raise
            self._metrics.intakes.inc(result="queued")
            # announced under the tracker's lock: a delivery the worker reports at once waits for it
            return self.intake_status.queued(current.read_id, receipt)

