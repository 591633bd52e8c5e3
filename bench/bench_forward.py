"""Forwarding bench.

1. Throughput through the outbox: N dossiers (default 7,000, a busy centre's peak day)
   queued one by one (each put is its own durable transaction, as at the desk) while
   the outbox worker thread delivers them to the local intake receiver, which runs as
   a separate process (so it does not share our interpreter lock). Timed from the first
   put until the receiver holds all N. Target: under 60 s.
2. Added latency of a BHYT lookup: the client's wall time for ``check()`` minus the
   gateway's own answer time (the local test gateway reports it in
   ``X-Gateway-Time-Ms``), p50/p95, for a one-query lookup and a lookup that needs
   the year-only fallback (two queries), with the gateway answering at once and after
   a 20 ms delay.
3. Fail-fast with the gateway down: once the circuit breaker is open, how long a
   lookup takes to answer ``gateway_unavailable`` without touching the network
   (p50/p95 over N lookups; target under 5 ms, which tests/forward/test_bhyt_breaker.py
   checks by structure, not by time).
4. A gateway that trickles its answer (one byte every 50 ms, so every socket read
   succeeds): how long a lookup takes to give up at its 1.5 s deadline, retries
   included (tests/forward/test_bhyt_gateway_faults.py only bounds it far above).

Run: ``.venv/bin/python bench/bench_forward.py [--dossiers 7000] [--lookups 300] [--json]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.forward.bhyt import BhytClient, BhytSettings  # noqa: E402
from agent.forward.intake import KIND, IntakeSender, IntakeSettings, enqueue_dossier  # noqa: E402
from agent.forward.outbox import Outbox, Policy  # noqa: E402
from agent.forward.worker import OutboxWorker  # noqa: E402
from agent.identity import Identity  # noqa: E402
from agent.sim.services.bhyt import GATEWAY_TIME_HEADER  # noqa: E402
from bench.measure import percentile  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(module: str, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", module, "--port", str(port), *args], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{module} did not start")


def _person(i: int) -> Identity:
    return Identity(id_number=f"0010995{i:05d}", full_name=f"Nguyễn Văn Thử {i}", date_of_birth=dt.date(1999, 3, 15),
                    sex="M", nationality="Việt Nam", place_of_residence=f"Số {i} Phố Thử Nghiệm, Hà Nội",
                    date_of_issue=dt.date(2021, 4, 1), date_of_expiry=dt.date(2039, 3, 15))


def bench_throughput(n: int, workdir: Path, concurrency: int, fail_before: float) -> dict[str, Any]:
    key_file = workdir / "hmac.key"
    key_file.write_bytes(os.urandom(32).hex().encode())
    key_file.chmod(0o600)
    proc, base = _start("agent.sim.services.intake", "--hmac-key-file", str(key_file),
                        "--fail-before", str(fail_before))
    try:
        box = Outbox(workdir / f"outbox-{fail_before}.sqlite3", os.urandom(32),
                     policy=Policy(base_backoff=0.05, max_backoff=1.0))
        settings = IntakeSettings(url=base + "/dossiers", hmac_key=key_file.read_bytes().strip())
        worker = OutboxWorker(box, {KIND: IntakeSender(settings)}, concurrency=concurrency, idle_wait=0.05)
        people = [_person(i) for i in range(n)]
        worker.start()
        started = time.perf_counter()
        for p in people:
            enqueue_dossier(box, p, settings)
            worker.wake()
        queued = time.perf_counter() - started
        while True:
            stats = requests.get(base + "/_stats", timeout=5).json()
            if stats["unique_dossiers"] >= n:
                break
            time.sleep(0.02)
        total = time.perf_counter() - started
        worker.stop()
        counts = box.counts()
        box.close()
    finally:
        proc.terminate()
        proc.wait()
    return {"dossiers": n, "fail_before": fail_before, "concurrency": concurrency,
            "queue_seconds": round(queued, 2), "queue_per_s": round(n / queued),
            "total_seconds": round(total, 2), "throughput_per_s": round(n / total),
            "http_requests": stats["requests"], "replays": stats["replays"], "outbox": counts}


class _TimedSession(requests.Session):
    """Sums the gateway's own answer times (header) over one lookup."""

    def __init__(self) -> None:
        super().__init__()
        self.gateway_ms = 0.0
        self.hooks["response"].append(self._record)

    def _record(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.gateway_ms += float(response.headers.get(GATEWAY_TIME_HEADER, "0"))


def bench_lookup(n: int, delay_ms: int) -> list[dict[str, Any]]:
    proc, base = _start("agent.sim.services.bhyt")
    out = []
    try:
        requests.post(base + "/_control", json={"delay_ms": delay_ms}, timeout=5)
        session = _TimedSession()
        client = BhytClient(BhytSettings(base_url=base, username="79001_BV", password="matkhau-thu-nghiem",
                                         officer_name="Trần Thị Thu", officer_id="079190001111"),
                            session=session)
        client.check("001099012345", "Nguyễn Văn An", "15/03/1999")  # login, warm the connection
        cases = {"one query (full DOB)": ("001099012345", "Nguyễn Văn An", "15/03/1999"),
                 "year-only fallback (2 queries)": ("079185000123", "Trần Thị Bình", "20/07/1985")}
        for label, args in cases.items():
            added, totals = [], []
            for _ in range(n):
                session.gateway_ms = 0.0
                t0 = time.perf_counter()
                result = client.check(*args)
                total_ms = (time.perf_counter() - t0) * 1000
                assert result.status.value == "valid", result
                totals.append(total_ms)
                added.append(total_ms - session.gateway_ms)
            out.append({"case": label, "gateway_delay_ms": delay_ms, "lookups": n,
                        "total_p50_ms": round(statistics.median(totals), 2),
                        "added_p50_ms": round(percentile(added, 50), 2),
                        "added_p95_ms": round(percentile(added, 95), 2)})
    finally:
        proc.terminate()
        proc.wait()
    return out


def bench_breaker_open(n: int) -> dict[str, Any]:
    proc, base = _start("agent.sim.services.bhyt")
    try:
        requests.post(base + "/_control", json={"outage": True}, timeout=5)
        client = BhytClient(BhytSettings(base_url=base, username="79001_BV", password="matkhau-thu-nghiem",
                                         officer_name="Trần Thị Thu", officer_id="079190001111",
                                         retries=0, breaker_threshold=2, breaker_reset=3600.0))
        while client.breaker.state.value != "open":
            client.check("001099012345", "Nguyễn Văn An", "15/03/1999")
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            result = client.check("001099012345", "Nguyễn Văn An", "15/03/1999")
            times.append((time.perf_counter() - t0) * 1000)
            assert result.status.value == "gateway_unavailable", result
        return {"lookups": n, "p50_ms": round(percentile(times, 50), 3), "p95_ms": round(percentile(times, 95), 3)}
    finally:
        proc.terminate()
        proc.wait()


def bench_trickle(n: int, deadline: float = 1.5) -> dict[str, Any]:
    proc, base = _start("agent.sim.services.bhyt")
    try:
        requests.post(base + "/_control", json={"trickle_ms": 50}, timeout=5)
        client = BhytClient(BhytSettings(base_url=base, username="79001_BV", password="matkhau-thu-nghiem",
                                         officer_name="Trần Thị Thu", officer_id="079190001111",
                                         timeout=2.0, deadline=deadline, retries=2, breaker_threshold=100))
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            result = client.check("001099012345", "Nguyễn Văn An", "15/03/1999")
            times.append(time.perf_counter() - t0)
            assert result.status.value == "gateway_error", result
        return {"lookups": n, "deadline_s": deadline, "p50_s": round(percentile(times, 50), 3),
                "max_s": round(max(times), 3)}
    finally:
        proc.terminate()
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dossiers", type=int, default=7000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        throughput = [bench_throughput(args.dossiers, Path(tmp), args.concurrency, 0.0),
                      bench_throughput(args.dossiers, Path(tmp), args.concurrency, 0.05)]
    lookups = bench_lookup(args.lookups, 0) + bench_lookup(args.lookups, 20)
    breaker = bench_breaker_open(args.lookups)
    trickle = bench_trickle(5)
    if args.json:
        print(json.dumps({"throughput": throughput, "lookup": lookups, "breaker_open": breaker,
                          "trickle": trickle}, indent=2))
        return 0
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print("\nthroughput through the outbox (queue one by one, durable; worker thread; receiver process)")
    for t in throughput:
        print(f"  {t['dossiers']} dossiers, receiver failing {t['fail_before']:.0%}: all delivered in "
              f"{t['total_seconds']} s = {t['throughput_per_s']}/s (queueing alone {t['queue_seconds']} s = "
              f"{t['queue_per_s']}/s; {t['http_requests']} HTTP requests; outbox {t['outbox']})")
    print("\nBHYT lookup: client time beyond the gateway's own answer time")
    for r in lookups:
        print(f"  {r['case']:32} gateway delay {r['gateway_delay_ms']:>3} ms: added p50 {r['added_p50_ms']} ms, "
              f"p95 {r['added_p95_ms']} ms (total p50 {r['total_p50_ms']} ms, n={r['lookups']})")
    print(f"\nBHYT lookup with the gateway down and the breaker open: p50 {breaker['p50_ms']} ms, "
          f"p95 {breaker['p95_ms']} ms (n={breaker['lookups']}; target < 5 ms)")
    print(f"BHYT lookup against a gateway trickling its answer (1 byte / 50 ms): ends after p50 "
          f"{trickle['p50_s']} s, max {trickle['max_s']} s "
          f"(deadline {trickle['deadline_s']} s, n={trickle['lookups']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
