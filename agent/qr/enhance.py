"""Image operations for small, soft QR codes: locate, crop, upscale, sharpen, deblur,
binarize, and the measurements behind the clerk's hints.

All functions take and return ``uint8`` grey images (numpy arrays) and do no I/O. The
pipeline (``agent.qr.decode``) decides which of them to try and in what order.

Why these steps (measured with bench/qr, see bench/qr/README.md):

* a card QR 60 px wide in a webcam frame has ~1.1 px per module: decoders' own
  binarizers need ~2 px per module, so we crop the code's region and upscale it first
  (Lanczos keeps module edges better than cubic at that size);
* an optical blur of sigma ~1 px at 1.5 px per module leaves ~10 % modulation on
  single modules: unsharp masking is not enough, a Wiener deconvolution with a
  Gaussian PSF restores it;
* glare and low contrast break global thresholds: CLAHE then a local threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Region:
    """A candidate code region in frame coordinates (axis-aligned box) and how much it
    looks like a QR symbol (0..1)."""

    x: int
    y: int
    w: int
    h: int
    score: float
    #: the symbol's size estimate in px (side of the rotated box)
    side: float

    def expanded(self, frac: float, shape: tuple[int, ...]) -> Region:
        """The box grown by ``frac`` of its side on each edge, clipped to the image."""
        pad = int(round(self.side * frac)) + 2
        x0, y0 = max(self.x - pad, 0), max(self.y - pad, 0)
        x1, y1 = min(self.x + self.w + pad, shape[1]), min(self.y + self.h + pad, shape[0])
        return Region(x0, y0, x1 - x0, y1 - y0, self.score, self.side)

    def crop(self, grey: np.ndarray) -> np.ndarray:
        return grey[self.y:self.y + self.h, self.x:self.x + self.w]


def to_grey(image: np.ndarray) -> np.ndarray:
    """BGR, BGRA or grey array → contiguous uint8 grey."""
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    elif image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


_KERNEL3 = np.ones((3, 3), np.uint8)
_KERNEL5 = np.ones((5, 5), np.uint8)


def locate(grey: np.ndarray, *, min_side: int = 24, max_candidates: int = 3) -> list[Region]:
    """Square-ish regions dense with fine dark/light edges: where a QR code can be.

    A morphological gradient marks module edges; a 7x7 box filter turns it into edge
    *density*, which is high all over a code and low on sensor noise, plain card and
    sparse printed text. Two levels relative to the frame's densest spot (half and
    0.3 of it) give candidates; text lines are dropped by the aspect and fill tests.
    Works below 1 px per module, where finder-pattern detection no longer can.
    bench/qr: the code is among the candidates in 420/420 frames (40-160 px, all
    conditions), ~10 ms on 1280x720 here."""
    grad = cv2.morphologyEx(grey, cv2.MORPH_GRADIENT, _KERNEL3)
    energy = cv2.blur(grad, (7, 7))
    top = float(energy.max())
    if top <= 0:
        return []
    found: list[Region] = []
    limit = min(grey.shape[:2]) * 0.95
    for fraction in (0.5, 0.3):
        _, mask = cv2.threshold(energy, max(12.0, top * fraction) - 1, 255, cv2.THRESH_BINARY)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _KERNEL5)
        # outer contours, not connected components: 0.3 ms instead of 9 on 1280x720
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for contour in contours:
            xi, yi, wi, hi = cv2.boundingRect(contour)
            if min(wi, hi) < min_side or max(wi, hi) > limit or not 0.55 <= wi / hi <= 1.8:
                continue
            area = cv2.contourArea(contour)
            fill = area / float(wi * hi)
            if fill < 0.45:
                continue
            aspect = wi / hi
            density = float(energy[yi:yi + hi, xi:xi + wi].mean()) / top
            score = fill * min(aspect, 1 / aspect) * density
            found.append(Region(xi, yi, wi, hi, score, float(np.sqrt(area))))
    found.sort(key=lambda r: r.score, reverse=True)
    unique: list[Region] = []
    for region in found:
        if not any(overlap(region, kept) > 0.5 for kept in unique):
            unique.append(region)
    return unique[:max_candidates]


def overlap(a: Region, b: Region) -> float:
    """Intersection over the smaller box's area."""
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    smaller = min(a.w * a.h, b.w * b.h)
    return ix * iy / smaller if smaller else 0.0


def region_from_corners(corners: tuple[tuple[float, float], ...], shape: tuple[int, ...]) -> Region:
    """The bounding box of corner points a decoder reported."""
    pts = np.array(corners, np.float32)
    x0, y0 = np.floor(pts.min(axis=0)).astype(int)
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int)
    x0, y0 = max(int(x0), 0), max(int(y0), 0)
    x1, y1 = min(int(x1), shape[1]), min(int(y1), shape[0])
    side = float(max(x1 - x0, y1 - y0, 1))
    return Region(x0, y0, max(x1 - x0, 1), max(y1 - y0, 1), 1.0, side)


def rescale(grey: np.ndarray, factor: float, *, lanczos: bool = False) -> np.ndarray:
    """Resize by ``factor``: area averaging down, cubic or Lanczos up."""
    if abs(factor - 1.0) < 1e-3:
        return grey
    if factor < 1.0:
        interp = cv2.INTER_AREA
    else:
        interp = cv2.INTER_LANCZOS4 if lanczos else cv2.INTER_CUBIC
    return cv2.resize(grey, None, fx=factor, fy=factor, interpolation=interp)


def unsharp(grey: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    blurred = cv2.GaussianBlur(grey, (0, 0), sigma)
    return cv2.addWeighted(grey, 1.0 + amount, blurred, -amount, 0)


def wiener_deblur(grey: np.ndarray, sigma: float, nsr: float = 0.003) -> np.ndarray:
    """Wiener deconvolution with a Gaussian PSF of ``sigma`` px (the defocus/motion
    softness of a webcam), applied to a small crop (FFT of a few 100 px: ~1 ms).
    ``nsr`` is the noise-to-signal ratio that bounds the amplification."""
    pad = 8
    img = cv2.copyMakeBorder(grey.astype(np.float32), pad, pad, pad, pad, cv2.BORDER_REFLECT)
    rows, cols = img.shape
    fy = np.fft.fftfreq(rows)[:, None]
    fx = np.fft.rfftfreq(cols)[None, :]
    otf = np.exp(-2.0 * np.pi**2 * sigma**2 * (fx**2 + fy**2))
    restored = np.fft.irfft2(np.fft.rfft2(img) * otf / (otf**2 + nsr), s=(rows, cols))
    restored = restored[pad:pad + grey.shape[0], pad:pad + grey.shape[1]]
    return np.clip(restored, 0, 255).astype(np.uint8)


def clahe(grey: np.ndarray, tiles: int = 4, clip: float = 3.0) -> np.ndarray:
    return cv2.createCLAHE(clipLimit=clip, tileGridSize=(tiles, tiles)).apply(grey)


def otsu(grey: np.ndarray) -> np.ndarray:
    return cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[1]


def adaptive(grey: np.ndarray, block: int, offset: float = 0.0) -> np.ndarray:
    block = max(3, block | 1)
    return cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY,
                                 block, offset)


def thresholds(grey: np.ndarray, fractions: tuple[float, ...] = (0.4, 0.6)) -> list[np.ndarray]:
    """Fixed thresholds between the crop's dark and light levels (5th/95th percentile):
    useful when Otsu is pulled by a background much larger than the code."""
    lo, hi = np.percentile(grey, (5, 95))
    return [((grey > lo + (hi - lo) * f).astype(np.uint8) * 255) for f in fractions]


@dataclass(frozen=True)
class Quality:
    """Measurements of a crop that explain a failure."""

    side_px: float
    contrast: float
    glare: float
    sharpness: float


def measure(crop: np.ndarray, side_px: float) -> Quality:
    """Contrast (grey levels between 5th and 95th percentile), glare (share of
    saturated pixels), sharpness (edge strength relative to contrast: 1 = crisp)."""
    lo, hi = np.percentile(crop, (5, 95))
    contrast = float(hi - lo)
    glare = float(np.mean(crop >= 245))
    grad = cv2.morphologyEx(crop, cv2.MORPH_GRADIENT, np.ones((2, 2), np.uint8))
    sharpness = float(np.percentile(grad, 90)) / contrast if contrast > 0 else 0.0
    return Quality(side_px, contrast, glare, sharpness)



def local_normalize(grey: np.ndarray, size: int) -> np.ndarray:
    """Stretch each neighbourhood between its own dark and light level (dilation and
    erosion wider than a module, smoothed): under a sleeve's glare streak or hot spot
    the dark modules are lifted but still darker than the paper beside them, so they
    come back dark; where both are saturated (no contrast left) the result is paper.
    bench/qr (desk glare frames the ladder missed, holder crop): this read 11/33 where
    dividing by the white level alone read 3/33."""
    size = max(3, size | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    white = cv2.GaussianBlur(cv2.dilate(grey, kernel), (0, 0), size / 2).astype(np.float32)
    black = cv2.GaussianBlur(cv2.erode(grey, kernel), (0, 0), size / 2).astype(np.float32)
    span = white - black
    out = (grey.astype(np.float32) - black) / np.maximum(span, 1.0)
    out[span < 12] = 1.0
    levelled: np.ndarray = (np.clip(out, 0.0, 1.0) * 255).astype(np.uint8)  # cv2's results are untyped
    return levelled
