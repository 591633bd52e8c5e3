"""Helpers for the forwarding tests: a fake clock, client settings for the test
gateway's account, synthetic identities."""

from __future__ import annotations

import datetime as dt

from agent.forward.bhyt import BhytSettings
from agent.identity import Identity

# the register's account and officer (fixtures/bhyt/register.json)
USERNAME = "79001_BV"
PASSWORD = "matkhau-thu-nghiem"
OFFICER_NAME = "Trần Thị Thu"
OFFICER_ID = "079190001111"
HMAC_KEY = b"test-intake-hmac-key-0123456789ab"


class FakeClock:
    """Monotonic time that moves only when told (or when something sleeps)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_settings(url: str, **overrides: object) -> BhytSettings:
    values: dict[str, object] = dict(base_url=url, username=USERNAME, password=PASSWORD,
                                     officer_name=OFFICER_NAME, officer_id=OFFICER_ID, facility_code="79001",
                                     timeout=2.0, retries=2, breaker_threshold=5, breaker_reset=30.0)
    values.update(overrides)
    return BhytSettings(**values)  # type: ignore[arg-type]


def person(i: int) -> Identity:
    """A made-up citizen per number (IDs in the 001099… range of the synthetic register)."""
    return Identity(id_number=f"0010995{i:05d}", old_id_number=f"1{i:08d}", full_name=f"Nguyễn Văn Thử {i}",
                    date_of_birth=dt.date(1999, 3, 15), sex="M", nationality="Việt Nam",
                    place_of_residence=f"Số {i} Phố Thử Nghiệm, Hà Nội", date_of_issue=dt.date(2021, 4, 1),
                    date_of_expiry=dt.date(2039, 3, 15), sources={"full_name": "chip", "id_number": "chip"})
