"""DG1: the MRZ as stored on the chip (9303-10 §4.7.1): 61 { 5F1F mrz }."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from agent.errors import ParseError
from agent.icao import tlv
from agent.icao.lds.files import DATA_GROUPS
from agent.icao.mrz import DEFAULT_NO_EXPIRY_YEAR, RUN_LENGTHS, TD3_LINE_LEN, Mrz, parse_mrz

TAG_MRZ = 0x5F1F
SOURCE = DATA_GROUPS[1].name


@dataclass(frozen=True, repr=False)
class Dg1:
    mrz: Mrz

    def __repr__(self) -> str:
        return f"Dg1({self.mrz!r})"


def split_mrz(text: str) -> list[str]:
    """DG1 holds the lines run together: 90 characters for TD1, 72 for TD2, 88 for TD3."""
    size = RUN_LENGTHS.get(len(text), TD3_LINE_LEN)
    return [text[i:i + size] for i in range(0, len(text), size)]


def parse_dg1(data: bytes, *, today: dt.date | None = None,
              no_expiry_year: int = DEFAULT_NO_EXPIRY_YEAR) -> Dg1:
    root = tlv.parse_file(data, DATA_GROUPS[1].tag, source=SOURCE)
    item = root.child(TAG_MRZ)
    try:
        text = item.value.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ParseError("MRZ is not ASCII", source=SOURCE, offset=item.value_offset + exc.start) from None
    if len(text) not in RUN_LENGTHS:
        raise item.error(f"MRZ of {len(text)} characters (TD1 has 90, TD2 72, TD3 88)")
    return Dg1(parse_mrz(split_mrz(text), today=today, no_expiry_year=no_expiry_year, source=SOURCE,
                         base=item.value_offset))


def build_dg1(lines: tuple[str, ...] | list[str]) -> bytes:
    return tlv.encode(DATA_GROUPS[1].tag, tlv.encode(TAG_MRZ, "".join(lines).encode("ascii")))
