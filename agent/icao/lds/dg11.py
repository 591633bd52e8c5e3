"""DG11: additional personal details (9303-10 §4.7.11). Absent on the Vietnamese
card (6A82, domain.md) but read when present. Text is UTF-8; ``<`` separates name parts
and the parts of list fields (place of birth, address …), and is never shown."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from agent.icao import tlv
from agent.icao.lds.files import DATA_GROUPS
from agent.icao.lds.text import utf8, yyyymmdd
from agent.logs import mask

SOURCE = DATA_GROUPS[11].name
TAG_LIST = 0x5C
TAG_FULL_NAME = 0x5F0E
TAG_OTHER_NAME = 0x5F0F
TAG_OTHER_NAMES = 0xA0
TAG_COUNT = 0x02
TAG_PERSONAL_NUMBER = 0x5F10
TAG_DATE_OF_BIRTH = 0x5F2B
TAG_PLACE_OF_BIRTH = 0x5F11
TAG_ADDRESS = 0x5F42
TAG_TELEPHONE = 0x5F12
TAG_PROFESSION = 0x5F13
TAG_TITLE = 0x5F14
TAG_SUMMARY = 0x5F15
TAG_PROOF_OF_CITIZENSHIP = 0x5F16
TAG_OTHER_TD_NUMBERS = 0x5F17
TAG_CUSTODY = 0x5F18

#: text fields by tag → attribute
TEXT_FIELDS: dict[int, str] = {
    TAG_FULL_NAME: "full_name", TAG_PERSONAL_NUMBER: "personal_number",
    TAG_PLACE_OF_BIRTH: "place_of_birth", TAG_ADDRESS: "address", TAG_TELEPHONE: "telephone",
    TAG_PROFESSION: "profession", TAG_TITLE: "title", TAG_SUMMARY: "personal_summary",
    TAG_OTHER_TD_NUMBERS: "other_td_numbers", TAG_CUSTODY: "custody_information",
}


@dataclass(frozen=True, repr=False)
class Dg11:
    full_name: str | None = None
    other_names: tuple[str, ...] = ()
    personal_number: str | None = None
    date_of_birth: dt.date | None = None
    date_of_birth_text: str | None = None
    place_of_birth: str | None = None
    address: str | None = None
    telephone: str | None = None
    profession: str | None = None
    title: str | None = None
    personal_summary: str | None = None
    proof_of_citizenship: bytes | None = None
    other_td_numbers: str | None = None
    custody_information: str | None = None
    #: tags we do not know, kept raw
    other: dict[int, bytes] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Dg11(personal_number={mask(self.personal_number)!r})"


#: 9303-10 §4.7.11: these fields are lists whose parts are separated by "<" (place of
#: birth: town<province<country; address: street<city<…; other TD numbers: number<number)
SEPARATED_FIELDS = {TAG_PLACE_OF_BIRTH: ", ", TAG_ADDRESS: ", ", TAG_OTHER_TD_NUMBERS: ", ",
                    TAG_PROFESSION: " ", TAG_TITLE: " ", TAG_SUMMARY: " ", TAG_CUSTODY: " ",
                    TAG_TELEPHONE: " "}


def separated_text(value: str, joiner: str) -> str:
    """``"HA NOI<VIET NAM<<"`` → ``"HA NOI, VIET NAM"``: fillers are never shown."""
    return joiner.join(part.strip() for part in value.split("<") if part.strip())


def name_text(value: str) -> str:
    """9303-10 §4.7.11: primary``<<``secondary, ``<`` within parts → spaces."""
    primary, _, secondary = value.partition("<<")
    return " ".join(p.replace("<", " ").strip() for p in (primary, secondary) if p.strip("<"))


def parse_dg11(data: bytes) -> Dg11:
    root = tlv.parse_file(data, DATA_GROUPS[11].tag, source=SOURCE)
    values: dict[str, object] = {}
    other: dict[int, bytes] = {}
    for item in root.children():
        if item.tag == TAG_LIST or item.tag == TAG_COUNT:
            continue
        if item.tag in TEXT_FIELDS:
            text = utf8(item)
            if item.tag == TAG_FULL_NAME:
                text = name_text(text)
            elif item.tag in SEPARATED_FIELDS:
                text = separated_text(text, SEPARATED_FIELDS[item.tag])
            values[TEXT_FIELDS[item.tag]] = text
        elif item.tag == TAG_DATE_OF_BIRTH:
            text = item.value.decode("ascii", errors="replace")
            values["date_of_birth_text"] = text
            values["date_of_birth"] = yyyymmdd(text)
        elif item.tag == TAG_OTHER_NAMES:
            values["other_names"] = tuple(name_text(utf8(n)) for n in item.children() if n.tag == TAG_OTHER_NAME)
        elif item.tag == TAG_OTHER_NAME:
            values["other_names"] = (*values.get("other_names", ()), name_text(utf8(item)))  # type: ignore[misc]
        elif item.tag == TAG_PROOF_OF_CITIZENSHIP:
            values["proof_of_citizenship"] = item.value
        else:
            other[item.tag] = item.value
    return Dg11(other=other, **values)  # type: ignore[arg-type]
