"""Administrative region codes for the OpenCPS applicant (``cityCode``, ``districtCode``,
``wardCode``), found from the address on the card.

The codes come from a data table (CSV, columns ``city_code, city_name, district_code,
district_name, ward_code, ward_name``; ``#`` lines are comments). The built-in table
(``data/vn_regions_2025.csv``) is the GSO register after the reorganisation of
1 July 2025: 34 provinces, 3,321 communes/wards, no district level, so ``districtCode``
stays empty. A card issued before that date carries the old address (ward, district,
province before the merger); the old names are not in the built-in table, so such an
address resolves only when the old ward name still exists in the same (new) province,
and otherwise gets no codes (the clerk picks them on the portal). A site whose OpenCPS
dictionary has other codes, or that wants old names mapped to new codes, points
``[opencps] region_table`` at its own CSV with the same columns (old names as extra rows
carrying the new codes).
"""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from agent.errors import ConfigError

COLUMNS = ("city_code", "city_name", "district_code", "district_name", "ward_code", "ward_name")
BUILTIN = "vn_regions_2025.csv"

#: unit-type words that prefix names, longest first (the card writes them out, abbreviated or not)
_PREFIXES = ("thành phố", "thị trấn", "thị xã", "đặc khu", "phường", "huyện", "quận", "tỉnh", "xã", "tp.", "tp",
             "p.", "q.", "x.", "tt.")


class RegionTableError(ConfigError):
    code = "opencps_regions"
    exit_code = 3
    hint = "Check [opencps] region_table: a CSV with the columns " + ", ".join(COLUMNS) + "."


@dataclass(frozen=True)
class Region:
    city_code: str
    district_code: str
    ward_code: str

    @property
    def complete(self) -> bool:
        return bool(self.city_code and self.ward_code)


#: unit words of a commune-level unit (what ``wardCode`` names); an address part with
#: another unit word (a pre-2025 "Quận Ba Đình") never matches a ward ("Phường Ba Đình")
_WARD_UNITS = frozenset({"", "phường", "xã", "thị trấn", "đặc khu", "p.", "x.", "tt."})


def split_unit(name: str) -> tuple[str, str]:
    """``"Phường  Ba Đình "`` → ``("phường", "ba đình")``: NFC, lower case."""
    text = " ".join(unicodedata.normalize("NFC", name).lower().split())
    for prefix in _PREFIXES:
        if text.startswith(prefix + " ") or (prefix.endswith(".") and text.startswith(prefix)):
            return prefix, text[len(prefix):].strip()
    return "", text


def normalise(name: str) -> str:
    """``"Phường  Ba Đình "`` → ``"ba đình"``: NFC, lower case, unit word dropped."""
    return split_unit(name)[1]


@dataclass(frozen=True)
class _Row:
    city: str
    district: str
    ward: str
    region: Region


class RegionTable:
    def __init__(self, rows: list[_Row], source: str) -> None:
        self.source = source
        self._cities: dict[str, str] = {}
        self._wards: dict[tuple[str, str], list[_Row]] = {}
        for row in rows:
            self._cities.setdefault(row.city, row.region.city_code)
            self._wards.setdefault((row.region.city_code, row.ward), []).append(row)

    def __len__(self) -> int:
        return sum(len(v) for v in self._wards.values())

    @classmethod
    def load(cls, path: str = "") -> RegionTable:
        """The table at ``path``, or the built-in one when ``path`` is empty."""
        if path:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise RegionTableError(f"[opencps] region_table: cannot read {path}: {exc.strerror}") from exc
            return cls.parse(text, path)
        text = resources.files("agent.forward").joinpath("data", BUILTIN).read_text(encoding="utf-8")
        return cls.parse(text, f"built-in {BUILTIN}")

    @classmethod
    def parse(cls, text: str, source: str) -> RegionTable:
        lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        reader = csv.DictReader(io.StringIO("\n".join(lines)))
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise RegionTableError(f"{source}: missing column(s) {', '.join(missing)}")
        rows = []
        for n, rec in enumerate(reader, start=2):
            if not (rec["city_code"] or "").strip() or not (rec["ward_name"] or "").strip():
                raise RegionTableError(f"{source}: row {n} has no city_code or ward_name")
            region = Region(rec["city_code"].strip(), (rec["district_code"] or "").strip(),
                            (rec["ward_code"] or "").strip())
            rows.append(_Row(normalise(rec["city_name"] or ""), normalise(rec["district_name"] or ""),
                             normalise(rec["ward_name"]), region))
        return cls(rows, source)

    def resolve(self, address: str | None) -> Region | None:
        """Codes for an address written ``..., ward, [district,] province``; None when the
        province or the ward is not in the table (or the ward name is ambiguous)."""
        if not address:
            return None
        parts = [split_unit(p) for p in address.split(",") if p.strip()]
        if len(parts) < 2:
            return None
        city_code = self._cities.get(parts[-1][1])
        if city_code is None:
            return None
        district = parts[-2][1] if len(parts) >= 3 else ""
        # the ward is the part nearest the province that names a ward of that province
        for unit, part in reversed(parts[:-1]):
            if unit not in _WARD_UNITS:
                continue
            rows = self._wards.get((city_code, part), [])
            if len(rows) > 1 and district:
                rows = [r for r in rows if r.district == district] or rows
            if len(rows) == 1:
                return rows[0].region
            if len(rows) > 1:
                return None
        return None
