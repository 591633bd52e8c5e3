"""What became of each dossier the desk sent, for the counter page's "Gửi hồ sơ"
(issue 13): queued → delivered (with the receiver's receipt number) → or failed, and
retried on the clerk's request. Never "sent" for a dossier that is only queued.

The outbox worker reports each delivery attempt (``agent.forward.worker.DeliveryReport``)
on its own thread; this tracker maps the dossier's idempotency key back to the read it
came from, updates that read's ``intake`` state if it is still on show, and publishes
an ``intake_status`` event either way (the identity may have left memory since: the
page then ignores it). No personal data: keys, states, attempt counts, receipt numbers.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

from agent.desk.session import IdentityStore
from agent.eventhub import EventHub, EventType

logger = logging.getLogger(__name__)

#: dossiers remembered for their delivery reports (oldest forgotten first)
MAX_TRACKED = 256


class IntakeTracker:
    def __init__(self, store: IdentityStore, hub: EventHub) -> None:
        self._store = store
        self._hub = hub
        self._reads: OrderedDict[str, int] = OrderedDict()
        #: held while a dossier is queued and its key recorded, so a report for it
        #: (the worker may deliver at once) waits until the "queued" event is out
        self.lock = threading.RLock()

    def queued(self, read_id: int, receipt: dict[str, Any]) -> dict[str, Any]:
        """Call under ``lock`` right after queuing: remember the dossier, announce it."""
        key = receipt.get("idempotency_key")
        if isinstance(key, str):
            self._reads[key] = read_id
            while len(self._reads) > MAX_TRACKED:
                self._reads.popitem(last=False)
        intake = {**receipt, "status": "queued"}
        self._store.update(read_id, intake=intake)
        self._hub.publish(EventType.INTAKE_RESULT, {"read_id": read_id, **intake})
        return intake

    def on_report(self, report: Any) -> None:
        """An outbox worker's ``DeliveryReport`` (on the worker's thread)."""
        with self.lock:
            read_id = self._reads.get(report.idem_key)
            if read_id is None:
                return  # a dossier of an earlier run of the agent: nobody shows it
            change = {"status": report.state, "attempts": report.attempts, "receipt": report.receipt,
                      "error": report.error or None}
            current = self._store.get()
            if current is not None and current.read_id == read_id:
                self._store.update(read_id, intake={**(current.intake or {}), **change})
            self._hub.publish(EventType.INTAKE_STATUS, {"read_id": read_id, "idempotency_key": report.idem_key,
                                                        **change})
        if report.state == "failed":
            logger.warning("dossier %s failed for good after %d attempt(s): %s", report.idem_key,
                           report.attempts, report.error)
