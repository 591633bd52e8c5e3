"""Client of the BHYT (Vietnam Social Security) card-check gateway.

Protocol (domain.md, from the appendix to letter 1923/BHXH-CNTT):
``POST /api/token/take`` (form: username, MD5-hex password) gives an ``APIKey``
(access_token, id_token, expires_in); ``POST /api/egw/KQNhanLichSuKCB2024`` with the
token in the query and ``{maThe, hoTen, ngaySinh, hoTenCb, cccdCb}`` as JSON answers
with a ``maKetQua`` code (table in :mod:`agent.forward.bhyt_codes`).

The field problem this client solves: the insurance record's date of birth often
differs from the ID card's, or holds only the year. When the gateway answers 070
(wrong date of birth) to the full date, the client asks again with the year only and
reports both values sent and which one matched (the policy and the inputs are in
:mod:`agent.forward.bhyt_input`, the result in :mod:`agent.forward.bhyt_result`).

Failure handling: a timeout on every socket read and a total deadline per lookup
(``deadline``, retries and the year-only second query included: a gateway trickling
bytes cannot hold a lookup longer), bounded retries with exponential backoff and
jitter on transport errors and server errors, one re-login on 401, and a circuit
breaker that makes lookups fail fast (status ``gateway_unavailable``) while the gateway
is down. An answer without a known ``maKetQua`` and any HTTP redirect are gateway
errors too (counted by the breaker): redirects are never followed, because the check
URL carries the token and the MD5 password (domain.md) and a redirect would hand
them to whatever host the ``Location`` names. The client is thread-safe;
:class:`agent.forward.bhyt_lookups.BhytLookups` runs lookups on worker threads so a
slow or dead gateway never holds up card reading.

Names and ID numbers never reach the log (masked).

Why one module of ~410 lines: login, the token's refresh, retries, the lookup deadline
and the breaker act together on one lookup (``_Lookup``, the shared token and its
lock); splitting them would pass that state between modules. The inputs and the DOB
fallback, the result, and the lookup pool are in their own modules.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from agent.errors import ConfigError
from agent.forward.bhyt_codes import CODES, BhytStatus, lookup
from agent.forward.bhyt_input import (
    BhytInputError,
    ask_year_only,
    dob_matched,
    normalize_card,
    normalize_name,
    parse_dob,
)
from agent.forward.bhyt_result import BhytResult, local_result, result_from_answer
from agent.forward.bhyt_token import token_expiry
from agent.forward.breaker import CircuitBreaker
from agent.forward.http_deadline import DeadlineAdapter, abort_after
from agent.forward.settings import ForwardConfig
from agent.logs import mask, register_secret

logger = logging.getLogger(__name__)

TOKEN_PATH = "/api/token/take"
CHECK_PATH = "/api/egw/KQNhanLichSuKCB2024"
#: login answer code for success (domain.md)
LOGIN_OK = "200"
AUTH_FAILED = "401"
#: gateway codes that mean "server trouble, try again"
RETRYABLE_CODES = frozenset({"101", "500"})
#: refresh the token this long before the gateway says it expires
TOKEN_MARGIN_S = 30.0


class BhytConfigError(ConfigError):
    code = "bhyt_config"
    exit_code = 3
    hint = "Set [bhyt] base_url, username and password (or password_file) in the config file."


# --------------------------------------------------------------------------- settings

@dataclass(frozen=True)
class BhytSettings:
    base_url: str
    username: str
    password: str = field(repr=False)
    officer_name: str = ""
    officer_id: str = field(default="", repr=False)
    facility_code: str = ""
    timeout: float = 5.0
    #: seconds for a whole lookup, retries and the year-only second query included
    deadline: float = 8.0
    retries: int = 2
    breaker_threshold: int = 5
    breaker_reset: float = 30.0
    backoff_base: float = 0.2
    backoff_max: float = 2.0

    @classmethod
    def from_config(cls, config: ForwardConfig) -> BhytSettings:
        """From ``agent.config.Config`` (``[bhyt]`` section, password or password_file)."""
        section = config.bhyt
        if not section.base_url:
            raise BhytConfigError("[bhyt] base_url is not set")
        if not section.username:
            raise BhytConfigError("[bhyt] username is not set")
        return cls(base_url=section.base_url.rstrip("/"), username=section.username,
                   password=config.bhyt_password(), officer_name=section.officer_name,
                   officer_id=section.officer_id, facility_code=section.facility_code,
                   timeout=section.timeout, deadline=section.deadline, retries=section.retries,
                   breaker_threshold=section.breaker_threshold, breaker_reset=section.breaker_reset)

    @property
    def password_md5(self) -> str:
        # the gateway takes the MD5 hex digest of the password (domain.md); MD5 here is
        # the gateway's wire format, not our choice of hash
        return hashlib.md5(self.password.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _Token:
    access_token: str = field(repr=False)
    id_token: str = field(repr=False)
    expires_at: float


class _Unavailable(Exception):
    """Breaker open, or retries exhausted on transport/server errors."""

    def __init__(self, status: BhytStatus, detail: str, attempts: int) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.attempts = attempts


class _AuthFailed(Exception):
    pass


class _Retryable(Exception):
    pass


class _GatewayError(Exception):
    """An answer that is no answer (no known maKetQua, a redirect): counted by the
    breaker, not retried (the same gateway would say the same)."""


class _DeadlineExceeded(Exception):
    pass


@dataclass
class _Lookup:
    """One ``check`` call: when it must end, and the dates of birth that went out."""

    deadline_at: float
    sent: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- client

class BhytClient:
    def __init__(self, settings: BhytSettings, *, session: requests.Session | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 jitter: Callable[[], float] | None = None,
                 breaker: CircuitBreaker | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.settings = settings
        # an injected session is used from every thread (the caller vouches for it);
        # otherwise each lookup thread gets its own, as requests does not promise that
        # one Session is safe to share
        self._shared_session = session
        self._local = threading.local()
        self._clock = clock
        self._wall = wall
        self._sleep = sleep
        self._jitter = jitter if jitter is not None else random.SystemRandom().random
        self.breaker = breaker if breaker is not None else CircuitBreaker(
            settings.breaker_threshold, settings.breaker_reset, clock=clock, name="BHYT gateway")
        self._token: _Token | None = None
        self._token_lock = threading.Lock()
        self._md5 = settings.password_md5
        register_secret(self._md5)
        self.logins = 0

    # ------------------------------------------------------------------ public

    def check(self, card: str, full_name: str, dob: dt.date | str) -> BhytResult:
        """Check one card. Never raises on gateway trouble: the result says what happened.
        Raises :class:`BhytInputError` on unusable input."""
        card_value = normalize_card(card)
        name = normalize_name(full_name)
        if not name:
            raise BhytInputError("the full name is empty")
        dob_in = parse_dob(dob)
        started = self._clock()
        first = dob_in.full or dob_in.year
        # dob_sent lists only what went out in a check request (never when login failed)
        lookup_ = _Lookup(started + self.settings.deadline)
        sent = lookup_.sent
        attempts = 0
        try:
            answer, n = self._check_once(card_value, name, first, lookup_)
            attempts += n
            code = _code_of(answer)
            if ask_year_only(code, dob_in):
                answer, n = self._check_once(card_value, name, dob_in.year, lookup_)
                attempts += n
                code = _code_of(answer)
        except _Unavailable as exc:
            return local_result(exc.status, dob_sent=tuple(sent), attempts=attempts + exc.attempts,
                                 elapsed=self._clock() - started, detail=exc.detail)
        except _AuthFailed:
            return local_result(BhytStatus.AUTH_ERROR, dob_sent=tuple(sent), attempts=attempts,
                                 elapsed=self._clock() - started)
        info = lookup(code)
        matched = dob_matched(info.status, sent, dob_in)
        result = result_from_answer(answer, info, tuple(sent), matched)
        result = dataclasses.replace(result, elapsed=self._clock() - started, attempts=attempts)
        logger.info("BHYT check card=%s code=%s status=%s dob_matched=%s attempts=%d %.0f ms",
                    mask(card_value), info.code, info.status.value, matched, attempts,
                    result.elapsed * 1000)
        return result

    def _session(self) -> requests.Session:
        if self._shared_session is not None:
            return self._shared_session
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # connections a lookup's deadline can cut (agent.forward.http_deadline)
            adapter = DeadlineAdapter()
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session

    def _post(self, url: str, lookup_: _Lookup, **kwargs: Any) -> requests.Response:
        """One POST within the lookup's deadline; never follows a redirect (the URL and
        form carry credentials); a 3xx is a gateway error naming the Location's host."""
        remaining = lookup_.deadline_at - self._clock()
        if remaining <= 0:
            raise _DeadlineExceeded()
        with abort_after(remaining) as cut:
            try:
                # without stream=True the body is read inside post(), under the deadline
                response = self._session().post(url, timeout=min(self.settings.timeout, remaining),
                                                allow_redirects=False, **kwargs)
            except requests.RequestException:
                if cut.expired:
                    raise _DeadlineExceeded() from None
                raise
            if cut.expired:  # cut mid-body: what arrived is not the answer
                raise _DeadlineExceeded()
        if 300 <= response.status_code < 400:
            location = response.headers.get("Location")
            # a relative Location points at the gateway's own host
            host = (urlsplit(urljoin(url, location)).hostname or "?") if location else "(no Location)"
            raise _GatewayError(f"HTTP {response.status_code} redirect to host {host} (not followed: "
                                "gateway calls carry credentials)")
        return response

    # ------------------------------------------------------------------ token

    def _current_token(self, lookup_: _Lookup | None = None) -> _Token:
        if lookup_ is None:
            lookup_ = _Lookup(self._clock() + self.settings.deadline)
        with self._token_lock:
            token = self._token
            if token is None or self._clock() >= token.expires_at:
                token = self._login(lookup_)
                self._token = token
            return token

    def _drop_token(self, token: _Token) -> None:
        with self._token_lock:
            if self._token is token:
                self._token = None

    def _login(self, lookup_: _Lookup) -> _Token:
        s = self.settings
        response = self._post(s.base_url + TOKEN_PATH, lookup_,
                              data={"username": s.username, "password": self._md5})
        if response.status_code == 401:
            raise _AuthFailed()
        if response.status_code >= 500:
            raise _Retryable(f"login HTTP {response.status_code}")
        body = _json(response)
        code = _code_of(body)
        if code != LOGIN_OK or not isinstance(body.get("APIKey"), dict):
            if code in RETRYABLE_CODES:
                raise _Retryable(f"login code {code}")
            if code == "" or (code not in CODES and code != LOGIN_OK):
                raise _GatewayError("login answer without a known maKetQua" if code == ""
                                    else f"login answer with unknown maKetQua {code!r}")
            raise _AuthFailed()
        key = body["APIKey"]
        access_token = str(key.get("access_token", ""))
        # seconds, a Unix time, a date-time, or nothing (then the JWT's exp, if any)
        lifetime = token_expiry(key.get("expires_in"), access_token, now=self._wall())
        self.logins += 1
        if lifetime is None:
            expires_at = float("inf")
            logger.info("BHYT login ok; the token states no usable lifetime: used until a 401")
        else:
            # refresh a little early
            expires_at = self._clock() + max(lifetime - min(TOKEN_MARGIN_S, lifetime / 10), 0.0)
            logger.info("BHYT login ok; token valid for %.0f s", lifetime)
        token = _Token(access_token, str(key.get("id_token", "")), expires_at)
        register_secret(token.access_token)
        register_secret(token.id_token)
        return token

    # ------------------------------------------------------------------ one query

    def _check_once(self, card: str, name: str, dob: str, lookup_: _Lookup) -> tuple[dict[str, Any], int]:
        """One logical query with retries; returns (answer, HTTP attempts)."""
        s = self.settings
        body = {"maThe": card, "hoTen": name, "ngaySinh": dob,
                "hoTenCb": normalize_name(s.officer_name) if s.officer_name else "",
                "cccdCb": s.officer_id}
        relogged = False
        attempt = 0
        last_error = ""
        while True:
            if not self.breaker.allow():
                raise _Unavailable(BhytStatus.GATEWAY_UNAVAILABLE, last_error or "circuit open", attempt)
            attempt += 1
            try:
                token = self._current_token(lookup_)
                if not lookup_.sent or lookup_.sent[-1] != dob:
                    lookup_.sent.append(dob)
                answer = self._post_check(token, body, lookup_)
            except _AuthFailed:
                self.breaker.record_success()  # the gateway answered: it is up
                raise
            except (_GatewayError, _DeadlineExceeded) as exc:
                self.breaker.record_failure()
                detail = (str(exc) if isinstance(exc, _GatewayError)
                          else f"no complete answer within the {s.deadline:g} s lookup deadline")
                logger.warning("BHYT attempt %d failed: %s", attempt, detail)
                raise _Unavailable(BhytStatus.GATEWAY_ERROR, detail, attempt) from None
            except (requests.RequestException, _Retryable) as exc:
                self.breaker.record_failure()
                last_error = _describe(exc)
                logger.warning("BHYT attempt %d failed: %s", attempt, last_error)
                pause = self._backoff(attempt)
                if attempt > s.retries or self._clock() + pause >= lookup_.deadline_at:
                    raise _Unavailable(BhytStatus.GATEWAY_ERROR, last_error, attempt) from None
                self._sleep(pause)
                continue
            self.breaker.record_success()
            if answer is None:  # 401 on the query: the token died early
                self._drop_token(token)
                if relogged:
                    raise _AuthFailed()
                relogged = True
                continue
            return answer, attempt

    def _post_check(self, token: _Token, body: dict[str, str], lookup_: _Lookup) -> dict[str, Any] | None:
        s = self.settings
        params = {"token": token.access_token, "id_token": token.id_token,
                  "username": s.username, "password": self._md5}
        response = self._post(s.base_url + CHECK_PATH, lookup_, params=params, json=body)
        if response.status_code == 401:
            return None
        if response.status_code >= 500:
            raise _Retryable(f"HTTP {response.status_code}")
        answer = _json(response)
        code = _code_of(answer)
        if code == AUTH_FAILED:
            return None
        if code in RETRYABLE_CODES:
            raise _Retryable(f"gateway code {code}")
        if code not in CODES:
            # no verdict about the card: never "unknown" with exit 0 (issue 14)
            raise _GatewayError("answer without maKetQua" if code == "" else f"unknown maKetQua {code!r}")
        return answer

    def _backoff(self, attempt: int) -> float:
        s = self.settings
        ceiling = min(s.backoff_max, s.backoff_base * 2.0 ** (attempt - 1))
        # "equal jitter": at least half the ceiling, so retries never bunch up at zero
        return ceiling / 2 + self._jitter() * ceiling / 2


def _code_of(answer: Mapping[str, Any]) -> str:
    code = answer.get("maKetQua")
    return str(code).zfill(3) if code is not None else ""


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise _Retryable(f"HTTP {response.status_code} with a body that is not JSON") from None
    if not isinstance(body, dict):
        raise _Retryable("answer is not a JSON object")
    return body


def _describe(exc: BaseException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timeout"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return str(exc) or exc.__class__.__name__


