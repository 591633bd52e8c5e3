"""Daemon bench: from card present to the identity event on the WebSocket, with the
in-process virtual chip; and the process's memory at rest and after many reads.

What is measured, per read (the desk stack of agent.demo: real chip pipeline, trust
store, local BHYT gateway; in-process virtual reader):

* ``total``: from ``SimBackend.insert`` (the card lands) to the ``identity_ready`` frame
  received by a WebSocket client;
* ``read``: the chip pipeline's own time (access control, secure messaging, files,
  parsing, verification: the card I/O), as the daemon reports it in the event;
* ``agent``: total − read, the time the agent adds: event detection, worker hand-off,
  identity merge and store, JSON encoding, WebSocket delivery. Target p95 < 100 ms.

Memory: VmRSS of this process (daemon + virtual chip + the bench's client) after a
warm-up ("at rest") and after ``--reads`` reads, each after ``gc.collect()``, and the
count of gc-tracked Python objects. glibc gives each thread its own malloc arena, and
their fragmentation shows as slow RSS creep; run with ``MALLOC_ARENA_MAX=1`` to see
the agent's own growth without it (``--pipeline canned`` isolates the daemon and API
layers from the chip crypto).

API under load (``--api``, after the reads; tests/api check these by structure, not time):

* ``/health`` latency (p50/p95/max over 50 requests) while ``--idle`` connections
  (default 1,100, from 20 loopback addresses) are open and never send a byte;
* WebSocket fan-out with one client that never reads: 3,000 events of 20 KB published,
  the time until a client that reads gets all of them (MB/s), and whether the stalled
  one was dropped.

Run: ``.venv/bin/python bench/bench_daemon.py [--reads 1000] [--api] [--idle 1100] [--json]``
"""

from __future__ import annotations

import argparse
import array
import json
import resource
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests  # noqa: E402
import websockets.sync.client as ws_client  # noqa: E402

from agent.demo import SIM_READER, desk_stack  # noqa: E402
from agent.sim.profile import load_profile, load_spec, virtual_chip  # noqa: E402
from agent.sim.stalled_ws import stalled_websocket  # noqa: E402
from bench.measure import memory_over, percentile  # noqa: E402

PROFILE = "nguyen-van-an"
#: one keep-alive connection, as desk software would hold
SESSION = requests.Session()


def wait_type(conn: Any, kind: str, timeout: float = 30.0) -> tuple[dict[str, Any], float]:
    deadline = time.monotonic() + timeout
    while True:
        frame = conn.recv(timeout=max(0.01, deadline - time.monotonic()))
        received = time.perf_counter()
        event = json.loads(frame)
        if event.get("type") == kind:
            return event, received
        if event.get("type") == "error":
            raise RuntimeError(f"read failed: {event.get('code')}: {event.get('message')}")


def one_read(stack: Any, conn: Any, can: str, chip: Any = None) -> tuple[float, float]:
    """(total seconds, read seconds) of one tap (a fresh virtual chip unless given)."""
    SESSION.post(stack.base + "/read", json={"can": can}, headers={"Authorization": f"Bearer {stack.token}"},
                 timeout=5).raise_for_status()
    if chip is None:
        chip = virtual_chip(load_profile(PROFILE))  # built before the clock starts
    backend = stack.tapper.backend
    started = time.perf_counter()
    backend.insert(SIM_READER, chip)
    event, received = wait_type(conn, "identity_ready")
    total = received - started
    read = event["timings"]["read_ms"] / 1000
    backend.remove(SIM_READER)
    wait_type(conn, "identity_cleared")
    return total, read


class CannedPipeline:
    """``--pipeline canned``: the chip pipeline replaced by a copy of one real outcome,
    to measure the daemon and API layers alone (no crypto, no card I/O)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.outcome: Any = None

    def read(self, connection: Any, key: Any, on_progress: Any) -> Any:
        import copy

        if self.outcome is None:
            self.outcome = self.real.read(connection, key, on_progress)
        outcome = copy.deepcopy(self.outcome)
        outcome.read_seconds = 0.0
        return outcome


def bench_idle_flood(stack: Any, idle: int, peers: int = 20, requests_n: int = 50) -> dict[str, Any]:
    """/health latency while ``idle`` connections that never send a byte are open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, idle * 2 + 512)), hard))
    sockets: list[socket.socket] = []
    failed = 0
    try:
        for i in range(idle):
            sock = socket.socket()
            sock.settimeout(3.0)
            try:
                sock.bind((f"127.0.0.{2 + i % peers}", 0))
                sock.connect(("127.0.0.1", stack.daemon.port))
            except OSError:
                failed += 1
                sock.close()
                continue
            sockets.append(sock)
        headers = {"Authorization": f"Bearer {stack.token}"}
        times = []
        with requests.Session() as session:
            for _ in range(requests_n):
                started = time.perf_counter()
                session.get(stack.base + "/health", headers=headers, timeout=30).raise_for_status()
                times.append(time.perf_counter() - started)
    finally:
        for sock in sockets:
            sock.close()
    return {"idle_connections": len(sockets), "connects_failed": failed, "health": summary(times)}


def bench_stalled_client(stack: Any, events: int = 3000, size: int = 20_000, burst: int = 100) -> dict[str, Any]:
    """Fan-out to a reading client while another never reads (it gets dropped)."""
    from agent.eventhub import EventType

    hub = stack.daemon.hub
    dropped_before = stack.daemon.metrics.ws_dropped.value()
    stalled = stalled_websocket(stack.daemon.port, stack.base, stack.token)
    url = f"ws://127.0.0.1:{stack.daemon.port}/events"
    filler = "x" * size
    try:
        with ws_client.connect(url, additional_headers={"Authorization": f"Bearer {stack.token}"},
                               open_timeout=5, max_size=None) as conn:
            wait_type(conn, "hello")
            received = 0
            started = time.perf_counter()
            for first in range(0, events, burst):
                for i in range(first, first + burst):
                    hub.publish(EventType.READ_PROGRESS, {"file": "DG2", "done": i, "total": events, "pad": filler})
                while received < first + burst:
                    received += json.loads(conn.recv(timeout=60)).get("type") == "read_progress"
            seconds = time.perf_counter() - started
    finally:
        stalled.close()
    megabytes = events * size / 1e6
    return {"events": events, "event_bytes": size, "seconds": round(seconds, 2),
            "mb_per_s": round(megabytes / seconds, 1),
            "stalled_dropped": stack.daemon.metrics.ws_dropped.value() - dropped_before}


def summary(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 50) * 1000, 2), "p95_ms": round(percentile(values, 95) * 1000, 2),
            "max_ms": round(max(values) * 1000, 2), "mean_ms": round(statistics.fmean(values) * 1000, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--pipeline", choices=("real", "canned"), default="real",
                        help="canned: replay one real read's outcome (daemon + API layers alone)")
    parser.add_argument("--no-bhyt", action="store_true", help="no BHYT lookups after each read")
    parser.add_argument("--api", action="store_true",
                        help="also: /health with idle connections open, WS fan-out with a stalled client")
    parser.add_argument("--idle", type=int, default=1100, help="idle connections for --api")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    can = load_spec(PROFILE).person.can
    with desk_stack(backend="sim", profile=PROFILE, port=0, intake=False) as stack:
        if args.no_bhyt:
            stack.daemon.forwards = None
        if args.pipeline == "canned":
            stack.daemon.pipeline = CannedPipeline(stack.daemon.pipeline)
        url = f"ws://127.0.0.1:{stack.daemon.port}/events"
        with ws_client.connect(url, additional_headers={"Authorization": f"Bearer {stack.token}"},
                               open_timeout=5, max_size=None) as conn:
            wait_type(conn, "hello")
            for _ in range(args.warmup):
                one_read(stack, conn, can)
            # canned: the chip is never spoken to, so one chip object serves every tap and
            # the bench builds nothing per read (what remains is the daemon's own memory)
            shared_chip = virtual_chip(load_profile(PROFILE)) if args.pipeline == "canned" else None
            # the bench's own results live in arrays allocated before "at rest"
            totals = array.array("d", bytes(8 * args.reads))
            reads = array.array("d", bytes(8 * args.reads))

            def one(i: int) -> None:
                totals[i - 1], reads[i - 1] = one_read(stack, conn, can, shared_chip)

            run = memory_over(args.reads, one)
            rest, after, rss_marks, wall = run.rest, run.after, run.marks, run.wall_s
            objects_rest, objects_after = run.objects_rest, run.objects_after
        api = {"idle_flood": bench_idle_flood(stack, args.idle), "stalled_client": bench_stalled_client(stack)} \
            if args.api else None
        metrics = stack.daemon.metrics
    agent = [t - r for t, r in zip(totals, reads, strict=True)]
    totals_list, reads_list = list(totals), list(reads)
    result = {
        "reads": args.reads, "wall_s": round(wall, 1),
        "agent_added": summary(agent), "total_card_to_event": summary(totals_list), "chip_read": summary(reads_list),
        "rss_kib": {"at_rest": rest, "after": after, "growth": after - rest, "marks": rss_marks},
        "gc_objects": {"at_rest": objects_rest, "after": objects_after},
        "overhead_hist_count": metrics.overhead_seconds.count(),
        "api": api,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"reads: {args.reads} in {wall:.1f} s (in-process virtual chip, {args.pipeline} pipeline, "
              f"BHYT lookups {'off' if args.no_bhyt else 'on'})")
        for name in ("agent_added", "total_card_to_event", "chip_read"):
            s = result[name]
            print(f"{name:22s} p50 {s['p50_ms']:8.2f} ms   p95 {s['p95_ms']:8.2f} ms   "  # type: ignore[index]
                  f"max {s['max_ms']:8.2f} ms   mean {s['mean_ms']:8.2f} ms")  # type: ignore[index]
        print(f"RSS at rest {rest} KiB, after {args.reads} reads {after} KiB (growth {after - rest:+d} KiB); "
              f"marks {rss_marks}")
        print(f"Python objects tracked by gc: at rest {objects_rest}, after {objects_after}")
        if api is not None:
            flood, fan = api["idle_flood"], api["stalled_client"]
            h = flood["health"]
            print(f"/health with {flood['idle_connections']} idle connections open "
                  f"({flood['connects_failed']} connects refused): p50 {h['p50_ms']} ms, p95 {h['p95_ms']} ms, "
                  f"max {h['max_ms']} ms")
            print(f"WS fan-out with a client that never reads: {fan['events']} events of {fan['event_bytes']} B "
                  f"in {fan['seconds']} s ({fan['mb_per_s']} MB/s) to the reading client; "
                  f"stalled client dropped: {fan['stalled_dropped']:g}")
    ok = result["agent_added"]["p95_ms"] < 100  # type: ignore[index]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
