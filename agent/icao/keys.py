"""Access data that opens a chip: MRZ data (BAC or PACE) or the CAN (PACE only).

These carry secrets: their reprs are masked and they are never logged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from agent.logs import mask

#: domain.md: on the Vietnamese card the CAN is the last 6 digits of the 12-digit ID
#: number and the MRZ document number its last 9
CAN_DIGITS = 6
DOCUMENT_NUMBER_DIGITS = 9


def yymmdd(day: dt.date) -> str:
    """A date as the MRZ prints it (9303-3 §4.2)."""
    return day.strftime("%y%m%d")


def document_number_of(id_number: str) -> str:
    """The MRZ document number of a Vietnamese card: the last 9 digits of its ID."""
    return id_number[-DOCUMENT_NUMBER_DIGITS:]


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

    @classmethod
    def of_id_number(cls, id_number: str) -> CanKey:
        """The CAN of a Vietnamese card: the last 6 digits of its 12-digit ID number."""
        return cls(id_number[-CAN_DIGITS:])

    def __repr__(self) -> str:
        return "CanKey(can=******)"


AccessKey = MrzKey | CanKey
