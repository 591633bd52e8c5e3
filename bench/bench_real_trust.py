"""Verification with a real trust store: the German BSI CSCA master list (588 CSCAs,
shared/real-emrtd/masterlists/) imported next to the test CSCAs that sign the
synthetic profiles' cards.

Prints:
* ``trust import`` of the master list into an empty folder (signature and signer chain
  checked, every member checked and written): wall time and peak Python memory
  (tracemalloc), and the RSS growth of the process;
* loading that folder into a ``TrustStore`` (what the daemon and ``idagent read`` do once
  at start): wall time and peak memory;
* per synthetic profile, terminal CPU time (chip time subtracted) of passive
  authentication + chip authentication against that loaded store, median and p95
  over N runs (targets: median <= 10 ms, p95 <= 15 ms). The store is loaded once,
  as in the daemon; each run gets a fresh chip session.

Usage: .venv/bin/python bench/bench_real_trust.py [N] [MASTER_LIST]
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from functools import partial
from pathlib import Path

from bench_trust import NOW, PROFILES, session_for, terminal_cpu

from agent.icao.ca import chip_authentication
from agent.icao.pa import passive_authentication
from agent.icao.trust import TrustStore, import_file
from agent.sim.signing import load_test_pki

ROOT = Path(__file__).resolve().parent.parent


def real_emrtd() -> Path:
    """shared/real-emrtd beside the project (CI) or beside a parent folder (worktrees)."""
    for folder in ROOT.parents:
        if (folder / "shared" / "real-emrtd").is_dir():
            return folder / "shared" / "real-emrtd"
    raise SystemExit("shared/real-emrtd not found beside the project or its parent folders")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def timed(fn: partial[object]) -> tuple[float, float, object]:
    """Wall and CPU time of one call (printed), then its peak Python memory (tracemalloc)
    in a second call: tracemalloc slows the code it traces several times over."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    seconds = time.perf_counter() - start
    print(f"  ({fn.func.__name__}: wall {seconds:.2f} s, CPU {time.process_time() - cpu:.2f} s; "
          f"load average {os.getloadavg()[0]:.1f})")
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 2**20, result


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    master_list = (Path(sys.argv[2]) if len(sys.argv) > 2
                   else real_emrtd() / "masterlists" / "DE_ML_2026-05-28-08-28-45.ml")
    folder = Path(tempfile.mkdtemp(prefix="idagent-bench-trust-"))
    try:
        before = rss_mb()
        seconds, peak, report = timed(partial(import_file, master_list, folder))
        shutil.rmtree(folder)
        folder.mkdir()
        seconds, _, report = timed(partial(import_file, master_list, folder))
        print(f"trust import {master_list.name}: {len(report.added)} added, "  # type: ignore[attr-defined]
              f"{len(report.skipped)} refused in {seconds:.2f} s; "  # type: ignore[attr-defined]
              f"peak Python memory {peak:.1f} MiB, max RSS +{rss_mb() - before:.1f} MiB")
        for name in os.listdir(load_test_pki().store_dir):
            shutil.copy(load_test_pki().store_dir / name, folder / name)
        seconds, peak, loaded = timed(partial(TrustStore.load, folder))
        store = loaded if isinstance(loaded, TrustStore) else TrustStore()
        print(f"TrustStore.load: {len(store)} anchors, {len(store.crls)} CRLs in {seconds * 1000:.0f} ms; "
              f"peak Python memory {peak:.1f} MiB")
        print(f"{runs} runs per profile, terminal CPU ms (time.process_time, chip time subtracted)")
        for name in PROFILES:
            samples: list[float] = []
            statuses = set()
            for i in range(runs + 1):
                sm, link, files = session_for(name)
                t_pa, pa = terminal_cpu(link, partial(passive_authentication, files, store, now=NOW))
                t_ca, ca = terminal_cpu(link, partial(chip_authentication, sm, files["DG14"], rng=os.urandom))
                if i == 0:
                    continue  # warm-up
                statuses.add((pa.check.status.value, ca.check.status.value))
                samples.append(t_pa + t_ca)
            print(f"  {name:20} PA+CA median {statistics.median(samples):6.2f} ms  "
                  f"p95 {percentile(samples, 0.95):6.2f} ms  (statuses {sorted(statuses)}; targets 10 / 15 ms)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
