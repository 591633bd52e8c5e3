"""Reader-kit service bench (``[compat]``, agent.compat): what desk software written for
a kit sees, from the desk the demo and the e2e tests run (``agent.demo.desk_stack``:
``Daemon.from_config``, the production wiring of ``idagent run``, with the kit service
on, the real chip pipeline and trust store of fixtures/pki, BHYT lookups to the local
stand-in gateway after each read as at a hospital desk; ``--no-bhyt``: none).

* ``latency``: from the tap (the card lands on pcscd's virtual reader: vpcd, the real
  PC/SC stack, the reader backends built from the config) to the kit's ``/event`` id 2
  received by the real npm ``socket.io-client`` in a Node process. The client stamps
  each event with the wall clock on arrival; the bench stamps the tap with the same
  clock. The access key comes before each tap from the card's QR text, as a desk
  scanner hands it over (``POST /qr``). Split: pcscd's card detection (tap → the
  daemon's card_present; pcscd polls a reader without card-event support, vpcd
  included, every 400 ms), the chip read, and the delivery (identity event published
  → received by the npm client).
* ``memory``: the agent's VmRSS with ``--clients`` Node clients connected, at rest and
  after ``--reads`` reads (in-process virtual reader: the reads are many and the card
  I/O is not what is measured here), each after ``gc.collect()``. This process holds
  the agent, the stand-in gateway and the virtual chip; the clients are other processes.

Run: ``.venv/bin/python bench/bench_compat.py [--taps 50] [--clients 10] [--reads 1000]
[--only latency|memory] [--no-bhyt] [--json]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.daemon import Daemon  # noqa: E402
from agent.demo import DeskStack, desk_stack  # noqa: E402
from agent.sim.kit_client import NodeKitClient, kit_event  # noqa: E402
from bench.measure import memory_over, percentile  # noqa: E402

PROFILE = "nguyen-van-an"
#: the kit service on a free port, sending the photo and files (id 4) as kits do
COMPAT = {"enabled": True, "port": 0, "camera_port": 0, "send_photo": True}


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
def kit_desk(backend: str, clients_n: int, bhyt: bool) -> Iterator[tuple[DeskStack, Cleared, list[NodeKitClient]]]:
    """The demo's desk with the kit service on, watched for identity_cleared, and
    ``clients_n`` npm kit clients connected to it; all stopped on exit."""
    with desk_stack(backend=backend, profile=PROFILE, intake=False, compat=COMPAT) as stack:
        if not bhyt:
            stack.daemon.forwards = None
        cleared = Cleared(stack.daemon)
        clients: list[NodeKitClient] = []
        try:
            clients = start_clients(f"http://127.0.0.1:{stack.daemon.compat.port}", clients_n)
            yield stack, cleared, clients
        finally:
            for client in clients:
                client.close()


def latency(taps: int, warmup: int, bhyt: bool) -> dict[str, Any]:
    times: list[float] = []
    added: list[float] = []
    detection: list[float] = []
    delivery: list[float] = []
    with kit_desk("pcsc", 1, bhyt) as (stack, cleared, (client,)):
        for i in range(warmup + taps):
            stack.scan_qr()
            tapped = time.time() * 1000
            stack.tapper.insert()
            received = client.wait_for(kit_event(2), timeout=30)
            if i >= warmup:
                times.append(received["t"] - tapped)
                added.append(received["t"] - tapped - cleared.read_ms)
                detection.append(cleared.present_at - tapped)
                delivery.append(received["t"] - cleared.ready_at)
            stack.lift()
            cleared.wait()
    return {"taps": taps, "bhyt": bhyt, "p50_ms": round(percentile(times, 50), 1),
            "p95_ms": round(percentile(times, 95), 1), "max_ms": round(max(times), 1),
            "min_ms": round(min(times), 1), "beyond_chip_read_p95_ms": round(percentile(added, 95), 1),
            "card_detection_p95_ms": round(percentile(detection, 95), 1),
            "delivery_p95_ms": round(percentile(delivery, 95), 1)}


def memory(clients_n: int, reads: int, warmup: int, bhyt: bool) -> dict[str, Any]:
    with kit_desk("sim", clients_n, bhyt) as (stack, cleared, clients):
        def one(_i: int = 0) -> None:
            stack.tap()  # the QR scan, then the card
            for client in clients:  # every client got the read (id 5 closes it)
                client.wait_for(kit_event(5), timeout=30)
            stack.lift()
            cleared.wait()

        for _ in range(warmup):
            one()
        run = memory_over(reads, one)
        connected = stack.daemon.compat.client_count
    return {"clients": clients_n, "bhyt": bhyt, "connected_at_end": connected, "reads": reads,
            "wall_s": round(run.wall_s, 1), "rss_kib_at_rest": run.rest, "rss_kib_after": run.after,
            "growth_kib": run.after - run.rest, "marks": run.marks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--taps", type=int, default=50)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--only", choices=("latency", "memory"))
    parser.add_argument("--no-bhyt", action="store_true", help="no BHYT lookups after each read")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not NodeKitClient.available():
        print("node or tests/compat/node/node_modules missing: run scripts/setup.sh", file=sys.stderr)
        return 2
    bhyt = not args.no_bhyt
    result: dict[str, Any] = {}
    if args.only in (None, "latency"):
        result["latency"] = latency(args.taps, args.warmup, bhyt)
    if args.only in (None, "memory"):
        result["memory"] = memory(args.clients, args.reads, args.warmup, bhyt)
    if args.json:
        print(json.dumps(result))
        return 0
    if "latency" in result:
        s = result["latency"]
        print(f"tap → /event id 2 at the npm socket.io-client (pcscd + vpcd, {s['taps']} taps, "
              f"BHYT lookups {'on' if s['bhyt'] else 'off'}): "
              f"p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms, max {s['max_ms']} ms, min {s['min_ms']} ms; "
              f"beyond the chip read itself: p95 {s['beyond_chip_read_p95_ms']} ms, of which pcscd's card "
              f"detection p95 {s['card_detection_p95_ms']} ms and identity event → npm client p95 "
              f"{s['delivery_p95_ms']} ms")
    if "memory" in result:
        m = result["memory"]
        print(f"memory, {m['clients']} npm clients connected ({m['connected_at_end']} still at the end), "
              f"BHYT lookups {'on' if m['bhyt'] else 'off'}, "
              f"{m['reads']} reads in {m['wall_s']} s: VmRSS at rest {m['rss_kib_at_rest']} KiB, after "
              f"{m['rss_kib_after']} KiB (growth {m['growth_kib']:+d} KiB); marks {m['marks']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
