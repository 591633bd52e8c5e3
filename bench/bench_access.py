"""CPU time of access control, terminal + virtual chip in one process.

Prints the median (and min/max) of ``time.process_time`` over N handshakes for BAC and
for PACE (ECDH-GM, brainpoolP256r1 = parameter 13, AES-128: the CCCD's protocol), each
including reading EF.CardAccess and one protected SELECT, plus a few other PACE
variants for comparison. The terminal/chip split is measured around the chip's
``process`` calls (terminal = total median - chip median). One warm-up run per variant is excluded (it builds the
fixed-base table of the curve once per process).

Usage: .venv/bin/python bench/bench_access.py [N]
"""

from __future__ import annotations

import statistics
import sys
import time

from agent.icao import access
from agent.icao.crypto import Cipher
from agent.icao.keys import CanKey, MrzKey
from agent.icao.securityinfo import Mapping, PaceInfo, encode_security_infos, pace_oid
from agent.icao.select import Aid, SelectBy, select_command
from agent.readers.apdu import ApduChannel
from agent.sim.chip import FID_CARD_ACCESS, ChipProfile, VirtualChip, dg_fid
from agent.sim.link import Link

MRZ = MrzKey("099012345", "990315", "390315")
CAN = CanKey("012345")
SELECT_APP = select_command(SelectBy.AID, Aid.EMRTD.value)


def one_run(profile: ChipProfile, key: MrzKey | CanKey) -> tuple[float, float, int, str]:
    chip = VirtualChip(profile)
    chip.power_on()
    link = Link(chip)
    start = time.process_time()
    channel = ApduChannel(link)
    sm, info = access.establish(channel, key, card_access=access.read_card_access(channel))
    if sm.send(SELECT_APP).sw != 0x9000:
        raise RuntimeError("protected SELECT failed")
    return time.process_time() - start, link.chip_seconds, link.apdus, info.protocol


def bench(label: str, profile: ChipProfile, key: MrzKey | CanKey, runs: int) -> None:
    one_run(profile, key)  # warm-up: per-curve tables, imports
    samples, chip_part = [], []
    apdus, protocol = 0, ""
    for _ in range(runs):
        seconds, chip_seconds, apdus, protocol = one_run(profile, key)
        samples.append(seconds * 1000)
        chip_part.append(chip_seconds * 1000)
    print(f"{label:<40} {protocol:<4} median {statistics.median(samples):6.2f} ms "
          f"(terminal {statistics.median(samples) - statistics.median(chip_part):5.2f}, "
          f"chip {statistics.median(chip_part):5.2f})  min {min(samples):6.2f}  max {max(samples):6.2f}  "
          f"({apdus} APDUs, n={runs})")


def pace_profile(mapping: Mapping, cipher: Cipher, pid: int) -> ChipProfile:
    files = {FID_CARD_ACCESS: encode_security_infos([PaceInfo(pace_oid(mapping, cipher), 2, pid)]),
             dg_fid(1): b"\x61\x00"}
    return ChipProfile(files, mrz_key=MRZ, can=CAN.can)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    bac_profile = ChipProfile({dg_fid(1): b"\x61\x00"}, mrz_key=MRZ, pace_enabled=False)
    bench("BAC (3DES)", bac_profile, MRZ, runs)
    bench("PACE ECDH-GM P13 brainpoolP256r1 AES128", pace_profile(Mapping.ECDH_GM, Cipher.AES128, 13), CAN, runs)
    bench("PACE ECDH-GM P12 NIST P-256 AES128", pace_profile(Mapping.ECDH_GM, Cipher.AES128, 12), CAN, runs)
    bench("PACE ECDH-GM P17 brainpoolP512r1 AES256", pace_profile(Mapping.ECDH_GM, Cipher.AES256, 17), CAN,
          max(5, runs // 3))
    bench("PACE DH-GM P2 MODP-2048/256 AES128", pace_profile(Mapping.DH_GM, Cipher.AES128, 2), CAN,
          max(5, runs // 3))


if __name__ == "__main__":
    main()
