"""Issue 12: our own grid reading (agent/qr/grid.py) for codes no binarizer keeps the
finder patterns of: the standard's function patterns, the corner fit, and a desk frame
that only this step reads."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import segno

from agent.qr import decoders, grid, symbol
from agent.qr.decode import decode_frame
from agent.qr.enhance import to_grey
from bench.qr import desk


@pytest.mark.parametrize(("version", "centres"), [
    # ISO/IEC 18004:2015 Annex E, Table E.1 (row/column coordinates of the centres)
    (1, ()), (2, (6, 18)), (7, (6, 22, 38)), (14, (6, 26, 46, 66)), (15, (6, 26, 48, 70)),
    (22, (6, 26, 50, 74, 98)), (32, (6, 34, 60, 86, 112, 138)), (36, (6, 24, 50, 76, 102, 128, 154)),
    (40, (6, 30, 58, 86, 114, 142, 170)),
])
def test_alignment_positions_are_the_standards(version: int, centres: tuple[int, ...]) -> None:
    assert tuple(symbol.alignment_positions(version)) == centres


@pytest.mark.parametrize("version", list(range(1, 16)))
def test_function_modules_match_real_symbols(version: int) -> None:
    """Every module the grid fit relies on has that value in segno's symbols, whatever
    the mask and level."""
    rows, cols, dark = grid.function_modules(version)
    for mask, error in ((0, "l"), (3, "m"), (5, "q"), (7, "h")):
        matrix = np.array(segno.make(b"x", version=version, error=error, mask=mask,
                                     boost_error=False).matrix, bool)
        assert matrix.shape == (17 + 4 * version,) * 2
        assert np.array_equal(matrix[rows, cols], dark.astype(bool)), (version, mask)


def _soft_symbol(angle: float, module_px: float, sigma: float) -> tuple[np.ndarray, np.ndarray, bytes]:
    """A version 7-M symbol drawn at ``module_px`` px per module, rotated, blurred, on a
    light background with a little noise; and its module-grid corners."""
    payload = b"001234567890|0123456789|Nguyen Van A|01011990|Nam|Thon 1, Xa Mot, Tinh Hai|01012021"
    matrix = np.array(segno.make(payload, version=7, error="m", boost_error=False).matrix, bool)
    n, up = matrix.shape[0], 8
    big = np.kron(np.where(matrix, 30, 225).astype(np.float32), np.ones((up, up), np.float32))
    side = n * module_px
    size = int(side * 2)
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    corners_grid = np.array([[0, 0], [n, 0], [n, n], [0, n]], np.float64) * module_px - side / 2
    corners = corners_grid @ np.array([[c, s], [-s, c]]) + size / 2
    hom = cv2.getPerspectiveTransform(np.array([[0, 0], [n * up, 0], [n * up, n * up], [0, n * up]], np.float32),
                                      corners.astype(np.float32))
    frame = cv2.warpPerspective(big, hom, (size, size), flags=cv2.INTER_AREA, borderValue=225.0)
    frame = cv2.GaussianBlur(frame, (0, 0), sigma)
    frame += np.random.default_rng(7).normal(0, 3, frame.shape).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8), corners, payload


@pytest.mark.parametrize("angle", [0.0, 30.0, 45.0, 200.0])
def test_corners_fit_within_a_third_of_a_module(angle: float) -> None:
    frame, corners, _ = _soft_symbol(angle, module_px=1.7, sigma=0.7)
    image = frame.astype(np.float32)
    quads = grid.finder_quads(image, 1.7)
    assert quads, "the finder template found no triple"
    best = max((grid.refine(image, q) for q in quads[:3]), key=lambda r: r[1])
    quad, fit = best
    assert quad.version == 7 and fit > 0.6
    # the read starts at the top left finder: the corners come back in the symbol's order
    error = np.abs(quad.corners - corners).max() / 1.7
    assert error < 0.34, f"corner error {error:.2f} modules"


def test_soft_small_symbol_reads_where_zxing_alone_does_not() -> None:
    frame, _, payload = _soft_symbol(30.0, module_px=1.6, sigma=0.8)
    assert not any(f.payload == payload for f in decoders.zxing(frame))
    reads = [f.payload for dark, _ in grid.symbols(frame, 1.6) for f in decoders.zxing(grid.render(dark), pure=True)]
    assert payload in reads
    assert all(r == payload for r in reads if r is not None)


def test_desk_frame_read_only_by_the_grid_step() -> None:
    """bench/qr/desk.py, lowlight at 1280x720, a 69 px code (1.5 px per module): the
    ladder's binarizing steps miss it, the grid step reads it."""
    sample = [s for s in desk.frames(per_cell=3, conditions=("lowlight",), geometries=("webcam720",))][2]
    result = decode_frame(to_grey(sample.image), budget_ms=2000)
    assert result.payload == sample.payload
    assert result.stage == "grid"


def test_no_code_gives_no_symbol_and_no_exception() -> None:
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 255, (120, 120), dtype=np.uint8)
    flat = np.full((120, 120), 200, np.uint8)
    tiny = np.zeros((5, 5), np.uint8)
    for crop in (noise, flat, tiny):
        for dark, erased in grid.symbols(crop, 1.5):
            assert dark.shape == erased.shape
            assert not [f for f in decoders.zxing(grid.render(dark), pure=True) if f.payload]
