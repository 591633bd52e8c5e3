"""Frames → the QR payload's raw bytes, with an enhancement ladder tried only as far as
needed, within a time budget per frame.

``decode_frame(image)`` is the one function every source calls. It returns a
:class:`DecodeResult` (never raises on a bad frame): the raw payload bytes, which stage
of the ladder decoded them, the time spent, and, when nothing decoded, a reason and a
hint in words a clerk can act on.

The ladder (measured with bench/qr; each step only runs when the previous failed):

1. ``direct``: zxing-cpp on the whole frame (~1 ms on 1280x720; a photo over 4 MP on
   a half-size copy first, at full size only when a code-like region is found). With
   ``return_errors`` it also reports codes it located but could not decode: their
   corners become the first crop candidates.
2. locate: square regions dense with fine edges (``enhance.locate``), best first.
3. on each crop (the region plus a margin, so heavy steps cost a few ms, not the
   whole frame): ``upscale`` (cubic, to ~4 px per module), ``lanczos+otsu``,
   ``unsharp+otsu``, ``deblur`` (Wiener, Gaussian PSF), ``clahe+adaptive`` (glare,
   low contrast), ``thresholds`` (fixed levels), ``upscale x2`` (Lanczos to ~9 px
   per module, grey and unsharp + Otsu), then ZBar in binary mode on the upscaled
   crop (``zbar``). The steps, their measured rates and the (step, region) schedule
   are in ``agent/qr/ladder.py``.

Each step hands a grey or binary image to zxing-cpp (``try_downscale`` off: we chose
the scale). The budget counts the decoder's own CPU time (the calling thread's), so what
a frame gives does not depend on what else the machine is doing (issue 12: a photo read
5/5 in a quiet loop and 0/1 under load with a wall-clock budget); a wall-clock cap
(``max_wall_ms``, default 4x the budget) still bounds the latency on an overloaded
machine. Both clocks are injected, so tests can check the budget logic.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from agent.qr import decoders, enhance
from agent.qr import regions as regions_mod
from agent.qr.ladder import Crop, attempts, schedule

logger = logging.getLogger(__name__)

#: a failing 1280x720 frame must not cost more than this much CPU (issue 5: p95 <= 80 ms)
DEFAULT_BUDGET_MS = 60.0
#: the real card's code: version 7, 45 modules (domain.md, public card photos)
CARD_MODULES = 45
#: below this many px per module, no desk frame the pipeline missed decodes even when
#: sampled at its true corners (bench.qr.ceiling: every missed frame under 1.75, and
#: 1.82 the smallest that did): the clerk's useful move is closer, whatever else is wrong
MIN_MODULE_PX = 1.75
#: frames larger than this are located on a downscaled copy (crops stay full size)
LOCATE_MAX_PIXELS = 1280 * 720


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


@dataclass
class TraceStep:
    """One ladder step on one region: for ``--explain`` and the step bench."""

    step: str
    rank: int
    ms: float
    decoded: bool


@dataclass
class Trace:
    """What ``decode_frame`` tried, filled when the caller passes one: the ranked
    regions (with code-likeness and whether they were worth the ladder) and each step."""

    regions: list[tuple[regions_mod.Scored, bool]] = field(default_factory=list)
    steps: list[TraceStep] = field(default_factory=list)


def decode_frame(image: np.ndarray, *, budget_ms: float = DEFAULT_BUDGET_MS,
                 clock: Callable[[], float] = time.thread_time,
                 wall_clock: Callable[[], float] = time.perf_counter, max_wall_ms: float | None = None,
                 prefer: Callable[[bytes], bool] | None = None,
                 max_candidates: int = 8, trace: Trace | None = None) -> DecodeResult:
    """Decode the QR code(s) in one frame (BGR or grey array).

    ``prefer`` picks the payload to report when several codes decode (e.g. "looks
    like a CCCD QR"); the others are in ``payloads``. ``trace`` (optional) records the
    regions and steps tried. Never raises for a frame with no code, several codes or
    an unreadable one: the result says so."""
    start, wall_start = clock(), wall_clock()
    wall_cap = 4.0 * budget_ms if max_wall_ms is None else max_wall_ms
    grey = enhance.to_grey(image)

    def wall() -> float:
        return (wall_clock() - wall_start) * 1000.0

    def spent() -> float:
        """Budget used: own CPU ms, or the wall cap reached (then reported as over)."""
        cpu = (clock() - start) * 1000.0
        return cpu if wall() <= wall_cap else max(cpu, budget_ms + 1.0)

    tried = 1
    big = grey.shape[0] * grey.shape[1] > HALF_FIRST_PIXELS
    half = _half(grey) if big else None
    if half is not None:
        # a phone photo: its code is large, so zxing on a half-size copy reads it at a
        # quarter of the cost, and a frame with no code-like region gives up without
        # paying for the full-size pass (desk corpus, 4000x3000: 14 -> 4 ms)
        found = [decoders.Found(f.payload, tuple((x * 2, y * 2) for x, y in f.corners), f.error)
                 for f in decoders.zxing(half, errors=True)]
    else:
        found = decoders.zxing(grey, errors=True)
    decoded = [f for f in found if f.payload is not None]
    if decoded:
        return _result([f.payload for f in decoded if f.payload is not None], "direct", "zxing", wall(),
                       prefer, decoded[0].corners, grey.shape, tried)
    ranked = _candidates(grey, found, max_candidates, half)
    if trace is not None:
        trace.regions = [(s, regions_mod.worth_the_ladder(s)) for s in ranked]
    crops = [Crop(grey, s, i) for i, s in enumerate(ranked) if regions_mod.worth_the_ladder(s)]
    if big and crops:
        # something code-like is there: the full-size pass, as a small frame gets first
        tried += 1
        t0 = wall()
        full = decoders.zxing(grey)
        if trace is not None:
            trace.steps.append(TraceStep("direct x1", -1, wall() - t0, bool(full)))
        if full:
            return _result([f.payload for f in full if f.payload is not None], "direct", "zxing", wall(),
                           prefer, full[0].corners, grey.shape, tried)
    for step, c in schedule(crops):
        if step.cost_ms and spent() + step.cost_ms > budget_ms:
            continue  # too heavy for the budget left: cheaper pairs may still fit
        tries = attempts(step, c)
        while True:
            t0 = wall()
            payloads = next(tries, None)
            if payloads is None:
                break
            tried += 1
            if trace is not None:
                trace.steps.append(TraceStep(step.name, c.rank, wall() - t0, bool(payloads)))
            if payloads:
                return _result(payloads, step.name, step.library, wall(), prefer, None, grey.shape,
                               tried, c.scored.region)
            if spent() > budget_ms:
                return _failure(grey, ranked, wall(), tried)
    if crops:
        late = _whole_frame_late(grey, spent, budget_ms, trace)
        tried += 1
        if late is not None:
            return _result(late[1], late[0], late[2], wall(), prefer, None, grey.shape, tried,
                           crops[0].scored.region)
    return _failure(grey, ranked, wall(), tried)


#: frames above this many pixels (phone photos) get their first zxing pass at half size;
#: the full-size pass follows only when a code-like region is found. Cost: a code under
#: ~70 px in a 12 MP photo (the locator does not see it) is no longer read; desk photos
#: hold codes of 118-320 px (issue 12, bench/qr/desk.py)
HALF_FIRST_PIXELS = 4_000_000


def _half(grey: np.ndarray) -> np.ndarray:
    """Area-averaged half-size copy (an integer factor: the cheap resize)."""
    return cv2.resize(grey, (grey.shape[1] // 2, grey.shape[0] // 2), interpolation=cv2.INTER_AREA)


#: ZBar's cost on a whole frame, per pixel (bench/qr: ~25 ms on 1280x720 here)
ZBAR_NS_PER_PIXEL = 27.0


def _whole_frame_late(grey: np.ndarray, spent: Callable[[], float], budget_ms: float,
                      trace: Trace | None) -> tuple[str, list[bytes], str] | None:
    """When every region's ladder failed and budget is left: zxing on the frame at
    0.75x, then ZBar on the whole frame if its expected cost fits."""
    if spent() > budget_ms:
        return None
    elapsed = spent
    t0 = elapsed()
    small = enhance.rescale(grey, 0.75)
    payloads = [f.payload for f in decoders.zxing(small) if f.payload is not None]
    if trace is not None:
        trace.steps.append(TraceStep("frame x0.75", -1, elapsed() - t0, bool(payloads)))
    if payloads:
        return "frame x0.75", payloads, "zxing"
    if elapsed() + grey.size * ZBAR_NS_PER_PIXEL / 1e6 > budget_ms:
        return None
    t0 = elapsed()
    payloads = [f.payload for f in decoders.zbar(grey) if f.payload is not None]
    if trace is not None:
        trace.steps.append(TraceStep("frame zbar", -1, elapsed() - t0, bool(payloads)))
    return ("frame zbar", payloads, "zbar") if payloads else None


def _candidates(grey: np.ndarray, found: Sequence[decoders.Found], limit: int,
                half: np.ndarray | None = None) -> list[regions_mod.Scored]:
    """Regions zxing located (but could not decode) and the locator's, scored by
    code-likeness, best first, without near-duplicates (the better-scored one stays).
    ``half``: the frame's half-size copy when one was made (the locator starts there)."""
    located = [enhance.region_from_corners(f.corners, grey.shape) for f in found if len(f.corners) >= 3]
    scored = [dataclasses.replace(s, score=s.score + ZXING_LOCATED_BONUS)
              for s in regions_mod.rank(grey, located)]
    scored += regions_mod.rank(grey, _locate_scaled(grey, limit, half))
    scored = _demote_pieces(scored)
    scored.sort(key=lambda s: s.score, reverse=True)
    unique: list[regions_mod.Scored] = []
    for s in scored:
        # IoU, not overlap: a piece of the code (one finder) must not hide the whole
        if not any(_iou(s.region, u.region) > 0.5 for u in unique):
            unique.append(s)
    return unique[:limit]


def _demote_pieces(scored: list[regions_mod.Scored]) -> list[regions_mod.Scored]:
    """A region lying inside a larger plausible one is a piece of it (one finder
    pattern, a patch of modules): rank it just below the larger one, so the whole code
    is tried first and the hint is measured on it (issue 12: "too small" said of a
    finder pattern of a 182 px code)."""
    out = []
    for s in scored:
        hosts = [o for o in scored if o is not s and o.region.w * o.region.h > 2 * s.region.w * s.region.h
                 and enhance.overlap(s.region, o.region) > 0.8 and regions_mod.plausible(o)]
        if hosts:
            host = max(hosts, key=lambda o: o.score)
            s = dataclasses.replace(s, score=min(s.score, host.score * 0.9))
        out.append(s)
    return out


#: zxing found finder patterns there (it reports a located code only with three)
ZXING_LOCATED_BONUS = 0.2


def _locate_scaled(grey: np.ndarray, limit: int, half: np.ndarray | None = None) -> list[enhance.Region]:
    """``enhance.locate`` on a copy no larger than LOCATE_MAX_PIXELS (an integer
    factor: area averaging by 2 or 3 costs 2 ms on a 3 MP photo, a fractional one 14),
    mapped back. With ``half`` (the frame at half size), the copy is made from it: a
    12 MP photo is then resized once in full, not twice."""
    pixels = grey.shape[0] * grey.shape[1]
    if pixels <= LOCATE_MAX_PIXELS:
        return enhance.locate(grey, max_candidates=limit)
    k = int(np.ceil((pixels / LOCATE_MAX_PIXELS) ** 0.5))
    if half is not None and k % 2 == 0:
        j = k // 2
        small = half if j == 1 else cv2.resize(half, (half.shape[1] // j, half.shape[0] // j),
                                                interpolation=cv2.INTER_AREA)
    else:
        small = cv2.resize(grey, (grey.shape[1] // k, grey.shape[0] // k), interpolation=cv2.INTER_AREA)
    return [enhance.Region(r.x * k, r.y * k, r.w * k + k, r.h * k + k, r.score, r.side * k)
            for r in enhance.locate(small, max_candidates=limit)]


def _iou(a: enhance.Region, b: enhance.Region) -> float:
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union else 0.0


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


def _failure(grey: np.ndarray, ranked: Sequence[regions_mod.Scored], ms: float, attempts: int) -> DecodeResult:
    """Explain the failure from the region most likely to hold the code: the most
    code-like plausible one (issue 12: the top region by edge density was often print
    or a piece of the code, and its size gave "too small" for a 182 px code)."""
    worth = [s for s in ranked if regions_mod.plausible(s)]
    if not worth:
        return DecodeResult(None, elapsed_ms=ms, reason=Reason.NO_CODE, hint=Reason.HINTS[Reason.NO_CODE],
                            attempts=attempts)
    best = worth[0]
    box = best.region
    quality = enhance.measure(box.crop(grey), best.side)
    reason = diagnose(quality)
    logger.debug("QR not decoded (%s) after %d attempts, %.1f ms", reason, attempts, ms)
    return DecodeResult(None, elapsed_ms=ms, reason=reason, hint=Reason.HINTS[reason],
                        region=(box.x, box.y, box.w, box.h), attempts=attempts,
                        measurements={"side_px": quality.side_px, "contrast": quality.contrast,
                                      "glare": quality.glare, "sharpness": quality.sharpness,
                                      "finders": float(best.finders)})


def diagnose(quality: enhance.Quality) -> str:
    """The most likely reason a located code did not decode, most actionable first.

    Glare first (5-38 % saturated pixels on the failing glare frames of bench/qr,
    0-3 % on clean ones): tilting the card fixes it at any size. Then a code under
    ``MIN_MODULE_PX`` px per module (measured on the card's 45 modules): at that size
    blur, JPEG and noise leave too many modules wrong for any sampling
    (bench.qr.ceiling), so "move closer" is the hint that works, where "blurred" or
    "hold it further" sent the card away. Then low contrast (25-63 grey levels on the
    failing low-contrast frames, >= 98 otherwise) and blur (sigma-1 blur gives
    sharpness 0.14-0.38, sharp frames 0.69-0.92)."""
    if quality.glare > 0.04:
        return Reason.GLARE
    if quality.side_px < CARD_MODULES * MIN_MODULE_PX:
        return Reason.TOO_SMALL
    if quality.contrast < 60:
        return Reason.LOW_CONTRAST
    if quality.sharpness < 0.45:
        return Reason.BLURRED
    return Reason.UNREADABLE
