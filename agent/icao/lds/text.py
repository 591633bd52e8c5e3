"""Decoding of the text values found in the LDS files (shared by DG11, DG12, DG13)."""

from __future__ import annotations

import datetime as dt
import unicodedata

from agent.errors import ParseError
from agent.icao import tlv


def utf8(item: tlv.Tlv) -> str:
    """A UTF-8 value (9303-10 §4.7.11: DG11/DG12 text is UTF-8), NFC-normalized."""
    try:
        text = item.value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError("text is not valid UTF-8", source=item.source,
                             offset=item.value_offset + exc.start) from None
    return unicodedata.normalize("NFC", text)


def yyyymmdd(text: str) -> dt.date | None:
    """``19740812`` → a date; partial dates (00 month/day, as 9303 allows) → None."""
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None
