"""The decoding pipeline: it must read what the plain library cannot (regression guard
on seeded corpus frames and on fixtures/qr), give raw bytes, and turn bad input into
results, never exceptions."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import segno

from agent.qr import decoders
from agent.qr.decode import Reason, decode_frame, diagnose
from agent.qr.enhance import Quality
from agent.qr.images import load_image
from agent.qr.payload import looks_like_cccd, read_payload
from bench.qr import corpus

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "qr"


EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n.startswith("hard_")))
def test_fixture_hard_frames_need_the_ladder(name: str) -> None:
    grey = load_image(FIXTURES / name)
    payload = bytes.fromhex(EXPECTED[name])
    assert not any(f.payload == payload for f in decoders.zxing(grey)), "plain zxing should fail here"
    result = decode_frame(grey, budget_ms=1000)
    assert result.payload == payload
    assert result.stage not in ("", "direct")
    assert read_payload(result.payload).kind == "cccd"


@pytest.mark.parametrize(("condition", "width", "shape"), [("clean", 60, "v9"), ("blur1", 80, "v9"),
                                                           ("glare", 60, "card")])
def test_corpus_cells_pipeline_beats_plain_zxing(condition: str, width: int, shape: str) -> None:
    """Seeded frames generated now (bench/qr/corpus.py): the ladder decodes most of
    them, clearly more than zxing-cpp on the same frames."""
    ours = plain = total = 0
    for sample in corpus.frames(seed=4242, per_cell=4, conditions=(condition,), widths=(width,),
                                frame_sizes=((1280, 720),), shapes=(shape,)):
        total += 1
        grey = cv2.cvtColor(sample.image, cv2.COLOR_BGR2GRAY)
        plain += any(f.payload == sample.payload for f in decoders.zxing(grey))
        ours += decode_frame(sample.image, budget_ms=1000).payload == sample.payload
    assert ours >= total - 1
    assert ours > plain


def test_two_codes_reported_and_card_preferred() -> None:
    grey = load_image(FIXTURES / "two_codes.png")
    result = decode_frame(grey, prefer=lambda p: looks_like_cccd(p.decode("utf-8", "replace")))
    assert set(result.payloads) == {bytes.fromhex(EXPECTED["two_codes.png"]),
                                    bytes.fromhex(EXPECTED["two_codes.png#other"])}
    assert result.payload == bytes.fromhex(EXPECTED["two_codes.png"])


def test_other_document_decodes_and_is_classified() -> None:
    result = decode_frame(load_image(FIXTURES / "other_document.png"))
    assert result.payload == bytes.fromhex(EXPECTED["other_document.png"])
    assert read_payload(result.payload).kind == "not_cccd"


def test_no_code_is_a_result_with_a_hint() -> None:
    result = decode_frame(load_image(FIXTURES / "no_code.png"))
    assert result.payload is None and result.reason in (Reason.NO_CODE, Reason.UNREADABLE, Reason.TOO_SMALL)
    assert result.hint


def test_tiny_code_says_move_closer() -> None:
    (sample,) = list(corpus.frames(seed=5, per_cell=1, conditions=("clean",), widths=(40,),
                                   frame_sizes=((640, 480),), shapes=("v9",)))
    result = decode_frame(sample.image)
    if result.payload is None:  # 40 px is below what we read
        assert result.reason == Reason.TOO_SMALL
        assert "closer" in result.hint


@pytest.mark.parametrize("image", [
    np.zeros((1, 1), np.uint8), np.zeros((3, 5, 3), np.uint8), np.zeros((50, 60, 4), np.uint8),
    np.full((100, 100), 300.0, np.float64), np.random.default_rng(1).integers(0, 256, (480, 640), np.uint8),
])
def test_odd_frames_do_not_raise(image: np.ndarray) -> None:
    result = decode_frame(image)
    assert result.payload is None and result.reason


def test_budget_stops_the_ladder() -> None:
    """A failing frame stops when the budget is spent (clock injected: 10 ms per look)."""
    # 50 px: large enough for the ladder (regions.MIN_TEXTURE_SIDE), too blurred to read
    (sample,) = list(corpus.frames(seed=9, per_cell=1, conditions=("blur1",), widths=(50,),
                                   frame_sizes=((1280, 720),), shapes=("v9",)))
    ticks = iter(range(0, 10_000, 10))
    slow = decode_frame(sample.image, budget_ms=35, clock=lambda: next(ticks) / 1000.0)
    full = decode_frame(sample.image, budget_ms=10_000)
    assert slow.payload is None
    assert slow.attempts < full.attempts


@pytest.mark.parametrize(("quality", "reason"), [
    (Quality(side_px=90, contrast=150, glare=0.2, sharpness=0.8), Reason.GLARE),
    (Quality(side_px=35, contrast=150, glare=0.0, sharpness=0.8), Reason.TOO_SMALL),
    (Quality(side_px=90, contrast=30, glare=0.0, sharpness=0.8), Reason.LOW_CONTRAST),
    (Quality(side_px=90, contrast=150, glare=0.0, sharpness=0.2), Reason.BLURRED),
    # a 70 px card code (1.6 px per module), blurred: closer is what helps (bench.qr.ceiling)
    (Quality(side_px=70, contrast=150, glare=0.0, sharpness=0.2), Reason.TOO_SMALL),
    (Quality(side_px=70, contrast=150, glare=0.2, sharpness=0.2), Reason.GLARE),
])
def test_diagnosis_in_clerk_words(quality: Quality, reason: str) -> None:
    assert diagnose(quality) == reason
    assert Reason.HINTS[reason]


def test_zbar_binary_mode_returns_raw_bytes() -> None:
    # domain.md: ZBar guesses Shift-JIS for UTF-8 that happens to be valid Shift-JIS
    # ("Phạm Văn Nam", "Phường Láng Hạ") and re-encodes it; ZBAR_CFG_BINARY does not
    from pyzbar import pyzbar

    payload = "001099012345||Phạm Văn Nam|15031999|Nam|Phường Láng Hạ|20042021".encode()
    qr = segno.make_qr(payload, error="m", mode="byte")
    matrix = np.array([list(row) for row in qr.matrix], np.uint8)
    img = np.kron(np.where(np.pad(matrix, 4) == 1, 0, 255).astype(np.uint8), np.ones((6, 6), np.uint8))
    assert [d.data for d in pyzbar.decode(img)] != [payload]  # the charset guess
    assert [f.payload for f in decoders.zbar(img)] == [payload]
    assert [f.payload for f in decoders.zxing(img)] == [payload]
