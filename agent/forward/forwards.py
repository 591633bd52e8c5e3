"""The forwards as the daemon sees them (the ``Forwards`` protocol of agent/pipeline.py):
a BHYT lookup and a dossier intake for the identity in memory, built from the config.

The daemon calls ``bhyt()`` on its own executor, so a slow gateway never holds up card
reading; the client's circuit breaker makes a dead gateway answer in microseconds.
``intake()`` only queues (one durable SQLite transaction) and returns; the outbox
worker thread delivers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from agent.errors import IdAgentError
from agent.forward.bhyt import BhytClient, BhytConfigError, BhytInputError, BhytResult, BhytSettings
from agent.forward.intake import IntakeConfigError
from agent.forward.worker import ForwardingService
from agent.identity import Identity

logger = logging.getLogger(__name__)


class BhytUpstreamError(IdAgentError):
    """No usable answer from the gateway (down, login refused, request rejected)."""

    code = "bhyt_unavailable"
    exit_code = 7
    hint = "Carry on with the visit and check the card again later (the reading is not affected)."

    def __init__(self, result: BhytResult) -> None:
        super().__init__(result.message_en, hint=f"{result.message_vi} {self.hint}")
        self.result = result
        self.code = f"bhyt_{result.status.value}"


def lookup_dict(result: BhytResult) -> dict[str, Any]:
    """The result for the API and the counter page: ``to_dict()`` plus the short names
    the page uses (``message`` in Vietnamese for the clerk, ``valid_from``/``valid_to``)."""
    out = result.to_dict()
    out.update(message=result.message_vi, valid_from=result.card_valid_from, valid_to=result.card_valid_to)
    return out


class ConfiguredForwards:
    def __init__(self, config: Any, *, bhyt_client: BhytClient | None = None,
                 intake: ForwardingService | None = None) -> None:
        self._bhyt: BhytClient | None = bhyt_client
        if self._bhyt is None and config.bhyt.enabled:
            self._bhyt = BhytClient(BhytSettings.from_config(config))
        self._intake: ForwardingService | None = intake
        if self._intake is None and config.intake.enabled:
            self._intake = ForwardingService(config).start()

    def bhyt_enabled(self) -> bool:
        return self._bhyt is not None

    def bhyt(self, identity: Identity) -> dict[str, Any]:
        if self._bhyt is None:
            raise BhytConfigError("BHYT lookup is not configured", hint="Set [bhyt] enabled = true and base_url.")
        if not (identity.id_number and identity.full_name and identity.date_of_birth):
            raise BhytInputError("the identity lacks the ID number, the name or the date of birth")
        result = self._bhyt.check(identity.id_number, identity.full_name, identity.date_of_birth)
        if result.upstream_failure:
            raise BhytUpstreamError(result)
        return lookup_dict(result)

    def intake_enabled(self) -> bool:
        return self._intake is not None

    def intake(self, identity: Identity) -> dict[str, Any]:
        if self._intake is None:
            raise IntakeConfigError("intake is not configured", hint="Set [intake] enabled = true and url.")
        key = self._intake.forward(identity)
        return {"status": "queued", "outbox_id": self._intake.outbox.item_id(key), "idempotency_key": key,
                "format": self._intake.format}

    def watch_intake(self, listener: Callable[[Any], None]) -> None:
        if self._intake is not None:
            self._intake.watch(listener)

    def retry_intake(self, idempotency_key: str) -> None:
        if self._intake is None:
            raise IntakeConfigError("intake is not configured", hint="Set [intake] enabled = true and url.")
        self._intake.retry(idempotency_key)

    def close(self) -> None:
        if self._intake is not None:
            self._intake.stop()
            self._intake = None
