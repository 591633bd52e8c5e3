"""What the local API needs from the desk: ``agent.api.server.ApiServer`` depends on
this Protocol only (``agent.daemon.Daemon`` implements it; tests may pass another)."""

from __future__ import annotations

import concurrent.futures
from typing import Any, Protocol

from agent.config import Config
from agent.desk.session import Current
from agent.eventhub import EventHub
from agent.forward.bhyt_result import Lookup
from agent.icao.keys import AccessKey
from agent.metrics import Metrics


class DeskService(Protocol):
    config: Config
    hub: EventHub
    metrics: Metrics

    @property
    def port(self) -> int:
        """The port the API is asked to listen on (0: any free port)."""

    def health(self) -> dict[str, Any]:
        """``GET /health``; may open an X connection (the wedge's state): off the event loop."""

    def readers(self) -> list[dict[str, Any]]:
        """``GET /readers``; may block on the reader backends (call it off the event loop)."""

    def current(self) -> Current | None: ...

    def current_or_raise(self) -> Current:
        """The identity on show; ``NoIdentityError`` when there is none."""

    def clear_identity(self, reason: str = "api") -> bool: ...

    def submit_key(self, key: AccessKey, reader: str | None = None) -> dict[str, Any]: ...

    def read_again(self, reader: str | None = None) -> dict[str, Any]:
        """Read the card still on the reader again (``NoCardError`` when none lies there)."""

    def on_qr_text(self, text: str | bytes, source: str = "api") -> dict[str, Any]: ...

    def start_lookup(self, current: Current) -> concurrent.futures.Future[Lookup]: ...

    def submit_intake(self) -> dict[str, Any]:
        """Blocking (it writes to the outbox): call it off the event loop."""

    def type_wedge(self) -> dict[str, Any]:
        """``POST /wedge/type``: type the identity on show into the desk application
        (``agent.wedge``). Blocking (seconds of key events): call it off the event loop.
        Raises an IdAgentError (``wedge_*``, ``no_identity``) when refused, nothing typed."""
