"""The typed payloads of the desk's identity events on the event hub.

The desk publishes these objects, not JSON: the local API renders them
(``agent.api.render``: the WebSocket frames, ``GET /identity``) and the reader-kit
service maps them with its one kit mapping (``agent.compat.kit``). Small events that
are plain data already (``reader_attached``, ``card_present`` …) stay dicts.

The API renders a payload when it is published (on the publishing thread), so the
frames are a snapshot of that moment: an identity wiped or a BHYT result stored a
moment later does not change an event already published.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.desk.session import Current
from agent.forward.bhyt_result import Lookup
from agent.pipeline import Verdict


@dataclass(frozen=True)
class IdentityShown:
    """``identity_ready``: a card was read and its identity is on show."""

    current: Current
    #: a BHYT lookup was started for it (its ``lookup_result`` follows)
    lookup_pending: bool

    def __repr__(self) -> str:  # the record holds personal data
        return f"IdentityShown(read_id={self.current.read_id})"


@dataclass(frozen=True)
class VerdictReached:
    """``verification``: the verdict of the read ``read_id`` on ``reader``."""

    reader: str
    read_id: int
    verdict: Verdict


@dataclass(frozen=True)
class LookupDone:
    """``lookup_result``: the BHYT lookup of the read ``read_id`` (the same object
    stored with the identity)."""

    read_id: int
    result: Lookup
    kind: str = "bhyt"

    def __repr__(self) -> str:  # the result may hold personal data
        return f"LookupDone(read_id={self.read_id}, kind={self.kind})"
