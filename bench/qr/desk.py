"""Desk-like QR frames: a whole CCCD-style card, lying on a desk, as a webcam or a phone
sees it (issue 12: the first corpus, ``corpus.py``, flattered the decoder: no rotation
near 45°, no printed card background, no sleeve glare, one camera geometry).

A frame is made in three stages, each seeded (numpy ``default_rng``), so the same seed
gives the same frames:

1. **card** (85.6 x 54 mm, ID-1), drawn in its own texture at >= 5 px per code module,
   with the front's layout: light guilloche background print (rosettes and wave lines),
   the national emblem top left, header text, the QR code top right on a narrow light
   box (2 modules of quiet zone, as on the card), a drawn portrait of a synthetic person
   on the left and the printed fields on the right (ASCII Hershey text);
2. **scene**: the card warped into the frame by a homography (rotation 0-360°, scale
   from the geometry's code size range, perspective from a tilted camera), over a desk
   with wood-like texture and, sometimes, a printed sheet beside the card;
3. **camera**: the condition (sleeve glare streaks and hot spots, haze, motion blur,
   defocus, low light), then sensor noise and the camera's JPEG (webcams stream MJPEG).

Geometries: webcams at desk distance (640x480, 1280x720, 1920x1080) and phone photos
(2560x1184 and 4000x3000) with code widths from what those cameras see of a card laid
on the counter; the phone's 118-185 px is the range measured on the held-out real
photos (issue 12). ``NO_CODE`` frames (the card's back, or only the desk and a sheet)
measure how fast the decoder gives up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import segno

from bench.qr import corpus

#: name → (frame width, height), (code box width range in px, quiet zone included),
#: max perspective (fraction). Webcams: ~78° (16:9) / ~60° (4:3) horizontal field of
#: view, the card held 8-16 cm from the lens (as the "move closer" hint asks): the 14 mm
#: code box is 65-130 px at 1280x720. Phones: 118-185 px is what the held-out real photos
#: showed at 2560x1184 (issue 12); 160-320 px for a 12 MP photo of the card.
GEOMETRIES: dict[str, tuple[tuple[int, int], tuple[float, float], float]] = {
    "webcam480": ((640, 480), (60.0, 100.0), 0.06),
    "webcam720": ((1280, 720), (65.0, 130.0), 0.06),
    "webcam1080": ((1920, 1080), (80.0, 180.0), 0.06),
    "phone2560": ((2560, 1184), (118.0, 185.0), 0.12),
    "phone4000": ((4000, 3000), (160.0, 320.0), 0.12),
}
#: conditions, in the order the bench reports them
CONDITIONS: tuple[str, ...] = ("plain", "rot45", "perspective", "streak", "hotspot", "sleeve", "motion",
                               "defocus", "jpeg", "lowlight", "rot45+streak")
#: frames without any QR code (give-up time)
NO_CODE = "nocode"

CARD_MM = (85.6, 54.0)
#: the code's box on the card front (mm): top right, ~14 mm wide
CODE_MM = (68.8, 3.2, 14.0)


@dataclass(frozen=True)
class Sample:
    """One desk frame, what it must decode to (b"" for ``NO_CODE``), how it was made,
    and the symbol's corners in the frame (TL, TR, BR, BL of the module grid)."""

    image: np.ndarray = dataclasses.field(repr=False)
    payload: bytes = dataclasses.field(repr=False)
    condition: str
    geometry: str
    width_px: float
    angle_deg: float
    index: int
    quad: tuple[tuple[float, float], ...] = ()
    #: the symbol's modules (True dark), for the sampling ceiling (bench/qr/ceiling.py)
    modules: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def frame(self) -> tuple[int, int]:
        return (self.image.shape[1], self.image.shape[0])


# ---------------------------------------------------------------- the card


def _guilloche(rng: np.random.Generator, tex: np.ndarray, ppm: float) -> None:
    """Fine light line work over the whole card: rosettes and sine waves (the card's
    security background, which edge detectors see as dense texture)."""
    h, w = tex.shape[:2]
    tint = np.array([rng.uniform(200, 225), rng.uniform(190, 215), rng.uniform(160, 195)]).round()
    thick = max(1, int(round(ppm * 0.07)))
    t = np.linspace(0, 2 * np.pi, 1400)
    for cx, cy in ((w * 0.3, h * 0.55), (w * 0.72, h * 0.6)):
        for k in range(14):
            radius = (8 + k * 1.1) * ppm
            lobes = int(rng.integers(9, 16))
            r = radius + 0.9 * ppm * np.sin(lobes * t + k * 0.4)
            pts = np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)
            cv2.polylines(tex, [np.round(pts).astype(np.int32)], True, tint.tolist(), thick, cv2.LINE_AA)
    xs = np.arange(0, w, 2, dtype=np.float64)
    period, amp = rng.uniform(5, 9) * ppm, rng.uniform(0.4, 0.9) * ppm
    for y0 in np.arange(0, h, 0.55 * ppm):
        ys = y0 + amp * np.sin(2 * np.pi * xs / period + y0 / (3 * ppm))
        pts = np.stack([xs, ys], axis=1)
        cv2.polylines(tex, [np.round(pts).astype(np.int32)], False, (tint * 1.04).clip(0, 255).tolist(),
                      thick, cv2.LINE_AA)


def _portrait(rng: np.random.Generator, tex: np.ndarray, box: tuple[int, int, int, int]) -> None:
    """A drawn head and shoulders of nobody in particular, on a light background."""
    x, y, w, h = box
    tex[y:y + h, x:x + w] = (238, 236, 230)
    skin = (int(rng.uniform(120, 170)), int(rng.uniform(150, 190)), int(rng.uniform(185, 225)))
    cx, cy = x + w // 2, y + int(h * 0.42)
    cv2.ellipse(tex, (cx, y + h), (int(w * 0.48), int(h * 0.3)), 0, 180, 360,
                (int(rng.uniform(30, 90)),) * 3, -1, cv2.LINE_AA)  # shirt
    cv2.ellipse(tex, (cx, cy), (int(w * 0.27), int(h * 0.3)), 0, 0, 360, skin, -1, cv2.LINE_AA)
    cv2.ellipse(tex, (cx, cy - int(h * 0.12)), (int(w * 0.3), int(h * 0.22)), 0, 180, 360, (25, 25, 30), -1,
                cv2.LINE_AA)  # hair
    for side in (-1, 1):
        cv2.circle(tex, (cx + side * int(w * 0.1), cy), max(1, w // 40), (40, 40, 40), -1, cv2.LINE_AA)
    cv2.line(tex, (cx - w // 12, cy + int(h * 0.14)), (cx + w // 12, cy + int(h * 0.14)), (60, 60, 120),
             max(1, w // 60), cv2.LINE_AA)


def _text(tex: np.ndarray, text: str, org: tuple[float, float], height: float, bold: bool = False) -> None:
    scale = height / 22.0
    cv2.putText(tex, text, (int(org[0]), int(org[1])), cv2.FONT_HERSHEY_SIMPLEX, scale, (40, 35, 35),
                max(1, int(scale * (2.2 if bold else 1.4))), cv2.LINE_AA)


def _ascii(text: str) -> str:
    import unicodedata

    text = text.replace("Đ", "D").replace("đ", "d")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def draw_card(rng: np.random.Generator, code: segno.QRCode, fields: list[str], ppm: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """The card front as a BGR float texture at ``ppm`` px per mm, and the symbol's
    corners (module grid, TL TR BR BL) in texture pixels."""
    w, h = int(CARD_MM[0] * ppm), int(CARD_MM[1] * ppm)
    base = np.array([rng.uniform(225, 240), rng.uniform(230, 242), rng.uniform(225, 238)])
    tex = np.empty((h, w, 3), np.uint8)
    tex[:] = base.astype(np.uint8)
    _guilloche(rng, tex, ppm)
    # emblem: red disc with a yellow star
    ec = (int(11 * ppm), int(10 * ppm))
    cv2.circle(tex, ec, int(6.5 * ppm), (40, 50, 200), -1, cv2.LINE_AA)
    star = [(ec[0] + 5 * ppm * np.sin(a), ec[1] - 5 * ppm * np.cos(a)) for a in np.arange(5) * 4 * np.pi / 5]
    cv2.fillPoly(tex, [np.round(star).astype(np.int32)], (40, 210, 240), cv2.LINE_AA)
    for i, line in enumerate(("CONG HOA XA HOI CHU NGHIA VIET NAM", "Doc lap - Tu do - Hanh phuc",
                              "CAN CUOC CONG DAN")):
        _text(tex, line, (21 * ppm, (6 + 4.2 * i) * ppm), (1.6 if i < 2 else 2.6) * ppm, bold=i == 2)
    _portrait(rng, tex, (int(3.5 * ppm), int(19 * ppm), int(20 * ppm), int(26 * ppm)))
    labels = (f"So / No.: {fields[0]}", "Ho, chu dem, ten / Full name:", _ascii(fields[2]).upper(),
              f"Ngay sinh / Date of birth: {fields[3][:2]}/{fields[3][2:4]}/{fields[3][4:]}",
              f"Gioi tinh / Sex: {_ascii(fields[4])}   Quoc tich: Viet Nam",
              "Noi thuong tru / Place of residence:", _ascii(fields[5])[:40])
    for i, line in enumerate(labels):
        _text(tex, line, (27 * ppm, (23 + 3.9 * i) * ppm), (2.6 if i in (0, 2) else 1.8) * ppm, bold=i in (0, 2))
    # the code: dark modules on a light box with a 2-module quiet zone
    modules = np.array([list(row) for row in code.matrix], np.float32)
    n = modules.shape[0]
    x0, y0, side = (v * ppm for v in CODE_MM)
    mod = side / (n + 4)
    box = (int(round(x0)), int(round(y0)), int(round(side)), int(round(side)))
    tex[box[1]:box[1] + box[3], box[0]:box[0] + box[2]] = np.clip(base * 1.03, 0, 255).astype(np.uint8)
    sup = 4
    grid = cv2.resize(modules, None, fx=mod * sup, fy=mod * sup, interpolation=cv2.INTER_NEAREST)
    dark = cv2.resize(grid, (int(round(n * mod)), int(round(n * mod))), interpolation=cv2.INTER_AREA)
    gx, gy = int(round(x0 + 2 * mod)), int(round(y0 + 2 * mod))
    ink = np.array([35, 30, 30], np.float32) + rng.uniform(0, 15)
    out = tex.astype(np.float32)
    roi = out[gy:gy + dark.shape[0], gx:gx + dark.shape[1]]
    roi[:] = roi * (1 - dark[..., None]) + ink * dark[..., None]
    e = dark.shape[0]
    quad = np.array([[gx - 0.5, gy - 0.5], [gx + e - 0.5, gy - 0.5], [gx + e - 0.5, gy + e - 0.5],
                     [gx - 0.5, gy + e - 0.5]], np.float32)
    return out, quad


# ---------------------------------------------------------------- the scene


def _desk(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Wood-like desk: a colour gradient with stretched grain, at low resolution then
    upscaled (cheap for 12 MP frames)."""
    sw, sh = max(w // 4, 8), max(h // 4, 8)
    grain = cv2.GaussianBlur(rng.normal(0, 1, (sh, sw)).astype(np.float32), (0, 0), sigmaX=12, sigmaY=0.8)
    grain = grain / (np.abs(grain).max() + 1e-6)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    level = rng.uniform(70, 150) + 30 * xx / sw - 20 * yy / sh + 25 * grain
    colour = np.array([rng.uniform(0.55, 0.8), rng.uniform(0.75, 0.9), 1.0], np.float32)
    small = level[..., None] * colour
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _sheet(rng: np.random.Generator, img: np.ndarray, scale: float) -> None:
    """A printed sheet partly in view: text lines (edge-dense, not a code)."""
    h, w = img.shape[:2]
    sw, sh = 150 * scale, 210 * scale
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    angle = rng.uniform(0, np.pi)
    rect = ((float(cx), float(cy)), (float(sw), float(sh)), float(np.degrees(angle)))
    pts = cv2.boxPoints(rect)
    cv2.fillConvexPoly(img, np.round(pts).astype(np.int32), (215, 220, 222), cv2.LINE_AA)
    u = (pts[1] - pts[0]) / (np.linalg.norm(pts[1] - pts[0]) + 1e-6)
    v = (pts[3] - pts[0]) / (np.linalg.norm(pts[3] - pts[0]) + 1e-6)
    side_u, side_v = np.linalg.norm(pts[1] - pts[0]), np.linalg.norm(pts[3] - pts[0])
    step = 4.5 * scale
    for k in range(2, int(side_v / step) - 2):
        pos = 15 * scale
        end_of_line = (side_u - 30 * scale) * rng.uniform(0.4, 1.0)
        while pos < end_of_line:
            word = rng.uniform(4, 18) * scale
            start = pts[0] + v * k * step + u * pos
            stop = start + u * min(word, end_of_line - pos)
            cv2.line(img, tuple(np.round(start).astype(int)), tuple(np.round(stop).astype(int)), (70, 70, 70),
                     max(1, int(round(scale * 1.4))), cv2.LINE_AA)
            pos += word + 2 * scale


def _card_homography(rng: np.random.Generator, tex_shape: tuple[int, ...], frame: tuple[int, int], ppm_frame: float,
                     ppm_tex: float, angle: float, persp: float, anchor: np.ndarray | None = None) -> np.ndarray:
    """Texture → frame: scale to ``ppm_frame`` px/mm, rotate by ``angle``, move the
    corners by up to ``persp`` of the card's size (a camera not straight above), and
    put ``anchor`` (texture px, default the card's centre: the code's centre for code
    frames) at a random place inside the frame; the rest of the card may be cut off."""
    th, tw = tex_shape[:2]
    w, h = frame
    k = ppm_frame / ppm_tex
    half = np.array([[-tw, -th], [tw, -th], [tw, th], [-tw, th]], np.float32) * 0.5 * k
    c, s = np.cos(angle), np.sin(angle)
    rotated = half @ np.array([[c, -s], [s, c]], np.float32).T
    size = float(np.linalg.norm(rotated[2] - rotated[0]))
    dst = rotated + rng.uniform(-persp, persp, (4, 2)).astype(np.float32) * size
    src = np.array([[0, 0], [tw, 0], [tw, th], [0, th]], np.float32) - 0.5
    hom = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    point = np.array([[tw / 2, th / 2]] if anchor is None else [anchor], np.float32)
    mapped = cv2.perspectiveTransform(point[None], hom)[0, 0]
    margin = np.minimum(np.array([w, h]) * 0.45, CODE_MM[2] * ppm_frame)
    target = rng.uniform(margin, np.array([w, h]) - margin)
    shift = np.array([[1, 0, target[0] - mapped[0]], [0, 1, target[1] - mapped[1]], [0, 0, 1]], np.float64)
    return shift @ hom


def _place(img: np.ndarray, tex: np.ndarray, hom: np.ndarray) -> None:
    """Warp the card into the frame, prefiltered against aliasing when it shrinks."""
    shrink = float(np.sqrt(abs(np.linalg.det(hom[:2, :2]))))
    if shrink < 0.8:
        tex = cv2.GaussianBlur(tex, (0, 0), 0.45 / shrink)
    size = (img.shape[1], img.shape[0])
    card = cv2.warpPerspective(tex, hom, size, flags=cv2.INTER_LINEAR)
    mask = np.ones(tex.shape[:2], np.float32)
    rad = max(2, int(min(tex.shape[:2]) * 0.06))  # rounded corners
    for cy, cx in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        patch = np.zeros((rad, rad), np.float32)
        cv2.circle(patch, (rad - 1 if cx == 0 else 0, rad - 1 if cy == 0 else 0), rad, 1.0, -1, cv2.LINE_AA)
        ys = slice(0, rad) if cy == 0 else slice(-rad, None)
        xs = slice(0, rad) if cx == 0 else slice(-rad, None)
        mask[ys, xs] = patch
    alpha = cv2.warpPerspective(mask, hom, size, flags=cv2.INTER_LINEAR)[..., None]
    img *= 1 - alpha
    img += card * alpha


# ---------------------------------------------------------------- the camera


def _window(img: np.ndarray, center: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The part of ``img`` within ``radius`` of ``center`` and its pixel coordinates
    (light effects are computed there only: full 12 MP grids cost seconds)."""
    h, w = img.shape[:2]
    x0, y0 = (max(int(v - radius), 0) for v in center)
    x1, y1 = min(int(center[0] + radius), w), min(int(center[1] + radius), h)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    return img[y0:y1, x0:x1], xx, yy


def _streaks(rng: np.random.Generator, img: np.ndarray, center: np.ndarray, size: float, count: int) -> None:
    """Sleeve glare: long bright bands (the plastic's curved reflection of a lamp or
    window) crossing near the code, some saturating."""
    img, xx, yy = _window(img, center, size * 5)
    for _ in range(count):
        theta = rng.uniform(0, np.pi)
        offset = rng.uniform(-0.35, 0.35) * size
        dist = (xx - center[0]) * np.sin(theta) - (yy - center[1]) * np.cos(theta) - offset
        along = (xx - center[0]) * np.cos(theta) + (yy - center[1]) * np.sin(theta)
        width = size * rng.uniform(0.05, 0.16)
        fade = np.exp(-(along / (size * rng.uniform(1.5, 4.0))) ** 2)
        band = np.exp(-(dist / width) ** 2) * fade * rng.uniform(110, 230)
        img += band[..., None]


def _hotspots(rng: np.random.Generator, img: np.ndarray, center: np.ndarray, size: float, count: int) -> None:
    img, xx, yy = _window(img, center, size * 1.5)
    for _ in range(count):
        gx, gy = center + rng.uniform(-0.45, 0.45, 2) * size
        rx, ry = size * rng.uniform(0.06, 0.2), size * rng.uniform(0.06, 0.2)
        core = np.exp(-(((xx - gx) / rx) ** 2 + ((yy - gy) / ry) ** 2)) * rng.uniform(150, 260)
        img += core[..., None]


def _motion_kernel(length: float, angle: float) -> np.ndarray:
    size = int(np.ceil(length)) | 1
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    dx, dy = np.cos(angle) * (length - 1) / 2, np.sin(angle) * (length - 1) / 2
    cv2.line(kernel, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1,
             cv2.LINE_AA)
    return kernel / kernel.sum()


def _disk_kernel(radius: float) -> np.ndarray:
    size = int(np.ceil(radius)) * 2 + 1
    kernel = np.zeros((size, size), np.float32)
    cv2.circle(kernel, (size // 2, size // 2), int(round(radius)), 1.0, -1, cv2.LINE_AA)
    return kernel / kernel.sum()


def _camera(rng: np.random.Generator, img: np.ndarray, condition: str, center: np.ndarray, code_px: float,
            phone: bool) -> np.ndarray:
    """The condition, then the sensor and the encoder."""
    module = code_px / 49.0  # px per module, about
    card_px = code_px * CARD_MM[0] / CODE_MM[2]
    if condition in ("streak", "rot45+streak"):
        _streaks(rng, img, center, code_px * 1.4, int(rng.integers(1, 3)))
    if condition == "hotspot":
        _hotspots(rng, img, center, code_px * 1.2, int(rng.integers(1, 4)))
    if condition == "sleeve":  # haze of a worn sleeve plus one soft reflection
        img[:] = img * 0.8 + 45
        _streaks(rng, img, center, card_px * 0.5, 1)
    if condition == "lowlight":
        img *= rng.uniform(0.3, 0.45)
    if condition == "motion":
        length = module * rng.uniform(0.8, 1.6) + 1
        img[:] = cv2.filter2D(img, -1, _motion_kernel(length, rng.uniform(0, np.pi)))
    if condition == "defocus":
        img[:] = cv2.filter2D(img, -1, _disk_kernel(max(1.0, module * rng.uniform(0.5, 0.9))))
    # every camera is a little soft; webcams more so
    img[:] = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 0.6) if phone else rng.uniform(0.4, 0.8))
    sigma = 7.0 if condition == "lowlight" else 2.0
    noise = rng.normal(0, sigma, img.shape[:2]).astype(np.float32)[..., None]
    out = np.clip(img + noise, 0, 255).astype(np.uint8)
    if condition == "jpeg":
        quality = int(rng.integers(25, 50))
    else:
        quality = int(rng.integers(80, 95)) if phone else int(rng.integers(65, 90))
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


# ---------------------------------------------------------------- frames


def render(rng: np.random.Generator, geometry: str, condition: str, *, shape: str = "card"
           ) -> tuple[np.ndarray, bytes, float, float, np.ndarray, np.ndarray | None]:
    """One frame: (BGR image, payload, code width px, angle degrees, symbol quad, the
    symbol's modules)."""
    frame, widths, persp_max = GEOMETRIES[geometry]
    phone = geometry.startswith("phone")
    w, h = frame
    img = _desk(rng, w, h)
    code_px = float(rng.uniform(*widths))
    ppm_frame = code_px / CODE_MM[2]
    if rng.random() < 0.5:
        _sheet(rng, img, ppm_frame)
    if condition == NO_CODE:
        if rng.random() < 0.6:  # the card's back or another card: print, no code
            blank = np.full((int(CARD_MM[1] * 8), int(CARD_MM[0] * 8), 3), 232, np.uint8)
            _guilloche(rng, blank, 8.0)
            for i in range(5):
                _text(blank, "XXXXXXXXXXXXXXXXXXXXXXXXX<<<<<<<<<"[: 20 + i * 3], (6 * 8, (30 + 5 * i) * 8), 2.5 * 8)
            blank_f = blank.astype(np.float32)
            hom = _card_homography(rng, blank.shape, frame, ppm_frame, 8.0, rng.uniform(0, 2 * np.pi), 0.03)
            _place(img, blank_f, hom)
        image = _camera(rng, img, "plain", np.array([w / 2, h / 2]), code_px, phone)
        return image, b"", 0.0, 0.0, np.zeros((0, 2), np.float32), None
    code, payload = corpus.make_code(rng, shape)
    fields = payload.decode("utf-8", "replace").split("|")
    ppm_tex = max(16.0, ppm_frame * 1.5)
    tex, code_quad = draw_card(rng, code, fields + [""] * (7 - len(fields)), ppm_tex)
    if condition.startswith("rot45"):
        angle = np.radians(45 + 90 * int(rng.integers(4)) + rng.uniform(-8, 8))
    else:
        angle = rng.uniform(0, 2 * np.pi)
    persp = persp_max * (2.0 if condition == "perspective" else 0.5)
    hom = _card_homography(rng, tex.shape, frame, ppm_frame, ppm_tex, angle, persp, code_quad.mean(axis=0))
    _place(img, tex, hom)
    quad = cv2.perspectiveTransform(code_quad[None], hom)[0]
    width = float(np.linalg.norm(quad[1] - quad[0]))
    image = _camera(rng, img, condition, quad.mean(axis=0), width, phone)
    return image, payload, width, float(np.degrees(angle)) % 360, quad, np.array(code.matrix, bool)


def frames(*, seed: int = 20261202, per_cell: int = 4, conditions: tuple[str, ...] = CONDITIONS,
           geometries: tuple[str, ...] = tuple(GEOMETRIES), shapes: tuple[str, ...] = ("card",),
           ) -> Iterator[Sample]:
    """``per_cell`` frames per (condition, geometry), payload shapes alternating (default
    the real card's: version 7-M, numeric + byte segments); one seeded generator per
    cell, so a cell does not depend on which others are drawn."""
    all_conditions = CONDITIONS + (NO_CODE,)
    for ci, condition in enumerate(all_conditions):
        if condition not in conditions:
            continue
        for gi, geometry in enumerate(GEOMETRIES):
            if geometry not in geometries:
                continue
            rng = np.random.default_rng([seed, ci, gi])
            for i in range(per_cell):
                shape = shapes[i % len(shapes)]
                image, payload, width, angle, quad, modules = render(rng, geometry, condition, shape=shape)
                yield Sample(image, payload, condition, geometry, width, angle, i,
                             tuple((float(x), float(y)) for x, y in quad), modules)
