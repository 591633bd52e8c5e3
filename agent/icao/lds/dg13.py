"""DG13 of the Vietnamese card (domain.md, from public readers of real cards):

    6D { 30 { INTEGER 1, OID 1.0.10646.1.0.8 (UTF-8),
              31 { 30 { INTEGER n, value } … } } }

Fields are keyed by n, not by position; absent fields are left out. Values are
UTF8String, sometimes PrintableString; 13 is a SEQUENCE [father, mother] and 14 a
SEQUENCE [spouse]. Dates are dd/MM/yyyy. Numbers we do not know are kept as found.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from agent.errors import ParseError
from agent.icao import tlv
from agent.icao.lds.files import DATA_GROUPS
from agent.logs import mask

SOURCE = DATA_GROUPS[13].name
TAG_SEQUENCE = 0x30
TAG_SET = 0x31
TAG_INTEGER = 0x02
TAG_OID = 0x06
#: string types seen or plausible (X.680): UTF8String, PrintableString, T61, IA5, BMP
TAG_UTF8 = 0x0C
TAG_PRINTABLE = 0x13
TAG_T61 = 0x14
TAG_IA5 = 0x16
TAG_BMP = 0x1E
STRING_TAGS = (TAG_UTF8, TAG_PRINTABLE, TAG_T61, TAG_IA5, TAG_BMP)
#: 1.0.10646.1.0.8: ISO/IEC 10646 UTF-8 (DER content bytes)
OID_UTF8 = bytes.fromhex("28D316010008")
DATE_FORMAT = "%d/%m/%Y"
#: the expiry text of a card that does not expire ("no time limit")
NO_EXPIRY_TEXTS = ("không thời hạn",)
SEX = {"nam": "M", "nữ": "F"}


class Field(IntEnum):
    """The field numbers (domain.md). An ``IntEnum``: ``Dg13.fields`` is keyed by the
    plain number, unknown numbers included, and a ``Field`` looks its number up."""

    ID_NUMBER = 1
    FULL_NAME = 2
    DATE_OF_BIRTH = 3
    SEX = 4
    NATIONALITY = 5
    ETHNICITY = 6
    RELIGION = 7
    PLACE_OF_ORIGIN = 8
    PLACE_OF_RESIDENCE = 9
    IDENTIFYING_MARKS = 10
    DATE_OF_ISSUE = 11
    DATE_OF_EXPIRY = 12
    PARENTS = 13
    SPOUSE = 14
    OLD_ID_NUMBER = 15
    #: a 16-hex-character value, meaning unconfirmed (domain.md); kept as card_uuid
    CARD_UUID = 16


Value = str | tuple[str, ...] | bytes

#: text fields → attribute name
TEXT_FIELDS: dict[int, str] = {
    Field.ID_NUMBER: "id_number", Field.FULL_NAME: "full_name", Field.NATIONALITY: "nationality",
    Field.ETHNICITY: "ethnicity", Field.RELIGION: "religion", Field.PLACE_OF_ORIGIN: "place_of_origin",
    Field.PLACE_OF_RESIDENCE: "place_of_residence", Field.IDENTIFYING_MARKS: "identifying_marks",
    Field.OLD_ID_NUMBER: "old_id_number", Field.CARD_UUID: "card_uuid",
}


@dataclass(frozen=True, repr=False)
class Dg13:
    id_number: str | None = None
    full_name: str | None = None
    date_of_birth: dt.date | None = None
    date_of_birth_text: str | None = None
    sex: str | None = None  # "M" / "F" / None
    sex_text: str | None = None
    nationality: str | None = None
    ethnicity: str | None = None
    religion: str | None = None
    place_of_origin: str | None = None
    place_of_residence: str | None = None
    identifying_marks: str | None = None
    date_of_issue: dt.date | None = None
    date_of_expiry: dt.date | None = None
    expiry_text: str | None = None
    #: True when the card says it does not expire ("Không thời hạn" or empty)
    no_expiry: bool = False
    father_name: str | None = None
    mother_name: str | None = None
    spouse_name: str | None = None
    old_id_number: str | None = None
    card_uuid: str | None = None
    #: every field as found, by number (unknown numbers included)
    fields: dict[int, Value] = field(default_factory=dict)

    @property
    def unknown_fields(self) -> dict[int, Value]:
        return {n: v for n, v in self.fields.items() if not 1 <= n <= Field.CARD_UUID}

    def __repr__(self) -> str:
        return f"Dg13(id_number={mask(self.id_number)!r}, fields={sorted(self.fields)})"


def _text(item: tlv.Tlv) -> str:
    if item.tag == TAG_BMP:
        codec = "utf-16-be"
    elif item.tag in (TAG_PRINTABLE, TAG_IA5):
        codec = "ascii"
    else:
        codec = "utf-8"
    try:
        text = item.value.decode(codec)
    except UnicodeDecodeError as exc:
        raise ParseError(f"field text is not valid {codec}", source=SOURCE,
                         offset=item.value_offset + exc.start) from None
    return unicodedata.normalize("NFC", text).strip()


def _value(item: tlv.Tlv) -> Value:
    if item.tag in STRING_TAGS:
        return _text(item)
    if item.tag == TAG_SEQUENCE:
        return tuple(_text(part) for part in item.children() if part.tag in STRING_TAGS)
    return item.value


def _field_number(item: tlv.Tlv) -> int:
    if item.tag != TAG_INTEGER or not 1 <= len(item.value) <= 2:
        raise item.error("field number is not a small INTEGER")
    return int.from_bytes(item.value, "big")


def _fields(root: tlv.Tlv) -> tuple[dict[int, Value], dict[int, tlv.Tlv]]:
    outer = root.child(TAG_SEQUENCE)
    version = outer.child(TAG_INTEGER)
    oid = outer.child(TAG_OID)
    if oid.value != OID_UTF8:
        raise oid.error("DG13 encoding OID is not 1.0.10646.1.0.8 (UTF-8)")
    del version  # 1 on every card seen; other values are read the same way
    values: dict[int, Value] = {}
    where: dict[int, tlv.Tlv] = {}
    for entry in outer.child(TAG_SET).children():
        if entry.tag != TAG_SEQUENCE:
            raise entry.error(f"expected a field SEQUENCE, found tag {entry.tag:X}")
        parts = entry.children()
        if not parts:
            raise entry.error("empty field SEQUENCE")
        number = _field_number(parts[0])
        if number in values:
            raise entry.error(f"field {number} appears twice")
        if len(parts) > 1:
            values[number] = _value(parts[1])
            where[number] = parts[1]
    return values, where


def _date(text: str, item: tlv.Tlv) -> dt.date:
    try:
        return dt.datetime.strptime(text, DATE_FORMAT).date()
    except ValueError:
        raise item.error("date is not dd/MM/yyyy") from None


def _str(value: Value | None) -> str | None:
    if isinstance(value, str):
        return value or None
    return None


def _seq(value: Value | None, index: int) -> str | None:
    if isinstance(value, tuple) and len(value) > index:
        return value[index] or None
    if index == 0 and isinstance(value, str):
        return value or None
    return None


def parse_dg13(data: bytes) -> Dg13:
    root = tlv.parse_file(data, DATA_GROUPS[13].tag, source=SOURCE)
    values, where = _fields(root)
    out: dict[str, object] = {name: _str(values.get(n)) for n, name in TEXT_FIELDS.items()}
    birth = _str(values.get(Field.DATE_OF_BIRTH))
    if birth:
        out["date_of_birth_text"] = birth
        out["date_of_birth"] = _date(birth, where[Field.DATE_OF_BIRTH])
    sex = _str(values.get(Field.SEX))
    out["sex_text"] = sex
    out["sex"] = SEX.get(sex.casefold()) if sex else None
    issue = _str(values.get(Field.DATE_OF_ISSUE))
    if issue:
        out["date_of_issue"] = _date(issue, where[Field.DATE_OF_ISSUE])
    if Field.DATE_OF_EXPIRY in values:
        expiry = _str(values[Field.DATE_OF_EXPIRY]) or ""
        out["expiry_text"] = expiry
        if not expiry or expiry.casefold() in NO_EXPIRY_TEXTS:
            out["no_expiry"] = True
        else:
            out["date_of_expiry"] = _date(expiry, where[Field.DATE_OF_EXPIRY])
    out["father_name"] = _seq(values.get(Field.PARENTS), 0)
    out["mother_name"] = _seq(values.get(Field.PARENTS), 1)
    out["spouse_name"] = _seq(values.get(Field.SPOUSE), 0)
    return Dg13(fields=values, **out)  # type: ignore[arg-type]


# -- building (virtual chip profiles, tests) ---------------------------------------


def _encode_value(value: str | list[str] | tuple[str, ...]) -> bytes:
    if isinstance(value, str):
        return tlv.encode(TAG_UTF8, value.encode("utf-8"))
    return tlv.encode(TAG_SEQUENCE, b"".join(tlv.encode(TAG_UTF8, v.encode("utf-8")) for v in value))


def build_dg13(fields: Mapping[int, str | list[str] | tuple[str, ...]]) -> bytes:
    """DG13 in the Vietnamese layout from {field number: text or [texts]}."""
    entries = b"".join(
        tlv.encode(TAG_SEQUENCE, tlv.encode(TAG_INTEGER, bytes((n,))) + _encode_value(v))
        for n, v in sorted(fields.items()))
    body = (tlv.encode(TAG_INTEGER, b"\x01") + tlv.encode(TAG_OID, OID_UTF8) + tlv.encode(TAG_SET, entries))
    return tlv.encode(DATA_GROUPS[13].tag, tlv.encode(TAG_SEQUENCE, body))
