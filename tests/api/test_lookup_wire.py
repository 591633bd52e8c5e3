"""The BHYT lookup's JSON, pinned byte for byte (issue 15, "types to the edge").

For each kind of lookup the desk can end with (an answer the card is usable on, an
answer it is not, a gateway failure the client reports as a result, a lookup refused by
the bounded pool, input the lookup cannot be made from, a gateway failure raised by
the forwards, a crash in them) this checks the bytes every client receives: the body of
``POST /bhyt/lookup``, the ``lookup`` in ``GET /identity``, the ``lookup_result`` event
in the native and the compat WebSocket shape, and the lookup counters.

The expected texts (fixtures/bhyt/lookup_wire.json) were captured from main at bff8979,
while the lookup still travelled as a dict.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from api_fakes import FakeForwards, Harness, fake_verdict, synthetic_identity

from agent.api import render
from agent.config import Config
from agent.desk.session import Current
from agent.errors import UpstreamError
from agent.eventhub import Event, EventType, Shape
from agent.forward.bhyt_codes import BhytStatus, lookup
from agent.forward.bhyt_lookups import BhytLookups
from agent.forward.bhyt_result import BhytResult, local_result, result_from_answer
from agent.identity import Identity
from agent.pipeline import ConfiguredForwards

WIRE = Path(__file__).resolve().parents[2] / "fixtures" / "bhyt" / "lookup_wire.json"

#: a gateway answer for the demo card (synthetic, as fixtures/bhyt/register.json)
VALID_ANSWER = {
    "maKetQua": "000", "maThe": "DN4010199012345", "hoTen": "NGUYỄN VĂN AN", "ngaySinh": "15/03/1999",
    "gioiTinh": "Nam", "diaChi": "Số 1 Phố Thử Nghiệm, Phường Mẫu, Hà Nội", "maDKBD": "01001",
    "cqBHXH": "BHXH quận Mẫu", "gtTheTu": "01/01/2026", "gtTheDen": "31/12/2027", "maKV": "",
    "ngayDu5Nam": "01/01/2024", "maSoBHXH": "0199012345", "ghiChu": "Thẻ còn giá trị sử dụng",
}
#: an old card replaced by a new one, found with the birth year only
REPLACED_ANSWER = {
    "maKetQua": "003", "maThe": "DN4360080001122", "hoTen": "HOÀNG VĂN EM", "ngaySinh": "1980",
    "gioiTinh": "Nam", "diaChi": "Xã Thử, Nam Định", "maDKBD": "36001", "gtTheTu": "01/01/2025",
    "gtTheDen": "30/06/2025", "maSoBHXH": "3680001122", "maTheCu": "DN4360080001122",
    "maTheMoi": "DN4790080001122", "gtTheTuMoi": "01/07/2025", "gtTheDenMoi": "30/06/2027",
    "maDKBDMoi": "79001", "tenDKBDMoi": "Bệnh viện Thử Nghiệm", "ghiChu": "Thẻ cũ hết giá trị, đã cấp thẻ mới",
}


def _usable(identity: Identity) -> BhytResult:
    result = result_from_answer(VALID_ANSWER, lookup("000"), ("15/03/1999",), "full")
    return dataclasses.replace(result, elapsed=0.2345, attempts=1)


def _not_usable(identity: Identity) -> BhytResult:
    result = result_from_answer(REPLACED_ANSWER, lookup("003"), ("22/02/1980", "1980"), "year")
    return dataclasses.replace(result, elapsed=0.61249, attempts=2)


def _gateway_error(identity: Identity) -> BhytResult:
    return local_result(BhytStatus.GATEWAY_ERROR, dob_sent=("15/03/1999",), elapsed=8.00049, attempts=3,
                        detail="timeout")


def _configured(identity: Identity) -> BhytResult:
    """What the daemon's real forwards do (no gateway is asked in the cases that use this)."""
    config = Config.defaults().replace("bhyt", enabled=True, base_url="http://127.0.0.1:9", username="u",
                                       password="p")
    forwards = ConfiguredForwards(config)
    try:
        return forwards.bhyt(identity)
    finally:
        forwards.close()


def _gateway_raised(identity: Identity) -> BhytResult:
    raise UpstreamError("the BHYT gateway did not answer")


def _crash(identity: Identity) -> BhytResult:
    raise RuntimeError("a bug in the forwards")


class ScriptedForwards(FakeForwards):
    """Forwards whose lookup does what the case says."""

    def __init__(self, script: Callable[[Identity], BhytResult]) -> None:
        super().__init__()
        self.script = script

    def bhyt(self, identity: Identity) -> BhytResult:
        self.lookups += 1
        return self.script(identity)


@dataclasses.dataclass(frozen=True)
class Case:
    script: Callable[[Identity], BhytResult]
    #: changes to the synthetic identity on show
    identity: dict[str, Any]
    #: the counters: idagent_bhyt_lookups_total's result, idagent_bhyt_dob_fallbacks_total's matched
    counted: str
    fallback: str | None = None
    #: the lookup is refused by the bounded pool (it is full)
    refused: bool = False


CASES = {
    "answer_usable": Case(_usable, {}, "valid"),
    "answer_not_usable": Case(_not_usable, {}, "replaced", fallback="yes"),
    "answer_gateway_error": Case(_gateway_error, {}, "gateway_error"),
    "refused": Case(_usable, {}, "gateway_unavailable", refused=True),
    "bhyt_input": Case(_configured, {"date_of_birth": None}, "error"),
    "bhyt_input_malformed": Case(_configured, {"id_number": "12345", "date_of_birth": dt.date(1999, 3, 15)},
                                 "error"),
    "gateway_raised": Case(_gateway_raised, {}, "error"),
    "internal": Case(_crash, {}, "error"),
}

#: case → POST /bhyt/lookup's body, the native and the compat frame, as main wrote them
EXPECTED: dict[str, dict[str, str]] = json.loads(WIRE.read_text(encoding="utf-8"))["api"]


@pytest.fixture(params=sorted(CASES))
def case_name(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


def test_the_lookup_json_is_what_it_was(case_name: str, harness_factory: Callable[..., Harness]) -> None:
    case = CASES[case_name]
    h = harness_factory(forwards=ScriptedForwards(case.script))
    if case.refused:
        h.daemon.forwarding._lookups = BhytLookups(max_pending=0)
    current = Current(read_id=h.daemon.store.next_id(), reader="Reader A",
                      identity=synthetic_identity(**case.identity), verification=fake_verdict("verified"),
                      created=time.monotonic())
    h.daemon.session.show(current)
    events: list[Event] = []
    h.daemon.hub.listeners.append(events.append)

    answer = h.post("/bhyt/lookup")
    assert answer.status_code == 200
    body = answer.content.decode("utf-8")
    (event,) = [e for e in events if e.type is EventType.LOOKUP_RESULT]
    fixed = dataclasses.replace(event, seq=7, ts=1764133200.125)
    native, compat = render.frame(fixed, Shape.NATIVE), render.frame(fixed, Shape.COMPAT)
    shown = h.get("/identity").content.decode("utf-8")

    expected = EXPECTED[case_name]
    assert body == expected["post_bhyt_lookup"]
    assert native == expected["native_frame"]
    assert compat == expected["compat_frame"]
    expected_body = expected["post_bhyt_lookup"]
    # GET /identity carries the same object as POST /bhyt/lookup, without the read_id
    prefix = f'{{"read_id": {current.read_id}, '
    assert expected_body.startswith(prefix)
    assert f'"lookup": {{{expected_body[len(prefix):]}, "intake": null' in shown
    metrics = h.daemon.metrics
    assert metrics.lookups.value(result=case.counted) == 1
    assert sum(metrics.dob_fallbacks.value(matched=m) for m in ("yes", "no")) == (case.fallback is not None)
    if case.fallback is not None:
        assert metrics.dob_fallbacks.value(matched=case.fallback) == 1
    h.daemon.session.forget("test", announce=False)
