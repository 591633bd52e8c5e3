"""DG12: additional document details (9303-10 §4.7.12)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from agent.icao import tlv
from agent.icao.lds.files import DATA_GROUPS
from agent.icao.lds.text import utf8, yyyymmdd

SOURCE = DATA_GROUPS[12].name
TAG_LIST = 0x5C
TAG_ISSUING_AUTHORITY = 0x5F19
TAG_DATE_OF_ISSUE = 0x5F26
TAG_OTHER_PERSONS = 0xA0
TAG_OTHER_PERSON = 0x5F1A
TAG_COUNT = 0x02
TAG_ENDORSEMENTS = 0x5F1B
TAG_TAX_EXIT = 0x5F1C
TAG_IMAGE_FRONT = 0x5F1D
TAG_IMAGE_REAR = 0x5F1E
TAG_PERSONALIZATION_TIME = 0x5F55
TAG_PERSONALIZATION_DEVICE = 0x5F56

TEXT_FIELDS: dict[int, str] = {
    TAG_ISSUING_AUTHORITY: "issuing_authority", TAG_ENDORSEMENTS: "endorsements",
    TAG_TAX_EXIT: "tax_exit_requirements", TAG_PERSONALIZATION_TIME: "personalization_time",
    TAG_PERSONALIZATION_DEVICE: "personalization_device",
}


@dataclass(frozen=True, repr=False)
class Dg12:
    issuing_authority: str | None = None
    date_of_issue: dt.date | None = None
    date_of_issue_text: str | None = None
    other_persons: tuple[str, ...] = ()
    endorsements: str | None = None
    tax_exit_requirements: str | None = None
    image_front: bytes | None = None
    image_rear: bytes | None = None
    personalization_time: str | None = None
    personalization_device: str | None = None
    other: dict[int, bytes] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Dg12(fields={sum(1 for v in vars(self).values() if v)})"


def parse_dg12(data: bytes) -> Dg12:
    root = tlv.parse_file(data, DATA_GROUPS[12].tag, source=SOURCE)
    values: dict[str, object] = {}
    other: dict[int, bytes] = {}
    for item in root.children():
        if item.tag in (TAG_LIST, TAG_COUNT):
            continue
        if item.tag in TEXT_FIELDS:
            values[TEXT_FIELDS[item.tag]] = utf8(item)
        elif item.tag == TAG_DATE_OF_ISSUE:
            text = item.value.decode("ascii", errors="replace")
            values["date_of_issue_text"] = text
            values["date_of_issue"] = yyyymmdd(text)
        elif item.tag == TAG_OTHER_PERSONS:
            values["other_persons"] = tuple(utf8(p) for p in item.children() if p.tag == TAG_OTHER_PERSON)
        elif item.tag == TAG_IMAGE_FRONT:
            values["image_front"] = item.value
        elif item.tag == TAG_IMAGE_REAR:
            values["image_rear"] = item.value
        else:
            other[item.tag] = item.value
    return Dg12(other=other, **values)  # type: ignore[arg-type]
