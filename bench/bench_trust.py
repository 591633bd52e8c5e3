"""CPU time of verification per read: passive authentication (EF.SOD parse, DG hashes,
signature, chain, CRL) and chip authentication (ECDH on brainpoolP256r1 + re-keyed
confirmation), terminal side, against the virtual chip of the synthetic profiles.

The virtual chip runs in the same process; its own CPU time (card-side ECDH, AA
signing, secure messaging) is measured around each ``process`` call and subtracted,
so the figures are the terminal's work. Every run loads a fresh trust store object
from memory (no disk) and a fresh chip session (PACE, not timed).

Prints, per profile, median and p95 over N runs of: PA alone, CA alone, PA + CA (the
target: < 20 ms), and the whole ``verify`` (PA + CA + AA).

Usage: .venv/bin/python bench/bench_trust.py [N]
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from agent.icao import access
from agent.icao.ca import chip_authentication
from agent.icao.keys import CanKey
from agent.icao.pa import passive_authentication
from agent.icao.select import Aid, SelectBy, select_command
from agent.icao.sm import SecureMessaging
from agent.icao.trust import TrustStore
from agent.icao.verify import verify
from agent.readers.apdu import ApduChannel
from agent.sim.chip import VirtualChip
from agent.sim.profile import load_profile, load_spec, virtual_chip
from agent.sim.signing import load_test_pki

PROFILES = ("nguyen-van-an", "pham-minh-chau", "tran-thi-bich-ngoc")
SELECT_APP = select_command(SelectBy.AID, Aid.EMRTD.value)
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
NAMES = {0x011D: "SOD", 0x011E: "COM", **{0x0100 + n: f"DG{n}" for n in range(1, 17)}}


class TimedLink:
    """Byte link to the chip that keeps the chip's own CPU time apart."""

    def __init__(self, chip: VirtualChip) -> None:
        self.chip = chip
        self.extended_length = chip.extended_length
        self.chip_cpu = 0.0

    def transmit(self, apdu: bytes) -> bytes:
        start = time.process_time()
        answer = self.chip.process(apdu)
        self.chip_cpu += time.process_time() - start
        return answer


def session_for(name: str) -> tuple[SecureMessaging, TimedLink, dict[str, bytes]]:
    profile = load_profile(name)
    chip = virtual_chip(profile)
    chip.power_on()
    link = TimedLink(chip)
    channel = ApduChannel(link)
    sm, _ = access.establish(channel, CanKey(load_spec(name).person.can),
                             card_access=access.read_card_access(channel))
    if sm.send(SELECT_APP).sw != 0x9000:
        raise RuntimeError("SELECT of the eMRTD application failed")
    # DG3 is never readable without terminal authentication (the chip answers 6982)
    files = {NAMES[fid]: data for fid, data in profile.files.items() if fid in NAMES and NAMES[fid] != "DG3"}
    return sm, link, files


def terminal_cpu(link: TimedLink, fn: Callable[[], Any]) -> tuple[float, Any]:
    before_chip = link.chip_cpu
    start = time.process_time()
    result = fn()
    total = time.process_time() - start
    return (total - (link.chip_cpu - before_chip)) * 1000, result


def stats(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"median {statistics.median(ordered):6.2f} ms  p95 {p95:6.2f} ms"


def bench(name: str, store_bytes: list[bytes], crls: list[bytes], runs: int) -> None:
    pa_ms: list[float] = []
    ca_ms: list[float] = []
    both_ms: list[float] = []
    all_ms: list[float] = []
    statuses: set[tuple[str, str, str]] = set()
    for i in range(runs + 1):
        store = TrustStore.from_certificates(store_bytes, crls)
        sm, link, files = session_for(name)
        t_pa, pa = terminal_cpu(link, partial(passive_authentication, files, store, now=NOW))
        t_ca, ca = terminal_cpu(link, partial(chip_authentication, sm, files["DG14"], rng=os.urandom))
        sm2, link2, files2 = session_for(name)
        store2 = TrustStore.from_certificates(store_bytes, crls)
        t_all, result = terminal_cpu(link2, partial(verify, sm2, files2, trust_store=store2, rng=os.urandom,
                                                    now=NOW))
        if i == 0:
            continue  # warm-up: imports, per-curve tables
        statuses.add((pa.check.status.value, ca.check.status.value, result.status))
        pa_ms.append(t_pa)
        ca_ms.append(t_ca)
        both_ms.append(t_pa + t_ca)
        all_ms.append(t_all)
    print(f"{name}  (statuses {sorted(statuses)})")
    print(f"  PA alone          {stats(pa_ms)}")
    print(f"  CA alone          {stats(ca_ms)}")
    print(f"  PA + CA           {stats(both_ms)}   target < 20 ms")
    print(f"  verify PA+CA+AA   {stats(all_ms)}")


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    pki = load_test_pki()
    store = TrustStore.load(pki.store_dir)
    certs_der = [a.cert.dump() for a in store.anchors]
    crls = [c.dump() for c in store.crls]
    print(f"{runs} runs per profile, terminal CPU time (time.process_time, chip time subtracted)")
    for name in PROFILES:
        bench(name, certs_der, crls, runs)


if __name__ == "__main__":
    main()
