"""Where the real public eMRTD data lives (see fixtures/real_emrtd/README.md).

Small files: ``fixtures/real_emrtd/`` (copies, with provenance). Large files (master
lists, the PEM bundle): ``shared/real-emrtd/`` beside the project or one of its parent
folders (CI copies ``shared/`` beside the clone). A missing folder fails the test: real
data is never skipped silently."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "real_emrtd"
BSI = FIXTURES / "bsi_tr03105_5"
#: "now" for the real-data checks: inside the validity of the 2026 master lists
NOW = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)


def shared() -> Path:
    for folder in ROOT.parents:
        candidate = folder / "shared" / "real-emrtd"
        if candidate.is_dir():
            return candidate
    raise AssertionError("shared/real-emrtd not found beside the project or a parent folder: the real-data "
                         "tests need it (CI copies shared/ beside the clone)")


def bsi_files(*numbers: int) -> dict[str, bytes]:
    """The BSI TR-03105-5 reference document's EF.SOD and the data groups asked for."""
    files = {"SOD": (BSI / "EF_SOD.bin").read_bytes()}
    for number in numbers:
        files[f"DG{number}"] = (BSI / f"Datagroup{number}.bin").read_bytes()
    return files
