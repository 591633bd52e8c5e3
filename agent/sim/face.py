"""A synthetic face photo for the virtual chip's DG2: drawn procedurally (numpy +
OpenCV drawing, no real person), deterministic from a seed, encoded as a JPEG of the
size a real CCCD photo has (~15-20 KB, issue 3)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WIDTH = 360
HEIGHT = 480
#: the JPEG quality is searched so the file lands near this size (bytes)
TARGET_BYTES = 17_000
MIN_QUALITY = 20
MAX_QUALITY = 95


@dataclass(frozen=True)
class Face:
    jpeg: bytes
    width: int
    height: int


def _draw(seed: int, width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # a pale studio background with a soft vertical gradient, as ID photos have
    top, bottom = rng.uniform(200, 245, 3), rng.uniform(170, 230, 3)
    ramp = np.linspace(0.0, 1.0, height)[:, None, None]
    img = (top * (1 - ramp) + bottom * ramp).repeat(width, axis=1).astype(np.float32)
    cx, cy = width // 2, int(height * 0.45)
    skin = tuple(float(v) for v in rng.uniform([120, 150, 190], [170, 200, 235]))
    hair = tuple(float(v) for v in rng.uniform(10, 60, 3))
    shirt = tuple(float(v) for v in rng.uniform(30, 200, 3))
    fw, fh = int(width * rng.uniform(0.26, 0.32)), int(height * rng.uniform(0.27, 0.31))
    cv2.ellipse(img, (cx, height + int(height * 0.05)), (int(width * 0.48), int(height * 0.3)), 0, 180, 360,
                shirt, -1, cv2.LINE_AA)
    cv2.rectangle(img, (cx - fw // 3, cy + fh - 10), (cx + fw // 3, cy + fh + 40), skin, -1)
    cv2.ellipse(img, (cx, cy - fh // 5), (fw + 12, fh), 0, 180, 360, hair, -1, cv2.LINE_AA)
    cv2.ellipse(img, (cx, cy), (fw, fh), 0, 0, 360, skin, -1, cv2.LINE_AA)
    cv2.ellipse(img, (cx, cy - fh + 10), (fw, fh // 3), 0, 180, 360, hair, -1, cv2.LINE_AA)
    eye_y, eye_dx = cy - fh // 6, fw // 2 - 4
    for side in (-1, 1):
        ex = cx + side * eye_dx
        cv2.ellipse(img, (ex, eye_y), (fw // 6, fh // 14), 0, 0, 360, (235, 235, 235), -1, cv2.LINE_AA)
        cv2.circle(img, (ex, eye_y), fh // 16, (40, 30, 20), -1, cv2.LINE_AA)
        cv2.line(img, (ex - fw // 5, eye_y - fh // 7), (ex + fw // 5, eye_y - fh // 6), hair, 4, cv2.LINE_AA)
    nose = np.array([[cx, eye_y + 10], [cx - fw // 8, cy + fh // 4], [cx + fw // 10, cy + fh // 4]], np.int32)
    cv2.polylines(img, [nose], False, tuple(v * 0.8 for v in skin), 2, cv2.LINE_AA)
    cv2.ellipse(img, (cx, cy + fh // 2), (fw // 3, fh // 10), 0, 10, 170, (90, 80, 150), 3, cv2.LINE_AA)
    # skin and fabric texture: real photos are not flat, and flat images compress to
    # a few KB, far from a real DG2's size
    img += rng.normal(0.0, 6.0, img.shape).astype(np.float32)
    blurred = cv2.GaussianBlur(img, (3, 3), 0.8)
    return np.clip(blurred, 0, 255).astype(np.uint8)


def _encode(img: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode the synthetic face")
    return buf.tobytes()


def synthetic_face(seed: int, *, width: int = WIDTH, height: int = HEIGHT,
                   target_bytes: int = TARGET_BYTES) -> Face:
    """A face JPEG whose size is the closest to ``target_bytes`` over JPEG qualities
    (binary search: size grows with quality)."""
    img = _draw(seed, width, height)
    low, high = MIN_QUALITY, MAX_QUALITY
    best = _encode(img, low)
    while low <= high:
        quality = (low + high) // 2
        data = _encode(img, quality)
        if abs(len(data) - target_bytes) < abs(len(best) - target_bytes):
            best = data
        if len(data) < target_bytes:
            low = quality + 1
        else:
            high = quality - 1
    return Face(best, width, height)
