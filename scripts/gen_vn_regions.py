"""Regenerate agent/forward/data/vn_regions_2025.csv, the built-in table of administrative
region codes used by the OpenCPS intake (cityCode, districtCode, wardCode).

Source: the PyPI package ``vietnam-provinces`` (data from the General Statistics Office's
register of administrative units, as reorganised from 1 July 2025: 34 provinces and
3,321 communes/wards, no district level). Run only when that register changes:

    .venv/bin/pip install vietnam-provinces
    .venv/bin/python scripts/gen_vn_regions.py

The table has a district column for sites whose OpenCPS dictionary still uses the
pre-2025 three levels: such a site points ``[opencps] region_table`` at its own CSV with
the same columns (README, "OpenCPS intake").
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import vietnam_provinces  # type: ignore[import-not-found]

OUT = Path(__file__).resolve().parent.parent / "agent" / "forward" / "data" / "vn_regions_2025.csv"
COLUMNS = ["city_code", "city_name", "district_code", "district_name", "ward_code", "ward_name"]


def main() -> None:
    nested = json.loads(Path(vietnam_provinces.NESTED_DIVISIONS_JSON_PATH).read_text(encoding="utf-8"))
    rows = []
    for province in nested:
        for ward in province["wards"]:
            rows.append([f"{province['code']:02d}", province["name"], "", "", f"{ward['code']:05d}", ward["name"]])
    rows.sort(key=lambda r: (r[0], r[4]))
    with OUT.open("w", encoding="utf-8", newline="") as f:
        f.write(f"# source: vietnam-provinces {vietnam_provinces.__version__} (GSO register after the 1 July 2025"
                " reorganisation); regenerate with scripts/gen_vn_regions.py\n")
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    print(f"{len(rows)} wards in {len({r[0] for r in rows})} provinces -> {OUT}")


if __name__ == "__main__":
    main()
