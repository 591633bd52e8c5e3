"""Gauges for the hospital's central Prometheus (the fleet view of 10-50 desks).

What an IT person alerts on (``config/prometheus/idagent-alerts.yml``): a desk whose
reader is gone, no verified read for a while in opening hours, a spike of failed
verifications, the BHYT gateway failing or its breaker open, dossiers piling up in the
outbox, a CSCA certificate or CRL about to expire, a desk clock that drifted.

Every value is read at scrape time from the running agent. No label carries personal
data: these gauges have none, and the counters' labels are outcomes and reasons from
fixed sets (``tests/api/test_fleet_metrics.py`` enumerates them).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Iterable
from typing import Any, Protocol

from agent.metrics import Metrics

logger = logging.getLogger(__name__)

#: a gauge whose value cannot be known (no outbox configured, empty trust store) is NaN,
#: which Prometheus stores and alert rules compare as false (no spurious alert)
UNKNOWN = math.nan


class FleetSource(Protocol):
    """What the gauges read at scrape time (``agent.daemon.Daemon`` in production; the
    API passes its service through). A Protocol, so that this module needs nothing
    above it."""

    metrics: Metrics
    #: the configured forwards (BHYT client, intake outbox) or None
    forwards: Any
    #: the read pipeline holding the trust store
    pipeline: Any

    def health(self) -> dict[str, Any]: ...


def register(daemon: Any) -> None:
    metrics = daemon.metrics
    started = time.time()
    metrics.gauge("idagent_start_time_seconds", "Unix time the agent started.", lambda: started)
    metrics.gauge("idagent_time_seconds",
                  "The desk's clock (Unix time) at scrape; compare with the scrape timestamp for clock skew.",
                  time.time)
    metrics.gauge("idagent_readers_attached", "Card readers attached and watched.",
                  lambda: float(daemon.health().get("readers", 0)))
    metrics.gauge("idagent_bhyt_enabled", "1 when BHYT lookups are configured.",
                  lambda: 1.0 if daemon.forwards is not None and daemon.forwards.bhyt_enabled() else 0.0)
    metrics.gauge("idagent_bhyt_breaker_open",
                  "1 while the BHYT circuit breaker is open (lookups fail fast), 0 otherwise.",
                  lambda: _breaker_open(daemon))
    metrics.gauge("idagent_outbox_pending", "Dossiers waiting in the outbox for delivery.",
                  lambda: _outbox(daemon, "pending"))
    metrics.gauge("idagent_outbox_failed", "Dossiers the outbox gave up on (idagent outbox list).",
                  lambda: _outbox(daemon, "failed"))
    metrics.gauge("idagent_outbox_oldest_pending_age_seconds", "Age of the oldest dossier still pending.",
                  lambda: _outbox_oldest_age(daemon))
    metrics.gauge("idagent_trust_anchors", "CSCA certificates in the trust store.",
                  lambda: float(len(_trust(daemon).anchors)) if _trust(daemon) is not None else 0.0)
    metrics.gauge("idagent_trust_csca_expiry_timestamp_seconds",
                  "Unix time the first CSCA certificate of the trust store expires.",
                  lambda: _earliest(_not_after(a.cert) for a in _anchors(daemon)))
    metrics.gauge("idagent_trust_crl_next_update_timestamp_seconds",
                  "Unix time of the earliest CRL nextUpdate in the trust store (a CRL past it is stale).",
                  lambda: _earliest(_crl_next_updates(daemon)))


def _breaker_open(daemon: FleetSource) -> float:
    client = getattr(daemon.forwards, "_bhyt", None)
    breaker = getattr(client, "breaker", None)
    if breaker is None:
        return 0.0
    return 1.0 if str(breaker.state) == "open" else 0.0


def _outbox_of(daemon: FleetSource) -> Any:
    service = getattr(daemon.forwards, "_intake", None)
    return getattr(service, "outbox", None)


def _outbox(daemon: FleetSource, state: str) -> float:
    outbox = _outbox_of(daemon)
    if outbox is None:
        return 0.0
    return float(outbox.counts().get(state, 0))


def _outbox_oldest_age(daemon: FleetSource) -> float:
    outbox = _outbox_of(daemon)
    if outbox is None:
        return 0.0
    oldest = outbox.oldest_pending_created_at()
    return 0.0 if oldest is None else max(0.0, time.time() - oldest)


def _trust(daemon: FleetSource) -> Any:
    pipeline = daemon.pipeline
    # agent.pipeline.IcaoPipeline holds an agent.readpath.ChipReader with the trust store
    return getattr(pipeline, "trust", None) or getattr(getattr(pipeline, "reader", None), "trust", None)


def _anchors(daemon: FleetSource) -> list[Any]:
    trust = _trust(daemon)
    return list(trust.anchors) if trust is not None else []


def _crl_next_updates(daemon: FleetSource) -> list[dt.datetime]:
    trust = _trust(daemon)
    out = []
    for crl in (trust.crls if trust is not None else []):
        value = crl["tbs_cert_list"]["next_update"].native
        if isinstance(value, dt.datetime):
            out.append(value)
    return out


def _not_after(cert: Any) -> dt.datetime:
    value = getattr(cert, "not_valid_after_utc", None)  # cryptography >= 42
    if value is None:
        value = cert.not_valid_after.replace(tzinfo=dt.UTC)
    return value  # type: ignore[no-any-return]


def _earliest(times: Iterable[dt.datetime]) -> float:
    stamps = [t.timestamp() for t in times]
    return min(stamps) if stamps else UNKNOWN
