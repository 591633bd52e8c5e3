"""The outbox kill drill against the stand-in OpenCPS portal: N dossiers queued while the
delivering worker (``idagent outbox run``, its own process) is killed with SIGKILL at
random moments and started again, the portal (its own process) failing a share of the
filings on purpose and holding a check-then-insert window. ``run`` answers how many
were lost and how many were filed twice. Shared by ``bench/bench_opencps.py`` (which
documents the options) and its CI variant in ``tests/forward/test_opencps_restarts.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from agent.config import load_config
from agent.forward.opencps import OpenCpsSettings, enqueue_dossier
from agent.forward.outbox import Outbox
from agent.identity import Identity
from agent.sim.services.opencps import ACCOUNTS, EMPLOYEE, GROUP_ID, PROCEDURES

#: the repository (fixtures, and the PYTHONPATH of the child processes)
ROOT = Path(__file__).resolve().parents[3]

WARDS = ["Phường Ba Đình", "Phường Hồng Hà", "Phường Hoàn Kiếm", "Phường Cửa Nam", "Phường Ngọc Hà"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_portal(fail: float, race_ms: int, seed: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "agent.sim.services.opencps", "--port", str(port),
                             "--fail-before", str(fail / 2), "--fail-after", str(fail / 2),
                             "--race-window-ms", str(race_ms), "--seed", str(seed)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the portal did not start")


def write_config(tmp: Path, portal: str, settle: float) -> Path:
    pw = tmp / "opencps.password"
    pw.write_text(ACCOUNTS[EMPLOYEE].password, encoding="utf-8")
    pw.chmod(0o600)
    proc = PROCEDURES[0]
    path = tmp / "idagent.toml"
    path.write_text(f"""
[intake]
enabled = true
target = "opencps"
[opencps]
portal = "{portal}"
group_id = "{GROUP_ID}"
username = "{EMPLOYEE}"
password_file = "{pw}"
service_code = "{proc.service_code}"
gov_agency_code = "{proc.gov_agency_code}"
dossier_template_no = "{proc.template_no}"
timeout = 5.0
settle = {settle}
[outbox]
path = "{tmp / 'outbox.sqlite3'}"
key_file = "{tmp / 'outbox.key'}"
base_backoff = 0.05
max_backoff = 0.5
max_attempts = 1000
""", encoding="utf-8")
    return path


def person(i: int) -> Identity:
    return Identity(id_number=f"0010995{i:05d}", full_name=f"Nguyễn Thị Thử {i}", sex="F",
                    date_of_birth=dt.date(1990, 1, 1) + dt.timedelta(days=i % 9000),
                    place_of_residence=f"Số {i}, {WARDS[i % len(WARDS)]}, Thành phố Hà Nội",
                    date_of_issue=dt.date(2021, 1, 1) + dt.timedelta(days=i % 1400))


def start_worker(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "agent", "--config", str(config), "outbox", "run",
                             "--until-empty", "--concurrency", "4"],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


#: with kills by count of filings: no filing for this long means the workers are stuck
STALL_SECONDS = 120.0


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    portal, url = start_portal(args.fail, args.race_window_ms, args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="bench-opencps-"))
    config = write_config(tmp, url, args.settle)
    settings = dataclasses.replace(OpenCpsSettings.from_config(load_config(str(config))))
    box = Outbox.from_config(load_config(str(config)))
    restarts = 0
    keys: list[str] = []
    started = time.monotonic()
    # kills at random moments: after a random time (restart_min..restart_max s), or, with
    # restart_posts = (lo, hi), after a random number of filings the portal received
    # since the last kill: the tests' variant, whose kills land mid-delivery however fast
    # or slow the machine is (a timed kill can come after the last delivery)
    by_posts: tuple[int, int] | None = getattr(args, "restart_posts", None)
    posts = progress_at = 0
    last_progress = time.monotonic()

    def next_trigger() -> float:
        if by_posts is not None:
            return posts + rng.randint(*by_posts)
        return time.monotonic() + rng.uniform(args.restart_min, args.restart_max)

    worker = start_worker(config)
    next_kill = next_trigger()
    try:
        while True:
            if len(keys) < args.dossiers:
                for _ in range(50):
                    if len(keys) < args.dossiers:
                        keys.append(enqueue_dossier(box, person(len(keys)), settings))
            else:
                time.sleep(0.05)
            now = time.monotonic()
            if by_posts is not None:
                posts = requests.get(url + "/_stats", timeout=10).json()["posts"]
                if posts != progress_at:
                    progress_at, last_progress = posts, now
                elif now - last_progress > STALL_SECONDS:
                    raise RuntimeError(f"no filing reached the portal for {STALL_SECONDS:g} s")
            if (posts if by_posts is not None else now) >= next_kill and restarts < args.max_restarts:
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                restarts += 1
                worker = start_worker(config)
                next_kill = next_trigger()
            if worker.poll() is not None:
                if len(keys) == args.dossiers and box.counts()["pending"] == 0:
                    break
                worker = start_worker(config)  # ran out of work while we were still queuing
        elapsed = time.monotonic() - started
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    stats = requests.get(url + "/_stats", timeout=10).json()
    references = requests.get(url + "/_references", timeout=30).json()
    portal.send_signal(signal.SIGINT)
    portal.wait(10)
    counts = box.counts()
    box.close()
    lost = sum(1 for k in keys if k not in references)
    duplicated = sum(1 for n in references.values() if n > 1)
    return {"dossiers": args.dossiers, "seconds": round(elapsed, 1), "restarts": restarts, "lost": lost,
            "duplicated_by_referenceUid": duplicated, "outbox": counts,
            "injected_failures": stats["failed_before"] + stats["failed_after"],
            "portal_posts": stats["posts"], "portal_lookups": stats["gets"], "reference_reused": stats["reused"],
            "filed": stats["filed"], "race_duplicates": stats["duplicates"]}
