"""Benchmark of a full chip read (issue 3, "Measure").

(a) CPU time (``time.process_time``) of a full read, access control + every file +
    parsing, against the in-process virtual chip, for BAC and PACE: median and p95
    over N runs. The virtual chip runs in the same process; its share is measured
    separately (``process_time`` around each ``VirtualChip.process`` call) and
    subtracted, so "terminal" is what the agent itself spends. No link delay is
    simulated. Verification (PA/CA/AA) is reported on its own line.
(b) APDU round trips and bytes on the wire for a full read of a CCCD-sized card
    (DG2 ≈ 17-18 KB), short vs extended length; and the read time this implies at
    106/424/848 kbit/s with a stated per-APDU latency (reader + chip turnaround),
    next to the bare transfer time of the same bytes at that bit rate (the physical
    floor, no latency). Target: within 1.3× of the floor with extended length.
    "verify" APDUs are Chip Authentication (run mid-read, right after DG14, so the
    other data groups are read under its keys; confirmed by the next file read, no
    extra APDU) plus Active Authentication. With extended length a full read is 17
    APDUs: EF.CardAccess 1 (READ BINARY by SFI), PACE 5, SELECT 1, 7 files, CA 2,
    AA 1; 1.3× of the floor at 848 kbit/s would need about 12 at 5 ms per APDU.

    .venv/bin/python bench/bench_read.py [--runs 30] [--latency-ms 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from agent.icao.chip_read import ChipRead  # noqa: E402
from agent.icao.keys import AccessKey, CanKey  # noqa: E402
from agent.icao.read import read_chip  # noqa: E402
from agent.icao.trust import TrustStore  # noqa: E402
from agent.readers.apdu import ApduChannel  # noqa: E402
from agent.readers.sim import DEFAULT_READER, SimBackend  # noqa: E402
from agent.sim.chip import VirtualChip  # noqa: E402
from agent.sim.profile import load_profile, virtual_chip  # noqa: E402

RATES_KBIT = (106, 424, 848)
TARGET_CPU_MS = 50.0
TARGET_RATIO = 1.3


class TimedChip:
    """Wraps a virtual chip's ``process`` to add up the chip's own CPU time."""

    def __init__(self, chip: VirtualChip) -> None:
        self.chip = chip
        self.cpu = 0.0
        inner = chip.process

        def process(apdu: bytes) -> bytes:
            started = time.process_time()
            try:
                return inner(apdu)
            finally:
                self.cpu += time.process_time() - started

        chip.process = process  # type: ignore[method-assign]


@dataclass
class Run:
    total: float
    chip: float
    read: ChipRead

    @property
    def terminal(self) -> float:
        return self.total - self.chip


def one_read(profile_name: str, *, bac: bool, extended: bool, verify: bool,
             trust: TrustStore | None = None) -> Run:
    # the CCCD's chip model with extended length as the mode asks (the reader and
    # the chip both take it, or neither)
    profile = dataclasses.replace(load_profile(profile_name), extended_length=extended)
    chip = virtual_chip(profile)
    timed = TimedChip(chip)
    backend = SimBackend(extended_length="on" if extended else "off")
    backend.insert(DEFAULT_READER, chip)
    channel = ApduChannel(backend.connect(DEFAULT_READER))
    key: AccessKey = profile.mrz_key if bac else CanKey(profile.can)  # type: ignore[assignment,arg-type]
    started = time.process_time()
    read = read_chip(channel, key, prefer="bac" if bac else "pace", verify=verify, trust=trust)
    total = time.process_time() - started
    backend.close()
    assert read.complete, "bench read incomplete"
    return Run(total, timed.cpu, read)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def cpu_table(runs: int) -> list[str]:
    trust = TrustStore.load(ROOT / "fixtures" / "pki" / "store")
    lines = [f"(a) CPU time of a full read, in-process virtual chip, {runs} runs (ms; target terminal < "
             f"{TARGET_CPU_MS:.0f})",
             f"{'case':<34}{'terminal med':>13}{'p95':>8}{'chip med':>10}{'total med':>11}"]
    cases: list[tuple[str, Callable[[], Run]]] = [
        ("BAC, read + parse", lambda: one_read("nguyen-van-an", bac=True, extended=False, verify=False)),
        ("PACE (CAN), read + parse", lambda: one_read("nguyen-van-an", bac=False, extended=False, verify=False)),
        ("PACE, read + parse + PA/CA/AA", lambda: one_read("nguyen-van-an", bac=False, extended=False,
                                                           verify=True, trust=trust)),
    ]
    for label, fn in cases:
        fn()  # warm-up: profile build, imports, caches
        samples = [fn() for _ in range(runs)]
        terminal = [r.terminal * 1000 for r in samples]
        chip = [r.chip * 1000 for r in samples]
        total = [r.total * 1000 for r in samples]
        lines.append(f"{label:<34}{statistics.median(terminal):>13.1f}{p95(terminal):>8.1f}"
                     f"{statistics.median(chip):>10.1f}{statistics.median(total):>11.1f}")
    return lines


def wire_table(latency_ms: float) -> list[str]:
    lines = [f"(b) wire cost of a full PACE read + verification, CCCD-sized card; per-APDU latency "
             f"{latency_ms:g} ms (target extended <= {TARGET_RATIO}x floor)",
             f"{'mode':<10}{'APDUs (access/files/verify)':>28}{'bytes':>8}{'DG2':>7}" +
             "".join(f"{f'{r} kbit/s: time / floor':>28}" for r in RATES_KBIT)]
    for label, extended in (("short", False), ("extended", True)):
        run = one_read("nguyen-van-an", bac=False, extended=extended, verify=True,
                       trust=TrustStore.load(ROOT / "fixtures" / "pki" / "store"))
        timing = run.read.timing
        wire = timing.bytes_sent + timing.bytes_received
        cells = []
        for rate in RATES_KBIT:
            floor = wire * 8 / (rate * 1000)
            implied = floor + timing.apdus * latency_ms / 1000
            cells.append(f"{implied * 1000:>9.0f} / {floor * 1000:>5.0f} ms = {implied / floor:>4.2f}x")
        dg2 = run.read.outcomes["DG2"].size or 0
        files = timing.apdus - timing.access_apdus - timing.verify_apdus
        split = f"{timing.apdus} ({timing.access_apdus}/{files}/{timing.verify_apdus})"
        lines.append(f"{label:<10}{split:>28}{wire:>8}{dg2:>7}" + "".join(f"{c:>28}" for c in cells))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    args = parser.parse_args(argv)
    for line in cpu_table(args.runs):
        print(line)
    print()
    for latency in sorted({args.latency_ms, 2.0}):
        for line in wire_table(latency):
            print(line)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
