"""The module grid of a small or glared code, read by us: find the symbol's corners from
its finder patterns, fit them to the function patterns, sample every module.

zxing-cpp and ZBar binarize the image first and then look for the grid; below ~2 px per
module (a card code in a webcam frame) or under a sleeve's glare band, the binarized
image has lost the finder patterns' proportions or a band of modules, and they give up.
Here the grid comes first:

1. ``finder_quads``: finder patterns (ISO/IEC 18004:2015 §6.3.3) found by correlating
   the crop with a ring template at the module size the region suggests (a finder seen
   at any rotation, blurred: nested contours of a binarized crop gave a finder triple
   on 3 of the 46 desk frames the ladder missed, the template found all three finders
   among its four best peaks on 21 of 24 webcam frames); three peaks at the corners of a right
   isosceles triangle give the top left, top right and bottom left corners, the module
   size and so the version; the fourth corner completes the parallelogram.
2. ``refine``: the four corners are moved (coordinate descent, half a module down to a
   twentieth) to maximize the correlation between the sampled module centres and the
   symbol's function patterns (finders, separators, timing, alignment patterns, dark
   module: ~450 known modules in a version 7 symbol), which also takes up the
   perspective the parallelogram missed.
3. ``read``: every module centre sampled (bilinear) on the crop sharpened in the frame's
   own pixels (unsharp mask of ~0.6 module: the camera's softness spreads each module
   into its neighbours; measured on the desk corpus misses with their true corners, the
   module error rate fell from 13 % to 6.5 % on defocus, 5.5 % to 0.4 % on motion), then
   thresholded against the local mean of a 9-module window. Modules whose neighbourhood
   has no contrast left (saturated glare) are marked erased.

``decode`` hands each grid to ``agent.qr.symbol`` (Reed-Solomon with the glare's
erasures: a streak across the code is lost modules at known places, which the code
corrects at twice the rate of errors) and, without erasures, as a clean symbol
(``render``) to zxing-cpp in pure mode. Both check Reed-Solomon: a grid sampled wrong
does not decode, it does not decode wrong.

Measured on the desk corpus (bench/qr/desk_run.py) in the closing note of issue 12.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from agent.qr import decoders, regions, symbol

#: the versions a card code can have (its payload: 100-200 bytes, ECC M or L)
VERSIONS = range(2, 16)
#: window (modules) of the local threshold
THRESHOLD_WINDOW = 9
#: unsharp amounts tried on the frame before sampling (0: none)
SHARPEN = (2.0, 0.0)


@dataclass(frozen=True)
class Quad:
    """The symbol's module-grid corners in crop px: top left, top right, bottom right,
    bottom left (as read: the top left finder first), and its version."""

    corners: np.ndarray
    version: int

    @property
    def n(self) -> int:
        return 17 + 4 * self.version

    @property
    def module_px(self) -> float:
        c = self.corners
        return float(np.linalg.norm(c[1] - c[0]) + np.linalg.norm(c[3] - c[0])) / (2 * self.n)


@lru_cache(maxsize=16)
def function_modules(version: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, dark) of the modules whose value the standard fixes: the three
    finder patterns with their separators, the timing patterns, the alignment patterns
    and the dark module (§6.3.3-6.3.6, §7.9.1)."""
    n = 17 + 4 * version
    known: dict[tuple[int, int], float] = {}
    for r0, c0 in ((0, 0), (0, n - 7), (n - 7, 0)):
        for r, c in itertools.product(range(-1, 8), repeat=2):
            if 0 <= r0 + r < n and 0 <= c0 + c < n:
                ring = max(abs(r - 3), abs(c - 3))
                known[(r0 + r, c0 + c)] = 1.0 if ring in (0, 1, 3) else 0.0
    for i in range(8, n - 8):
        known[(6, i)] = known[(i, 6)] = float(i % 2 == 0)
    centres = symbol.alignment_positions(version)
    corners = {(6, 6), (6, n - 7), (n - 7, 6)}
    for ar, ac in itertools.product(centres, repeat=2):
        if (ar, ac) in corners:
            continue
        for r, c in itertools.product(range(-2, 3), repeat=2):
            known[(ar + r, ac + c)] = 1.0 if max(abs(r), abs(c)) != 1 else 0.0
    known[(n - 8, 8)] = 1.0
    keys = sorted(known)
    return (np.array([k[0] for k in keys]), np.array([k[1] for k in keys]),
            np.array([known[k] for k in keys], np.float32))


def _centres(corners: np.ndarray, n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    grid = np.array([[0, 0], [n, 0], [n, n], [0, n]], np.float32)
    hom = cv2.getPerspectiveTransform(grid, corners.astype(np.float32))
    pts = np.stack([cols + 0.5, rows + 0.5], -1).astype(np.float32)[None]
    out: np.ndarray = cv2.perspectiveTransform(pts, hom)[0]
    return out


def sample(image: np.ndarray, corners: np.ndarray, n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear values of ``image`` (float32) at the centres of the given modules."""
    xy = _centres(corners, n, rows, cols)
    mx = np.ascontiguousarray(xy[:, 0].reshape(1, -1))
    my = np.ascontiguousarray(xy[:, 1].reshape(1, -1))
    values: np.ndarray = cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]
    return values


def _fit(values: np.ndarray, dark: np.ndarray) -> float:
    """Correlation of the sampled values with the function patterns (dark is low grey,
    so the sign is flipped): 1 for a perfect fit."""
    v = values - values.mean()
    e = dark - dark.mean()
    norm = float(np.sqrt((v * v).sum() * (e * e).sum()))
    return float(-(v * e).sum()) / norm if norm > 0 else 0.0


def refine(image: np.ndarray, quad: Quad, *, max_evals: int = 160) -> tuple[Quad, float]:
    """The corners moved to fit the function patterns best, and that fit (0..1)."""
    rows, cols, dark = function_modules(quad.version)
    n = quad.n
    corners = quad.corners.astype(np.float64).copy()
    best = _fit(sample(image, corners, n, rows, cols), dark)
    step, evals = 0.5 * quad.module_px, 0
    while step > 0.05 * quad.module_px and evals < max_evals:
        improved = False
        for k, axis, sign in itertools.product(range(4), range(2), (1.0, -1.0)):
            trial = corners.copy()
            trial[k, axis] += sign * step
            score = _fit(sample(image, trial, n, rows, cols), dark)
            evals += 1
            if score > best:
                best, corners, improved = score, trial, True
        if not improved:
            step /= 2
    return Quad(corners, quad.version), best


def ring_template(module_px: float) -> np.ndarray:
    """A finder pattern seen at any rotation: dark core (radius 1.5 modules), light
    ring, dark ring (to 3.5), light separator (to 4.5). Correlated with a blurred crop
    it peaks on finder patterns where binarizing found none (desk corpus webcam frames,
    49-122 px codes: all three finders in the four best peaks on 21 of 24 frames)."""
    r = int(np.ceil(4.5 * module_px))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    d = np.hypot(xx, yy) / module_px
    out: np.ndarray = np.where((d < 1.5) | ((d >= 2.5) & (d < 3.5)), 0.0, 1.0).astype(np.float32)
    return out


#: finder-template correlation below this is not a finder pattern
MIN_PEAK = 0.3
#: finder candidates kept per module size
PEAKS = 6


def finder_centres(image: np.ndarray, module_px: float) -> list[tuple[float, float, float]]:
    """Finder-pattern candidates (x, y, correlation) in ``image`` (float32), best first."""
    tpl = ring_template(module_px)
    if image.shape[0] <= tpl.shape[0] or image.shape[1] <= tpl.shape[1]:
        return []
    resp = cv2.matchTemplate(image, tpl, cv2.TM_CCOEFF_NORMED)
    off = tpl.shape[0] // 2
    out = []
    for _ in range(PEAKS):
        _, value, _, (x, y) = cv2.minMaxLoc(resp)
        if value < MIN_PEAK:
            break
        out.append((float(x + off), float(y + off), float(value)))
        cv2.circle(resp, (x, y), int(5 * module_px), -1.0, -1)
    return out


def finder_quads(image: np.ndarray, module_px_guess: float) -> list[Quad]:
    """Candidate symbol quads (in ``image`` px) from finder-pattern triples, best
    correlated first."""
    quads = []
    for scale in MODULE_SCALES:
        module = module_px_guess * scale
        found = finder_centres(image, module)
        triples = sorted(itertools.combinations(found, 3), key=lambda t: -sum(p[2] for p in t))
        for a, b, c in triples:
            quad = _triple(np.array([a[:2], b[:2], c[:2]], np.float64), np.full(3, 7.0 * module))
            if quad is not None:
                quads.append(quad)
    return quads


#: the module size guessed from the region is off by the region's margin: try these
MODULE_SCALES = (1.0, 0.8)


def _triple(pts: np.ndarray, sizes: np.ndarray) -> Quad | None:
    """Three finder centres → the quad, if they sit at a right isosceles triangle."""
    found = regions.finder_triangle(pts, sizes)
    if found is None:
        return None
    tl, p, q = found
    u, v = p - tl, q - tl
    # image y grows down: the top right finder is clockwise from the bottom left
    tr, bl = (p, q) if u[0] * v[1] - u[1] * v[0] > 0 else (q, p)
    module = sizes.mean() / 7.0
    span = (float(np.linalg.norm(u)) + float(np.linalg.norm(v))) / 2 / module + 7  # centres are n - 7 apart
    version = int(round((span - 17) / 4))
    if version not in VERSIONS:
        return None
    n = 17 + 4 * version
    ex, ey = (tr - tl) / (n - 7), (bl - tl) / (n - 7)  # one module along each side
    c_tl = tl - 3.5 * ex - 3.5 * ey
    c_tr = tr + 3.5 * ex - 3.5 * ey
    c_bl = bl - 3.5 * ex + 3.5 * ey
    return Quad(np.array([c_tl, c_tr, c_tr + c_bl - c_tl, c_bl]), version)


def read(image: np.ndarray, quad: Quad, amount: float) -> tuple[np.ndarray, np.ndarray]:
    """(dark, erased) n x n module arrays from the (refined) quad, the image sharpened
    by ``amount`` (unsharp mask of ~0.6 module) first."""
    n = quad.n
    if amount > 0:
        sigma = max(0.5, 0.6 * quad.module_px)
        image = cv2.addWeighted(image, 1.0 + amount, cv2.GaussianBlur(image, (0, 0), sigma), -amount, 0)
    rr, cc = np.mgrid[0:n, 0:n]
    values = sample(image, quad.corners, n, rr.ravel(), cc.ravel()).reshape(n, n)
    local = cv2.blur(values, (THRESHOLD_WINDOW, THRESHOLD_WINDOW), borderType=cv2.BORDER_REFLECT)
    dark = values < local
    window = np.ones((5, 5), np.uint8)
    span = cv2.dilate(values, window) - cv2.erode(values, window)
    spread = float(np.percentile(values, 95) - np.percentile(values, 5))
    erased = span < 0.25 * spread
    return dark, erased


def render(dark: np.ndarray, module_px: int = 4) -> np.ndarray:
    """A clean symbol image (white quiet zone of 4 modules) for a decoder in pure mode."""
    n = dark.shape[0]
    modules = np.full((n + 8, n + 8), 255, np.uint8)
    modules[4:n + 4, 4:n + 4] = np.where(dark, 0, 255)
    out: np.ndarray = cv2.resize(modules, None, fx=module_px, fy=module_px, interpolation=cv2.INTER_NEAREST)
    return out


#: refined fits below this are not a symbol's grid (desk corpus: true grids 0.45-0.99)
MIN_FIT = 0.3


def symbols(crop: np.ndarray, module_px_guess: float, *, limit: int = 2) -> list[tuple[np.ndarray, np.ndarray]]:
    """The crop's best module grids as (dark, erased) arrays: the finder quads ranked by
    their fit as found (one sample each), the ``limit`` best refined, and each refined
    grid that fits read once per sharpening amount."""
    image = crop.astype(np.float32)
    ranked = []
    for quad in finder_quads(image, module_px_guess):
        rows, cols, dark = function_modules(quad.version)
        ranked.append((_fit(sample(image, quad.corners, quad.n, rows, cols), dark), quad))
    ranked.sort(key=lambda f: -f[0])
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for _, quad in ranked[:limit]:
        refined, fit = refine(image, quad)
        if fit >= MIN_FIT:
            out.extend(read(image, refined, amount) for amount in SHARPEN)
    return out


def decode(crop: np.ndarray, module_px_guess: float) -> list[bytes]:
    """Payloads read from the crop's grids: ``agent.qr.symbol`` with the erasures first
    (it also reads the grid as it is when nothing is erased), zxing-cpp in pure mode on
    the clean symbol when that fails."""
    for dark, erased in symbols(crop, module_px_guess):
        for erasures in ((erased,) if erased.any() else ()) + (None,):
            read = symbol.decode_modules(dark, erasures)
            if read is not None:
                return [read.payload]
        found = [f.payload for f in decoders.zxing(render(dark), pure=True, downscale=False) if f.payload is not None]
        if found:
            return found
    return []
