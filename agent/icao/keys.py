"""Access data that opens a chip: MRZ data (BAC or PACE) or the CAN (PACE only).

These carry secrets: their reprs are masked and they are never logged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from agent.identity import mask


@dataclass(frozen=True, repr=False)
class MrzKey:
    """Document number, date of birth and date of expiry as the MRZ prints them
    (9303-11 §4.3: the MRZ information is doc number + check digit, DOB + check digit,
    expiry + check digit). Dates are YYMMDD strings."""

    document_number: str
    date_of_birth: str
    date_of_expiry: str

    def __post_init__(self) -> None:
        for name in ("date_of_birth", "date_of_expiry"):
            value = getattr(self, name)
            if len(value) != 6 or not value.isdigit():
                raise ValueError(f"{name} must be YYMMDD (6 digits)")
        if not self.document_number or len(self.document_number) > 30:
            raise ValueError("document_number must be 1 to 30 characters")

    @classmethod
    def from_dates(cls, document_number: str, birth: dt.date, expiry: dt.date) -> MrzKey:
        return cls(document_number, birth.strftime("%y%m%d"), expiry.strftime("%y%m%d"))

    def __repr__(self) -> str:
        return f"MrzKey(document_number={mask(self.document_number)!r}, dates=******)"


@dataclass(frozen=True, repr=False)
class CanKey:
    """The Card Access Number. On the Vietnamese card it is the last 6 digits of the
    12-digit ID number (domain.md)."""

    can: str

    def __post_init__(self) -> None:
        if not self.can.isdigit() or not 1 <= len(self.can) <= 12:
            raise ValueError("CAN must be digits")

    def __repr__(self) -> str:
        return "CanKey(can=******)"


AccessKey = MrzKey | CanKey
