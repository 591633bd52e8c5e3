"""Reader-kit service bench (``[compat]``, agent.compat): what desk software written for
a kit sees.

* ``latency``: from the tap (the card lands on pcscd's virtual reader: vpcd, the real
  PC/SC stack, the real chip pipeline with verification) to the kit's ``/event`` id 2
  received by the real npm ``socket.io-client`` in a Node process. The client stamps
  each event with the wall clock on arrival; the bench stamps the tap with the same
  clock. The access key (the CAN) is handed over before each tap, as a QR scan would.
  Split: pcscd's card detection (tap → the daemon's card_present; pcscd polls a
  reader without card-event support, vpcd included, every 400 ms), the chip read, and
  the delivery (identity event published → received by the npm client).
* ``memory``: the agent's VmRSS with ``--clients`` Node clients connected, at rest and
  after ``--reads`` reads (in-process virtual reader: the reads are many and the card
  I/O is not what is measured here), each after ``gc.collect()``. This process holds
  the agent and the virtual chip; the clients are other processes.

Run: ``.venv/bin/python bench/bench_compat.py [--taps 50] [--clients 10] [--reads 1000]
[--only latency|memory] [--json]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.config import Config  # noqa: E402
from agent.daemon import Daemon  # noqa: E402
from agent.icao.keys import CanKey  # noqa: E402
from agent.sim.kit_client import NodeKitClient, kit_event  # noqa: E402
from agent.sim.profile import load_spec  # noqa: E402
from bench.measure import memory_over, percentile  # noqa: E402

PROFILE = "nguyen-van-an"
VPCD_READER = "Virtual PCD 00 00"


def make_config(state: Path, backend: str) -> Config:
    from agent.demo import TRUST_DIR

    config = Config.defaults().replace("agent", state_dir=str(state), log_level="WARNING")
    config = config.replace("api", token_file=str(state / "api.token"))
    config = config.replace("readers", backends=[backend], poll_interval=0.05,
                            include=[VPCD_READER] if backend == "pcsc" else [])
    config = config.replace("trust", csca_dir=str(TRUST_DIR))
    return config.replace("compat", enabled=True, port=0, camera_port=0, send_photo=True)


class Cleared:
    """Waits for the daemon's identity_cleared (the card was taken off); notes the chip
    pipeline's own time of the last read (``read_ms`` of identity_ready)."""

    def __init__(self, daemon: Daemon) -> None:
        self.event = threading.Event()
        self.read_ms = 0.0
        #: wall-clock ms when the daemon saw the card, and when it published the identity
        self.present_at = 0.0
        self.ready_at = 0.0
        daemon.hub.listeners.append(self._on)

    def _on(self, event: Any) -> None:
        if str(event.type) == "identity_cleared":
            self.event.set()
        elif str(event.type) == "card_present":
            self.present_at = time.time() * 1000
        elif str(event.type) == "identity_ready":
            self.ready_at = time.time() * 1000
            self.read_ms = float(event.data.current.timings["read_ms"])

    def wait(self) -> None:
        if not self.event.wait(10):
            raise RuntimeError("the identity was not dropped after the card left")
        self.event.clear()


def start_clients(url: str, count: int) -> list[NodeKitClient]:
    clients = [NodeKitClient(url) for _ in range(count)]
    for client in clients:
        client.wait_for(lambda m: m["event"] == "/info", timeout=30)
    return clients


@contextlib.contextmanager
def kit_desk(state: Path, backend: str, clients_n: int,
             backends: list[Any] | None = None) -> Iterator[tuple[Daemon, Cleared, list[NodeKitClient]]]:
    """The agent with the kit service on, watched for identity_cleared, and ``clients_n``
    npm kit clients connected to it; all stopped on exit."""
    daemon = Daemon.from_config(make_config(state, backend), backends=backends, port=0)
    daemon.start()
    clients: list[NodeKitClient] = []
    try:
        cleared = Cleared(daemon)
        clients = start_clients(f"http://127.0.0.1:{daemon.compat.port}", clients_n)
        yield daemon, cleared, clients
    finally:
        for client in clients:
            client.close()
        daemon.stop()


def latency(taps: int, warmup: int) -> dict[str, Any]:
    from agent.demo import VpcdTapper
    from agent.sim.pcscd import ensure_pcscd

    can = load_spec(PROFILE).person.can
    with tempfile.TemporaryDirectory(prefix="bench-compat-") as state, ensure_pcscd():
        tapper = VpcdTapper(PROFILE)
        times: list[float] = []
        added: list[float] = []
        detection: list[float] = []
        delivery: list[float] = []
        try:
            with kit_desk(Path(state), "pcsc", 1) as (daemon, cleared, (client,)):
                for i in range(warmup + taps):
                    daemon.submit_key(CanKey(can))
                    tapped = time.time() * 1000
                    tapper.insert()
                    received = client.wait_for(kit_event(2), timeout=30)
                    if i >= warmup:
                        times.append(received["t"] - tapped)
                        added.append(received["t"] - tapped - cleared.read_ms)
                        detection.append(cleared.present_at - tapped)
                        delivery.append(received["t"] - cleared.ready_at)
                    tapper.remove()
                    cleared.wait()
        finally:
            tapper.close()
    return {"taps": taps, "p50_ms": round(percentile(times, 50), 1), "p95_ms": round(percentile(times, 95), 1),
            "max_ms": round(max(times), 1), "min_ms": round(min(times), 1),
            "beyond_chip_read_p95_ms": round(percentile(added, 95), 1),
            "card_detection_p95_ms": round(percentile(detection, 95), 1),
            "delivery_p95_ms": round(percentile(delivery, 95), 1)}


def memory(clients_n: int, reads: int, warmup: int) -> dict[str, Any]:
    from agent.demo import SIM_READER
    from agent.readers.sim import SimBackend
    from agent.sim.profile import load_profile, virtual_chip

    can = load_spec(PROFILE).person.can
    with tempfile.TemporaryDirectory(prefix="bench-compat-") as state:
        sim = SimBackend((SIM_READER,))
        with kit_desk(Path(state), "sim", clients_n, backends=[sim]) as (daemon, cleared, clients):
            def one(_i: int = 0) -> None:
                daemon.submit_key(CanKey(can))
                sim.insert(SIM_READER, virtual_chip(load_profile(PROFILE)))
                for client in clients:  # every client got the read (id 5 closes it)
                    client.wait_for(kit_event(5), timeout=30)
                sim.remove(SIM_READER)
                cleared.wait()

            for _ in range(warmup):
                one()
            run = memory_over(reads, one)
            rest, after, marks, wall = run.rest, run.after, run.marks, run.wall_s
            connected = len(daemon.compat._clients)
    return {"clients": clients_n, "connected_at_end": connected, "reads": reads, "wall_s": round(wall, 1),
            "rss_kib_at_rest": rest, "rss_kib_after": after, "growth_kib": after - rest, "marks": marks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--taps", type=int, default=50)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--only", choices=("latency", "memory"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not NodeKitClient.available():
        print("node or tests/compat/node/node_modules missing: run scripts/setup.sh", file=sys.stderr)
        return 2
    result: dict[str, Any] = {}
    if args.only in (None, "latency"):
        result["latency"] = latency(args.taps, args.warmup)
    if args.only in (None, "memory"):
        result["memory"] = memory(args.clients, args.reads, args.warmup)
    if args.json:
        print(json.dumps(result))
        return 0
    if "latency" in result:
        s = result["latency"]
        print(f"tap → /event id 2 at the npm socket.io-client (pcscd + vpcd, {s['taps']} taps): "
              f"p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms, max {s['max_ms']} ms, min {s['min_ms']} ms; "
              f"beyond the chip read itself: p95 {s['beyond_chip_read_p95_ms']} ms, of which pcscd's card "
              f"detection p95 {s['card_detection_p95_ms']} ms and identity event → npm client p95 "
              f"{s['delivery_p95_ms']} ms")
    if "memory" in result:
        m = result["memory"]
        print(f"memory, {m['clients']} npm clients connected ({m['connected_at_end']} still at the end), "
              f"{m['reads']} reads in {m['wall_s']} s: VmRSS at rest {m['rss_kib_at_rest']} KiB, after "
              f"{m['rss_kib_after']} KiB (growth {m['growth_kib']:+d} KiB); marks {m['marks']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
