"""A seeded generator of realistic card-QR camera frames, for the decode bench.

Every frame shows a card-like rectangle lying on a desk, with the card's QR code
printed on it, as a webcam sees it. The payloads are synthetic people in the CCCD QR
format (domain.md "The card's QR code"), in two shapes:

* ``v9``: ~150 UTF-8 bytes in one byte segment, QR version 9 at ECC M (53 modules),
  the size the issue describes;
* ``card``: the shape measured on real cards (public photos): version 7 at ECC M,
  mixed numeric + byte segments, ~120 bytes.

The code is rendered supersampled (8 sub-pixels per pixel, area-averaged), so a code
that is 60 px wide in a 1280x720 frame has the fractional module size (~1.1 px) and the
grey mixing of a real sensor. Conditions degrade the whole frame afterwards: optical
blur, JPEG artefacts, sensor noise, glare, perspective, low contrast.

Same seed, same frames: ``frames(seed=…)`` is deterministic (numpy ``default_rng``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import segno
import segno.consts

#: conditions the bench reports, in this order
CONDITIONS: tuple[str, ...] = ("clean", "blur1", "jpeg", "noise", "glare", "perspective", "lowcontrast")
#: code widths in frame pixels (the symbol without its quiet zone)
WIDTHS: tuple[int, ...] = (40, 50, 60, 80, 100, 120, 160)
FRAME_SIZES: tuple[tuple[int, int], ...] = ((1280, 720), (640, 480))

_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ",
           "Hồ", "Ngô", "Dương", "Lý")
_MIDDLE_M = ("Văn", "Đình", "Hữu", "Đức", "Quốc", "Minh", "Thành", "Xuân")
_MIDDLE_F = ("Thị", "Ngọc", "Thu", "Thanh", "Mỹ", "Kim", "Diệu", "Bảo")
_GIVEN_M = ("An", "Bình", "Cường", "Dũng", "Hùng", "Khoa", "Long", "Nghĩa", "Phúc", "Quang", "Sơn",
            "Thắng", "Tuấn", "Việt")
_GIVEN_F = ("Anh", "Châu", "Diệp", "Giang", "Hằng", "Hương", "Lan", "Linh", "Mai", "Nga", "Nhung",
            "Phương", "Thảo", "Trang", "Yến")
_STREETS = ("Ngõ 34 Láng Hạ", "Số 12 Trần Hưng Đạo", "Thôn Đông Xá", "Xóm Bến Đò", "Số 7 Nguyễn Trãi",
            "Tổ 5 Khu phố Mỹ Đình", "Ấp Phước Lộc", "Số 208 Lê Lợi")
_WARDS = ("Phường Láng Hạ", "Xã Yên Sở", "Phường Bến Nghé", "Xã Đông Hưng", "Phường Thạch Thang",
          "Thị trấn Phú Xuyên", "Xã Hòa Phước", "Phường Nghĩa Đô")
_DISTRICTS = ("Quận Đống Đa", "Huyện Thanh Trì", "Quận 1", "Huyện Đông Hưng", "Quận Hải Châu",
              "Huyện Phú Xuyên", "Huyện Hòa Vang", "Quận Cầu Giấy")
#: (code, name) pairs of a few provinces (public province codes of the 12-digit ID)
_PROVINCES = (("001", "Hà Nội"), ("079", "TP. Hồ Chí Minh"), ("048", "Đà Nẵng"), ("034", "Thái Bình"),
              ("031", "Hải Phòng"), ("092", "Cần Thơ"))


@dataclass(frozen=True)
class Sample:
    """One bench frame: the image, what it must decode to, and how it was made."""

    image: np.ndarray = dataclasses.field(repr=False)
    payload: bytes = dataclasses.field(repr=False)
    condition: str
    width_px: int
    frame: tuple[int, int]
    shape: str
    index: int
    #: the symbol's corners in the frame (TL, TR, BR, BL), for locator tests
    quad: tuple[tuple[float, float], ...] = ()


def synthetic_person(rng: np.random.Generator, *, long_address: bool) -> list[str]:
    """Seven CCCD QR fields of a made-up person (consistent ID digits, dates)."""
    female = bool(rng.integers(2))
    birth = dt.date(1940, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 66)))
    issue = dt.date(2021, 1, 1) + dt.timedelta(days=int(rng.integers(0, 1000)))
    century = (birth.year // 100 - 19) * 2 + (1 if female else 0)
    pcode, pname = _PROVINCES[int(rng.integers(len(_PROVINCES)))]
    id12 = f"{pcode}{century}{birth.year % 100:02d}{int(rng.integers(0, 10**6)):06d}"
    old = "" if rng.random() < 0.3 else f"{int(rng.integers(10**8, 10**9))}"
    given = _GIVEN_F if female else _GIVEN_M
    middle = _MIDDLE_F if female else _MIDDLE_M
    name = " ".join((_FAMILY[rng.integers(len(_FAMILY))], middle[rng.integers(len(middle))],
                     given[rng.integers(len(given))]))
    parts = [_STREETS[rng.integers(len(_STREETS))], _WARDS[rng.integers(len(_WARDS))]]
    if long_address:
        parts.append(_DISTRICTS[rng.integers(len(_DISTRICTS))])
    parts.append(pname)
    return [id12, old, name, birth.strftime("%d%m%Y"), "Nữ" if female else "Nam", ", ".join(parts),
            issue.strftime("%d%m%Y")]


def make_code(rng: np.random.Generator, shape: str) -> tuple[segno.QRCode, bytes]:
    """A QR code and its payload bytes, in the ``v9`` or ``card`` shape."""
    if shape == "v9":
        # pad the address until the payload is ~150 bytes: version 9 at ECC M holds 180
        fields = synthetic_person(rng, long_address=True)
        while len("|".join(fields).encode()) < 145:
            fields[5] += ", Việt Nam"
        payload = "|".join(fields).encode()[:180]
        payload = payload.decode("utf-8", "ignore").encode()
        return segno.make(payload, error="m", version=9, mode="byte", boost_error=False), payload
    if shape == "card":
        for _ in range(50):
            fields = synthetic_person(rng, long_address=bool(rng.integers(2)))
            segments = _card_segments(fields)
            payload = b"".join(s if isinstance(s, bytes) else s.encode() for s, _ in segments)
            try:
                # segno takes a list of (content, mode) segments (undocumented in its stubs)
                return segno.make(segments, error="m", version=7, boost_error=False), payload  # type: ignore[arg-type]
            except segno.DataOverflowError:
                continue
        raise RuntimeError("no card-shaped payload fits version 7-M")
    raise ValueError(f"unknown shape {shape!r}")


def _card_segments(fields: list[str]) -> list[tuple[str | bytes, int]]:
    """Numeric segments for the digit-only fields, byte segments (UTF-8) for the rest,
    pipes included: the segment layout seen on real cards."""
    segments: list[tuple[str | bytes, int]] = []
    text = ""
    for i, value in enumerate(fields):
        sep = "|" if i else ""
        if value.isdigit() and len(value) >= 6:
            if text or sep:
                segments.append(((text + sep).encode(), segno.consts.MODE_BYTE))
                text = ""
            segments.append((value, segno.consts.MODE_NUMERIC))
        else:
            text += sep + value
    if text:
        segments.append((text.encode(), segno.consts.MODE_BYTE))
    return segments


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A desk: a smooth gradient with some texture, grey-brown."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 90 + 40 * (xx / w) + 25 * (yy / h)
    tex = cv2.GaussianBlur(rng.normal(0, 12, (h, w)).astype(np.float32), (0, 0), 3)
    grey = base + tex
    return np.dstack([grey * 0.85, grey * 0.95, grey]).astype(np.float32)


def _code_quad(rng: np.random.Generator, center: tuple[float, float], size: float, angle: float,
               tilt: float) -> np.ndarray:
    """Corners (TL, TR, BR, BL) of a square of ``size`` px, rotated and tilted."""
    half = size / 2
    pts = np.array([[-half, -half], [half, -half], [half, half], [-half, half]], np.float32)
    pts += rng.uniform(-tilt, tilt, pts.shape).astype(np.float32) * size
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]], np.float32)
    return pts @ rot.T + np.array(center, np.float32)


def render(rng: np.random.Generator, code: segno.QRCode, *, width_px: float, frame: tuple[int, int],
           condition: str) -> tuple[np.ndarray, np.ndarray]:
    """Place ``code`` (symbol ``width_px`` wide) on a card on a desk; return a BGR frame
    and the symbol's corners in it (quiet zone excluded)."""
    w, h = frame
    img = _background(rng, w, h)
    modules = np.array([list(row) for row in code.matrix], np.float32)  # 1 = dark
    n = modules.shape[0]
    quiet = 3  # the card leaves a light margin of a few modules around the code
    grid = np.pad(modules, quiet)
    size_q = width_px * (n + 2 * quiet) / n
    margin = size_q * 2.2
    cx = rng.uniform(margin, max(margin + 1, w - margin))
    cy = rng.uniform(margin * 0.8, max(margin * 0.8 + 1, h - margin * 0.8))
    tilt = 0.09 if condition == "perspective" else 0.01
    angle = rng.uniform(-0.45, 0.45) if condition == "perspective" else rng.uniform(-0.08, 0.08)
    quad = _code_quad(rng, (cx, cy), size_q, angle, tilt)
    paper = np.array([205, 212, 218], np.float32) + rng.uniform(-10, 10)
    ink = np.array([45, 40, 38], np.float32) + rng.uniform(-10, 10)
    if condition == "lowcontrast":
        paper, ink = paper * 0.75, ink + 85
    _draw_card(rng, img, quad, size_q, paper, ink)
    _draw_code(img, grid, quad, paper, ink)
    inner = quiet / (n + 2 * quiet)
    symbol = np.array([_lerp2(quad, inner, inner), _lerp2(quad, 1 - inner, inner),
                       _lerp2(quad, 1 - inner, 1 - inner), _lerp2(quad, inner, 1 - inner)])
    return _degrade(rng, img, quad, condition), symbol


def _lerp2(quad: np.ndarray, u: float, v: float) -> np.ndarray:
    """Point at (u, v) in a quad, bilinear (exact enough for the mild tilts here)."""
    top = quad[0] + (quad[1] - quad[0]) * u
    bottom = quad[3] + (quad[2] - quad[3]) * u
    return top + (bottom - top) * v


def _draw_card(rng: np.random.Generator, img: np.ndarray, quad: np.ndarray, size_q: float,
               paper: np.ndarray, ink: np.ndarray) -> None:
    """The card around the code: a light rounded area with printed text lines beside it."""
    center = quad.mean(axis=0)
    ux = (quad[1] - quad[0]) / np.linalg.norm(quad[1] - quad[0])
    uy = (quad[3] - quad[0]) / np.linalg.norm(quad[3] - quad[0])
    card_w, card_h = size_q * 4.2, size_q * 2.65
    origin = center - ux * size_q * 0.9 - uy * card_h / 2  # code sits on the card's right side
    corners = np.array([origin, origin + ux * card_w, origin + ux * card_w + uy * card_h, origin + uy * card_h])
    corners -= ux * (card_w - size_q * 1.6)
    mask = np.zeros(img.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, np.round(corners * 16).astype(np.int32), 255, cv2.LINE_AA, 4)
    alpha = (mask.astype(np.float32) / 255)[..., None]
    img[:] = img * (1 - alpha) + paper * alpha
    # text lines left of the code: the card's printed fields (dark, thin)
    for row in range(6):
        start = origin + uy * card_h * (0.15 + 0.13 * row) - ux * (card_w - size_q * 1.6) + ux * card_w * 0.05
        length = card_w * rng.uniform(0.25, 0.55)
        p1, p2 = start, start + ux * length
        cv2.line(img, tuple(np.round(p1 * 16).astype(int)), tuple(np.round(p2 * 16).astype(int)),
                 tuple(float(v) for v in (paper * 0.6 + ink * 0.4)), max(1, int(size_q / 40)), cv2.LINE_AA, 4)


def _draw_code(img: np.ndarray, grid: np.ndarray, quad: np.ndarray, paper: np.ndarray,
               ink: np.ndarray) -> None:
    """Supersampled warp of the module grid into the frame, area-averaged back down."""
    sup = 8
    x0, y0 = np.floor(quad.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int) + 2
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, img.shape[1]), min(y1, img.shape[0])
    n = grid.shape[0]
    # OpenCV puts pixel centres at integer coordinates: the grid's outer edges are at
    # -0.5 and n-0.5; frame coordinate x is sub-pixel coordinate x*sup + sup/2 - 0.5
    src = np.array([[0, 0], [n, 0], [n, n], [0, n]], np.float32) - 0.5
    dst = (quad - np.array([x0, y0], np.float32)) * sup + (sup / 2 - 0.5)
    hom = cv2.getPerspectiveTransform(src, dst)
    out_size = ((x1 - x0) * sup, (y1 - y0) * sup)
    dark = cv2.warpPerspective(grid, hom, out_size, flags=cv2.INTER_NEAREST)
    cover = cv2.warpPerspective(np.ones_like(grid), hom, out_size, flags=cv2.INTER_NEAREST)
    dark = cv2.resize(dark, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)[..., None]
    cover = cv2.resize(cover, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)[..., None]
    roi = img[y0:y1, x0:x1]
    printed = paper * (1 - dark) + ink * dark
    roi[:] = roi * (1 - cover) + printed * cover


def _degrade(rng: np.random.Generator, img: np.ndarray, quad: np.ndarray, condition: str) -> np.ndarray:
    size = float(np.linalg.norm(quad[1] - quad[0]))
    if condition == "blur1":
        img = cv2.GaussianBlur(img, (0, 0), 1.0)
    elif condition == "noise":
        img = img + rng.normal(0, 9, img.shape).astype(np.float32)
    elif condition == "glare":
        h, w = img.shape[:2]
        gx, gy = quad.mean(axis=0) + rng.uniform(-0.3, 0.3, 2) * size
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        radius = size * rng.uniform(0.15, 0.3)
        blob = np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * radius**2)) * rng.uniform(90, 160)
        img = img + blob[..., None]
    elif condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}")
    # every webcam frame is mildly soft and noisy; "clean" keeps just that
    out = np.clip(img + rng.normal(0, 1.5, img.shape).astype(np.float32), 0, 255).astype(np.uint8)
    if condition == "jpeg":
        quality = int(rng.integers(30, 61))
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


def frames(*, seed: int = 20261126, per_cell: int = 10, conditions: tuple[str, ...] = CONDITIONS,
           widths: tuple[int, ...] = WIDTHS, frame_sizes: tuple[tuple[int, int], ...] = FRAME_SIZES,
           shapes: tuple[str, ...] = ("v9", "card")) -> Iterator[Sample]:
    """All bench frames: for each condition, width, frame size and shape, ``per_cell``
    samples. One seeded generator per cell, so a cell does not depend on the others."""
    for ci, condition in enumerate(CONDITIONS):
        if condition not in conditions:
            continue
        for wi, width in enumerate(WIDTHS):
            if width not in widths:
                continue
            for fi, frame in enumerate(FRAME_SIZES):
                if frame not in frame_sizes:
                    continue
                for si, shape in enumerate(("v9", "card")):
                    if shape not in shapes:
                        continue
                    rng = np.random.default_rng([seed, ci, wi, fi, si])
                    for i in range(per_cell):
                        code, payload = make_code(rng, shape)
                        image, quad = render(rng, code, width_px=width, frame=frame, condition=condition)
                        corners = tuple((float(x), float(y)) for x, y in quad)
                        yield Sample(image, payload, condition, width, frame, shape, i, corners)
