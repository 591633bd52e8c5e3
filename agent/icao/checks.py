"""The result of one verification check (passive, chip or active authentication).

A forged or damaged card is a result, never an exception (design.md): each check ends
in a ``Status`` and a human reason naming what failed (which data group, which
certificate, which anchor), plus notes that do not change the status.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Status(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    UNTRUSTED = "untrusted"
    NOT_SUPPORTED = "not_supported"
    NOT_CHECKED = "not_checked"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class CheckResult:
    status: Status
    reason: str
    notes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is Status.VALID

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status.value, "reason": self.reason}
        if self.notes:
            out["notes"] = list(self.notes)
        if self.details:
            out["details"] = self.details
        return out

    @classmethod
    def not_checked(cls, reason: str) -> CheckResult:
        return cls(Status.NOT_CHECKED, reason)

    @classmethod
    def not_supported(cls, reason: str) -> CheckResult:
        return cls(Status.NOT_SUPPORTED, reason)
