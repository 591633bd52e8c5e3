"""OpenCPS intake bench: N dossiers (default 7,000) through the outbox to the local
stand-in portal, with injected failures and random restarts of the delivering worker.

- The portal runs as its own process (``agent.sim.services.opencps``) and fails a share
  of the filings on purpose (``--fail``, default 5 %: half answered 503 before filing, half
  filed and then answered 500, so the answer is lost), with a check-then-insert window
  (``--race-window-ms``) in which two requests for one referenceUid would both be filed.
- The worker is ``python -m agent outbox run --until-empty`` on a real config; it is
  killed with SIGKILL at random moments (every ``--restart-min``..``--restart-max`` s)
  and started again, while the bench queues the dossiers one durable put at a time.
- At the end: lost = queued dossiers the portal does not hold; duplicated = referenceUids
  the portal holds more than once; the time from the first put to the last delivery.

Run: ``.venv/bin/python bench/bench_opencps.py [--dossiers 7000] [--json]``;
the CI variant: ``--dossiers 300 --restart-min 0.5 --restart-max 1.5``;
tests/forward/test_opencps_restarts.py kills by count instead (``--restart-posts 20,60``:
after 20..60 filings per worker, so every kill lands mid-delivery on any machine).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.sim.services.opencps_drill import run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dossiers", type=int, default=7000)
    parser.add_argument("--fail", type=float, default=0.05, help="share of filings that fail (injected)")
    parser.add_argument("--race-window-ms", type=int, default=5)
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--restart-min", type=float, default=1.0)
    parser.add_argument("--restart-max", type=float, default=4.0)
    parser.add_argument("--max-restarts", type=int, default=1000)
    parser.add_argument("--restart-posts", type=lambda v: tuple(int(x) for x in v.split(",")), default=None,
                        metavar="LO,HI", help="kill after LO..HI filings reached the portal (instead of by time)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:28} {v}")
    return 0 if result["lost"] == 0 and result["duplicated_by_referenceUid"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
