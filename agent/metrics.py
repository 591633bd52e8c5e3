"""Prometheus-style metrics (text exposition format 0.0.4), kept in memory.

Small on purpose: counters with labels, one gauge kind, histograms with fixed buckets.
Labels carry reasons and outcomes only, never personal data.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Callable, Iterable

from agent.forward.bhyt_result import BhytResult, Lookup

#: seconds; a chip read takes 0.5-5 s, the agent's own overhead a few ms
DURATION_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

LabelKey = tuple[tuple[str, str], ...]


def _labels(labels: dict[str, str]) -> LabelKey:
    return tuple(sorted(labels.items()))


def _fmt_labels(key: LabelKey, extra: Iterable[tuple[str, str]] = ()) -> str:
    pairs = list(key) + list(extra)
    if not pairs:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value) if value != int(value) else str(int(value))


class Counter:
    def __init__(self, name: str, help_: str) -> None:
        self.name, self.help = name, help_
        self._values: dict[LabelKey, float] = {}
        self._last: dict[LabelKey, float] = {}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = _labels(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount
            self._last[key] = time.time()

    def render_last(self, name: str, help_: str) -> list[str]:
        """A gauge family: the Unix time each series of this counter last moved."""
        lines = [f"# HELP {name} {help_}", f"# TYPE {name} gauge"]
        with self._lock:
            items = sorted(self._last.items())
        lines += [f"{name}{_fmt_labels(k)} {_num(v)}" for k, v in items]
        return lines

    def value(self, **labels: str) -> float:
        return self._values.get(_labels(labels), 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self._lock:
            items = sorted(self._values.items())
        lines += [f"{self.name}{_fmt_labels(k)} {_num(v)}" for k, v in items]
        return lines


class Gauge:
    """A value read at scrape time from a callback."""

    def __init__(self, name: str, help_: str, read: Callable[[], float]) -> None:
        self.name, self.help, self._read = name, help_, read

    def render(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge",
                f"{self.name} {_num(self._read())}"]


class Histogram:
    def __init__(self, name: str, help_: str, buckets: tuple[float, ...] = DURATION_BUCKETS) -> None:
        self.name, self.help, self.buckets = name, help_, buckets
        self._series: dict[LabelKey, tuple[list[int], list[float]]] = {}
        self._lock = threading.Lock()

    def observe(self, value: float, **labels: str) -> None:
        key = _labels(labels)
        with self._lock:
            counts, sums = self._series.setdefault(key, ([0] * (len(self.buckets) + 1), [0.0]))
            counts[bisect.bisect_left(self.buckets, value)] += 1
            sums[0] += value

    def count(self, **labels: str) -> int:
        series = self._series.get(_labels(labels))
        return sum(series[0]) if series else 0

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            items = sorted((k, (list(c), s[0])) for k, (c, s) in self._series.items())
        for key, (counts, total) in items:
            running = 0
            for bound, n in zip(self.buckets, counts, strict=False):
                running += n
                lines.append(f"{self.name}_bucket{_fmt_labels(key, [('le', _num(bound))])} {running}")
            running += counts[-1]
            lines.append(f"{self.name}_bucket{_fmt_labels(key, [('le', '+Inf')])} {running}")
            lines.append(f"{self.name}_sum{_fmt_labels(key)} {_num(total)}")
            lines.append(f"{self.name}_count{_fmt_labels(key)} {running}")
        return lines


class Metrics:
    """Every metric the agent exposes at ``GET /metrics``."""

    def __init__(self) -> None:
        self.reads = Counter(
            "idagent_reads_total", "Chip reads finished, by outcome (verified, not_verified, probable_clone, error).")
        self.read_failures = Counter("idagent_read_failures_total", "Chip reads that failed, by error code.")
        self.read_seconds = Histogram("idagent_read_duration_seconds", "Card I/O and parsing time of a chip read.")
        self.overhead_seconds = Histogram(
            "idagent_overhead_seconds", "Agent time from card present to identity event, beyond the chip read.")
        self.lookups = Counter("idagent_bhyt_lookups_total", "BHYT lookups, by result.")
        self.lookup_seconds = Histogram("idagent_bhyt_lookup_duration_seconds", "BHYT lookup time.")
        self.intakes = Counter("idagent_intake_total", "Intake submissions queued, by result.")
        self.qr_scans = Counter(
            "idagent_qr_scans_total", "QR codes received, by result (ok, bad_payload).")
        self.http_requests = Counter(
            "idagent_http_requests_total", "Local API requests, by route and status.")
        self.auth_refusals = Counter(
            "idagent_api_refusals_total", "Requests refused, by reason (no_token, bad_token, bad_origin, bad_host).")
        self.ws_dropped = Counter(
            "idagent_ws_clients_dropped_total", "WebSocket clients disconnected for being too slow.",
        )
        self.identity_drops = Counter(
            "idagent_identity_dropped_total", "Identities dropped from memory, by reason (removed, ttl, api, replaced)."
        )
        self.dob_fallbacks = Counter(
            "idagent_bhyt_dob_fallbacks_total",
            "BHYT lookups that asked again with the birth year only, by whether the year matched (yes, no).")
        self.connections_closed = Counter(
            "idagent_api_connections_closed_total",
            "Connections the API closed or refused, by reason (refused, evicted, unauthenticated_idle).")
        self._gauges: list[Gauge] = []

    def count_lookup(self, result: Lookup) -> None:
        """One BHYT lookup's result: its status (``error`` when it has none: a
        ``LookupFailure``), and whether it fell back to the birth year."""
        if not isinstance(result, BhytResult):
            self.lookups.inc(result="error")
            return
        self.lookups.inc(result=result.status.value)
        if len(result.dob_sent) > 1:
            self.dob_fallbacks.inc(matched="yes" if result.dob_matched == "year" else "no")

    def gauge(self, name: str, help_: str, read: Callable[[], float]) -> None:
        self._gauges.append(Gauge(name, help_, read))

    def render(self) -> str:
        lines: list[str] = []
        metrics: list[Counter | Histogram | Gauge] = [
            self.reads, self.read_failures, self.read_seconds, self.overhead_seconds, self.lookups,
            self.lookup_seconds, self.intakes, self.qr_scans, self.http_requests, self.auth_refusals,
            self.ws_dropped, self.identity_drops, self.dob_fallbacks, self.connections_closed, *self._gauges]
        for metric in metrics:
            lines += metric.render()
        lines += self.reads.render_last(
            "idagent_last_read_timestamp_seconds", "Unix time of the last chip read, by outcome (as reads_total).")
        return "\n".join(lines) + "\n"
