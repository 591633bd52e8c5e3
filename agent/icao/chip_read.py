"""The result of a chip read (``agent.icao.read.read_chip``): the raw files, the parsed
records, what became of each file, the verification and the timing.

``complete`` and ``missing`` say whether every required data group the card lists was
read and parsed; ``verified`` needs a complete read. ``to_dict`` is the
``idagent read --json`` contract but its identity (built above this layer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from agent.errors import IdAgentError
from agent.icao.access import AccessInfo
from agent.icao.checks import CheckResult
from agent.icao.lds.files import SOD
from agent.icao.securityinfo import SecurityInfos
from agent.icao.sod import Sod
from agent.icao.verify import Verification

#: data groups without which the identity is not complete, when EF.COM lists them
REQUIRED_DGS = (1, 2, 13)

class Outcome(StrEnum):
    """What became of one file (``files`` of ``idagent read --json``)."""

    READ = "read"
    ABSENT = "absent"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass
class FileOutcome:
    name: str
    status: Outcome
    size: int | None = None
    seconds: float = 0.0
    reason: str | None = None
    error: IdAgentError | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.size is not None:
            out["size"] = self.size
        if self.reason:
            out["reason"] = self.reason
        if self.error is not None:
            out["error"] = self.error.to_dict()
        return out


@dataclass
class Timing:
    apdus: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    seconds: float = 0.0
    access_seconds: float = 0.0
    verify_seconds: float = 0.0
    #: APDUs by phase: access control (incl. EF.CardAccess), files, verification
    access_apdus: int = 0
    verify_apdus: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"apdus": self.apdus, "bytes_sent": self.bytes_sent, "bytes_received": self.bytes_received,
                "seconds": round(self.seconds, 4), "access_seconds": round(self.access_seconds, 4),
                "verify_seconds": round(self.verify_seconds, 4), "access_apdus": self.access_apdus,
                "verify_apdus": self.verify_apdus}


@dataclass(repr=False)
class ChipRead:
    access: AccessInfo
    files: dict[str, bytes] = field(default_factory=dict)
    records: dict[str, Any] = field(default_factory=dict)
    outcomes: dict[str, FileOutcome] = field(default_factory=dict)
    #: None when the read ran with ``verify=False``
    verification: Verification | None = None
    timing: Timing = field(default_factory=Timing)
    #: extended length was used for the reads
    extended_length: bool = False
    #: Chip Authentication run during the read (None: not run, verification runs it)
    chip_authentication: CheckResult | None = field(default=None, repr=False)
    #: why secure messaging had to be opened again mid-read (a failed CA), if it was
    reopened: str | None = None
    #: why the whole read started again on a fresh session (read_chip), if it did
    read_again: str | None = None

    @property
    def sod(self) -> Sod | None:
        """EF.SOD as parsed during the read (None: not read, or malformed)."""
        sod: Sod | None = self.records.get(SOD.name)
        return sod

    @property
    def security_infos(self) -> SecurityInfos | None:
        """DG14 as parsed during the read (None: not read, or malformed)."""
        infos: SecurityInfos | None = self.records.get("DG14")
        return infos

    @property
    def errors(self) -> dict[str, IdAgentError]:
        return {name: o.error for name, o in self.outcomes.items() if o.error is not None}

    def _listed(self) -> set[int] | None:
        """The data groups EF.COM or EF.SOD list; None when neither parsed. EF.SOD
        counts too: EF.COM is not signed (9303-10 §4.6.1) and could hide a group."""
        com = self.records.get("COM")
        sod = self.records.get("SOD")
        if com is None and sod is None:
            return None
        return set(com.data_groups if com is not None else ()) | set(sod.dg_hashes if sod is not None else ())

    @property
    def complete(self) -> bool:
        """Every required data group the card lists was read and parsed."""
        listed = self._listed()
        for number in REQUIRED_DGS:
            name = f"DG{number}"
            if name in self.records:
                continue
            if number == 1 or (listed is not None and number in listed):
                return False
            outcome = self.outcomes.get(name)
            # without EF.COM, a required group that is there but failed still counts
            if listed is None and outcome is not None and outcome.status == Outcome.FAILED:
                return False
        return True

    @property
    def verified(self) -> bool:
        # a signature over the files that were read says nothing of those that were not
        return self.complete and self.verification is not None and self.verification.verified

    def missing(self) -> list[str]:
        """The required data groups (see ``complete``) that were not read and parsed."""
        listed = self._listed()
        return [f"DG{n}" for n in REQUIRED_DGS
                if f"DG{n}" not in self.records and (n == 1 or listed is None or n in listed)]

    def __repr__(self) -> str:
        return f"ChipRead(files={sorted(self.files)}, complete={self.complete})"

    def to_dict(self) -> dict[str, Any]:
        """The ``idagent read --json`` contract but its identity (``agent.identity.from_chip.read_json``
        adds that: the record is built above this layer)."""
        return {
            "complete": self.complete,
            "access": dict(self.access.to_dict()),
            "files": {name: outcome.to_dict() for name, outcome in self.outcomes.items()},
            "verification": self.verification.to_dict() if self.verification is not None else None,
            "timing": {**self.timing.to_dict(), "extended_length": self.extended_length},
        }
