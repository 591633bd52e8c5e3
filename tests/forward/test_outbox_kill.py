"""Must-show: SIGKILL the delivering process at random (seeded) moments while 1,000
dossiers are forwarded to a receiver that sometimes fails; afterwards every dossier
was delivered exactly once (by idempotency key, counted by the receiver) and the
outbox is empty.

The worker runs as a subprocess (``python -m agent --config … outbox run``) and is
restarted after each kill; this process queues the dossiers meanwhile, so the two
processes share the SQLite file as the daemon and ``idagent outbox`` do.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from forward_helpers import person

from agent.config import load_config
from agent.forward.intake import IntakeSettings, enqueue_dossier
from agent.forward.outbox import Outbox
from agent.sim.services.intake import IntakeTestService

ROOT = Path(__file__).resolve().parents[2]
DOSSIERS = 1000
SEED = 20261126
MIN_KILLS = 8
#: kills after which the test stops killing whatever the progress (a run that needs
#: this many makes almost no progress per worker life; the assertions then tell)
MAX_KILLS = 200
#: a worker that has not sent one request this long after its start is stuck
START_SECONDS = 60.0


def _config(tmp_path: Path, intake_url: str, hmac_key_file: Path) -> Path:
    path = tmp_path / "idagent.toml"
    path.write_text(f"""
[intake]
enabled = true
url = "{intake_url}"
hmac_key_file = "{hmac_key_file}"
[outbox]
path = "{tmp_path / 'var' / 'outbox.sqlite3'}"
key_file = "{tmp_path / 'var' / 'outbox.key'}"
base_backoff = 0.02
max_backoff = 0.2
""", encoding="utf-8")
    return path


def _pending(box: Outbox) -> bool:
    counts = box.counts()
    return bool(counts["pending"])


def _worker(config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "agent", "--config", str(config), "outbox", "run", *extra]


def test_sigkill_while_forwarding_1000_dossiers(tmp_path: Path, intake: IntakeTestService,
                                                hmac_key_file: Path) -> None:
    rng = random.Random(SEED)
    # the receiver fails 10% before storing and 10% after storing (answer lost), and is
    # a little slow, so the worker is killed in the middle of deliveries, not between them
    intake.state.control({"fail_before": 0.1, "fail_after": 0.1, "seed": SEED, "delay_ms": 8})
    config_path = _config(tmp_path, intake.intake_url, hmac_key_file)
    config = load_config(config_path)
    box = Outbox.from_config(config)
    settings = IntakeSettings.from_config(config)
    keys: dict[str, int] = {}

    def enqueue_all() -> None:
        for i in range(DOSSIERS):
            keys[enqueue_dossier(box, person(i), settings)] = i
            if i % 100 == 99:
                time.sleep(0.1)  # dossiers arrive over time, not all at once

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    producer = threading.Thread(target=enqueue_all)
    producer.start()
    started = time.monotonic()
    kills = kills_mid_delivery = 0
    try:
        # Killing goes on by counts, not for a wall-clock period (a loaded machine
        # delivers less per life: it just takes more lives): until the producer is done,
        # MIN_KILLS kills landed, at least 3 of them mid-delivery, and three quarters of
        # the dossiers arrived; MAX_KILLS only stops a run that makes no progress.
        while kills < MAX_KILLS:
            before = intake.state.stats()["requests"]
            proc = subprocess.Popen(_worker(config_path), env=env, cwd=tmp_path,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if rng.random() < 0.25:
                time.sleep(rng.uniform(0.0, 0.5))  # during startup or the first claim
            else:
                # once this worker is delivering (startup takes ~0.4 s, longer on a busy
                # machine), at a random moment in the middle of its batches. A worker
                # that sends nothing for START_SECONDS is stuck, not slow.
                deadline = time.monotonic() + START_SECONDS
                while intake.state.stats()["requests"] == before and time.monotonic() < deadline:
                    if not _pending(box):
                        break  # nothing to deliver (yet, or any more): nothing to wait for
                    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                    time.sleep(0.01)
                assert intake.state.stats()["requests"] > before or not _pending(box), \
                    f"a worker sent nothing in {START_SECONDS} s with dossiers pending"
                time.sleep(rng.uniform(0.0, 0.6))
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            if proc.stderr:
                proc.stderr.close()
            kills += 1
            if intake.state.stats()["requests"] > before:
                kills_mid_delivery += 1
            # kill through most of the run
            if not producer.is_alive() and kills >= MIN_KILLS and kills_mid_delivery >= 3 \
                    and intake.state.stats()["unique_dossiers"] >= DOSSIERS * 0.75:
                break
    finally:
        producer.join()
    # last run, not killed: drains what is left and exits (the timeout only ends a
    # hung worker: the rest takes a few seconds)
    final = subprocess.run(_worker(config_path, "--until-empty"), env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr

    stats = intake.state.stats()
    arrivals = intake.state.arrivals_by_key()
    # every dossier arrived, none unknown, and each took effect exactly once
    assert set(arrivals) == set(keys) and len(keys) == DOSSIERS
    assert stats["accepted"] == DOSSIERS and stats["unique_dossiers"] == DOSSIERS
    for key, i in list(keys.items())[::97]:
        body = json.loads(intake.state.body(key) or b"{}")
        assert body["dossier_id"] == key and body["identity"]["id_number"] == person(i).id_number
    # the test did what it says: kills landed mid-delivery, failures and replays happened
    assert kills >= MIN_KILLS and kills_mid_delivery >= 3
    assert stats["failed_before"] > 0 and stats["failed_after"] > 0 and stats["replays"] > 0
    # the outbox is empty: nothing pending or failed, no payload left
    counts = box.counts()
    assert counts["pending"] == 0 and counts["failed"] == 0 and counts["delivered"] == DOSSIERS
    assert box._db.execute("SELECT COUNT(*) FROM outbox WHERE payload IS NOT NULL").fetchone() == (0,)
    assert box.purge(delivered=True) == DOSSIERS and sum(box.counts().values()) == 0
    box.close()
    print(f"\nkills={kills} mid-delivery={kills_mid_delivery} requests={stats['requests']} "
          f"replays={stats['replays']} failed_before={stats['failed_before']} "
          f"failed_after={stats['failed_after']} seconds={time.monotonic() - started:.1f}")
