"""The BHYT client against the misbehaviours an independent gateway showed (issue 14,
items 12-16), each played by the local test gateway (a real HTTP server)."""

from __future__ import annotations

import time

import pytest
from forward_helpers import FakeClock, make_settings

from agent.forward.bhyt import BhytClient
from agent.forward.bhyt_codes import BhytStatus, lookup
from agent.forward.bhyt_token import token_expiry
from agent.forward.breaker import BreakerState
from agent.sim.services.bhyt import BhytTestService

AN = ("001099012345", "Nguyễn Văn An", "15/03/1999")


def _client(gateway: BhytTestService, clock: FakeClock, **overrides: object) -> BhytClient:
    return BhytClient(make_settings(gateway.url, **overrides), clock=clock, sleep=clock.sleep, jitter=lambda: 0.5)


# -- 12: an answer without a known maKetQua -------------------------------------------------

@pytest.mark.parametrize("answer", [{"ghiChu": "OK", "maThe": "DN4010199012345"}, {"maKetQua": "999"},
                                    {"maKetQua": None}])
def test_answer_without_known_code_is_a_gateway_error(gateway: BhytTestService, clock: FakeClock,
                                                      answer: dict[str, object]) -> None:
    client = _client(gateway, clock)
    gateway.state.control({"check_answer": answer})
    result = client.check(*AN)
    assert result.status is BhytStatus.GATEWAY_ERROR and result.upstream_failure  # CLI exit 7
    assert not result.usable
    assert "maKetQua" in result.message_en
    # no verdict about the card: not retried (the gateway would say the same)
    assert gateway.state.snapshot()["counters"]["checks"] == 1


def test_answers_without_a_code_open_the_breaker(gateway: BhytTestService, clock: FakeClock) -> None:
    client = _client(gateway, clock, breaker_threshold=2)
    gateway.state.control({"check_answer": {"maKetQua": "abc"}})
    client.check(*AN)
    client.check(*AN)
    assert client.breaker.state is BreakerState.OPEN
    checks = gateway.state.snapshot()["counters"]["checks"]
    assert client.check(*AN).status is BhytStatus.GATEWAY_UNAVAILABLE
    assert gateway.state.snapshot()["counters"]["checks"] == checks  # failed fast


# -- 13: a total deadline per lookup ---------------------------------------------------------

def test_trickling_gateway_is_cut_at_the_lookup_deadline(gateway: BhytTestService) -> None:
    # one byte every 50 ms keeps every socket read alive (timeout 2 s) but a ~300-byte
    # answer takes 15 s; the lookup must end at its 1.5 s deadline, retries included
    client = BhytClient(make_settings(gateway.url, timeout=2.0, deadline=1.5, retries=2))
    gateway.state.control({"trickle_ms": 50})
    started = time.monotonic()
    result = client.check(*AN)
    elapsed = time.monotonic() - started
    assert result.status is BhytStatus.GATEWAY_ERROR and result.upstream_failure
    assert "deadline" in result.message_en
    # not a speed bound: a lookup that does not stop at its deadline reads the whole
    # trickled answer, 15 s an attempt; 10 s leaves a loaded machine 8.5 s beyond the
    # deadline (bench/bench_forward.py measures the lookups' own times)
    assert elapsed < 10, f"lookup took {elapsed:.1f} s past its 1.5 s deadline"
    assert elapsed >= 1.5


def test_retries_stop_at_the_lookup_deadline(gateway: BhytTestService, clock: FakeClock) -> None:
    client = _client(gateway, clock, retries=10, backoff_base=1.0, backoff_max=4.0, deadline=8.0,
                     breaker_threshold=50)
    gateway.state.control({"error_rate": 1.0})
    result = client.check(*AN)
    assert result.status is BhytStatus.GATEWAY_ERROR
    assert sum(clock.sleeps) < 8.0 and result.elapsed < 8.0
    assert result.attempts < 11


# -- 14: redirects are never followed --------------------------------------------------------

def test_redirect_is_a_gateway_error_naming_the_host(gateway: BhytTestService, clock: FakeClock) -> None:
    other = BhytTestService(clock=clock).start()
    try:
        client = _client(gateway, clock)
        # 307 keeps the POST and its form: a followed redirect would log in at the other host
        gateway.state.control({"redirect": 307, "redirect_to": other.url + "/api/token/take"})
        result = client.check(*AN)
        assert result.status is BhytStatus.GATEWAY_ERROR and result.upstream_failure
        assert "127.0.0.1" in result.message_en and "redirect" in result.message_en
        counters = other.state.snapshot()["counters"]
        assert counters["logins"] == counters["login_failures"] == counters["checks"] == 0
    finally:
        other.stop()


def test_redirect_loop_costs_one_request(gateway: BhytTestService, clock: FakeClock) -> None:
    client = _client(gateway, clock)
    client.check(*AN)  # logged in
    gateway.state.control({"redirect": 302, "redirect_to": "self"})
    result = client.check(*AN)
    assert result.status is BhytStatus.GATEWAY_ERROR
    assert gateway.state.snapshot()["counters"]["redirects"] == 1
    # a relative Location names the gateway's own host
    assert "redirect to host 127.0.0.1" in result.message_en


# -- 15: what was sent, and the official wording -----------------------------------------------

def test_no_dob_listed_as_sent_when_login_failed(gateway: BhytTestService, clock: FakeClock) -> None:
    client = _client(gateway, clock, password="wrong")
    result = client.check(*AN)
    assert result.status is BhytStatus.AUTH_ERROR
    assert result.dob_sent == ()
    assert gateway.state.snapshot()["counters"]["checks"] == 0


def test_other_ministry_codes_keep_the_official_instruction() -> None:
    # letter 1923/BHXH-CNTT: cards of the defence (001) and public-security (002)
    # social insurance are not in the VSS register: check the card and identity papers
    for code in ("001", "002"):
        info = lookup(code)
        assert "kiểm tra thẻ và giấy tờ tùy thân" in info.message_vi
        assert "check the card and the identity papers" in info.message_en


# -- 16: token lifetimes in other shapes -------------------------------------------------------

@pytest.mark.parametrize("shape", ["timestamp", "timestamp_ms", "datetime", "local_datetime"])
def test_token_refreshed_before_expiry_whatever_the_shape(gateway: BhytTestService, clock: FakeClock,
                                                           shape: str) -> None:
    gateway.state.control({"token_ttl": 300, "expires_in": shape})
    client = _client(gateway, clock)
    client.check(*AN)
    client.check(*AN)
    assert client.logins == 1
    clock.advance(280)  # inside the refresh margin; the gateway still takes the token
    assert client.check(*AN).status is BhytStatus.VALID
    assert client.logins == 2
    clock.advance(290)  # the second token's lifetime was read the same way
    assert client.check(*AN).status is BhytStatus.VALID
    assert (client.logins, gateway.state.snapshot()["counters"]["unauthorized"]) == (3, 0)


def test_missing_lifetime_falls_back_to_one_relogin_on_401(gateway: BhytTestService, clock: FakeClock) -> None:
    gateway.state.control({"token_ttl": 300, "expires_in": "missing"})
    client = _client(gateway, clock)
    client.check(*AN)
    clock.advance(400)
    assert client.check(*AN).status is BhytStatus.VALID
    assert (client.logins, gateway.state.snapshot()["counters"]["unauthorized"]) == (2, 1)


def test_token_expiry_shapes() -> None:
    now = 1_800_000_000.0
    assert token_expiry(600, now=now) == 600
    assert token_expiry("600", now=now) == 600
    assert token_expiry(now + 600, now=now) == 600
    assert token_expiry((now + 600) * 1000, now=now) == pytest.approx(600)
    # 1_800_000_000 is 2027-01-15 08:00:00 UTC
    assert token_expiry("2027-01-15T08:00:00+00:00", now=now - 600) == 600
    assert token_expiry("2027-01-15T08:00:00Z", now=now - 600) == 600
    # a date-time without an offset is Vietnam time (UTC+7)
    assert token_expiry("15/01/2027 15:00:00", now=now - 600) == 600
    assert token_expiry("2027-01-15 15:00:00", now=now - 600) == 600
    # missing: the JWT's exp claim
    jwt = "eyJhbGciOiJub25lIn0." + _b64url(b'{"exp": 1800000900}') + ".sig"
    assert token_expiry(None, jwt, now=now) == 900
    assert token_expiry(None, "opaque-token", now=now) is None
    assert token_expiry("soon", now=now) is None
    assert token_expiry(now - 60, now=now) is None  # already past: until a 401


def _b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).decode().rstrip("=")
