"""APDU round-trip time of the reader layer: in-process sim vs the real PC/SC stack
(pyscard -> pcscd -> vpcd -> our virtual card), and how long pcscd takes to notice a
virtual card coming and going.

    .venv/bin/python bench/bench_readers.py [--apdus 300]

Starts pcscd if none runs (agent.sim.pcscd.ensure_pcscd) and takes a free vpcd slot.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.readers.apdu import ApduChannel, Command, Ins  # noqa: E402
from agent.readers.base import CardConnection  # noqa: E402
from agent.readers.pcsc import PcscBackend, wait_for_card  # noqa: E402
from agent.readers.sim import SimBackend  # noqa: E402
from agent.sim.card import DedicatedFile, ElementaryFile, FileSystemCard  # noqa: E402
from agent.sim.pcscd import ensure_pcscd  # noqa: E402
from agent.sim.vpcd import VPCD_PORT, VpcdClient  # noqa: E402

DATA = bytes(i & 0xFF for i in range(4096))


def card() -> FileSystemCard:
    mf = DedicatedFile()
    mf.add(ElementaryFile(0x0101, DATA, sfi=1))
    return FileSystemCard(mf)


def read_times(conn: CardConnection, n: int) -> tuple[float, float]:
    """Median and 95th percentile (ms) of a 256-byte READ BINARY."""
    ch = ApduChannel(conn)
    ch.send(Command(0, Ins.SELECT, 2, 0x0C, b"\x01\x01"))
    times = []
    for _ in range(n):
        started = time.perf_counter()
        ch.send(Command(0, Ins.READ_BINARY, 0, 0, le=256))
        times.append(time.perf_counter() - started)
    times.sort()
    return statistics.median(times) * 1000, times[int(len(times) * 0.95)] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apdus", type=int, default=300)
    args = parser.parse_args()
    sim = SimBackend()
    sim.insert("Sim Reader 00", card())
    median, p95 = read_times(sim.connect("Sim Reader 00"), args.apdus)
    print(f"sim backend:  median {median:.3f} ms, p95 {p95:.3f} ms per READ BINARY")
    started = time.monotonic()
    with ensure_pcscd():
        print(f"ensure_pcscd: {time.monotonic() - started:.2f} s")
        client = VpcdClient(card(), port=VPCD_PORT).start()
        try:
            started = time.monotonic()
            wait_for_card(client.reader, True, 10)
            print(f"card seen by pcscd after {time.monotonic() - started:.2f} s")
            backend = PcscBackend()
            with backend.connect(client.reader) as conn:
                median, p95 = read_times(conn, args.apdus)
                print(f"pcsc + vpcd:  median {median:.3f} ms, p95 {p95:.3f} ms per READ BINARY")
            backend.close()
            client.remove()
            started = time.monotonic()
            wait_for_card(client.reader, False, 10)
            print(f"removal seen by pcscd after {time.monotonic() - started:.2f} s")
        finally:
            client.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
