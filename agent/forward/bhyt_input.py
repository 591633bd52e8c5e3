"""What a BHYT check sends, and the date-of-birth fallback.

The card number (a 12-digit citizen ID or a 15-character BHYT card code), the name as
the gateway's register holds it, and the date of birth as the gateway takes it.

The DOB fallback (the field problem ``agent.forward.bhyt.BhytClient`` solves): the
insurance record's date of birth often differs from the ID card's, or holds only the
year. When the gateway answers 070 (wrong date of birth) to the full date, the client
asks again with the year only (:func:`ask_year_only`) and reports which one matched
(:func:`dob_matched`).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from agent.errors import IdAgentError
from agent.forward.bhyt_codes import BhytStatus

#: the gateway's answer to a date of birth that does not match its register (domain.md)
WRONG_DOB = "070"

#: 12-digit citizen ID, or a 15-character BHYT card code: 2 letters (beneficiary
#: group), 1 digit (benefit level 1–5), 2-digit province, 10 digits (public clients of
#: the gateway validate it this way)
ID_RE = re.compile(r"^\d{12}$")
CARD_CODE_RE = re.compile(r"^[A-Z]{2}[1-5]\d{12}$")

#: statuses for which the gateway found the person, so the date of birth sent matched
IDENTIFIED = frozenset({
    BhytStatus.VALID, BhytStatus.VALID_OTHER_MINISTRY, BhytStatus.REPLACED, BhytStatus.EXPIRED,
    BhytStatus.WRONG_FACILITY, BhytStatus.REVOKED, BhytStatus.REPORTED_REDUCTION,
})



class BhytInputError(IdAgentError):
    code = "bhyt_input"
    exit_code = 3
    hint = "Give the 12-digit ID number (or the 15-character BHYT card code), the full name and the date of birth."


class MissingInputError(BhytInputError):
    """The identity on show lacks the ID number, the name or the date of birth a check
    needs: none is sent."""

    hint = "Read the card again."


def normalize_name(name: str) -> str:
    """NFC, collapsed spaces, upper case (Vietnamese letters keep their marks: the
    gateway's register holds names in capitals with diacritics)."""
    text = " ".join(unicodedata.normalize("NFC", name).split())
    return unicodedata.normalize("NFC", text.upper())


def normalize_card(card: str) -> str:
    value = "".join(card.split()).upper()
    if not (ID_RE.match(value) or CARD_CODE_RE.match(value)):
        raise BhytInputError("the card number must be a 12-digit ID number or a 15-character BHYT card code")
    return value


@dataclass(frozen=True)
class DobInput:
    """The date of birth as the gateway takes it: ``full`` (dd/MM/yyyy) may be absent
    when only the year is known."""

    full: str | None
    year: str


def parse_dob(value: dt.date | str) -> DobInput:
    """Accept a date, dd/MM/yyyy, d/M/yyyy, yyyy-MM-dd, ddMMyyyy (the card's QR) or yyyy."""
    if isinstance(value, dt.date):
        return DobInput(value.strftime("%d/%m/%Y"), f"{value.year:04d}")
    text = value.strip()
    if re.fullmatch(r"\d{4}", text):
        return DobInput(None, text)
    for pattern in ("%d/%m/%Y", "%Y-%m-%d", "%d%m%Y", "%d-%m-%Y", "%d.%m.%Y"):
        try:
            date = dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
        return DobInput(date.strftime("%d/%m/%Y"), f"{date.year:04d}")
    raise BhytInputError("the date of birth must be dd/MM/yyyy, yyyy-MM-dd or a 4-digit year")


def ask_year_only(code: str, dob: DobInput) -> bool:
    """After an answer ``code`` to the full date: ask again with the year only? Yes on
    070 (the register often holds another date, or only the year)."""
    return code == WRONG_DOB and dob.full is not None


def dob_matched(status: BhytStatus, sent: Sequence[str], dob: DobInput) -> str | None:
    """"full", "year", or None when the gateway did not identify the person."""
    if status not in IDENTIFIED:
        return None
    return "year" if (len(sent) == 2 or dob.full is None) else "full"
