"""A local dossier-intake receiver for tests, the bench and the demo.

It does what a real receiver must: verifies the HMAC signature and the timestamp,
and deduplicates by ``Idempotency-Key`` (a repeated key gets the first answer again and
changes nothing). It counts everything, and fails on command:

- ``fail_before``: share of requests answered 503 before anything is stored;
- ``fail_after``: share answered 500 *after* the dossier was stored (the answer is lost
  on the way back, so the sender retries a dossier the receiver already has);
- ``delay_ms``: answer slowly.

Control: ``POST /_control`` JSON (the keys above and ``seed``); ``GET /_stats`` counters;
``GET /_keys`` how many signed requests arrived per idempotency key. Run:
``python -m agent.sim.services.intake --port 8767 --hmac-key-file FILE``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from agent.forward.intake import HEADER_IDEMPOTENCY, HEADER_SIGNATURE, HEADER_TIMESTAMP, verify
from agent.forward.keyfile import read_secret
from agent.sim.services.httpserver import JsonHandler, QuietServer, ServerThread, serve_until_interrupted

INTAKE_PATH = "/dossiers"


@dataclass
class IntakeCounters:
    requests: int = 0
    accepted: int = 0
    replays: int = 0
    bad_signature: int = 0
    missing_key: int = 0
    failed_before: int = 0
    failed_after: int = 0


@dataclass
class IntakeState:
    key: bytes = field(repr=False)
    clock: Callable[[], float] = time.time
    fail_before: float = 0.0
    fail_after: float = 0.0
    #: answer 503 to this many deliveries, then accept again (the demo's failed dossier)
    fail_next: int = 0
    delay_ms: int = 0
    counters: IntakeCounters = field(default_factory=IntakeCounters)
    #: idempotency key → (sha256 of the body, the body): each stored once, the effect
    dossiers: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    #: idempotency key → signed requests that reached the dedup check (first + replays)
    arrivals: dict[str, int] = field(default_factory=dict)
    #: idempotency key → the receipt number answered for it ("TN-000001", …)
    receipts: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def control(self, changes: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            for name in ("fail_before", "fail_after"):
                if name in changes:
                    setattr(self, name, min(1.0, max(0.0, float(changes[name]))))
            if "delay_ms" in changes:
                self.delay_ms = max(0, int(changes["delay_ms"]))
            if "fail_next" in changes:
                self.fail_next = max(0, int(changes["fail_next"]))
            if "seed" in changes:
                self.rng = random.Random(int(changes["seed"]))
            return self.stats_locked()

    def stats_locked(self) -> dict[str, Any]:
        return {"fail_before": self.fail_before, "fail_after": self.fail_after, "fail_next": self.fail_next,
                "delay_ms": self.delay_ms,
                "unique_dossiers": len(self.dossiers), **vars(self.counters)}

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return self.stats_locked()

    def arrivals_by_key(self) -> dict[str, int]:
        with self.lock:
            return dict(self.arrivals)

    def body(self, idem_key: str) -> bytes | None:
        with self.lock:
            entry = self.dossiers.get(idem_key)
        return entry[1] if entry else None

    def receive(self, headers: Any, body: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        """(status, JSON answer, extra headers) for one POST."""
        idem = headers.get(HEADER_IDEMPOTENCY) or ""
        timestamp = headers.get(HEADER_TIMESTAMP) or ""
        signature = headers.get(HEADER_SIGNATURE) or ""
        with self.lock:
            self.counters.requests += 1
            if not idem:
                self.counters.missing_key += 1
                return 400, {"error": "Idempotency-Key required"}, {}
            if not verify(self.key, timestamp, idem, body, signature, now=self.clock()):
                self.counters.bad_signature += 1
                return 401, {"error": "bad signature or timestamp"}, {}
            if self.fail_next > 0:
                self.fail_next -= 1
                self.counters.failed_before += 1
                return 503, {"error": "injected failure (fail_next)"}, {}
            if self.fail_before and self.rng.random() < self.fail_before:
                self.counters.failed_before += 1
                return 503, {"error": "injected failure (before storing)"}, {}
            self.arrivals[idem] = self.arrivals.get(idem, 0) + 1
            if idem in self.dossiers:
                self.counters.replays += 1
                return 200, {"status": "accepted", "dossier": idem, "receipt": self.receipts[idem], "replay": True}, \
                    {"Idempotent-Replay": "true"}
            self.dossiers[idem] = (hashlib.sha256(body).hexdigest(), body)
            self.counters.accepted += 1
            # the receiver's own number for the dossier, as a one-stop office gives one
            self.receipts[idem] = f"TN-{self.counters.accepted:06d}"
            if self.fail_after and self.rng.random() < self.fail_after:
                self.counters.failed_after += 1
                return 500, {"error": "injected failure (after storing)"}, {}
            return 201, {"status": "accepted", "dossier": idem, "receipt": self.receipts[idem]}, {}


class _Handler(JsonHandler):
    server: _IntakeServer

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        path = urlsplit(self.path).path
        state = self.server.state
        if path == "/_stats":
            self.send_json(200, state.stats())
        elif path == "/_keys":
            self.send_json(200, state.arrivals_by_key())
        else:
            self.send_json(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        path = urlsplit(self.path).path
        raw = self.read_body()
        state = self.server.state
        if path == "/_control":
            try:
                changes = json.loads(raw or b"{}")
            except ValueError:
                self.send_json(400, {"error": "JSON expected"})
                return
            self.send_json(200, state.control(changes))
            return
        if path != INTAKE_PATH:
            self.send_json(404, {"error": "not found"})
            return
        if state.delay_ms:
            time.sleep(state.delay_ms / 1000)
        status, answer, headers = state.receive(self.headers, raw)
        self.send_json(status, answer, headers)


class _IntakeServer(QuietServer):
    def __init__(self, address: tuple[str, int], state: IntakeState) -> None:
        super().__init__(address, _Handler)
        self.state = state


class IntakeTestService(ServerThread):
    """``IntakeTestService(key).start()``; ``.intake_url``, ``.state``, ``.stop()``."""

    def __init__(self, key: bytes, *, host: str = "127.0.0.1", port: int = 0,
                 clock: Callable[[], float] = time.time) -> None:
        self.state = IntakeState(key=key, clock=clock)
        super().__init__(_IntakeServer((host, port), self.state))

    @property
    def intake_url(self) -> str:
        return self.url + INTAKE_PATH


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.sim.services.intake",
                                     description="Local dossier-intake test receiver.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--hmac-key-file", required=True)
    parser.add_argument("--fail-before", type=float, default=0.0)
    parser.add_argument("--fail-after", type=float, default=0.0)
    args = parser.parse_args(argv)
    service = IntakeTestService(read_secret(args.hmac_key_file, what="--hmac-key-file"),
                                host=args.host, port=args.port)
    service.state.control({"fail_before": args.fail_before, "fail_after": args.fail_after})
    print(f"intake test service on {service.intake_url}", flush=True)
    serve_until_interrupted(service.server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
