"""Issue 14, the fleet view: alert rules (promtool), the Grafana dashboard's queries,
bounded labels without personal data, the scrape listener's own token, and a real
Prometheus scraping a running agent."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from api_fakes import FakeBackend, FakeForwards, FakePipeline, FakeQrDecoder, Harness, synthetic_identity

from agent.config import Config
from agent.daemon import Daemon

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "config" / "prometheus" / "idagent-alerts.yml"
RULE_TESTS = REPO / "config" / "prometheus" / "idagent-alerts.test.yml"
DASHBOARD = REPO / "config" / "grafana" / "idagent-fleet.json"
FLEET_CONFIG = REPO / "config" / "prometheus" / "prometheus-fleet.yml"
PROMQL_WORDS = {"sum", "by", "rate", "increase", "count", "abs", "time", "timestamp", "histogram_quantile", "le",
                "and", "or", "unless", "on", "bool", "max", "min", "hour", "day_of_week", "vector", "instance",
                "job", "outcome", "reason", "result", "matched", "up", "humanizeDuration"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (label matchers and strings removed)."""
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    return {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)
            if w not in PROMQL_WORDS and not w.startswith("idagent:")}


def _exported(text: str) -> set[str]:
    names = set()
    for match in re.finditer(r"^# TYPE (\S+) (\w+)$", text, re.M):
        name, kind = match.groups()
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def _dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for panel in dash["panels"] for t in panel.get("targets", [])]
    assert len(exprs) >= 20 and all(e.strip() for e in exprs)
    return exprs


def _rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


# ------------------------------------------------------------------ promtool
def test_alert_rules_pass_promtool_check_and_unit_tests() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: scripts/setup.sh installs Debian's prometheus package"
    check = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run([promtool, "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent,
                          capture_output=True, text=True, timeout=120)
    assert unit.returncode == 0 and "SUCCESS" in unit.stdout, unit.stdout + unit.stderr
    alerts = {r.get("alert") for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    for name in ("IdagentReaderMissing", "IdagentNoVerifiedRead", "IdagentVerificationFailures",
                 "IdagentBhytGatewayFailing", "IdagentBhytBreakerOpen", "IdagentOutboxBacklog",
                 "IdagentOutboxStale", "IdagentCscaExpiring", "IdagentCrlStale", "IdagentClockSkew"):
        assert name in alerts
        assert f"alertname: {name}" in RULE_TESTS.read_text()


# ------------------------------------------------------------------ queries name real metrics
def test_every_dashboard_and_alert_query_names_an_exported_metric(harness: Harness) -> None:
    exported = _exported(harness.get("/metrics").text) | {"up"}
    for expr in _dashboard_exprs() + _rule_exprs():
        names = _metric_names(expr)
        missing = {n for n in names if n not in exported and n != "up"}
        assert not missing, f"{expr!r} names {missing}, which the agent does not export"
    used = set().union(*(_metric_names(e) for e in _dashboard_exprs()))
    for needed in ("idagent_reads_total", "idagent_bhyt_lookups_total", "idagent_bhyt_dob_fallbacks_total",
                   "idagent_outbox_pending", "idagent_read_duration_seconds_bucket", "idagent_readers_attached"):
        assert needed in used


# ------------------------------------------------------------------ labels
#: every label name the agent's metrics may carry, and how its values are bounded
LABELS: dict[str, re.Pattern[str]] = {
    "outcome": re.compile(r"verified|not_verified|probable_clone|altered_data|error"),
    "reason": re.compile(r"[a-z_]{2,32}"),
    "result": re.compile(r"[a-z_]{2,32}"),
    "route": re.compile(r"[a-z_]{2,32}"),
    "status": re.compile(r"[1-5][0-9][0-9]"),
    "matched": re.compile(r"yes|no"),
    "le": re.compile(r"[0-9.]+|\+Inf"),
}


def _samples(text: str) -> list[tuple[str, dict[str, str]]]:
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition("{")
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', rest.rsplit("}", 1)[0])) if rest else {}
        out.append((name.split()[0], labels))
    return out


def test_labels_are_bounded_and_carry_no_personal_data(harness_factory: Callable[..., Harness]) -> None:
    person = synthetic_identity()
    h = harness_factory()
    # traffic of every kind: reads, refusals, bogus routes, QR text, BHYT lookups
    assert h.post("/read", {"can": "012345"}).status_code == 202
    h.backend.insert("Reader A")
    deadline = time.monotonic() + 5
    while h.daemon.store.get() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert h.daemon.store.get() is not None
    h.post("/bhyt/lookup", {})
    for i in range(50):
        requests.get(f"{h.base}/no/such/route/{i}", headers=h.headers(), timeout=5)
        requests.get(f"{h.base}/health", headers={"Authorization": f"Bearer wrong{i}"}, timeout=5)
    h.post("/qr", {"text": "001099012345|012345678|Nguyễn Văn An|15031999|Nam|Hà Nội|01012021"})
    text = h.get("/metrics").text
    samples = _samples(text)
    series = {(name, tuple(sorted(labels.items()))) for name, labels in samples}
    assert len(series) < 200, "a label set grew with the traffic"
    for name, labels in samples:
        for key, value in labels.items():
            assert key in LABELS, f"{name} has an unexpected label {key}"
            assert LABELS[key].fullmatch(value), f"{name}{{{key}={value!r}}} is outside its bounded set"
    for value in (person.id_number, person.old_id_number, person.document_number, "Nguy", "1999-03-15", "150399"):
        assert value and str(value) not in text
    series_text = "\n".join(line.rsplit(" ", 1)[0] for line in text.splitlines() if not line.startswith("#"))
    assert re.search(r"[0-9]{6,}", series_text) is None


# ------------------------------------------------------------------ the scrape listener
@pytest.fixture()
def fleet_daemon(tmp_path: Path) -> Iterator[Daemon]:
    config = Config.defaults().replace("api", token_file=str(tmp_path / "api.token"))
    config = config.replace("readers", backends=["sim"], poll_interval=0.05)
    config = config.replace("metrics", enabled=True, host="127.0.0.1", port=_free_port(),
                            token_file=str(tmp_path / "metrics.token"))
    daemon = Daemon(config, pipeline=FakePipeline(), backends=[FakeBackend(["Reader A"])],
                    qr_decoder=FakeQrDecoder(), forwards=FakeForwards(), port=0)
    daemon.start()
    yield daemon
    daemon.stop()


def test_scrape_listener_takes_its_own_token_only(fleet_daemon: Daemon, tmp_path: Path) -> None:
    api_token = (tmp_path / "api.token").read_text().strip()
    scrape_token = (tmp_path / "metrics.token").read_text().strip()
    assert scrape_token != api_token
    assert (tmp_path / "metrics.token").stat().st_mode & 0o777 == 0o600
    url = f"http://127.0.0.1:{fleet_daemon.config.metrics.port}/metrics"
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, headers={"Authorization": f"Bearer {api_token}"}, timeout=5).status_code == 401
    ok = requests.get(url, headers={"Authorization": f"Bearer {scrape_token}"}, timeout=5)
    assert ok.status_code == 200 and "idagent_readers_attached" in ok.text
    # the scrape token opens nothing on the desk API, and the desk API is not on the listener
    desk = f"http://127.0.0.1:{fleet_daemon.port}"
    assert requests.get(desk + "/health", headers={"Authorization": f"Bearer {scrape_token}"},
                        timeout=5).status_code == 401
    other = requests.get(url.replace("/metrics", "/health"), headers={"Authorization": f"Bearer {scrape_token}"},
                         timeout=5)
    assert other.status_code == 404


# ------------------------------------------------------------------ a real Prometheus
def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except requests.RequestException as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.25)
    raise AssertionError(f"{what}: {last!r}")


def test_prometheus_scrapes_a_running_agent(tmp_path: Path) -> None:
    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus missing: scripts/setup.sh installs Debian's prometheus package"
    api_port, metrics_port, prom_port = _free_port(), _free_port(), _free_port()
    scrape_token = tmp_path / "metrics.token"
    agent_config = tmp_path / "idagent.toml"
    agent_config.write_text(
        f'[readers]\nbackends = ["sim"]\npoll_interval = 0.1\n[trust]\ncsca_dir = "{tmp_path}/none"\n'
        f'[api]\nport = {api_port}\ntoken_file = "{tmp_path}/api.token"\n'
        f'[metrics]\nenabled = true\nhost = "127.0.0.1"\nport = {metrics_port}\ntoken_file = "{scrape_token}"\n',
        encoding="utf-8")
    agent = subprocess.Popen([sys.executable, "-m", "agent.cli", "--config", str(agent_config), "run", "--json"],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    prom: subprocess.Popen[str] | None = None
    try:
        assert json.loads(agent.stdout.readline())["status"] == "running"  # type: ignore[union-attr]
        # the shipped example, pointed at this agent (and once with a wrong token)
        fleet = yaml.safe_load(FLEET_CONFIG.read_text(encoding="utf-8"))
        fleet["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        fleet["rule_files"] = [str(RULES)]
        job = fleet["scrape_configs"][0]
        job["authorization"]["credentials_file"] = str(scrape_token)
        job["static_configs"] = [{"targets": [f"127.0.0.1:{metrics_port}"]}]
        wrong = tmp_path / "wrong.token"
        wrong.write_text("not-the-scrape-token\n")
        fleet["scrape_configs"].append({**job, "job_name": "idagent-wrong-token",
                                        "authorization": {"type": "Bearer", "credentials_file": str(wrong)}})
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(fleet), encoding="utf-8")
        prom = subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        api = f"http://127.0.0.1:{prom_port}/api/v1"

        def targets() -> dict[str, dict[str, Any]] | None:
            active = requests.get(f"{api}/targets", timeout=2).json()["data"]["activeTargets"]
            by_job = {t["labels"]["job"]: t for t in active}
            done = all(t["health"] != "unknown" for t in by_job.values()) and len(by_job) == 2
            return by_job if done else None

        by_job = _wait(targets, 60, "Prometheus did not scrape both targets")
        assert by_job["idagent"]["health"] == "up", by_job["idagent"]
        assert by_job["idagent-wrong-token"]["health"] == "down"
        assert "401" in by_job["idagent-wrong-token"]["lastError"]

        def query(expr: str) -> dict[str, Any]:
            return requests.get(f"{api}/query", params={"query": expr}, timeout=5).json()

        result = _wait(lambda: query('idagent_start_time_seconds{job="idagent"}')["data"]["result"], 20,
                       "no idagent series stored")
        assert abs(float(result[0]["value"][1]) - time.time()) < 120
        # every dashboard query parses and runs on a real Prometheus
        for expr in _dashboard_exprs():
            answer = query(expr.replace("$instance", ".*"))
            assert answer["status"] == "success", (expr, answer)
        rules = requests.get(f"{api}/rules", timeout=5).json()["data"]["groups"]
        assert {g["name"] for g in rules} == {"idagent-time", "idagent-desks"}
        assert all(r["health"] != "err" for g in rules for r in g["rules"])
    finally:
        if prom is not None:
            _stop(prom, 20)
        _stop(agent, 15)


def _stop(proc: subprocess.Popen[str], timeout: float) -> None:
    """SIGTERM (both stop cleanly on it), SIGKILL after ``timeout`` seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------------ gauges from the real parts
def test_fleet_gauges_read_the_real_outbox_breaker_and_trust_store(tmp_path: Path) -> None:
    """The values the alerts fire on come from the agent's own parts: the production
    forwards (outbox, BHYT client), the trust store of the fixtures' test PKI."""
    from agent.api import fleet
    from agent.icao.trust import TrustStore
    from agent.metrics import Metrics
    from agent.pipeline import ConfiguredForwards, IcaoPipeline

    key = tmp_path / "intake.key"
    key.write_bytes(b"k" * 32)
    key.chmod(0o600)
    config = Config.defaults().replace("bhyt", enabled=True, base_url=f"http://127.0.0.1:{_free_port()}",
                                       username="u", password="p" * 8, breaker_threshold=2)
    config = config.replace("intake", enabled=True, url=f"http://127.0.0.1:{_free_port()}/intake",
                            hmac_key_file=str(key))
    config = config.replace("outbox", path=str(tmp_path / "outbox.sqlite3"), key_file=str(tmp_path / "outbox.key"),
                            base_backoff=3600.0)
    forwards = ConfiguredForwards(config)
    trust = TrustStore.load(REPO / "fixtures" / "pki" / "store")
    from agent.readpath import ChipReader, ReadOptions

    pipeline = IcaoPipeline(ChipReader(ReadOptions.from_config(config), trust))
    daemon = Daemon(config, pipeline=pipeline, backends=[], forwards=forwards, port=0)
    try:
        daemon.metrics = Metrics()
        fleet.register(daemon)

        def gauge(name: str) -> float:
            line = next(x for x in daemon.metrics.render().splitlines() if x.startswith(name + " "))
            return float(line.split()[1])

        assert gauge("idagent_outbox_pending") == 0 and gauge("idagent_outbox_oldest_pending_age_seconds") == 0
        forwards.intake(synthetic_identity())
        forwards.intake(synthetic_identity(id_number="001099012346"))
        time.sleep(1.1)
        assert gauge("idagent_outbox_pending") == 2
        assert 1.0 <= gauge("idagent_outbox_oldest_pending_age_seconds") < 30
        assert gauge("idagent_bhyt_breaker_open") == 0
        for _ in range(2):
            forwards._bhyt.breaker.record_failure()
        assert gauge("idagent_bhyt_breaker_open") == 1
        expiries = [fleet._not_after(a.cert).timestamp() for a in trust.anchors]
        assert gauge("idagent_trust_anchors") == len(trust.anchors) > 0
        assert gauge("idagent_trust_csca_expiry_timestamp_seconds") == min(expiries)
        if trust.crls:
            assert gauge("idagent_trust_crl_next_update_timestamp_seconds") > 0
        assert abs(gauge("idagent_time_seconds") - time.time()) < 5
    finally:
        forwards.close()
