"""Shared helpers of the robustness suite (issue 8): the fuzz target table
(fuzz/fuzz_targets.py, loaded from its file so that fuzz/ need not be a package), a
per-input work limit (CPU time of the thread, with the fault library's watchdog,
``agent.sim.faults``, for hangs) and a memory meter."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from agent.sim import faults

ROOT = Path(__file__).resolve().parents[2]


def load_module(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def fuzz_targets() -> ModuleType:
    return load_module("fuzz_targets", ROOT / "fuzz" / "fuzz_targets.py")


def time_limit(seconds: float) -> contextlib.AbstractContextManager[None]:
    """Interrupt the block after ``seconds`` (SIGALRM; main thread only): the fault
    matrix's watchdog, whose ``Hang`` counts as a hang in the parser contract too."""
    return faults.watchdog(seconds)


@contextlib.contextmanager
def work_limit(cpu_seconds: float, wall_seconds: float = 60.0) -> Iterator[None]:
    """The block may use at most ``cpu_seconds`` of CPU time of this thread (checked
    when it ends) and is interrupted as a hang after ``wall_seconds``. Work is counted
    in this thread's CPU time, which other processes on a busy machine do not inflate
    (its wall-clock time measures them too); the wall-clock bound only ends a block
    that never would."""
    with time_limit(wall_seconds):
        started = time.thread_time()
        yield
        used = time.thread_time() - started
    assert used < cpu_seconds, f"{used:.2f} s of CPU time (bound {cpu_seconds} s)"


@contextlib.contextmanager
def peak_memory() -> Iterator[list[int]]:
    """Python-heap peak (bytes) of the block, appended to the yielded list at exit.
    tracemalloc sees every allocation made through Python's allocators (bytes,
    bytearray, lists ...), which is where a parser trusting a length field would
    allocate; C libraries' own mallocs (Pillow's decoders) are not seen."""
    out: list[int] = []
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        yield out
    finally:
        out.append(tracemalloc.get_traced_memory()[1] - base)
        if not was_tracing:
            tracemalloc.stop()
