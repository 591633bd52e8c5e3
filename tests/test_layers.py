"""Layering (design.md): protocol code imports no device library, and lower layers
never import higher ones."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "agent"
DEVICE_LIBS = {"smartcard", "nfc", "serial", "evdev", "usb"}
LAYER_ORDER = ["readers", "icao", "qr", "identity", "forward", "api"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", ["icao", "qr", "forward"])
def test_protocol_layers_import_no_device_library(package: str) -> None:
    for path in (ROOT / package).rglob("*.py"):
        bad = {n for n in _imports(path) if n.split(".")[0] in DEVICE_LIBS}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_cv2_capture_only_in_readers() -> None:
    for path in ROOT.rglob("*.py"):
        if path.parent.name == "readers":
            continue
        assert "VideoCapture" not in path.read_text(encoding="utf-8"), path


@pytest.mark.parametrize("lower", ["readers", "icao", "qr"])
def test_lower_layers_do_not_import_higher_ones(lower: str) -> None:
    higher = LAYER_ORDER[LAYER_ORDER.index(lower) + 1:]
    forbidden = {f"agent.{h}" for h in higher if h != "identity"} | {"agent.daemon", "agent.cli"}
    for path in (ROOT / lower).rglob("*.py"):
        bad = {n for n in _imports(path) if any(n == f or n.startswith(f + ".") for f in forbidden)}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
