"""Machine Readable Zone: TD1 (3 × 30, ID cards) and TD3 (2 × 44, passports), as ICAO
9303-5 (TD1) and 9303-4 (TD3) lay them out, with check digits per 9303-3 §4.9.

The Vietnamese card (domain.md) is TD1 whose document number is the last 9 digits of
the 12-digit ID; the optional data of line 1 holds the full 12-digit ID, ``<<`` and a
check digit over the 12 digits.

A validation error names the line (1-based) and the position (0-based column) where
the MRZ is wrong. Nothing here logs: an MRZ is personal data.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from agent.errors import ParseError
from agent.icao.keys import MrzKey, document_number_of
from agent.logs import mask

TD1_LINE_LEN = 30
TD1_LINES = 3
TD3_LINE_LEN = 44
TD3_LINES = 2
#: 9303-6: TD2, two lines of 36 (some ID cards and visas, e.g. older European ID cards)
TD2_LINE_LEN = 36
TD2_LINES = 2
FILLER = "<"
#: 9303-3 §4.9: weights repeat 7, 3, 1
CHECK_WEIGHTS = (7, 3, 1)
#: MRZ character set (9303-3 §4.1)
#: \Z, not $: "$" also matches before a trailing newline, so "\n" passed as an MRZ character
MRZ_CHARS = re.compile(r"[0-9A-Z<]*\Z")
#: Vietnamese TD1 optional data of line 1: 12-digit ID, "<<", check digit (domain.md)
VN_OPTIONAL = re.compile(r"^(\d{12})<<(\d)$")
VIETNAM = "VNM"
#: an expiry year some cards without expiry are said to carry (domain.md, unconfirmed);
#: the real value comes from config.card.no_expiry_year
DEFAULT_NO_EXPIRY_YEAR = 2099
#: an expiry date more than this many years ahead is read as last century
EXPIRY_FUTURE_WINDOW = 50


class MrzError(ParseError):
    """An MRZ that does not follow 9303: names the line and position."""

    code = "mrz"
    hint = "Check the MRZ lines: copy them exactly as printed on the back of the card."

    def __init__(self, message: str, *, line: int, position: int, source: str = "MRZ",
                 line_len: int = TD1_LINE_LEN, base: int = 0) -> None:
        super().__init__(f"line {line} position {position}: {message}", source=source,
                         offset=base + (line - 1) * line_len + position)
        self.line = line
        self.position = position


def char_value(char: str) -> int:
    """9303-3 §4.9: digits are themselves, A..Z are 10..35, the filler is 0."""
    if char.isdigit():
        return int(char)
    if "A" <= char <= "Z":
        return ord(char) - ord("A") + 10
    if char == FILLER:
        return 0
    raise ValueError(f"not an MRZ character: {char!r}")


def check_digit(text: str) -> int:
    return sum(char_value(c) * CHECK_WEIGHTS[i % 3] for i, c in enumerate(text)) % 10


@dataclass(frozen=True, repr=False)
class Mrz:
    """A decoded MRZ. Dates are resolved to full years; ``*_raw`` keep YYMMDD."""

    format: str  # "TD1" or "TD3"
    document_code: str
    issuing_state: str
    document_number: str
    date_of_birth: dt.date | None
    birth_raw: str
    sex: str | None  # "M", "F" or None
    #: None when the card does not expire (see ``expiry_unconfirmed``) or the date is unknown
    date_of_expiry: dt.date | None
    expiry_raw: str
    #: True when the expiry was read as "no expiry" from the no_expiry_year convention
    #: (one vendor document; domain.md marks it unconfirmed)
    expiry_unconfirmed: bool
    nationality: str
    primary_identifier: str
    secondary_identifier: str
    optional_data: str
    optional_data_2: str
    #: the 12-digit Vietnamese ID from line 1's optional data, when present
    id_number: str | None
    lines: tuple[str, ...]

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.primary_identifier, self.secondary_identifier) if part)

    def access_key(self) -> MrzKey:
        """The BAC/PACE key this MRZ gives (9303-11 §4.3.2: number, DOB, expiry)."""
        return MrzKey(self.document_number, self.birth_raw, self.expiry_raw)

    def __repr__(self) -> str:
        return f"Mrz(format={self.format}, document_number={mask(self.document_number)!r})"


# -- dates ------------------------------------------------------------------------


def _date(raw: str, year: int) -> dt.date | None:
    try:
        return dt.date(year, int(raw[2:4]), int(raw[4:6]))
    except ValueError:
        return None


def birth_date(raw: str, today: dt.date) -> dt.date | None:
    """A birth date is in the past: the latest century that does not put it after today."""
    yy = int(raw[:2])
    year = today.year - (today.year - yy) % 100
    found = _date(raw, year)
    if found is not None and found > today:
        found = _date(raw, year - 100)
    return found


def expiry_date(raw: str, today: dt.date, no_expiry_year: int = DEFAULT_NO_EXPIRY_YEAR
                ) -> tuple[dt.date | None, bool]:
    """(expiry, unconfirmed). An expiry is in the near future or the past: 20YY unless
    that is more than 50 years ahead. YY equal to ``no_expiry_year``'s last two digits
    means "no expiry" (returned as None, True); ``no_expiry_year=0`` disables that."""
    yy = int(raw[:2])
    if no_expiry_year and yy == no_expiry_year % 100:
        return None, True
    year = today.year - today.year % 100 + yy
    if year > today.year + EXPIRY_FUTURE_WINDOW:
        year -= 100
    elif year <= today.year - EXPIRY_FUTURE_WINDOW:
        year += 100
    return _date(raw, year), False


# -- field checks -----------------------------------------------------------------


class _Lines:
    """Field access with errors naming line and position."""

    def __init__(self, lines: tuple[str, ...], source: str, line_len: int, base: int) -> None:
        self.lines = lines
        self.source = source
        self.line_len = line_len
        self.base = base

    def error(self, message: str, line: int, position: int) -> MrzError:
        return MrzError(message, line=line, position=position, source=self.source,
                        line_len=self.line_len, base=self.base)

    def field(self, line: int, start: int, end: int) -> str:
        return self.lines[line - 1][start:end]

    def checked(self, line: int, start: int, end: int, check_at: int, what: str) -> str:
        value = self.field(line, start, end)
        self.check(value, line, check_at, what)
        return value

    def check(self, value: str, line: int, check_at: int, what: str) -> None:
        char = self.lines[line - 1][check_at]
        expected = check_digit(value)
        if char == FILLER and not value.strip(FILLER):
            return  # an empty optional field may leave its check digit blank (9303-3 §4.9)
        if not char.isdigit() or int(char) != expected:
            raise self.error(f"check digit of the {what} is {char!r}, expected {expected}", line, check_at)

    def date_raw(self, line: int, start: int, what: str) -> str:
        raw = self.field(line, start, start + 6)
        if not raw.isdigit():
            raise self.error(f"{what} must be 6 digits (YYMMDD)", line, start)
        return raw


def normalize_lines(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Lines from text (newline-separated, or 90/88 characters in one run) or a list;
    spaces and surrounding blanks removed, upper-cased."""
    if isinstance(text, str):
        raw = [line for line in (part.strip().replace(" ", "") for part in text.splitlines()) if line]
        size = RUN_LENGTHS.get(len(raw[0])) if len(raw) == 1 else None
        if size is not None:
            raw = [raw[0][i:i + size] for i in range(0, len(raw[0]), size)]
    else:
        raw = [line.strip().replace(" ", "") for line in text]
    return tuple(line.upper() for line in raw)


#: one run of characters (DG1 stores the lines run together) → its line length
RUN_LENGTHS = {TD1_LINE_LEN * TD1_LINES: TD1_LINE_LEN, TD2_LINE_LEN * TD2_LINES: TD2_LINE_LEN,
               TD3_LINE_LEN * TD3_LINES: TD3_LINE_LEN}


def _validate_shape(lines: tuple[str, ...], source: str, base: int) -> tuple[int, int]:
    if len(lines) == TD1_LINES:
        line_len = TD1_LINE_LEN
    elif len(lines) == TD3_LINES:
        # two lines: TD2 (36) or TD3 (44), by the first line's length
        line_len = TD2_LINE_LEN if len(lines[0]) == TD2_LINE_LEN else TD3_LINE_LEN
    else:
        raise MrzError(f"{len(lines)} line(s): TD1 has 3 lines of 30, TD2 2 of 36, TD3 2 of 44",
                       line=1, position=0, source=source, base=base)
    for number, line in enumerate(lines, 1):
        if len(line) != line_len:
            raise MrzError(f"{len(line)} characters, expected {line_len}", line=number,
                           position=min(len(line), line_len), source=source, line_len=line_len,
                           base=base)
        bad = next((i for i, c in enumerate(line) if not MRZ_CHARS.match(c)), None)
        if bad is not None:
            raise MrzError("character outside the MRZ set (0-9, A-Z, <)", line=number, position=bad,
                           source=source, line_len=line_len, base=base)
    return len(lines), line_len


def _sex(char: str) -> str | None:
    return char if char in ("M", "F") else None


def _name(text: str) -> tuple[str, str]:
    """9303-3 §4.6: primary and secondary identifiers split by ``<<``, ``<`` as space."""
    primary, _, secondary = text.strip(FILLER).partition("<<")
    return (" ".join(p for p in primary.split(FILLER) if p),
            " ".join(p for p in secondary.split(FILLER) if p))


def parse_mrz(text: str | list[str] | tuple[str, ...], *, today: dt.date | None = None,
              no_expiry_year: int = DEFAULT_NO_EXPIRY_YEAR, source: str = "MRZ", base: int = 0) -> Mrz:
    """Parse and validate a TD1 or TD3 MRZ (chosen by its shape). ``base`` is the
    offset of the MRZ text in its file, for error offsets."""
    lines = normalize_lines(text)
    count, line_len = _validate_shape(lines, source, base)
    doc = _Lines(lines, source, line_len, base)
    day = today or dt.date.today()
    if count == TD1_LINES:
        return _parse_td1(doc, day, no_expiry_year)
    if line_len == TD2_LINE_LEN:
        return _parse_td2(doc, day, no_expiry_year)
    return _parse_td3(doc, day, no_expiry_year)


def _td1_key_fields(doc: _Lines) -> tuple[str, str, str]:
    """TD1 document number, birth and expiry (YYMMDD), each against its check digit:
    what the access key needs, from lines 1 and 2 only."""
    number = doc.field(1, 5, 14)
    optional = doc.field(1, 15, 30)
    if doc.lines[0][14] == FILLER and optional[:1] != FILLER:
        # 9303-5 §4.2.4 note j: a number over 9 characters continues in the optional
        # data, with its check digit after the overflow
        overflow, _, rest = optional.partition(FILLER)
        if overflow and overflow[-1].isdigit():
            full = number + overflow[:-1]
            doc.check(full, 1, 15 + len(overflow) - 1, "document number")
            number = full
    else:
        doc.check(number, 1, 14, "document number")
    birth_raw = doc.date_raw(2, 0, "date of birth")
    doc.check(birth_raw, 2, 6, "date of birth")
    expiry_raw = doc.date_raw(2, 8, "date of expiry")
    doc.check(expiry_raw, 2, 14, "date of expiry")
    return number, birth_raw, expiry_raw


def td1_access_key(lines: tuple[str, ...] | list[str], *, source: str = "MRZ") -> MrzKey:
    """The BAC/PACE key from the first two lines of a TD1 (the name line is not needed):
    for a desk that types only what the key needs. The lines must be 30 characters of
    the MRZ set; raises :class:`MrzError` naming a wrong check digit."""
    number, birth_raw, expiry_raw = _td1_key_fields(_Lines(tuple(lines[:2]), source, TD1_LINE_LEN, 0))
    return MrzKey(number.rstrip(FILLER), birth_raw, expiry_raw)


def _parse_td1(doc: _Lines, today: dt.date, no_expiry_year: int) -> Mrz:
    """9303-5 §4.2.2: line 1 code, state, number, check, optional; line 2 DOB, check,
    sex, expiry, check, nationality, optional, composite; line 3 name."""
    number, birth_raw, expiry_raw = _td1_key_fields(doc)
    optional = doc.field(1, 15, 30)
    id_number = None
    match = VN_OPTIONAL.match(optional)
    if doc.field(1, 2, 5) == VIETNAM and match:
        doc.check(match.group(1), 1, 29, "12-digit ID number")
        id_number = match.group(1)
    composite = doc.field(1, 5, 30) + doc.field(2, 0, 7) + doc.field(2, 8, 15) + doc.field(2, 18, 29)
    doc.check(composite, 2, 29, "upper and middle lines (composite)")
    return _build(doc, "TD1", number.rstrip(FILLER), birth_raw, doc.field(2, 7, 8), expiry_raw,
                  doc.field(2, 15, 18), doc.field(3, 0, 30), optional, doc.field(2, 18, 29),
                  id_number, today, no_expiry_year)


def _parse_td2(doc: _Lines, today: dt.date, no_expiry_year: int) -> Mrz:
    """9303-6 §4.2.2: line 1 code, state, name; line 2 number, check, nationality,
    DOB, check, sex, expiry, check, optional data, composite (over 1-10, 14-20, 22-35)."""
    number = doc.checked(2, 0, 9, 9, "document number")
    birth_raw = doc.date_raw(2, 13, "date of birth")
    doc.check(birth_raw, 2, 19, "date of birth")
    expiry_raw = doc.date_raw(2, 21, "date of expiry")
    doc.check(expiry_raw, 2, 27, "date of expiry")
    composite = doc.field(2, 0, 10) + doc.field(2, 13, 20) + doc.field(2, 21, 35)
    doc.check(composite, 2, 35, "lower line (composite)")
    return _build(doc, "TD2", number.rstrip(FILLER), birth_raw, doc.field(2, 20, 21), expiry_raw,
                  doc.field(2, 10, 13), doc.field(1, 5, 36), doc.field(2, 28, 35), "", None, today, no_expiry_year)


def _parse_td3(doc: _Lines, today: dt.date, no_expiry_year: int) -> Mrz:
    """9303-4 §4.2.2: line 1 code, state, name; line 2 number, check, nationality,
    DOB, check, sex, expiry, check, personal number, check, composite."""
    number = doc.checked(2, 0, 9, 9, "document number")
    birth_raw = doc.date_raw(2, 13, "date of birth")
    doc.check(birth_raw, 2, 19, "date of birth")
    expiry_raw = doc.date_raw(2, 21, "date of expiry")
    doc.check(expiry_raw, 2, 27, "date of expiry")
    personal = doc.checked(2, 28, 42, 42, "personal number")
    composite = doc.field(2, 0, 10) + doc.field(2, 13, 20) + doc.field(2, 21, 43)
    doc.check(composite, 2, 43, "lower line (composite)")
    return _build(doc, "TD3", number.rstrip(FILLER), birth_raw, doc.field(2, 20, 21), expiry_raw,
                  doc.field(2, 10, 13), doc.field(1, 5, 44), personal, "", None, today, no_expiry_year)


def _build(doc: _Lines, fmt: str, number: str, birth_raw: str, sex: str, expiry_raw: str,
           nationality: str, name: str, optional: str, optional_2: str, id_number: str | None,
           today: dt.date, no_expiry_year: int) -> Mrz:
    expiry, unconfirmed = expiry_date(expiry_raw, today, no_expiry_year)
    primary, secondary = _name(name)
    return Mrz(format=fmt, document_code=doc.field(1, 0, 2).rstrip(FILLER),
               issuing_state=doc.field(1, 2, 5).rstrip(FILLER), document_number=number,
               date_of_birth=birth_date(birth_raw, today), birth_raw=birth_raw, sex=_sex(sex),
               date_of_expiry=expiry, expiry_raw=expiry_raw, expiry_unconfirmed=unconfirmed,
               nationality=nationality.rstrip(FILLER), primary_identifier=primary,
               secondary_identifier=secondary, optional_data=optional.rstrip(FILLER),
               optional_data_2=optional_2.rstrip(FILLER), id_number=id_number, lines=doc.lines)


# -- building (for the virtual chip's profiles and tests) --------------------------


def _pad(text: str, size: int) -> str:
    if len(text) > size:
        raise ValueError(f"MRZ field longer than {size} characters")
    return text + FILLER * (size - len(text))


def mrz_name(primary: str, secondary: str, size: int) -> str:
    """``NGUYEN``, ``VAN AN`` → ``NGUYEN<<VAN<AN<<<…`` (already transliterated A-Z)."""
    text = primary.replace(" ", FILLER) + "<<" + secondary.replace(" ", FILLER)
    return _pad(text[:size], size)


def build_td1_vn(id_number: str, birth_raw: str, sex: str, expiry_raw: str,
                 primary: str, secondary: str) -> tuple[str, str, str]:
    """The TD1 lines of a Vietnamese card from its 12-digit ID (domain.md layout)."""
    if len(id_number) != 12 or not id_number.isdigit():
        raise ValueError("the Vietnamese ID number has 12 digits")
    number = document_number_of(id_number)
    line1 = "ID" + VIETNAM + number + str(check_digit(number)) + id_number + "<<" + str(check_digit(id_number))
    upper = line1[5:30]
    middle = birth_raw + str(check_digit(birth_raw)) + (sex or FILLER) + expiry_raw + str(check_digit(expiry_raw))
    middle += VIETNAM + FILLER * 11
    middle += str(check_digit(upper + middle[0:7] + middle[8:15] + middle[18:29]))
    return line1, middle, mrz_name(primary, secondary, TD1_LINE_LEN)
