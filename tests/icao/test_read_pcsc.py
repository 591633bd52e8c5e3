"""The same read through the real PC/SC stack: the virtual chip on vpcd, pcscd,
pyscard, ``idagent read --reader``. Skipped when pcscd/vpcd are not installed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.cli import main
from agent.sim.profile import load_profile, virtual_chip

ROOT = Path(__file__).resolve().parents[2]


def test_read_through_pcscd(vpcd_card: Callable[..., object], capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("smartcard")
    client = vpcd_card(virtual_chip(load_profile("nguyen-van-an")))
    reader = client.reader  # type: ignore[attr-defined]
    code = main(["read", "--reader", reader, "--can", "012345", "--trust",
                 str(ROOT / "fixtures" / "pki" / "store"), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0, doc
    assert doc["identity"]["full_name"] == "Nguyễn Văn An"
    assert doc["verification"]["status"] == "verified"
