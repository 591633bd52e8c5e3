"""From the card's QR code to an ``Identity`` record (the QR fields: domain.md)."""

from __future__ import annotations

from agent.identity import Identity
from agent.qr.payload import CccdQr

SOURCE_QR = "qr"


def identity_from_qr(card: CccdQr) -> Identity:
    """An Identity whose fields all say they came from the QR."""
    identity = Identity(
        id_number=card.id_number, old_id_number=card.old_id_number, full_name=card.full_name,
        date_of_birth=card.date_of_birth, sex=card.sex, place_of_residence=card.place_of_residence,
        date_of_issue=card.date_of_issue, document_number=card.document_number,
        extra={f"qr_unknown_{i + 7}": v for i, v in enumerate(card.extra)})
    identity.sources = {name: SOURCE_QR for name in identity.field_names_present()}
    return identity
