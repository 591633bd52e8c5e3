"""Every parser of outside bytes, under one contract (issue 8, part 1): whatever the
input, only a documented typed error (an ``IdAgentError`` subclass with a hint) may
escape, each input ends within a bound on its work (CPU time), and a length field of 2^31 (or 2^32-1)
is never allocated.

The targets are the table of fuzz/fuzz_targets.py (the same checks the atheris
targets run, coverage-guided, from fuzz/run.py): BER-TLV, EF.COM, DG1, DG2, DG11,
DG12, DG13, DG14, DG15, EF.SOD, EF.CardAccess, MRZ text, secure-messaging response
unwrapping, the CCCD QR payload, QR text repair, the config file. Here hypothesis
mutates the targets' seeds (well-formed files of a synthetic card) with byte flips,
cuts, insertions and planted huge length fields, with modest example counts for CI.
Per-parser hypothesis tests elsewhere (tests/icao/test_tlv.py, test_lds.py,
test_pace_fuzz.py) test their own module's details; this file is the uniform sweep.
"""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from robust_helpers import ROOT, fuzz_targets, peak_memory, work_limit

FT = fuzz_targets()
NAMES = sorted(FT.TARGETS)
#: one input may use this much CPU time of the test's thread (robust_helpers.work_limit:
#: not inflated by a busy machine; with tracemalloc on, which slows Python ~10x, the
#: slowest seed takes ~0.15 s); a hang is interrupted after 60 s of wall-clock time
INPUT_CPU_SECONDS = 3.0
#: Python-heap peak allowed for one input of at most a few KB
INPUT_PEAK = 16 * 1024 * 1024
#: the same for inputs that only claim a huge length: nothing near it may be allocated
BOMB_PEAK = 2 * 1024 * 1024
HUGE_LENGTHS = (b"\x84\x80\x00\x00\x00", b"\x84\xff\xff\xff\xff", b"\x83\xff\xff\xff", b"\x82\xff\xff")

_SEEDS = {name: FT.TARGETS[name].seeds() for name in NAMES}

OPS = ("flip", "set", "cut", "insert", "drop", "huge", "dup")


@st.composite
def mutated(draw: st.DrawFn, name: str) -> bytes:
    """A seed of ``name`` with a few mutations (positions wrap around the length)."""
    data = bytearray(draw(st.sampled_from(_SEEDS[name])))
    for op, pos, value in draw(st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 1 << 16),
                                                  st.integers(0, 255)), min_size=1, max_size=5)):
        at = pos % (len(data) + 1)
        if op == "flip" and data:
            data[at % len(data)] ^= 1 << (value % 8)
        elif op == "set" and data:
            data[at % len(data)] = value
        elif op == "cut":
            del data[at:]
        elif op == "insert":
            data[at:at] = bytes([value]) * (1 + value % 4)
        elif op == "drop" and data:
            del data[at % len(data)]
        elif op == "huge":
            data[at:at + 1] = HUGE_LENGTHS[value % len(HUGE_LENGTHS)]
        elif op == "dup":
            data[at:at] = data[at:at + 1 + value]
    return bytes(data)


def inputs(name: str) -> st.SearchStrategy[bytes]:
    return st.one_of(mutated(name), st.binary(max_size=200))


@pytest.fixture(scope="module", autouse=True)
def _warm_targets() -> None:
    """Every target once on a seed, outside the limits: a target's first call imports
    modules and builds tables (over a second with tracemalloc on), work that no input
    causes."""
    for name in NAMES:
        FT.TARGETS[name].check(_SEEDS[name][0])


def _check(name: str, data: bytes, peak_limit: int | None = INPUT_PEAK) -> None:
    if peak_limit is None:
        with work_limit(INPUT_CPU_SECONDS):
            FT.TARGETS[name].check(data)
        return
    with work_limit(INPUT_CPU_SECONDS), peak_memory() as peak:
        FT.TARGETS[name].check(data)
    assert peak[0] < peak_limit, f"{name}: {peak[0]} bytes allocated for a {len(data)}-byte input"


def test_every_parser_of_the_issue_has_a_target() -> None:
    expected = {"tlv", "com", "dg1", "dg2", "dg11", "dg12", "dg13", "dg14", "dg15", "sod", "cardaccess",
                "sm", "qr_payload", "qr_repair", "config", "mrz", "api_body", "dg14_keys", "passive"}
    assert expected <= set(NAMES)
    # one atheris script per target, for fuzz/run.py
    assert all((ROOT / "fuzz" / f"fuzz_{name}.py").is_file() for name in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_seeds_are_accepted(name: str) -> None:
    # the seeds are well formed: a target rejecting them would fuzz only its error paths
    for seed in _SEEDS[name]:
        _check(name, seed)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_only_typed_errors_escape(name: str, data: st.DataObject) -> None:
    _check(name, data.draw(inputs(name)))


BOMB_TARGETS = ["tlv", "com", "dg1", "dg2", "dg11", "dg12", "dg13", "dg14", "dg15", "sod", "cardaccess"]


@pytest.mark.parametrize("name", BOMB_TARGETS)
def test_huge_length_fields_are_not_allocated(name: str) -> None:
    """A 2^31 (and 2^32-1, 2^24-1, 2^16-1) length planted at every one of the first 24
    header positions of the seed, inserted or overwriting: a typed error, and well
    under 2 MB of Python heap (the claimed sizes would be GBs)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tried = 0
    for seed in _SEEDS[name]:
        for at in range(min(24, len(seed))):
            for huge in HUGE_LENGTHS:
                _check(name, seed[:at] + huge + seed[at:], BOMB_PEAK)
                _check(name, seed[:at] + huge + seed[at + 1:], BOMB_PEAK)
                tried += 2
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    # C-level allocations too (Pillow, OpenSSL): the process did not grow by 100+ MB
    assert grown_kb < 100 * 1024, f"{name}: max RSS grew by {grown_kb} KB over {tried} inputs"


def test_sm_data_object_claiming_2_gb() -> None:
    # mode 1 of the sm target: data objects MACed as given; DO87 claims 2^31 bytes
    for huge in HUGE_LENGTHS:
        _check("sm", b"\x01\x90\x00" + b"\x87" + huge + b"\x01" + bytes(16) + bytes.fromhex("99029000"),
               BOMB_PEAK)
        _check("sm", b"\x00\x90\x00" + b"\x87" + huge + bytes(8), BOMB_PEAK)


LONG = 256 * 1024
#: Bounds for one long text. Not speed targets (bench/bench_long_inputs.py prints the
#: times, and how they grow from 64 K to 256 K characters), but bounds only a hang or
#: super-linear work can reach. The work is counted in CPU seconds of the test's own
#: thread (time.thread_time), which other processes on a busy machine do not inflate:
#: linear work on 256 K characters needs ~1 s (qr_repair, the slowest), while even
#: the cheapest quadratic pass (a regex retried from every position, n²/2 steps of
#: ~1 ns in the re engine) needs ~35 s, and catastrophic backtracking never ends.
LONG_INPUT_CPU_SECONDS = 15.0
#: ... and a wall-clock watchdog, so that a hang ends the test instead of the run
LONG_INPUT_WALL_SECONDS = 120.0


@pytest.mark.parametrize("name,data", FT.long_texts(LONG))
def test_long_text_inputs_end_quickly(name: str, data: str) -> None:
    # regular expressions and repair loops over scanner/camera text: no hang, no
    # super-linear blow-up (run without tracemalloc, which slows per-character loops
    # ~10x). Judged by bounds only such work reaches, not by how fast a shared
    # machine happens to be: the figures are in the bench.
    with work_limit(LONG_INPUT_CPU_SECONDS, LONG_INPUT_WALL_SECONDS):
        FT.TARGETS[name].check(data.encode("utf-8"))


def test_kept_crashers_exist_per_target() -> None:
    # fuzz/crashers/<target>-<hash>.bin name a known target (replayed by test_robust_crashers)
    for path in (ROOT / "fuzz" / "crashers").glob("*.bin"):
        assert Path(path).name.split("-")[0] in FT.TARGETS, path.name
