"""How long a read stays blocked when the card goes silent mid-read (issue 14 item 10),
through the real stack: the virtual chip on vpcd, pcscd, pyscard.

The chip stops answering at one APDU of the read (it holds the command until the bench
lets it go). With the agent's deadline (``[card] apdu_timeout``) the read fails after
that many seconds; without it, the read waits for whatever the driver does.

    .venv/bin/python bench/bench_silent_reader.py [--apdu-timeout 5] [--at 30] [--no-deadline]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from agent.errors import IdAgentError  # noqa: E402
from agent.icao.keys import CanKey  # noqa: E402
from agent.icao.read import read_chip  # noqa: E402
from agent.readers.apdu import ApduChannel  # noqa: E402
from agent.readers.pcsc import PcscBackend, wait_for_card  # noqa: E402
from agent.sim.pcscd import ensure_pcscd  # noqa: E402
from agent.sim.profile import load_profile, virtual_chip  # noqa: E402
from agent.sim.vpcd import VPCD_PORT, VpcdClient  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apdu-timeout", type=float, default=5.0)
    parser.add_argument("--at", type=int, default=30, help="the APDU (1-based) the chip never answers")
    parser.add_argument("--no-deadline", action="store_true", help="read without the agent's deadlines")
    args = parser.parse_args(argv)
    chip = virtual_chip(load_profile("nguyen-van-an"))
    inner, count, release = chip.process, [0], threading.Event()

    def process(apdu: bytes) -> bytes:
        count[0] += 1
        if count[0] == args.at:
            release.wait(120)
        return inner(apdu)

    chip.process = process  # type: ignore[method-assign]
    with ensure_pcscd():
        client = VpcdClient(chip, port=VPCD_PORT, lock_timeout=60)
        client.start()
        try:
            if not wait_for_card(client.reader, True, 15):
                print("pcscd did not see the virtual card", file=sys.stderr)
                return 2
            backend = PcscBackend()
            timeouts = {"apdu_timeout": None, "read_timeout": None} if args.no_deadline else \
                {"apdu_timeout": args.apdu_timeout, "read_timeout": 60.0}
            started = time.monotonic()
            try:
                with backend.connect(client.reader) as conn:
                    read_chip(ApduChannel(conn), CanKey("012345"), **timeouts)  # type: ignore[arg-type]
                outcome = "read ended normally"
            except IdAgentError as exc:
                outcome = f"{exc.code} (exit {getattr(exc, 'exit_code', 1)}): {exc.message}"
            elapsed = time.monotonic() - started
            release.set()
            backend.close()
        finally:
            release.set()
            client.stop()
    label = "no deadline" if args.no_deadline else f"apdu_timeout {args.apdu_timeout:g} s"
    print(f"silent card at APDU {args.at}, {label}: the read ended after {elapsed:.1f} s: {outcome}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
