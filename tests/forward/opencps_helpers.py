"""Helpers for the OpenCPS tests: a synthetic applicant with a post-2025 address."""

from __future__ import annotations

import dataclasses
import datetime as dt

from forward_helpers import person

from agent.identity import Identity


def applicant(i: int = 1) -> Identity:
    return dataclasses.replace(person(i), full_name="Trần Thị Ánh Tuyết", sex="F",
                               place_of_residence="Số 7 Phố Thử, Phường Ba Đình, Thành phố Hà Nội",
                               date_of_issue=dt.date(2021, 4, 1), date_of_birth=dt.date(1990, 12, 31))
