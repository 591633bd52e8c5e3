"""Issue 14 item 6: exit codes as ``idagent --help`` documents them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import segno

from agent.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("argv", [["read", "--no-such-option"], ["bhyt"], ["qr", "decode"],
                                  ["--config"], ["run", "--port", "x"]])
def test_usage_errors_exit_3_not_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 3  # 2 means "read but not verified"
    assert "error:" in capsys.readouterr().err


def test_usage_error_exit_code_through_the_entry_point() -> None:
    proc = subprocess.run([sys.executable, "-m", "agent", "outbox", "--bogus"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3 and "usage:" in proc.stderr


def test_help_documents_the_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "3  usage or configuration error" in text and "8  QR code not decoded, or not a CCCD" in text
    assert "9  bhyt check" in text


def _write_code(path: Path, payload: bytes) -> None:
    qr = segno.make_qr(payload, error="m", mode="byte")
    matrix = np.array([list(row) for row in qr.matrix], np.uint8)
    img = np.where(np.pad(matrix, 4) == 1, 0, 255).astype(np.uint8)
    cv2.imwrite(str(path), np.kron(img, np.ones((4, 4), np.uint8)))


def test_qr_decode_of_another_code_exits_8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "url.png"
    _write_code(image, b"https://example.org/menu?table=7")
    assert main(["qr", "decode", str(image)]) == 8
    out = capsys.readouterr().out
    assert "decoded by" in out  # it was decoded; it is not the card's QR


@pytest.mark.parametrize("can", ["12345", "1234567", "001099012345", "12a456", "１２３４５６"])
def test_a_can_that_is_not_6_digits_is_refused_before_the_card(can: str, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    import agent.cli.read as read_cli

    def no_card(*_a: object, **_k: object) -> None:
        raise AssertionError("the card was opened")

    monkeypatch.setattr(read_cli, "open_card", no_card)
    assert main(["read", "--sim", "nguyen-van-an", "--can", can]) == 3
    err = capsys.readouterr().err
    assert "6 digits" in err and can not in err


def test_a_5_digit_can_on_a_real_virtual_card_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["read", "--sim", "nguyen-van-an", "--can", "12345"]) == 3
