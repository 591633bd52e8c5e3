"""The CI variant of bench/bench_opencps.py: dossiers through real worker processes that
are killed (SIGKILL) mid-delivery and started again, to the stand-in portal (its own
process) with injected failures and a check-then-insert window: none lost, none filed
twice under one referenceUid."""

from __future__ import annotations

import argparse

from agent.sim.services.opencps_drill import run


def test_kills_and_failures_lose_nothing_and_file_nothing_twice() -> None:
    # the workers are killed after 20..60 filings each (not after 0.3..0.8 s, which a
    # fast run could outlast, ending with fewer kills): three kills within at most 180 of
    # the 300+ filings, so all three land mid-delivery whatever the machine's speed
    args = argparse.Namespace(dossiers=300, fail=0.1, race_window_ms=5, settle=0.5, restart_min=0.3,
                              restart_max=0.8, restart_posts=(20, 60), max_restarts=3, seed=5)
    result = run(args)
    assert result["restarts"] == 3 and result["injected_failures"] > 0
    assert result["lost"] == 0 and result["duplicated_by_referenceUid"] == 0
    assert result["outbox"] == {"pending": 0, "delivered": 300, "failed": 0}
    assert result["filed"] == 300 and result["race_duplicates"] == 0
