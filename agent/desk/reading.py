"""A card read at the desk: open the chip with the keys in order, report progress,
merge the QR seen just before, put the identity on show and start the BHYT lookup.

Runs on the reader's worker thread (``agent.desk.supervisor``). Errors are announced on
the event hub with the clerk's hint; a refused key asks for another one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from agent.desk.errors import AccessNeededError
from agent.desk.events import IdentityShown, VerdictReached
from agent.desk.forwarding import ForwardOrchestrator
from agent.desk.key_broker import KeyBroker
from agent.desk.session import Current, IdentitySession
from agent.errors import IdAgentError
from agent.eventhub import EventHub, EventType
from agent.icao.access import PaceInterruptedError
from agent.icao.keys import AccessKey
from agent.icao.sm import AccessDeniedError
from agent.icao.verify import VerificationStatus
from agent.identity import Identity
from agent.metrics import Metrics
from agent.pipeline import ChipPipeline, KeyUsed, ReadOutcome
from agent.readers.base import CardConnection, ReaderBackend

logger = logging.getLogger(__name__)

#: at most ~20 progress events a second per reader, plus each file's last chunk
PROGRESS_PERIOD = 0.05


class KeyWaiter(Protocol):
    """The reader worker, told to wait for another key after a refused one."""

    waiting_for_key: bool


class CardReading:
    def __init__(self, pipeline: ChipPipeline, session: IdentitySession, keys: KeyBroker,
                 forwarding: ForwardOrchestrator, hub: EventHub, metrics: Metrics,
                 clock: Callable[[], float]) -> None:
        self.pipeline = pipeline
        self._session = session
        self._keys = keys
        self._forwarding = forwarding
        self._hub = hub
        self._metrics = metrics
        self._clock = clock

    def read_card(self, backend: ReaderBackend, reader: str, keys: list[AccessKey], present_at: float,
                  worker: KeyWaiter | None = None) -> None:
        """Open, read and verify the card with the first key that works; publish the
        results; start the forwards."""
        self._hub.publish(EventType.READ_STARTED, {"reader": reader})
        outcome: ReadOutcome | None = None
        last_denied: IdAgentError | None = None
        interrupted: IdAgentError | None = None
        for key in keys:
            try:
                with backend.connect(reader) as connection:
                    outcome = self._read_once(connection, reader, key)
                break
            except AccessDeniedError as err:
                last_denied = err
                continue
            except PaceInterruptedError as err:
                if key is keys[-1]:
                    self._failed(err, reader, err.code)
                    return
                # PACE broke off: the QR's MRZ candidates (BAC) may still open the chip
                interrupted = err
                continue
            except IdAgentError as err:
                self._failed(err, reader, err.code)
                return
        if outcome is None and interrupted is not None:
            # the CAN's PACE broke off and no other key opened the chip: the card most
            # likely moved; "wrong number" would send the clerk the wrong way
            self._failed(interrupted, reader, interrupted.code)
            return
        if outcome is None:
            self._failed(last_denied or AccessNeededError("the card refused the access key"), reader,
                         "access_denied")
            if worker is not None:
                worker.waiting_for_key = True
            self._hub.publish(EventType.NEED_ACCESS, {
                "reader": reader, "reason": "key_refused",
                "message": "Số vừa nhập không mở được chip. Kiểm tra lại 6 số cuối của số CCCD.",
                "hint": AccessNeededError.hint})
            return
        self._publish_outcome(reader, outcome, present_at)

    def _failed(self, err: IdAgentError, reader: str, reason: str) -> None:
        self._metrics.read_failures.inc(reason=reason)
        self._metrics.reads.inc(outcome="error")
        self._hub.publish_error(err, reader=reader)

    def _read_once(self, connection: CardConnection, reader: str, key: AccessKey) -> ReadOutcome:
        last_sent = [0.0]

        def on_progress(name: str, done: int, total: int) -> None:
            now = time.monotonic()
            if done >= total or now - last_sent[0] >= PROGRESS_PERIOD:
                last_sent[0] = now
                self._hub.publish(EventType.READ_PROGRESS,
                                  {"reader": reader, "file": name, "done": done, "total": total})

        started = time.monotonic()
        outcome = self.pipeline.read(connection, key, on_progress)
        if not outcome.read_seconds:
            outcome.read_seconds = time.monotonic() - started
        if outcome.access is None:
            outcome.access = KeyUsed.of(key)
        return outcome

    def _merged(self, identity: Identity) -> Identity:
        """The chip's identity with the QR scanned just before (same person only)."""
        qr_identity = self._keys.take_qr_identity()
        if qr_identity is None:
            return identity
        # a QR of another person (another ID number) is not merged: its fields would
        # fill gaps in this card's record
        if identity.id_number is None or qr_identity.id_number in (None, identity.id_number):
            identity = identity.merge(qr_identity)
        else:
            logger.warning("the QR scanned before this card belongs to another ID number: not merged")
        qr_identity.clear()
        return identity

    def _publish_outcome(self, reader: str, outcome: ReadOutcome, present_at: float) -> None:
        identity = self._merged(outcome.identity)
        status = outcome.verification.status
        current = Current(read_id=self._session.store.next_id(), reader=reader, identity=identity,
                          verification=outcome.verification, created=self._clock(), access=outcome.access,
                          files=outcome.files)
        self._session.show(current)
        self._metrics.reads.inc(outcome=status.value)
        self._metrics.read_seconds.observe(outcome.read_seconds)
        total = time.monotonic() - present_at if self._clock is time.monotonic else outcome.read_seconds
        overhead = max(0.0, total - outcome.read_seconds)
        current.timings = {"read_ms": round(outcome.read_seconds * 1000, 2), "total_ms": round(total * 1000, 2)}
        lookup_pending = self._forwarding.lookup_wanted(outcome.verification)
        self._hub.publish(EventType.IDENTITY_READY, IdentityShown(current, lookup_pending))
        self._metrics.overhead_seconds.observe(overhead)
        self._hub.publish(EventType.VERIFICATION, VerdictReached(reader, current.read_id, outcome.verification))
        logger.info("card read on %s: %s (%.0f ms read, %.1f ms agent)", reader,
                    "probable clone" if status == VerificationStatus.PROBABLE_CLONE else status,
                    outcome.read_seconds * 1000, overhead * 1000)
        if lookup_pending:
            self._forwarding.start_lookup(current)
