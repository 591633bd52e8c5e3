"""What the benches measure with: the process's resident memory and nearest-rank
percentiles (one definition, so the benches' p50/p95 figures mean the same thing)."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def rss_kib() -> int:
    """This process's resident set size (VmRSS), KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


@dataclass
class MemoryRun:
    """RSS (KiB) at rest and after the runs, with marks (runs done, RSS) along the way,
    and the objects the garbage collector tracks at rest and after."""

    rest: int
    after: int
    marks: list[tuple[int, int]]
    wall_s: float
    objects_rest: int
    objects_after: int


def memory_over(count: int, one: Callable[[int], None]) -> MemoryRun:
    """Call ``one(i)`` for i = 1..count; RSS at rest first and after the last, each
    after ``gc.collect()`` and a moment to settle, with five marks in between. What
    the caller measures per run must live in storage allocated before this is called."""
    gc.collect()
    time.sleep(0.5)
    rest = rss_kib()
    objects_rest = len(gc.get_objects())
    marks = [(0, rest)]
    started = time.monotonic()
    for i in range(1, count + 1):
        one(i)
        if i % max(1, count // 5) == 0:
            gc.collect()
            marks.append((i, rss_kib()))
    wall = time.monotonic() - started
    gc.collect()
    time.sleep(0.5)
    return MemoryRun(rest, rss_kib(), marks, wall, objects_rest, len(gc.get_objects()))
