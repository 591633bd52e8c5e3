"""What the daemon needs from the layers below, as small interfaces.

The daemon does not know how a chip is opened or verified, how a QR payload is parsed,
nor how the BHYT gateway is called: it holds one object per job, built from the config
by ``agent.wiring`` helpers here, or injected by tests and the bench.

* ``ChipPipeline.read(connection, key, on_progress) -> ReadOutcome``: open the chip
  with the key, read, verify.
* ``QrDecoder.keys_and_identity(text) -> QrScan``: parse a card QR payload.
* ``Forward``: ``bhyt(identity) -> dict`` and ``intake(identity) -> dict``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.icao.keys import AccessKey
from agent.identity import Identity
from agent.readers.base import CardConnection

#: on_progress(file_name, bytes_done, bytes_total)
ProgressFn = Callable[[str, int, int], None]

#: verification statuses (agent.icao.verify); the page and the exit codes key on them
VERIFIED = "verified"
NOT_VERIFIED = "not_verified"
PROBABLE_CLONE = "probable_clone"
VERIFY_ERROR = "error"


@dataclass
class ReadOutcome:
    identity: Identity
    #: {"status": VERIFIED|NOT_VERIFIED|PROBABLE_CLONE|VERIFY_ERROR, "reasons": [str], ...}
    verification: dict[str, Any]
    #: wall time of the card I/O and parsing
    read_seconds: float = 0.0
    #: which access key opened the chip ("can" or "mrz") and how ("pace" or "bac")
    access: dict[str, str] = field(default_factory=dict)


class ChipPipeline(Protocol):
    def read(self, connection: CardConnection, key: AccessKey, on_progress: ProgressFn) -> ReadOutcome:
        """Raise an IdAgentError with ``exit_code == 5`` when the key is refused."""


@dataclass
class QrScan:
    #: keys to try, best first (the CAN from the ID number, then MRZ data)
    keys: list[AccessKey]
    identity: Identity
    at: float = field(default_factory=time.monotonic)


class QrDecoder(Protocol):
    def decode(self, text: str) -> QrScan:
        """Raise ``ParseError`` for a payload that is not a card's QR."""


class Forwards(Protocol):
    def bhyt_enabled(self) -> bool: ...

    def bhyt(self, identity: Identity) -> dict[str, Any]:
        """A JSON-ready lookup result; raise IdAgentError (exit_code 7) when the gateway fails."""

    def intake_enabled(self) -> bool: ...

    def intake(self, identity: Identity) -> dict[str, Any]:
        """Queue the identity for intake; a JSON-ready receipt."""

    def close(self) -> None: ...


class QrSource(Protocol):
    """A scanner or a camera that yields decoded QR texts."""

    name: str

    def poll(self, timeout: float) -> list[str]:
        """Block up to ``timeout`` s; the texts read since the last call."""

    def close(self) -> None: ...
