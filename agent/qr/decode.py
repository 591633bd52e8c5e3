"""Frames → the QR payload's raw bytes, with an enhancement ladder tried only as far as
needed, within a time budget per frame.

``decode_frame(image)`` is the one function every source calls. It returns a
:class:`DecodeResult` (never raises on a bad frame): the raw payload bytes, which stage
of the ladder decoded them, the time spent, and, when nothing decoded, a reason and a
hint in words a clerk can act on.

The ladder (measured with bench/qr; each step only runs when the previous failed):

1. ``direct``: zxing-cpp on the whole frame (~1 ms on 1280x720). With
   ``return_errors`` it also reports codes it located but could not decode: their
   corners become the first crop candidates.
2. locate: square regions dense with fine edges (``enhance.locate``), best first.
3. on each crop (the region plus a margin, so heavy steps cost a few ms, not the
   whole frame): ``upscale`` (cubic, to ~4 px per module), ``lanczos+otsu``,
   ``unsharp+otsu``, ``deblur`` (Wiener, Gaussian PSF), ``clahe+adaptive`` (glare,
   low contrast), ``thresholds`` (fixed levels), ``upscale x2`` (Lanczos to ~9 px
   per module, grey and unsharp + Otsu), then ZBar in binary mode on the upscaled
   crop (``zbar``).

Each step hands a grey or binary image to zxing-cpp (``try_downscale`` off: we chose
the scale). The clock is injected, so tests can check the budget logic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from agent.qr import decoders, enhance

logger = logging.getLogger(__name__)

#: a failing 1280x720 frame must not cost more than this (issue 5: p95 <= 80 ms)
DEFAULT_BUDGET_MS = 60.0
#: the upscaled crop's symbol width: ~4.5 px per module for the card's 45-53 modules
TARGET_SIDE_PX = 240.0
MAX_UPSCALE = 6.0
#: below this many px a card code (45-57 modules) has < 1 px per module
MIN_READABLE_SIDE = 45.0
#: frames larger than this are located on a downscaled copy (crops stay full size)
LOCATE_MAX_PIXELS = 1920 * 1080


class Reason:
    """Machine codes for "not decoded", each with the clerk's hint."""

    NO_CODE = "no_code"
    TOO_SMALL = "too_small"
    GLARE = "glare"
    BLURRED = "blurred"
    LOW_CONTRAST = "low_contrast"
    UNREADABLE = "unreadable"

    HINTS: dict[str, str] = {
        NO_CODE: "No QR code seen. Show the QR code on the card to the camera.",
        TOO_SMALL: "The QR code is too small in the picture. Move the card closer to the camera.",
        GLARE: "Glare on the code. Tilt the card a little away from the light.",
        BLURRED: "The code is blurred. Hold the card still, a little further from the lens if it is very close.",
        LOW_CONTRAST: "The code is too dark or faint. Add light or move out of shadow.",
        UNREADABLE: "A code is visible but cannot be read. Hold the card flat and still, closer to the camera.",
    }


@dataclass(frozen=True, repr=False)
class DecodeResult:
    """What one frame gave. ``payload`` is the raw bytes of the chosen code (None when
    nothing decoded); ``payloads`` every distinct code decoded in the frame."""

    payload: bytes | None
    stage: str = ""
    library: str = ""
    elapsed_ms: float = 0.0
    reason: str = ""
    hint: str = ""
    payloads: tuple[bytes, ...] = ()
    #: where the code was (x, y, w, h) in the frame, when known
    region: tuple[int, int, int, int] | None = None
    #: ladder steps tried, for the bench and the log
    attempts: int = 0
    measurements: dict[str, float] = field(default_factory=dict)

    @property
    def decoded(self) -> bool:
        return self.payload is not None

    def __repr__(self) -> str:
        size = f"{len(self.payload)} bytes" if self.payload is not None else "none"
        return (f"DecodeResult(payload={size}, stage={self.stage!r}, codes={len(self.payloads)}, "
                f"reason={self.reason!r}, ms={self.elapsed_ms:.1f})")


Step = tuple[str, np.ndarray]


def ladder(crop: np.ndarray, side: float) -> Iterator[Step]:
    """Enhanced versions of a crop, cheapest first, lazily (a step is only computed
    when the previous one failed)."""
    factor = min(MAX_UPSCALE, max(TARGET_SIDE_PX / max(side, 1.0), 0.5))
    module_px = factor * side / 50.0
    cubic = enhance.rescale(crop, factor)
    yield "upscale", cubic
    lanczos = enhance.rescale(crop, factor, lanczos=True)
    yield "lanczos+otsu", enhance.otsu(lanczos)
    sharp = enhance.unsharp(lanczos, max(0.8, module_px * 0.7), 1.5)
    yield "unsharp+otsu", enhance.otsu(sharp)
    for sigma in (1.0, 1.4):
        deblurred = enhance.rescale(enhance.wiener_deblur(crop, sigma), factor, lanczos=True)
        yield "deblur", deblurred
        yield "deblur", enhance.otsu(deblurred)
    yield "clahe+adaptive", enhance.adaptive(enhance.clahe(lanczos), int(module_px * 5))
    for binary in enhance.thresholds(sharp):
        yield "thresholds", binary
    # twice the scale (~9 px per module): zxing's local binarizer then sees fewer
    # modules per window, which reads glared and JPEG-blocky codes it missed at 4.5
    # (bench/qr: glare 50 px 2/16 → 7/16, 60 px 13/16 → 16/16)
    big = enhance.rescale(crop, min(2 * factor, 2 * MAX_UPSCALE), lanczos=True)
    yield "upscale x2", big
    yield "upscale x2", enhance.otsu(enhance.unsharp(big, max(0.8, module_px * 1.4), 1.5))


def decode_frame(image: np.ndarray, *, budget_ms: float = DEFAULT_BUDGET_MS,
                 clock: Callable[[], float] = time.perf_counter,
                 prefer: Callable[[bytes], bool] | None = None,
                 max_candidates: int = 3) -> DecodeResult:
    """Decode the QR code(s) in one frame (BGR or grey array).

    ``prefer`` picks the payload to report when several codes decode (e.g. "looks
    like a CCCD QR"); the others are in ``payloads``. Never raises for a frame with no
    code, several codes or an unreadable one: the result says so."""
    start = clock()
    grey = enhance.to_grey(image)

    def elapsed() -> float:
        return (clock() - start) * 1000.0

    found = decoders.zxing(grey, errors=True)
    decoded = [f for f in found if f.payload is not None]
    if decoded:
        return _result([f.payload for f in decoded if f.payload is not None], "direct", "zxing", elapsed(),
                       prefer, decoded[0].corners, grey.shape, 1)

    regions = _candidates(grey, found, max_candidates)
    attempts = 1
    for region in regions:
        crop = region.expanded(0.25, grey.shape).crop(grey)
        for stage, enhanced in ladder(crop, region.side):
            attempts += 1
            hits = decoders.zxing(enhanced, downscale=False)
            payloads = [f.payload for f in hits if f.payload is not None]
            if payloads:
                return _result(payloads, stage, "zxing", elapsed(), prefer, None, grey.shape, attempts,
                               region)
            if elapsed() > budget_ms:
                break
        if elapsed() > budget_ms:
            break
    else:
        attempt = _zbar_fallback(grey, regions)
        attempts += 1
        if attempt is not None:
            region = attempt[1]
            return _result(attempt[0], "zbar", "zbar", elapsed(), prefer, None, grey.shape, attempts, region)
    return _failure(grey, regions, elapsed(), attempts)


def _candidates(grey: np.ndarray, found: Sequence[decoders.Found], limit: int) -> list[enhance.Region]:
    """Regions zxing located (but could not decode) first, then the locator's, without
    near-duplicates."""
    regions = [enhance.region_from_corners(f.corners, grey.shape) for f in found if len(f.corners) >= 3]
    for region in _locate_scaled(grey, limit):
        # IoU, not overlap: zxing sometimes reports a piece of the code (one finder
        # pattern); the locator's whole-code box must still be tried
        if not any(_iou(region, r) > 0.5 for r in regions):
            regions.append(region)
    return regions[:limit]


def _locate_scaled(grey: np.ndarray, limit: int) -> list[enhance.Region]:
    """``enhance.locate`` on a copy no larger than LOCATE_MAX_PIXELS, mapped back."""
    pixels = grey.shape[0] * grey.shape[1]
    if pixels <= LOCATE_MAX_PIXELS:
        return enhance.locate(grey, max_candidates=limit)
    scale = (LOCATE_MAX_PIXELS / pixels) ** 0.5
    small = enhance.rescale(grey, scale)
    return [enhance.Region(int(r.x / scale), int(r.y / scale), int(r.w / scale) + 1, int(r.h / scale) + 1,
                           r.score, r.side / scale)
            for r in enhance.locate(small, max_candidates=limit)]


def _iou(a: enhance.Region, b: enhance.Region) -> float:
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union else 0.0


def _zbar_fallback(grey: np.ndarray, regions: Sequence[enhance.Region]
                   ) -> tuple[list[bytes], enhance.Region] | None:
    """ZBar (binary mode) on the best region, upscaled: its own binarizer sometimes
    reads what zxing's did not."""
    for region in regions[:1]:
        crop = region.expanded(0.25, grey.shape).crop(grey)
        factor = min(MAX_UPSCALE, max(TARGET_SIDE_PX / max(region.side, 1.0), 1.0))
        hits = decoders.zbar(enhance.rescale(crop, factor))
        payloads = [f.payload for f in hits if f.payload is not None]
        if payloads:
            return payloads, region
    return None


def _result(payloads: list[bytes], stage: str, library: str, ms: float,
            prefer: Callable[[bytes], bool] | None, corners: tuple[tuple[float, float], ...] | None,
            shape: tuple[int, ...], attempts: int, region: enhance.Region | None = None) -> DecodeResult:
    distinct = tuple(dict.fromkeys(payloads))
    chosen = distinct[0]
    if prefer is not None:
        chosen = next((p for p in distinct if prefer(p)), chosen)
    box: tuple[int, int, int, int] | None = None
    if region is not None:
        box = (region.x, region.y, region.w, region.h)
    elif corners:
        r = enhance.region_from_corners(corners, shape)
        box = (r.x, r.y, r.w, r.h)
    logger.debug("QR decoded at stage %s in %.1f ms (%d codes)", stage, ms, len(distinct))
    return DecodeResult(chosen, stage, library, ms, payloads=distinct, region=box, attempts=attempts)


def _failure(grey: np.ndarray, regions: Sequence[enhance.Region], ms: float, attempts: int) -> DecodeResult:
    """Explain the failure from the best candidate's measurements."""
    if not regions:
        return DecodeResult(None, elapsed_ms=ms, reason=Reason.NO_CODE, hint=Reason.HINTS[Reason.NO_CODE],
                            attempts=attempts)
    best = regions[0]
    quality = enhance.measure(best.crop(grey), best.side)
    reason = diagnose(quality)
    logger.debug("QR not decoded (%s) after %d attempts, %.1f ms", reason, attempts, ms)
    return DecodeResult(None, elapsed_ms=ms, reason=reason, hint=Reason.HINTS[reason],
                        region=(best.x, best.y, best.w, best.h), attempts=attempts,
                        measurements={"side_px": quality.side_px, "contrast": quality.contrast,
                                      "glare": quality.glare, "sharpness": quality.sharpness})


def diagnose(quality: enhance.Quality) -> str:
    """The most likely reason a located code did not decode, most actionable first.

    Thresholds from the failing bench/qr frames (40-60 px, 3 per cell): glare frames
    have 5-38 % saturated pixels (clean ones 0-3 %), sigma-1 blur gives sharpness
    0.14-0.38 (sharp frames 0.69-0.92), low-contrast ones 25-63 grey levels (others
    >= 98). On those frames the reasons given were: blur → "blurred" 41/48 (rest "too
    small" at 40 px), glare → "glare" 20/20, low contrast at 50 px → "low contrast"
    5/6, every other failure → "too small"."""
    if quality.glare > 0.04:
        return Reason.GLARE
    if quality.side_px < MIN_READABLE_SIDE:
        return Reason.TOO_SMALL
    if quality.contrast < 60:
        return Reason.LOW_CONTRAST
    if quality.sharpness < 0.45:
        return Reason.BLURRED
    if quality.side_px < 70:
        return Reason.TOO_SMALL
    return Reason.UNREADABLE
