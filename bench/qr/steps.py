"""Success per millisecond of each ladder step, the measurement behind the order of
``agent.qr.ladder.STEPS``.

    .venv/bin/python -m bench.qr.steps [--per-cell 2] [--geometries webcam720,phone2560] [--cache DIR]

On every desk frame (bench/qr/desk.py) and legacy-corpus frame (bench/qr/corpus.py, 60-100
px) that direct zxing misses, each step runs alone on the crop of the candidate region
that holds the code (as ``decode_frame`` ranks them; frames where no candidate holds it
are counted apart). Prints, per step: frames it decodes, frames only it decodes, mean
ms per crop, and decodes per 100 ms of its own cost.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time

import numpy as np

from agent.qr import decode, decoders, ladder
from agent.qr.enhance import to_grey
from bench.qr import corpus, desk


def _frames(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    for sample in desk.frames(seed=args.seed, per_cell=args.per_cell, geometries=tuple(args.geometries.split(","))):
        yield to_grey(sample.image), sample.payload, np.array(sample.quad), f"desk/{sample.condition}"
    if args.legacy:
        for sample in corpus.frames(seed=args.seed, per_cell=1, widths=(60, 80, 100)):
            yield to_grey(sample.image), sample.payload, np.array(sample.quad), f"legacy/{sample.condition}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-cell", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--geometries", default="webcam480,webcam720,webcam1080,phone2560")
    parser.add_argument("--no-legacy", dest="legacy", action="store_false")
    args = parser.parse_args(argv)
    wins: collections.Counter[str] = collections.Counter()
    only: collections.Counter[str] = collections.Counter()
    cost: dict[str, list[float]] = collections.defaultdict(list)
    counts: collections.Counter[str] = collections.Counter()
    solved: list[set[str]] = []
    for grey, payload, quad, _label in _frames(args):
        if not payload:
            continue
        counts["frames"] += 1
        if any(f.payload == payload for f in decoders.zxing(grey)):
            counts["direct"] += 1
            continue
        holder = _holder(grey, quad)
        if holder is None:
            counts["not located"] += 1
            continue
        won = []
        for step in ladder.STEPS:
            crop = ladder.Crop(grey, holder, 0)
            ok = False
            t0 = time.perf_counter()
            for payloads in ladder.attempts(step, crop):
                if payload in payloads:
                    ok = True
                    break
            cost[step.name].append((time.perf_counter() - t0) * 1000.0)
            if ok:
                wins[step.name] += 1
                won.append(step.name)
        solved.append(set(won))
        if len(won) == 1:
            only[won[0]] += 1
        counts["ladder frames"] += 1
        counts["some step"] += bool(won)
    print("| step | decodes | only this step | mean ms | decodes per 100 ms |")
    print("|---|---:|---:|---:|---:|")
    for step in sorted(ladder.STEP_NAMES, key=lambda s: -wins[s] / max(float(np.sum(cost[s])), 1e-6)):
        mean = float(np.mean(cost[step])) if cost[step] else 0.0
        total = float(np.sum(cost[step])) if cost[step] else 0.0
        print(f"| {step} | {wins[step]} | {only[step]} | {mean:.1f} | {100 * wins[step] / max(total, 1e-6):.2f} |")
    print("\ngreedy order (most newly decoded frames per ms first): " + " → ".join(_greedy(solved, cost)))
    print("\n" + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    return 0


def _greedy(solved: list[set[str]], cost: dict[str, list[float]]) -> list[str]:
    """Steps ordered by frames not yet decoded by earlier steps, per mean ms."""
    left = [frame for frame in solved if frame]
    order: list[str] = []
    steps = [s for s in ladder.STEP_NAMES if cost[s]]
    while steps:
        best = max(steps, key=lambda s: sum(s in f for f in left) / max(float(np.mean(cost[s])), 0.05))
        order.append(f"{best} (+{sum(best in f for f in left)})")
        left = [f for f in left if best not in f]
        steps.remove(best)
    return order


def _holder(grey: np.ndarray, quad: np.ndarray):  # type: ignore[no-untyped-def]
    """The best-ranked candidate whose box holds the code's centre and is not much
    larger than the code."""
    centre = quad.mean(axis=0)
    side = float(np.linalg.norm(quad[1] - quad[0]))
    for scored in decode._candidates(grey, decoders.zxing(grey, errors=True), 8):
        r = scored.region
        if r.x <= centre[0] <= r.x + r.w and r.y <= centre[1] <= r.y + r.h and max(r.w, r.h) < 3 * side:
            return scored
    return None


if __name__ == "__main__":
    sys.exit(main())
