"""The card's QR payload: pipe-separated text → a typed, validated record.

Format (domain.md "The card's QR code"):

* 2021 CCCD (front), 7 fields:
  ``ID12|CMND9|Họ tên|ddMMyyyy (birth)|Nam or Nữ|nơi thường trú|ddMMyyyy (issue)``;
  the old-ID field may be empty.
* 2024 Căn cước (back), 10 or more fields: fields 0-6 as above; the order of the rest
  is not publicly documented, so they are kept raw and labelled unknown.

The 12-digit ID: 3-digit province code, 1 digit for century and sex (0/1 = 1900s
male/female, 2/3 = 2000s, 4/5 = 2100s …), 2 digits of the birth year, 6 digits
(domain.md). Those digits must agree with the birth date and sex.

``parse_cccd`` raises :class:`QrPayloadError` naming the field and what was expected;
``read_payload`` never raises: it says "CCCD", "not a CCCD QR" or "malformed", with
the text repair report. HTML and control characters are data: they are kept as they
are (``printable`` escapes control characters for a terminal).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from agent.errors import ParseError
from agent.icao.keys import CanKey, document_number_of
from agent.logs import mask
from agent.qr import repair
from agent.qr.provinces import PROVINCES

SOURCE = "QR"
SEPARATOR = "|"
#: fields 0-6, in order
CORE_FIELDS: tuple[str, ...] = ("id_number", "old_id_number", "full_name", "date_of_birth", "sex",
                                "place_of_residence", "date_of_issue")
SEX_CODES: dict[str, str] = {"nam": "M", "nữ": "F"}
#: ID digit 4 (century/sex): century of birth = 1900 + 100 * (digit // 2); odd = female
_CENTURY_BASE = 1900


class QrPayloadError(ParseError):
    """A payload that looks like a CCCD QR but is malformed; names the field."""

    code = "qr_payload"
    hint = "The QR code's content is not a valid ID card code. Scan the QR code on the ID card itself."
    exit_code = 8

    def __init__(self, message: str, *, field_name: str = "", offset: int | None = None) -> None:
        super().__init__(message, source=f"{SOURCE} field {field_name}" if field_name else SOURCE,
                         offset=offset)
        self.field_name = field_name


class NotCccdError(QrPayloadError):
    code = "not_cccd"
    hint = "This QR code is not the one on a Vietnamese ID card. Scan the QR code printed on the card."


@dataclass(frozen=True, repr=False)
class CccdQr:
    """The fields of a card's QR code. Holds personal data: the repr is masked."""

    id_number: str
    old_id_number: str | None
    full_name: str
    date_of_birth: dt.date
    sex: str  # "M" or "F"
    place_of_residence: str
    date_of_issue: dt.date | None
    #: fields 7 and later (2024 card), raw, meaning not documented
    extra: tuple[str, ...] = ()
    #: consistency problems that did not stop parsing (non-strict mode, or unknown province)
    warnings: tuple[str, ...] = ()

    @property
    def variant(self) -> str:
        return "cancuoc2024" if self.extra else "cccd2021"

    @property
    def province_code(self) -> str:
        return self.id_number[:3]

    @property
    def province_name(self) -> str | None:
        return PROVINCES.get(self.province_code)

    @property
    def can(self) -> str:
        """The Card Access Number: the last 6 digits of the ID (domain.md)."""
        return CanKey.of_id_number(self.id_number).can

    @property
    def document_number(self) -> str:
        """The MRZ document number: the last 9 digits of the ID (domain.md)."""
        return document_number_of(self.id_number)

    @property
    def sex_label(self) -> str:
        return "Nam" if self.sex == "M" else "Nữ"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (ISO dates). Values are data: escape them wherever rendered."""
        return {
            "id_number": self.id_number, "old_id_number": self.old_id_number,
            "full_name": self.full_name, "date_of_birth": self.date_of_birth.isoformat(),
            "sex": self.sex, "sex_label": self.sex_label, "place_of_residence": self.place_of_residence,
            "date_of_issue": self.date_of_issue.isoformat() if self.date_of_issue else None,
            "province_code": self.province_code, "province_name": self.province_name,
            "variant": self.variant, "extra": {f"unknown_{i + 7}": v for i, v in enumerate(self.extra)},
            "warnings": list(self.warnings),
        }

    def __repr__(self) -> str:
        return (f"CccdQr(id_number={mask(self.id_number)!r}, variant={self.variant!r}, "
                f"extra_fields={len(self.extra)}, warnings={len(self.warnings)})")

    __str__ = __repr__


@dataclass(frozen=True, repr=False)
class PayloadResult:
    """What a payload turned out to be. ``kind``: "cccd", "not_cccd" or "malformed"."""

    kind: str
    text: str
    card: CccdQr | None = None
    error: QrPayloadError | None = None
    repair: repair.Repaired | None = None
    #: raw bytes when the payload came as bytes
    raw: bytes | None = field(default=None)

    @property
    def ok(self) -> bool:
        return self.card is not None

    def __repr__(self) -> str:
        return f"PayloadResult(kind={self.kind!r}, card={self.card!r}, error={self.error!s})"


def looks_like_cccd(text: str) -> bool:
    """Cheap test: 12 digits, then the separator."""
    return bool(re.match(r"\s*[0-9]{12}\|", text))


def read_payload(data: bytes | str, *, strict: bool = True) -> PayloadResult:
    """Repair, classify and parse a payload; never raises for bad input."""
    fixed = repair.repair_bytes(data) if isinstance(data, bytes) else repair.repair_text(data)
    raw = data if isinstance(data, bytes) else None
    text = fixed.text
    try:
        card = parse_cccd(text, strict=strict)
    except NotCccdError as err:
        return PayloadResult("not_cccd", text, error=err, repair=fixed, raw=raw)
    except QrPayloadError as err:
        return PayloadResult("malformed", text, error=err, repair=fixed, raw=raw)
    if fixed.flags:
        card = _with_warnings(card, tuple(f"text: {flag}" for flag in fixed.flags))
    return PayloadResult("cccd", text, card=card, repair=fixed, raw=raw)


def _with_warnings(card: CccdQr, more: tuple[str, ...]) -> CccdQr:
    import dataclasses

    return dataclasses.replace(card, warnings=card.warnings + more)


def parse_cccd(text: str, *, strict: bool = True) -> CccdQr:
    """Parse already-repaired text. ``strict``: ID digits that disagree with the birth
    date or sex raise; otherwise they become warnings."""
    text = unicodedata.normalize("NFC", text).strip("\r\n\t ")
    parts = text.split(SEPARATOR)
    if len(parts) < 2 or not re.fullmatch(r"[0-9]{12}", parts[0].strip()):
        raise NotCccdError("not a CCCD QR: it does not start with a 12-digit ID number and '|'",
                           field_name="id_number", offset=0)
    if len(parts) < len(CORE_FIELDS):
        raise QrPayloadError(f"expected at least {len(CORE_FIELDS)} '|'-separated fields, found "
                             f"{len(parts)}", field_name=CORE_FIELDS[len(parts)], offset=len(text))
    offsets = _offsets(parts)
    id_number = parts[0].strip()
    old = _old_id(parts[1], offsets[1])
    name = parts[2].strip()
    if not name:
        raise QrPayloadError("the full name is empty", field_name="full_name", offset=offsets[2])
    birth = _date(parts[3], "date_of_birth", offsets[3])
    sex = _sex(parts[4], offsets[4])
    residence = parts[5].strip()
    issue = _date(parts[6], "date_of_issue", offsets[6]) if parts[6].strip() else None
    if issue is not None and issue < birth:
        raise QrPayloadError("the issue date is before the birth date", field_name="date_of_issue",
                             offset=offsets[6])
    problems = check_id(id_number, birth, sex)
    if problems and strict:
        raise QrPayloadError(problems[0], field_name="id_number", offset=0)
    warnings = list(problems)
    if id_number[:3] not in PROVINCES:
        warnings.append(f"province code {id_number[:3]} is not in the province table")
    return CccdQr(id_number, old, name, birth, sex, residence, issue, tuple(parts[7:]), tuple(warnings))


def check_id(id_number: str, birth: dt.date, sex: str) -> list[str]:
    """Disagreements between the ID's century/sex and year digits and the birth date
    and sex (domain.md). Empty when they agree."""
    digit = int(id_number[3])
    century = _CENTURY_BASE + 100 * (digit // 2)
    id_sex = "F" if digit % 2 else "M"
    problems = []
    if birth.year // 100 * 100 != century:
        problems.append(f"ID digit 4 ({digit}) means born in the {century}s, the birth date says {birth.year}")
    if id_sex != sex:
        problems.append(f"ID digit 4 ({digit}) means sex {id_sex}, the sex field says {sex}")
    if id_number[4:6] != f"{birth.year % 100:02d}":
        problems.append(f"ID digits 5-6 ({id_number[4:6]}) should be the birth year's last two digits "
                        f"({birth.year % 100:02d})")
    return problems


def _offsets(parts: list[str]) -> list[int]:
    offsets, at = [], 0
    for part in parts:
        offsets.append(at)
        at += len(part) + 1
    return offsets


def _old_id(value: str, offset: int) -> str | None:
    value = value.strip()
    if not value:
        return None
    if not re.fullmatch(r"[0-9]{9}|[0-9]{12}", value):
        raise QrPayloadError("the old ID number must be 9 digits (CMND) or 12 digits, or empty",
                             field_name="old_id_number", offset=offset)
    return value


def _date(value: str, name: str, offset: int) -> dt.date:
    value = value.strip()
    if not re.fullmatch(r"[0-9]{8}", value):
        raise QrPayloadError("expected a date as ddMMyyyy (8 digits)", field_name=name, offset=offset)
    try:
        return dt.date(int(value[4:]), int(value[2:4]), int(value[:2]))
    except ValueError:
        raise QrPayloadError("not a calendar date (ddMMyyyy)", field_name=name, offset=offset) from None


def _sex(value: str, offset: int) -> str:
    code = SEX_CODES.get(unicodedata.normalize("NFC", value.strip()).casefold())
    if code is None:
        raise QrPayloadError("expected 'Nam' or 'Nữ'", field_name="sex", offset=offset)
    return code


def printable(value: str) -> str:
    """``value`` with control characters (C0, C1, DEL, bidi overrides) shown as
    escapes, for a terminal. HTML is not interpreted by a terminal; web views escape
    it themselves (the API returns JSON)."""
    out = []
    for ch in value:
        cat = unicodedata.category(ch)
        if cat == "Cc" or ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069":
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)
