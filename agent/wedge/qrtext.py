"""The 7-field QR text of a CCCD (domain.md "The card's QR code"), built from the verified
chip data so that it is right even when the printed QR code is unreadable:

``ID12|CMND9|Họ tên|ddMMyyyy (birth)|Nam or Nữ|nơi thường trú|ddMMyyyy (issue)``

Desk applications that accept a keyboard-wedge scanner split this text on ``|``.
"""

from __future__ import annotations

import datetime as dt
import unicodedata

from agent.errors import IdAgentError
from agent.identity import Identity
from agent.pipeline import Verdict

SEPARATOR = "|"
#: the fields of the text, in order; each must come from the chip
CHIP_FIELDS = ("id_number", "full_name", "date_of_birth", "sex", "place_of_residence", "date_of_issue")


class WedgeRefused(IdAgentError):
    """Nothing is typed: the read is not verified, a field is not from the chip, the
    wedge is off, or no (single) window matches."""

    code = "wedge_refused"
    http_status = 409
    exit_code = 3
    hint = "Only a verified chip read is typed, into the window named in [wedge] window_title."


class WedgeUnverified(WedgeRefused):
    """The read on show is not verified (not verified, a probable clone, altered data)."""

    code = "wedge_unverified"
    hint = "Only a card whose chip was verified is typed; compare the card by eye and type it by hand."


class WedgeNotFromChip(WedgeRefused):
    """A field of the text would come from the printed QR, not from the verified chip."""

    code = "wedge_not_from_chip"
    hint = "Only data read from the verified chip are typed; read the card's chip again."


def _date(value: dt.date | None) -> str:
    return value.strftime("%d%m%Y") if value else ""


def _clean(text: str) -> str:
    # a "|" or a line break inside a field would shift every field after it in the
    # receiving application; NFC so that each letter is one precomposed character
    return unicodedata.normalize("NFC", " ".join(text.replace(SEPARATOR, " ").split()))


def qr_text(identity: Identity, verification: Verdict) -> str:
    """The QR text for a verified chip read; raises :class:`WedgeRefused` otherwise."""
    if not verification.verified:
        raise WedgeUnverified(f"the read is not verified ({verification.status.value}): nothing typed")
    not_chip = [f for f in CHIP_FIELDS if identity.sources.get(f) != "chip" or getattr(identity, f) is None]
    if not_chip:
        raise WedgeNotFromChip("these fields are not from the verified chip: " + ", ".join(not_chip)
                               + "; nothing typed")
    old = identity.old_id_number if identity.sources.get("old_id_number") == "chip" else None
    fields = [identity.id_number or "", old or "", identity.full_name or "",
              _date(identity.date_of_birth), identity.sex_label, identity.place_of_residence or "",
              _date(identity.date_of_issue)]
    return SEPARATOR.join(_clean(f) for f in fields)
