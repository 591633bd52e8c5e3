"""The enhancement ladder: what ``decode_frame`` tries on each candidate region, and
in which order across regions.

A :class:`Crop` is one region of the frame (with a margin) and the intermediate images
its steps share; a :class:`Step` turns a crop into images for one library; ``STEPS`` is
the ladder with each step's measured success per millisecond; ``schedule`` orders the
(step, region) pairs by expected success per millisecond. Split out of ``decode.py``,
which keeps the frame-level flow (first pass, candidates, budget, result, diagnosis).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from agent.qr import decoders, enhance, grid
from agent.qr import regions as regions_mod

#: the upscaled crop's symbol width: ~4.5 px per module for the card's 45-53 modules
TARGET_SIDE_PX = 240.0
MAX_UPSCALE = 6.0


class Crop:
    """One candidate region's crop and its intermediate images, computed on demand and
    shared between steps (the Lanczos upscale feeds four of them)."""

    def __init__(self, grey: np.ndarray, scored: regions_mod.Scored, rank: int) -> None:
        self.scored, self.rank = scored, rank
        self.side = scored.side
        box = scored.region.expanded(0.25, grey.shape)
        if scored.finder_side and scored.finder_side > scored.region.side * 1.1:
            # the finders say the code is larger than the box: grow the crop to hold it
            grow = (scored.finder_side - scored.region.side) / max(scored.region.side, 1.0) + 0.25
            box = scored.region.expanded(grow, grey.shape)
        self.crop = box.crop(grey)
        self.factor = min(MAX_UPSCALE, max(TARGET_SIDE_PX / max(self.side, 1.0), 0.5))
        self.module_px = self.factor * self.side / 50.0
        self._cache: dict[str, np.ndarray] = {}

    def get(self, name: str, make: Callable[[], np.ndarray]) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = make()
        return self._cache[name]

    @property
    def lanczos(self) -> np.ndarray:
        return self.get("lanczos", lambda: enhance.rescale(self.crop, self.factor, lanczos=True))

    @property
    def sharp(self) -> np.ndarray:
        return self.get("sharp", lambda: enhance.unsharp(self.lanczos, max(0.8, self.module_px * 0.7), 1.5))


def _upscale(c: Crop) -> Iterator[np.ndarray]:
    yield c.get("cubic", lambda: enhance.rescale(c.crop, c.factor))


def _lanczos_otsu(c: Crop) -> Iterator[np.ndarray]:
    yield enhance.otsu(c.lanczos)


def _unsharp_otsu(c: Crop) -> Iterator[np.ndarray]:
    yield enhance.otsu(c.sharp)


def _normalize(c: Crop) -> Iterator[np.ndarray]:
    """Local contrast normalization: sleeve glare streaks and hot spots add light that
    pulls any global threshold off (issue 12)."""
    yield enhance.local_normalize(c.lanczos, max(3, int(c.module_px * 2.5)))


def _down(c: Crop) -> Iterator[np.ndarray]:
    """0.75x of the crop for large codes: zxing's local binarizer then sees a wider
    neighbourhood in modules (issue 12: recovered a real photo with a glare streak)."""
    if c.side >= 100:
        yield enhance.rescale(c.crop, 0.75)


def _deblur(c: Crop) -> Iterator[np.ndarray]:
    for sigma in (1.0, 1.4):
        deblurred = enhance.rescale(enhance.wiener_deblur(c.crop, sigma), c.factor, lanczos=True)
        yield deblurred
        yield enhance.otsu(deblurred)


def _clahe_adaptive(c: Crop) -> Iterator[np.ndarray]:
    yield enhance.adaptive(enhance.clahe(c.lanczos), int(c.module_px * 5))


def _thresholds(c: Crop) -> Iterator[np.ndarray]:
    yield from enhance.thresholds(c.sharp)


def _upscale_x2(c: Crop) -> Iterator[np.ndarray]:
    # twice the scale (~9 px per module): zxing's local binarizer then sees fewer
    # modules per window, which reads glared and JPEG-blocky codes it missed at 4.5
    # (bench/qr: glare 50 px 2/16 → 7/16, 60 px 13/16 → 16/16)
    big = enhance.rescale(c.crop, min(2 * c.factor, 2 * MAX_UPSCALE), lanczos=True)
    yield big
    yield enhance.otsu(enhance.unsharp(big, max(0.8, c.module_px * 1.4), 1.5))


def _zbar_image(c: Crop) -> Iterator[np.ndarray]:
    """ZBar (binary mode) on the region, upscaled: its own binarizer sometimes reads
    what zxing's did not (issue 12: on every region, not only the first)."""
    # at the ladder's scale (~4.5 px per module) also for large codes: ZBar's cost grows
    # with the pixels, and a full-size photo crop cost ~54 ms per region (bench/qr)
    yield c.get("cubic", lambda: enhance.rescale(c.crop, c.factor))


def _grid(c: Crop) -> list[bytes]:
    """Our own grid reading (agent/qr/grid.py): finder patterns by template, corners
    fitted to the function patterns, modules sampled, Reed-Solomon with the glare's
    erasures (agent/qr/symbol.py). For codes whose finder patterns no binarizer keeps
    (webcam codes of 1.2-2 px per module) and bands of modules lost to glare."""
    return grid.decode(c.crop, c.side / GRID_MODULES)


def _no_images(c: Crop) -> Iterator[np.ndarray]:
    return iter(())


#: modules across the card's code (version 7) with part of its quiet zone, for the
#: module size guessed from a region's side
GRID_MODULES = 47.0


@dataclass(frozen=True)
class Step:
    name: str
    images: Callable[[Crop], Iterator[np.ndarray]]
    library: str = "zxing"
    #: frames it newly decoded per ms of its cost, in ladder order (bench/qr/steps.py
    #: greedy figures); a floor keeps cheap, rarely useful steps in play
    rate: float = 0.01
    #: a step that reads the crop itself instead of handing images to a library
    reader: Callable[[Crop], list[bytes]] | None = None
    #: CPU ms one try costs, for a step too heavy to start with less budget left (the
    #: budget is checked between tries: a 14-35 ms try begun at 55 ms overran it)
    cost_ms: float = 0.0


#: the grid step's cost per crop: 14 ms mean (bench.qr.steps), 15-35 ms on desk webcam
#: crops (two corner fits)
GRID_COST_MS = 15.0
#: the grid step's place: after deblur (0.086), before thresholds (0.03). Measured:
#: bench.qr.steps (seed 20261203, 87 ladder frames) it reads 20 at 14 ms a crop, none
#: that no other step reads; bench.qr.desk_run (seed 20261202, 165 frames) it reads
#: the 2 that every other step missed
GRID_RATE = 0.05


#: the ladder. Each (step, region) pair is scheduled by ``rate`` times the region's
#: weight (``schedule``). Order and rates: greedy by frames newly decoded per
#: millisecond, measured with bench/qr/steps.py on the 95 frames of bench/qr/desk.py and
#: bench/qr/corpus.py that direct zxing missed (bench/qr/README.md): upscale +29,
#: unsharp+otsu +10, clahe+adaptive +6, deblur +5, thresholds +1; the rest added none
#: there but read codes the earlier steps miss on other frames (upscale x2: legacy
#: glare 50-60 px), so they run last, while budget is left.
STEPS: tuple[Step, ...] = (
    Step("upscale", _upscale, rate=29 / 8.5),
    Step("unsharp+otsu", _unsharp_otsu, rate=10 / 24.6),
    Step("clahe+adaptive", _clahe_adaptive, rate=6 / 27.3),
    Step("deblur", _deblur, rate=5 / 57.9),
    Step("thresholds", _thresholds, rate=1 / 33.4),
    Step("lanczos+otsu", _lanczos_otsu),
    Step("normalize", _normalize),
    Step("down0.75", _down),
    Step("zbar", _zbar_image, "zbar"),
    Step("upscale x2", _upscale_x2),
    Step("grid", _no_images, "ours", rate=GRID_RATE, reader=_grid, cost_ms=GRID_COST_MS),
)
STEP_NAMES = tuple(step.name for step in STEPS)


def attempts(step: Step, crop: Crop) -> Iterator[list[bytes]]:
    """Each try of ``step`` on ``crop``: the payloads it read (empty when none)."""
    if step.reader is not None:
        yield step.reader(crop)
        return
    for image in step.images(crop):
        yield run_step(step, image)


def run_step(step: Step, image: np.ndarray) -> list[bytes]:
    fn = decoders.zbar if step.library == "zbar" else (lambda g: decoders.zxing(g, downscale=False))
    return [f.payload for f in fn(image) if f.payload is not None]


def schedule(crops: Sequence[Crop]) -> list[tuple[Step, Crop]]:
    """(step, region) pairs by expected success per ms: the step's measured rate times
    how likely the region is the code (its score relative to the best one's, at least
    MIN_REGION_WEIGHT). The best region gets its cheap and its heavy steps early, a
    less code-like one its cheap steps before the best one's heaviest; ties keep
    ladder order, then rank."""
    if not crops:
        return []
    top = max(crops[0].scored.score, 1e-6)
    pairs = []
    for c in crops:
        weight = min(1.0, max(MIN_REGION_WEIGHT, c.scored.score / top))
        for order, step in enumerate(STEPS):
            pairs.append((-weight * step.rate, order, c.rank, step, c))
    pairs.sort(key=lambda p: p[:3])
    return [(p[3], p[4]) for p in pairs]


#: the weight of the least code-like plausible region in the schedule
MIN_REGION_WEIGHT = 0.05
