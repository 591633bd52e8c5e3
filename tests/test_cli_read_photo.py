"""``idagent read --photo FILE``: the face photo is personal data; the file is for its
owner only, like the agent's other files holding secrets or personal data."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agent.cli import main

ROOT = Path(__file__).resolve().parents[1]
TRUST = str(ROOT / "fixtures" / "pki" / "store")


@pytest.mark.parametrize("existing", [False, True])
def test_photo_file_is_owner_only(capsys: pytest.CaptureFixture[str], tmp_path: Path, existing: bool) -> None:
    photo = tmp_path / "face.jpg"
    if existing:
        photo.write_bytes(b"old")
        photo.chmod(0o644)
    old_umask = os.umask(0o022)
    try:
        code = main(["read", "--sim", "nguyen-van-an", "--trust", TRUST, "--photo", str(photo), "--json"])
    finally:
        os.umask(old_umask)
    capsys.readouterr()
    assert code == 0
    assert photo.read_bytes()[:2] == b"\xff\xd8"
    assert stat.S_IMODE(photo.stat().st_mode) == 0o600
