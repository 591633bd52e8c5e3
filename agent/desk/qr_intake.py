"""QR payloads in (``POST /qr``, USB-CDC scanners, cameras, keyboard wedges): parsed
into access keys and a QR identity, handed to a reader whose card waits for a key,
else kept for the next card (``agent.desk.key_broker``).

One thread per QR source; a source that fails (unplugged, a decoder bug) is reported
and retried, so one bad frame never ends QR scanning.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from agent.desk.key_broker import KeyBroker
from agent.desk.supervisor import ReaderSupervisor
from agent.errors import IdAgentError
from agent.eventhub import EventHub, EventType
from agent.metrics import Metrics
from agent.pipeline import QrDecoder, QrSource

logger = logging.getLogger(__name__)

#: seconds before a failed QR source is opened again
RETRY_S = 2.0


class QrIntake:
    def __init__(self, decoder: QrDecoder | None, *, keys: KeyBroker, readers: ReaderSupervisor, hub: EventHub,
                 metrics: Metrics, clock: Callable[[], float]) -> None:
        self.decoder = decoder
        self._keys = keys
        self._readers = readers
        self._hub = hub
        self._metrics = metrics
        self._clock = clock
        self.sources: list[QrSource] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def on_qr_text(self, text: str | bytes, source: str = "api") -> dict[str, Any]:
        if self.decoder is None:
            raise IdAgentError("QR decoding is not available in this agent", hint="Check the agent's install.")
        try:
            scan = self.decoder.decode(text)
        except IdAgentError:
            self._metrics.qr_scans.inc(result="bad_payload")
            raise
        scan.at = self._clock()
        self._metrics.qr_scans.inc(result="ok")
        self._keys.hold_scan(scan)
        self._hub.publish(EventType.QR_SCANNED, {"source": source, "keys": len(scan.keys)})
        waiting = self._readers.waiting()
        for worker in waiting:
            worker.give_keys(list(scan.keys))  # the CAN first, then MRZ candidates
        return {"status": "reading" if waiting else "waiting_for_card", "keys": len(scan.keys)}

    # ---------------------------------------------------------------- sources
    def start(self, sources: Sequence[QrSource]) -> None:
        self.sources = list(sources)
        self._stop.clear()
        for source in self.sources:
            thread = threading.Thread(target=self._watch, args=(source,), name=f"qr:{source.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _watch(self, source: QrSource) -> None:
        while not self._stop.is_set():
            try:
                for payload in source.payloads(self._stop):
                    try:
                        self.on_qr_text(payload, source=source.name)
                    except IdAgentError as err:
                        self._hub.publish_error(err, reader="")
            except IdAgentError as err:  # the device is gone or unusable: say so, retry later
                self._hub.publish_error(err, reader="")
            except Exception:  # noqa: BLE001 - keep watching: one bad frame must not end QR scanning
                logger.exception("QR source %s: unexpected failure", source.name)
            self._stop.wait(RETRY_S)
