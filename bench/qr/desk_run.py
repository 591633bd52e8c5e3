"""Decode rate, wrong decodes, latency and give-up time on the desk corpus
(bench/qr/desk.py), every decoder side by side.

    .venv/bin/python -m bench.qr.desk_run [--per-cell 3] [--decoders zxing,zbar,opencv,ours]
        [--conditions plain,rot45] [--geometries webcam720,phone2560] [--cache DIR] [--json out.json]

Each decoder gets the grey frame. A decode counts only when the exact payload bytes
come back; any other payload is a *wrong* decode (there is one code per frame). ``ours``
runs with the budget a real caller uses: the library default (60 ms) on webcam
frames, the CLI's file budget (``PHOTO_BUDGET_MS``) on phone photos. ``--cache`` keeps
the generated grey frames (.npz) so repeated runs skip the rendering.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from collections.abc import Callable, Iterator

import numpy as np

from agent.qr.decode import DEFAULT_BUDGET_MS, MIN_MODULE_PX, decode_frame
from agent.qr.enhance import to_grey
from bench.qr import desk

#: the budget `idagent qr decode` uses for files (agent/cli/qr.py)
PHOTO_BUDGET_MS = 250.0
#: the clock ours's budget is counted on (decode_frame's default: the thread's CPU time)
BUDGET_CLOCK = time.thread_time


def budget_for(geometry: str) -> float:
    return PHOTO_BUDGET_MS if geometry.startswith("phone") else DEFAULT_BUDGET_MS


class Frame:
    __slots__ = ("grey", "payload", "condition", "geometry", "width_px")

    def __init__(self, grey: np.ndarray, payload: bytes, condition: str, geometry: str, width_px: float) -> None:
        self.grey, self.payload, self.condition, self.geometry, self.width_px = (grey, payload, condition,
                                                                                   geometry, width_px)


def load_frames(seed: int, per_cell: int, conditions: tuple[str, ...], geometries: tuple[str, ...],
                cache: str | None) -> Iterator[Frame]:
    """The corpus frames as grey arrays, from the cache when it holds them."""
    for condition in conditions:
        for geometry in geometries:
            path = os.path.join(cache, f"{seed}-{condition}-{geometry}-{per_cell}.npz") if cache else ""
            if path and os.path.exists(path):
                data = np.load(path, allow_pickle=False)
                for i in range(len(data["widths"])):
                    yield Frame(data[f"g{i}"], bytes(data[f"p{i}"]), condition, geometry, float(data["widths"][i]))
                continue
            made = [Frame(to_grey(s.image), s.payload, condition, geometry, s.width_px)
                    for s in desk.frames(seed=seed, per_cell=per_cell, conditions=(condition,),
                                         geometries=(geometry,))]
            if path:
                os.makedirs(cache or ".", exist_ok=True)
                arrays = {f"g{i}": f.grey for i, f in enumerate(made)}
                arrays.update({f"p{i}": np.frombuffer(f.payload, np.uint8) for i, f in enumerate(made)})
                np.savez(path, widths=np.array([f.width_px for f in made]), **arrays)  # type: ignore[arg-type]
            yield from made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-cell", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--decoders", default="zxing,zbar,opencv,ours")
    parser.add_argument("--conditions", default=",".join(desk.CONDITIONS + (desk.NO_CODE,)))
    parser.add_argument("--geometries", default=",".join(desk.GEOMETRIES))
    parser.add_argument("--cache", metavar="DIR", help="keep generated frames here (.npz)")
    parser.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    parser.add_argument("--wall-budget", action="store_true",
                        help="count ours's budget on the wall clock (as before issue 12) instead of its CPU time")
    parser.add_argument("--without", default="", metavar="CHANGES",
                        help="measure ours without issue-12 changes: " + ",".join(ABLATIONS))
    args = parser.parse_args(argv)
    if args.wall_budget:
        global BUDGET_CLOCK
        BUDGET_CLOCK = time.perf_counter
    for change in filter(None, args.without.split(",")):
        ABLATIONS[change]()
    names = args.decoders.split(",")
    conditions = tuple(args.conditions.split(","))
    geometries = tuple(args.geometries.split(","))
    decoders = {name: _payloads(name) for name in names}
    hits: dict[tuple[str, str, str], list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    times: dict[tuple[str, str, str], list[float]] = collections.defaultdict(list)
    cpu: dict[tuple[str, str, str], list[float]] = collections.defaultdict(list)
    stages: collections.Counter[str] = collections.Counter()
    hints: collections.Counter[tuple[str, str]] = collections.Counter()
    started = time.monotonic()
    for frame in load_frames(args.seed, args.per_cell, conditions, geometries, args.cache):
        kind = "nocode" if frame.condition == desk.NO_CODE else "code"
        for name, fn in decoders.items():
            t0, c0 = time.perf_counter(), time.process_time()
            got, stage = fn(frame.grey, frame.geometry)
            times[(name, frame.geometry, kind)].append((time.perf_counter() - t0) * 1000.0)
            cpu[(name, frame.geometry, kind)].append((time.process_time() - c0) * 1000.0)
            cell = hits[(name, frame.condition, frame.geometry)]
            cell[0] += int(bool(frame.payload) and frame.payload in got)
            cell[1] += 1
            cell[2] += sum(1 for p in got if p != frame.payload)
            if name == "ours" and kind == "code":
                stages[stage or "-"] += 1
                if stage.startswith("-") and frame.width_px:
                    # the hint against the code's real size (the card's 45 modules)
                    small = frame.width_px / 45 < MIN_MODULE_PX
                    hints[(("under " if small else "over ") + f"{MIN_MODULE_PX} px/module", stage[1:])] += 1
    print(_table(names, conditions, geometries, hits))
    print()
    print(_latency(names, times, cpu))
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (2 cores)")
    if "ours" in names:
        print("\nours, decoded at stage (a miss: - and the hint's reason): "
              + ", ".join(f"{k} {v}" for k, v in stages.most_common()))
        print("ours, hints on missed frames by the code's real module size: "
              + ", ".join(f"{size}: {reason} {count}" for (size, reason), count in sorted(hints.items())))
    print(f"\nseed {args.seed}, {args.per_cell} per cell, {time.monotonic() - started:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"hits": {"/".join(k): v for k, v in hits.items()},
                       "latency_ms": {"/".join(k): v for k, v in times.items()},
                       "cpu_ms": {"/".join(k): v for k, v in cpu.items()},
                       "stages": dict(stages)}, out)
    return 0


def _payloads(name: str):  # type: ignore[no-untyped-def]
    """name → fn(grey, geometry) -> (payloads, stage)."""
    if name == "ours":
        def ours(grey: np.ndarray, geometry: str) -> tuple[tuple[bytes, ...], str]:
            result = decode_frame(grey, budget_ms=budget_for(geometry), clock=BUDGET_CLOCK)
            # a miss is counted under its hint's reason ("-too_small"): what the clerk was told
            return result.payloads, result.stage or f"-{result.reason}"
        return ours
    if name == "wechat":
        raise SystemExit("wechat: use bench.qr.run (needs an OpenCV 4.x contrib venv)")
    from agent.qr import decoders

    fn = decoders.LIBRARIES[name]

    def library(grey: np.ndarray, geometry: str) -> tuple[tuple[bytes, ...], str]:
        return tuple(f.payload for f in fn(grey) if f.payload is not None), name
    return library


def _pct(ok: int, total: int) -> str:
    return f"{100 * ok / total:.0f}%" if total else "-"


def _table(names: list[str], conditions: tuple[str, ...], geometries: tuple[str, ...],
           hits: dict[tuple[str, str, str], list[int]]) -> str:
    lines = ["| condition | geometry | " + " | ".join(names) + " |", "|---|---|" + "---:|" * len(names)]
    totals: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    per_geometry: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0])
    for condition in conditions:
        for geometry in geometries:
            cells = []
            for name in names:
                ok, total, wrong = hits.get((name, condition, geometry), [0, 0, 0])
                if condition == desk.NO_CODE:
                    cells.append(f"{wrong} wrong" if wrong else "ok")
                    totals[name][2] += wrong
                    continue
                totals[name][0] += ok
                totals[name][1] += total
                totals[name][2] += wrong
                per_geometry[(name, geometry)][0] += ok
                per_geometry[(name, geometry)][1] += total
                cells.append(_pct(ok, total) + (f" ({wrong} wrong)" if wrong else ""))
            lines.append(f"| {condition} | {geometry} | " + " | ".join(cells) + " |")
    for geometry in geometries:
        cells = [_pct(*per_geometry[(name, geometry)]) for name in names]
        lines.append(f"| **all** | {geometry} | " + " | ".join(cells) + " |")
    lines.append("| **all** | **all** | " + " | ".join(
        f"**{_pct(totals[n][0], totals[n][1])}** ({totals[n][0]}/{totals[n][1]}, {totals[n][2]} wrong)"
        for n in names) + " |")
    return "\n".join(lines)


def _latency(names: list[str], times: dict[tuple[str, str, str], list[float]],
             cpu: dict[tuple[str, str, str], list[float]]) -> str:
    """Wall-clock and CPU time (the process's, all threads): on a shared machine the
    wall clock includes waiting for a core, the CPU time does not."""
    lines = ["| decoder | geometry | frames | median ms | p95 ms | max ms | CPU p95 ms |",
             "|---|---|---|---:|---:|---:|---:|"]
    for name in names:
        for (who, geometry, kind), values in sorted(times.items()):
            if who != name:
                continue
            arr = np.array(values)
            label = "with code" if kind == "code" else "no code"
            lines.append(f"| {name} | {geometry} | {label} | {np.median(arr):.1f} | {np.percentile(arr, 95):.1f} | "
                         f"{arr.max():.1f} | {np.percentile(cpu[(who, geometry, kind)], 95):.1f} |")
    return "\n".join(lines)


def _without_ranking() -> None:
    """Density order as before issue 12, every region tried."""
    from agent.qr import regions

    regions.rank = lambda grey, found: [regions.Scored(r, r.score, coherence=0.0, contrast=255.0) for r in found]
    regions.plausible = lambda scored: True
    regions.worth_the_ladder = lambda scored: True


def _without_steps(*names: str) -> Callable[[], None]:
    def drop() -> None:
        from agent.qr import ladder

        ladder.STEPS = tuple(s for s in ladder.STEPS if s.name not in names)
    return drop


def _top3() -> None:
    from agent.qr import decode

    original = decode._candidates
    decode._candidates = lambda grey, found, limit: original(grey, found, 3)


def _without_late() -> None:
    from agent.qr import decode

    decode._whole_frame_late = lambda *args: None


ABLATIONS: dict[str, Callable[[], None]] = {
    "ranking": _without_ranking, "all-regions": _top3, "zbar": _without_steps("zbar"),
    "down": _without_steps("down0.75"), "normalize": _without_steps("normalize"), "late": _without_late,
}


if __name__ == "__main__":
    sys.exit(main())
