"""Every input that once crashed a parser (found by fuzz/run.py, kept in
fuzz/crashers/<target>-<hash>.bin after the fix) is replayed through its target: it
must now end in a typed error or a result, quickly, without allocating much."""

from __future__ import annotations

from pathlib import Path

import pytest
from robust_helpers import ROOT, fuzz_targets, peak_memory, work_limit

CRASHERS = sorted((ROOT / "fuzz" / "crashers").glob("*.bin"))


def test_there_are_kept_crashers() -> None:
    # the fuzzing of issue 8 found real bugs (DG1 MRZ newline, DG15 empty BIT STRING, ...)
    assert len(CRASHERS) >= 3


@pytest.fixture(scope="module", autouse=True)
def _warm_targets() -> None:
    """Each crasher's target once on a seed, outside the limits: a target's first call
    imports modules (over a second with tracemalloc on), work no input causes."""
    targets = fuzz_targets().TARGETS
    for name in sorted({p.name.split("-")[0] for p in CRASHERS}):
        targets[name].check(targets[name].seeds()[0])


@pytest.mark.parametrize("path", CRASHERS, ids=[p.stem for p in CRASHERS])
def test_crasher_is_fixed(path: Path) -> None:
    target = fuzz_targets().TARGETS[path.name.split("-")[0]]
    # at most 5 s of this thread's CPU time (a few ms are needed), not of wall-clock time,
    # which a busy machine stretches; a hang is interrupted after 60 s
    with work_limit(5.0), peak_memory() as peak:
        target.check(path.read_bytes())
    assert peak[0] < 16 * 1024 * 1024
