"""How code-like a candidate region is: finder patterns, edge structure, contrast.

``enhance.locate`` finds boxes dense with fine edges; on a real desk that includes the
card's guilloche print, its text, the portrait, a printed sheet beside the card and
pieces of the code itself. Issue 12 measured on real photos that the box holding the
whole code was often the 2nd-4th by density, while the 1st was a finder pattern alone
or print. This module scores each box by what distinguishes a QR symbol (ISO/IEC
18004:2015 §6.3.3, §6.3.8):

* **finder patterns**: dark-light-dark-light-dark squares (1:1:3:1:1), seen as three
  nested contours; three of them at the corners of a right isosceles triangle give the
  module size and the symbol's side even when the box is off;
* **edge structure**: modules make edges in two perpendicular directions, so the
  structure tensor's coherence is low; text lines, stripes and wave print are
  coherent (one direction dominates);
* **contrast**: printed modules are dark on light (the guilloche is light on light).

``rank`` returns the regions best first with their score and measurements;
``plausible`` tells whether a region is code-like (the hint is measured on the best
one); ``worth_the_ladder`` whether it is also large enough, or has finder evidence, to
spend the budget on (a frame with none gives up at once).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from agent.qr.enhance import Region

#: the scoring works on the region resampled to at most this side (cost ~1 ms)
SCORE_SIDE = 200
#: finder-pattern area ratio outer/inner core: (7/3)^2 = 5.4 in theory; blur and
#: perspective spread it (measured on bench/qr/desk.py frames)
FINDER_RATIO = (2.5, 14.0)


@dataclass(frozen=True)
class Scored:
    """A candidate region with its code-likeness (higher is more code-like)."""

    region: Region
    score: float
    finders: int = 0
    #: three finder patterns in a right-isosceles layout were found
    geometry: bool = False
    coherence: float = 1.0
    contrast: float = 0.0
    #: the symbol's side in frame px from the finder layout (0: unknown)
    finder_side: float = 0.0

    @property
    def side(self) -> float:
        return self.finder_side or self.region.side


def _finders(binary: np.ndarray) -> list[tuple[float, float, float]]:
    """Centres and sizes (x, y, side) of contours with two levels of nested children
    whose area ratio fits a finder pattern."""
    contours, hierarchy = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    tree = hierarchy[0]
    found: list[tuple[float, float, float]] = []
    for i, contour in enumerate(contours):
        child = int(tree[i][2])
        if child < 0:
            continue
        grandchild = int(tree[child][2])
        if grandchild < 0:
            continue
        outer, core = cv2.contourArea(contour), cv2.contourArea(contours[grandchild])
        if outer < 16 or core <= 0 or not FINDER_RATIO[0] <= outer / core <= FINDER_RATIO[1]:
            continue
        x, y, w, h = cv2.boundingRect(contour)
        if not 0.5 <= w / h <= 2.0 or outer / (w * h) < 0.4:
            continue
        moments = cv2.moments(contour)
        if moments["m00"] <= 0:
            continue
        cx, cy = moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]
        if not any(abs(cx - fx) < 3 and abs(cy - fy) < 3 for fx, fy, _ in found):
            found.append((cx, cy, float(np.sqrt(outer))))
    return found


def finder_triangle(pts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(corner, p, q): the finder at the right angle and the other two, if three finder
    centres (rows of ``pts``, outer sides ``sizes``) sit at the corners of a right
    isosceles triangle, the QR's finder layout (ISO/IEC 18004 §6.3.3), else None."""
    if sizes.max() > 1.8 * sizes.min():
        return None
    for k in range(3):
        corner, p, q = pts[k], pts[(k + 1) % 3], pts[(k + 2) % 3]
        u, v = p - corner, q - corner
        lu, lv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
        if min(lu, lv) < 2 * sizes.mean() or max(lu, lv) > 1.5 * min(lu, lv):
            continue
        if abs(float(np.dot(u, v))) / (lu * lv) > 0.35:  # not within ~70-110 degrees
            continue
        return corner, p, q
    return None


def _layout(finders: list[tuple[float, float, float]]) -> float:
    """The symbol side (in the scored image's px) if three finders form the corners of
    a right isosceles triangle (the QR's finder layout), else 0."""
    best = 0.0
    for a, b, c in itertools.combinations(finders[:8], 3):
        sizes = np.array([a[2], b[2], c[2]])
        found = finder_triangle(np.array([a[:2], b[:2], c[:2]]), sizes)
        if found is None:
            continue
        corner, p, q = found
        side = (float(np.linalg.norm(p - corner)) + float(np.linalg.norm(q - corner))) / 2
        # centre to centre is (side - 7 modules); the finder's outer side is 7 modules
        best = max(best, side + sizes.mean())
    return best


def score_region(grey: np.ndarray, region: Region) -> Scored:
    """Measure one region of a grey frame."""
    crop = region.expanded(0.1, grey.shape).crop(grey)
    if crop.size == 0 or min(crop.shape[:2]) < 8:
        return Scored(region, 0.0)
    scale = min(1.0, SCORE_SIDE / max(crop.shape[:2]))
    small = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else crop
    lo, hi = np.percentile(small, (5, 95))
    contrast = float(hi - lo)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
    jxx, jyy, jxy = float((gx * gx).mean()), float((gy * gy).mean()), float((gx * gy).mean())
    trace = jxx + jyy
    coherence = float(np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / trace) if trace > 0 else 1.0
    block = max(3, int(min(small.shape[:2]) / 6) | 1)
    binary = cv2.adaptiveThreshold(small, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 2)
    finders = _finders(binary)
    layout = _layout(finders)
    score = region.score * (1.0 - coherence) * min(contrast / 120.0, 1.0)
    score += 0.15 * min(len(finders), 3) + (0.5 if layout else 0.0)
    return Scored(region, score, len(finders), bool(layout), coherence, contrast, layout / scale if layout else 0.0)


def rank(grey: np.ndarray, regions: list[Region]) -> list[Scored]:
    """Regions scored and sorted, most code-like first."""
    scored = [score_region(grey, r) for r in regions]
    scored.sort(key=lambda s: s.score, reverse=True)
    return scored


#: below this a region without finder patterns is not worth the ladder (bench/qr/desk.py)
MIN_SCORE = 0.05
#: structure-tensor coherence above which a region is stripes or text lines
MAX_COHERENCE = 0.6
#: the shorter side (px) below which code-like texture alone, with no finder pattern,
#: is not worth the ladder: the CCCD code has 41+ modules, and below ~1.2 px a module
#: no step of the ladder recovers it (desk corpus: the smallest code read is 60 px);
#: without this, a patch of card print made a frame with no code spend the whole budget
MIN_TEXTURE_SIDE = 48


def plausible(scored: Scored) -> bool:
    """Code-like: finder evidence, or code-like texture (what a hint is measured on)."""
    if scored.finders >= 2 or scored.geometry:
        return True
    return scored.score >= MIN_SCORE and scored.coherence <= MAX_COHERENCE


def worth_the_ladder(scored: Scored) -> bool:
    """Plausible, and either with finder evidence or large enough to hold a code that
    some step of the ladder could read (MIN_TEXTURE_SIDE). A smaller patch still gets
    its hint ("move closer"), without spending the budget."""
    if scored.finders >= 2 or scored.geometry:
        return True
    return plausible(scored) and min(scored.region.w, scored.region.h) >= MIN_TEXTURE_SIDE
