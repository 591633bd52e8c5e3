"""Write the few small QR fixture images under fixtures/qr/ (synthetic people only).

    .venv/bin/python -m bench.qr.make_fixtures

Each ``hard_*`` image is a seeded corpus frame that zxing-cpp alone does not decode
(checked here when writing), cropped to 480x360 around the card so the files stay
small; ``expected.json`` holds each one's payload as hex. Plus: two codes in one
frame, a QR of another document, and a frame without a code.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import segno

from agent.qr import decoders, enhance
from agent.qr.decode import Reason, decode_frame
from bench.qr import corpus, desk

OUT = Path("fixtures/qr")
#: the desk frames live apart: fixtures/qr itself serves as a camera folder in tests
DESK_OUT = OUT / "desk"
#: (file name, condition, width px, shape)
HARD = (("hard_60px_clean_v9.png", "clean", 60, "v9"),
        ("hard_60px_lowcontrast_v9.png", "lowcontrast", 60, "v9"),
        ("hard_80px_blur1_v9.png", "blur1", 80, "v9"),
        ("hard_80px_blur1_card.png", "blur1", 80, "card"))
CROP = (480, 360)
#: desk frames (bench/qr/desk.py) that zxing-cpp alone misses and the pipeline reads,
#: one per hard case of issue 12: (file name, condition, geometry)
DESK_HARD = (("desk_rot45_webcam720.png", "rot45", "webcam720"),
             ("desk_streak_webcam720.png", "rot45+streak", "webcam720"),
             ("desk_print_webcam1080.png", "plain", "webcam1080"),
             ("desk_lowres_webcam480.png", "plain", "webcam480"))
#: a desk frame whose code is not readable (glare) and where the densest region is a
#: piece of the code: the hint must come from the region holding the whole code
DESK_HINT = ("desk_hint_glare_webcam720.png", ("streak", "hotspot", "rot45+streak", "sleeve"), "webcam720")


def _crop(image: np.ndarray, quad: tuple[tuple[float, float], ...]) -> np.ndarray:
    cx, cy = np.mean(np.array(quad), axis=0)
    w, h = CROP
    x0 = int(min(max(cx - w / 2, 0), image.shape[1] - w))
    y0 = int(min(max(cy - h / 2, 0), image.shape[0] - h))
    return image[y0:y0 + h, x0:x0 + w]


def _hard() -> dict[str, str]:
    expected: dict[str, str] = {}
    for name, condition, width, shape in HARD:
        for sample in corpus.frames(per_cell=6, conditions=(condition,), widths=(width,),
                                    frame_sizes=((1280, 720),), shapes=(shape,)):
            grey = cv2.cvtColor(_crop(sample.image, sample.quad), cv2.COLOR_BGR2GRAY)
            if not any(f.payload == sample.payload for f in decoders.zxing(grey)):
                cv2.imwrite(str(OUT / name), grey)
                expected[name] = sample.payload.hex()
                break
    return expected


def _desk_crops(condition: str, geometry: str):  # type: ignore[no-untyped-def]
    for sample in desk.frames(per_cell=16, conditions=(condition,), geometries=(geometry,)):
        grey = cv2.cvtColor(_crop(sample.image, sample.quad), cv2.COLOR_BGR2GRAY)
        x0 = int(min(max(np.mean(np.array(sample.quad)[:, 0]) - CROP[0] / 2, 0), sample.image.shape[1] - CROP[0]))
        y0 = int(min(max(np.mean(np.array(sample.quad)[:, 1]) - CROP[1] / 2, 0), sample.image.shape[0] - CROP[1]))
        quad = [[x - x0, y - y0] for x, y in sample.quad]
        yield grey, sample.payload, quad


def _holds(box: tuple[int, int, int, int] | enhance.Region | None, quad: list[list[float]]) -> bool:
    """The box holds the code's centre and is at most ~2x the code's side."""
    if box is None:
        return False
    x, y, w, h = (box.x, box.y, box.w, box.h) if isinstance(box, enhance.Region) else box
    cx, cy = np.mean(np.array(quad), axis=0)
    side = float(np.linalg.norm(np.subtract(quad[1], quad[0])))
    return bool(x <= cx <= x + w and y <= cy <= y + h and max(w, h) <= 2.2 * side)


def _first_by_density(grey: np.ndarray) -> enhance.Region | None:
    """The region the diagnosis used before issue 12: zxing's located-not-decoded
    code if any, else the densest box."""
    located = [f for f in decoders.zxing(grey, errors=True) if len(f.corners) >= 3]
    if located:
        return enhance.region_from_corners(located[0].corners, grey.shape)
    densest = enhance.locate(grey)
    return densest[0] if densest else None


def _desk() -> dict[str, object]:
    expected: dict[str, object] = {}
    for name, condition, geometry in DESK_HARD:
        for grey, payload, quad in _desk_crops(condition, geometry):
            if any(f.payload == payload for f in decoders.zxing(grey)):
                continue
            if decode_frame(grey, budget_ms=2000).payload == payload:
                cv2.imwrite(str(DESK_OUT / name), grey)
                expected[name] = payload.hex()
                expected[name + "#quad"] = quad
                break
    name, conditions, geometry = DESK_HINT
    for grey, _payload, quad in (c for cond in conditions for c in _desk_crops(cond, geometry)):
        result = decode_frame(grey, budget_ms=2000)
        if result.payload is None and result.reason == Reason.GLARE and _holds(result.region, quad) \
                and not _holds(_first_by_density(grey), quad):
            cv2.imwrite(str(DESK_OUT / name), grey)
            expected[name + "#quad"] = quad
            break
    return expected


def _code(payload: bytes, scale: int) -> np.ndarray:
    qr = segno.make_qr(payload, error="m", mode="byte")
    matrix = np.array([list(row) for row in qr.matrix], np.uint8)
    img = np.where(np.pad(matrix, 4) == 1, 30, 220).astype(np.uint8)
    return np.kron(img, np.ones((scale, scale), np.uint8))


def _extras() -> dict[str, str]:
    card = "079303009876|025123456|Huỳnh Ngọc Diệp|30122003|Nữ|Ấp Phước Lộc, Xã Hòa Phước, TP. Hồ Chí Minh|07072024"
    other = "https://dichvucong.example.vn/ho-so?ma=HS-2026-0001"
    frame = np.full((360, 480), 170, np.uint8)
    a, b = _code(other.encode(), 3), _code(card.encode(), 3)
    frame[20:20 + a.shape[0], 10:10 + a.shape[1]] = a
    frame[20:20 + b.shape[0], 470 - b.shape[1]:470] = b
    cv2.imwrite(str(OUT / "two_codes.png"), frame)
    other_frame = np.full((240, 320), 170, np.uint8)
    c = _code(other.encode(), 3)
    other_frame[10:10 + c.shape[0], 10:10 + c.shape[1]] = c
    cv2.imwrite(str(OUT / "other_document.png"), other_frame)
    rng = np.random.default_rng(7)
    blank = np.clip(rng.normal(150, 6, (240, 320)), 0, 255).astype(np.uint8)
    cv2.rectangle(blank, (40, 60), (280, 70), 60, -1)  # a text line, not a code
    cv2.imwrite(str(OUT / "no_code.png"), blank)
    return {"two_codes.png": card.encode().hex(), "two_codes.png#other": other.encode().hex(),
            "other_document.png": other.encode().hex()}


def main() -> None:
    DESK_OUT.mkdir(parents=True, exist_ok=True)
    expected = {**_hard(), **_extras(), **_desk()}
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    files = [p for p in OUT.rglob("*") if p.is_file()]
    print(f"wrote {len(files)} files, {sum(p.stat().st_size for p in files) / 1024:.0f} KiB; "
          f"desk: {sorted(k for k in expected if k.startswith('desk_'))}")


if __name__ == "__main__":
    main()
