"""``idagent qr decode|parse`` end to end through the lead's CLI root."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import segno

from agent.cli import main

AN = "001099012345|123456789|Nguyễn Văn An|15031999|Nam|Số 12 Ngõ 34, Hà Nội|20042021"


def _write_code(path: Path, payload: bytes, scale: int = 4) -> None:
    qr = segno.make_qr(payload, error="m", mode="byte")
    matrix = np.array([list(row) for row in qr.matrix], np.uint8)
    img = np.where(np.pad(matrix, 4) == 1, 0, 255).astype(np.uint8)
    cv2.imwrite(str(path), np.kron(img, np.ones((scale, scale), np.uint8)))


def test_decode_json_reports_bytes_fields_and_stage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "card.png"
    _write_code(image, AN.encode())
    assert main(["--json", "qr", "decode", str(image)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["decoded"] and report["stage"] == "direct"
    assert bytes.fromhex(report["bytes_hex"]) == AN.encode()
    assert report["payload"]["fields"]["full_name"] == "Nguyễn Văn An"
    assert report["payload"]["access"]["can"] == "012345"


def test_decode_not_decoded_gives_hint_and_exit_8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((240, 320), 200, np.uint8))
    assert main(["qr", "decode", str(blank)]) == 8
    out = capsys.readouterr().out
    assert "NOT decoded" in out and "hint:" in out


def test_decode_refuses_huge_image(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.full((200, 200), 255, np.uint8))
    monkeypatch.setenv("IDAGENT_QR__MAX_IMAGE_PIXELS", "10000")
    assert main(["--json", "qr", "decode", str(big)]) == 8
    report = json.loads(capsys.readouterr().out)
    assert "too large" in report["error"]["message"]


def test_parse_repairs_and_shows_access(capsys: pytest.CaptureFixture[str]) -> None:
    garbled = AN.encode().decode("latin-1")
    assert main(["qr", "parse", garbled]) == 0
    out = capsys.readouterr().out
    assert "utf8_read_as_cp1252" in out and "Nguyễn Văn An" in out
    assert "CAN (PACE):          012345" in out
    assert "099012345 / 990315 / 240315" in out


def test_parse_other_document_and_control_chars(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["qr", "parse", "WIFI:S:x;;"]) == 8
    assert "not a CCCD QR" in capsys.readouterr().out
    assert main(["qr", "parse", AN.replace("Nguyễn Văn An", "<b>An</b>\x1b[2J")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[2J" in out and "<b>An</b>" in out


def test_listen_camera_folder_once(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    fixtures = Path(__file__).resolve().parents[2] / "fixtures" / "qr"
    monkeypatch.setenv("IDAGENT_QR__CAMERA", str(fixtures))
    assert main(["--json", "qr", "listen", "--once", "--timeout", "20"]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["source"] == "camera" and first["kind"] == "cccd"


def test_listen_without_sources_is_a_config_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["qr", "listen", "--timeout", "1"]) == 3
    assert "no live QR source" in capsys.readouterr().err
