"""Fault injection on the card path (issue 8, part 2): the matrix of cases × outcomes.

Every case is one full read (``agent.icao.read.read_chip``: access control, every
file, parsing, passive + chip + active authentication) of a synthetic card on the
virtual chip (``agent.sim``), in process through ``agent.readers.sim.SimBackend``,
with ONE fault injected at APDU number ``index`` (1-based, counted at the
connection, so GET RESPONSEs count too):

* ``remove``  the card leaves the reader just before APDU ``index``;
* ``detach``  the reader itself is unplugged just before APDU ``index``;
* ``corrupt`` one byte of the answer to APDU ``index`` is flipped (bit 0), a data
              byte when there is data, else a status byte;
* ``sw``      APDU ``index`` is answered with an unexpected status word and no data
              (the chip never sees the command): 6F00, 6A82, 6982, 6700, 6988, 6300,
              6D00, and a bare 9000;
* ``reset``   the card is reset (power cycle: sessions and selection lost) just
              before APDU ``index``.

plus, over the real PC/SC stack (``--pcscd``: a private pcscd with the vpcd driver in
its own mount namespace, so the machine's pcscd and other users are untouched):

* ``pcscd-restart``  pcscd is killed just before APDU ``index`` and started again;
* ``unplug``         the vpcd card client is stopped (the reader loses its card
                     link) just before APDU ``index``.

A case PASSES when all of these hold:

1. the read costs at most ``BOUND_SECONDS`` of CPU time (in process the read never
   waits on anything: on a machine shared with other jobs its wall-clock time measures
   them, not the read) and ends within ``WALL_BOUND_SECONDS``;
2. it ends either in an ``IdAgentError`` with a hint and a specific error code (what
   the daemon shows the clerk: not the base class's generic "error"), or in a returned
   read that, if it says
   ``verified``, is complete and carries exactly the identity of a clean read (no
   half-read or altered identity passes as verified);
3. the NEXT tap (the same card laid down again) reads cleanly and verifies.

    .venv/bin/python bench/fault_matrix.py                  # full in-process matrix
    .venv/bin/python bench/fault_matrix.py --step 3         # every 3rd APDU index
    .venv/bin/python bench/fault_matrix.py --pcscd          # + pcscd restart / unplug
    .venv/bin/python bench/fault_matrix.py --pcscd-only --pcscd-step 4
    .venv/bin/python bench/fault_matrix.py --json           # machine-readable

tests/robustness/test_robust_faults.py runs a reduced matrix in CI. The cases and the
judge are in ``agent.sim.faults`` (and ``agent.sim.faults_pcscd``), shared with the tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from agent.sim.faults import IN_PROCESS_KINDS, PROFILES, CaseResult, render, run_matrix, to_json  # noqa: E402
from agent.sim.faults_pcscd import run_pcscd_matrix  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--step", type=int, default=1, help="inject at every N-th APDU index (default 1: all)")
    parser.add_argument("--protocol", action="append", choices=sorted(PROFILES), help="default: both")
    parser.add_argument("--kind", action="append", choices=IN_PROCESS_KINDS, help="default: all in-process kinds")
    parser.add_argument("--pcscd", action="store_true", help="also restart pcscd / unplug vpcd mid-read")
    parser.add_argument("--pcscd-only", action="store_true", help="only the pcscd restart / unplug cases")
    parser.add_argument("--pcscd-step", type=int, default=8, help="APDU index step for the pcscd cases")
    parser.add_argument("--pcscd-indices", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    indices = [int(i) for i in args.pcscd_indices.split(",")] if args.pcscd_indices else None
    started = time.monotonic()
    results: list[CaseResult] = []
    if not args.pcscd_only:
        results += run_matrix(args.protocol or ("BAC", "PACE"), args.kind or IN_PROCESS_KINDS, args.step)
    if args.pcscd or args.pcscd_only:
        results += run_pcscd_matrix(step=args.pcscd_step, indices=indices)
    if args.json:
        print(json.dumps(to_json(results), indent=2))
    else:
        print(render(results))
        print(f"({time.monotonic() - started:.0f} s)")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
