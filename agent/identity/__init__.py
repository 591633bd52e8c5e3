"""One identity record, built from the chip, the QR code, or both.

Every field remembers where it came from (``chip`` or ``qr``); a field on which the
two disagree is listed in ``conflicts`` (the chip's value wins: it is signed). The
record holds personal data: its ``repr`` masks it, and ``to_dict`` is only for the
local API and the forwards.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from agent.logs import mask

#: fields in display order; names follow the ``read --json`` contract
FIELDS: tuple[str, ...] = (
    "id_number", "old_id_number", "document_number", "full_name", "date_of_birth", "sex",
    "nationality", "ethnicity", "religion", "place_of_origin", "place_of_residence",
    "identifying_marks", "date_of_issue", "date_of_expiry", "father_name", "mother_name",
    "spouse_name", "card_uuid",
)

def _iso(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


@dataclass
class Identity:
    id_number: str | None = None
    old_id_number: str | None = None
    document_number: str | None = None
    full_name: str | None = None
    #: a date, or None when unknown; ``birth_date_text`` keeps the card's own text
    date_of_birth: dt.date | None = None
    sex: str | None = None  # "M", "F" or None (unspecified); see ``sex_label``
    nationality: str | None = None
    ethnicity: str | None = None
    religion: str | None = None
    place_of_origin: str | None = None
    place_of_residence: str | None = None
    identifying_marks: str | None = None
    date_of_issue: dt.date | None = None
    date_of_expiry: dt.date | None = None  # None: the card does not expire
    father_name: str | None = None
    mother_name: str | None = None
    spouse_name: str | None = None
    card_uuid: str | None = None
    #: face image as a displayable JPEG (DG2), or None
    photo_jpeg: bytes | None = field(default=None, repr=False)
    #: field name → "chip" | "qr"
    sources: dict[str, str] = field(default_factory=dict)
    #: fields where chip and QR disagree: {"field", "chip", "qr"} (values kept for the clerk)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    #: extra QR fields whose meaning is not documented, kept raw
    extra: dict[str, str] = field(default_factory=dict)
    #: the card's QR text as scanned (the reader-kit protocol sends it), or None
    qr_text: str | None = field(default=None, repr=False)

    @property
    def sex_label(self) -> str:
        return {"M": "Nam", "F": "Nữ"}.get(self.sex or "", "")

    def field_names_present(self) -> list[str]:
        return [name for name in FIELDS if getattr(self, name) is not None]

    def to_dict(self, *, photo: bool = False) -> dict[str, Any]:
        """Plain JSON-ready dict (ISO dates). The photo only when asked, as base64."""
        out: dict[str, Any] = {name: _iso(getattr(self, name)) for name in FIELDS}
        out["sex_label"] = self.sex_label
        out["sources"] = dict(self.sources)
        out["conflicts"] = [{k: _iso(v) for k, v in c.items()} for c in self.conflicts]
        out["extra"] = dict(self.extra)
        if photo and self.photo_jpeg:
            import base64

            out["photo_jpeg_base64"] = base64.b64encode(self.photo_jpeg).decode("ascii")
        return out

    def merge(self, other: Identity) -> Identity:
        """Combine a chip identity (``self``) with a QR identity (``other``). Chip
        values win; disagreements are recorded, never silently dropped."""
        merged = dataclasses.replace(self, sources=dict(self.sources), conflicts=list(self.conflicts),
                                     extra={**other.extra, **self.extra})
        for name in FIELDS:
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is None:
                continue
            if mine is None:
                setattr(merged, name, theirs)
                merged.sources[name] = other.sources.get(name, "qr")
            elif _normal(mine) != _normal(theirs):
                merged.conflicts.append({"field": name, "chip": mine, "qr": theirs})
        if merged.photo_jpeg is None:
            merged.photo_jpeg = other.photo_jpeg
        if merged.qr_text is None:
            merged.qr_text = other.qr_text
        return merged

    def clear(self) -> None:
        """Drop personal data from this object (the caller drops the object too)."""
        for f in dataclasses.fields(self):
            if f.name in ("sources", "conflicts", "extra"):
                getattr(self, f.name).clear()
            else:
                setattr(self, f.name, None)

    def __repr__(self) -> str:
        return (f"Identity(id_number={mask(self.id_number)!r}, fields={len(self.field_names_present())}, "
                f"photo={'yes' if self.photo_jpeg else 'no'}, conflicts={len(self.conflicts)})")

    __str__ = __repr__


def _normal(value: Any) -> Any:
    if isinstance(value, str):
        import unicodedata

        return " ".join(unicodedata.normalize("NFC", value).casefold().split())
    return value
