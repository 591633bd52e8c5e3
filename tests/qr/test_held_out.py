"""bench.qr.held_out: labelled real-photo folders (issue 12's held-out sets) are read
in both label layouts, wrong decodes and misses are told apart, and the images a
library read but ours did not are listed."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import segno

from bench.qr import held_out

TEXT = "001099012345|123456789|Nguyễn Văn An|15031999|Nam|Hà Nội|01012021"


def _code(text: str | bytes, side: int = 300, *, encoding: str | None = None) -> np.ndarray:
    qr = segno.make_qr(text, error="m", encoding=encoding, boost_error=False)
    modules = np.array([[0 if v else 255 for v in row] for row in qr.matrix], np.uint8)
    image = np.full((side + 80, side + 80), 255, np.uint8)
    image[40:40 + side, 40:40 + side] = cv2.resize(modules, (side, side), interpolation=cv2.INTER_NEAREST)
    return image


def test_both_label_layouts_misses_wrong_and_no_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    samples = tmp_path / "qrcode-1"  # zxing-cpp's layout: NAME.png + NAME.txt
    samples.mkdir()
    cv2.imwrite(str(samples / "1.png"), _code(TEXT))
    (samples / "1.txt").write_text(TEXT, encoding="utf-8")
    cv2.imwrite(str(samples / "2.png"), _code("ISO-8859-1 text: café", encoding="iso-8859-1"))
    (samples / "2.txt").write_text("ISO-8859-1 text: café", encoding="utf-8")
    cv2.imwrite(str(samples / "3.png"), _code("not what the label says"))
    (samples / "3.txt").write_text("the label", encoding="utf-8")
    cards = tmp_path / "cccd"  # labels.json layout, one photo without a code, one unlabelled
    cards.mkdir()
    cv2.imwrite(str(cards / "a.jpg"), _code(TEXT.encode("utf-8"), 200))
    cv2.imwrite(str(cards / "blank.jpg"), np.full((400, 600), 180, np.uint8))
    cv2.imwrite(str(cards / "blurred.jpg"), cv2.GaussianBlur(_code(TEXT, 120), (0, 0), 6))
    cv2.imwrite(str(cards / "unlabelled.jpg"), _code(TEXT))
    (cards / "labels.json").write_text(json.dumps({
        "a.jpg": {"hex": TEXT.encode("utf-8").hex()}, "blank.jpg": None, "blurred.jpg": {"text": TEXT}}))
    out = tmp_path / "out.json"
    assert held_out.main([str(samples), str(cards), "--decoders", "zxing,ours", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    figures = json.loads(out.read_text())
    assert figures["photos"] == 6 and [Path(p).name for p in figures["unlabelled"]] == ["unlabelled.jpg"]
    for name in ("zxing", "ours"):
        got = figures["decoders"][name]
        read = sorted(Path(p).name for p in got["read_paths"])
        assert read == ["1.png", "2.png", "a.jpg"], (name, read)
        assert got["wrong"] == 1 and got["missed"] == 2 and got["no_code_left_alone"] == 1
    assert "WRONG (zxing):" in printed and "3.png" in printed and "read by zxing, not by ours: 0" in printed
    assert TEXT not in printed  # a wrong decode is described, its content not printed


def test_labels_that_make_no_sense_are_refused_with_the_file_named(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "x.png"), _code(TEXT))
    (tmp_path / "labels.json").write_text(json.dumps({"x.png": 5}))
    with pytest.raises(SystemExit, match=r"labels.json: the label of 'x.png' must be null"):
        held_out.main([str(tmp_path), "--decoders", "zxing"])
    with pytest.raises(SystemExit, match="not a folder of photos"):
        held_out.main([str(tmp_path / "nope")])
    with pytest.raises(SystemExit, match="unknown decoder 'wechat2'"):
        held_out.main([str(tmp_path), "--decoders", "wechat2"])


def test_text_label_matches_the_encodings_qr_codes_use() -> None:
    label = held_out.Label(text="café")
    assert label.matches("café".encode()) and label.matches("café".encode("iso-8859-1"))
    assert not label.matches(b"cafe") and not held_out.Label().matches(b"")
    assert held_out.Label(data=b"\x00\x01").matches(b"\x00\x01") and not held_out.Label(data=b"\x00").matches(b"")
