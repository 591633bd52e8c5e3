"""Client of the BHYT (Vietnam Social Security) card-check gateway.

Protocol (domain.md, from the appendix to letter 1923/BHXH-CNTT):
``POST /api/token/take`` (form: username, MD5-hex password) gives an ``APIKey``
(access_token, id_token, expires_in); ``POST /api/egw/KQNhanLichSuKCB2024`` with the
token in the query and ``{maThe, hoTen, ngaySinh, hoTenCb, cccdCb}`` as JSON answers
with a ``maKetQua`` code (table in :mod:`agent.forward.bhyt_codes`).

The field problem this client solves: the insurance record's date of birth often
differs from the ID card's, or holds only the year. When the gateway answers 070
(wrong date of birth) to the full date, the client asks again with the year only and
reports both values sent and which one matched.

Failure handling: a timeout on every socket read and a total deadline per lookup
(``deadline``, retries and the year-only second query included: a gateway trickling
bytes cannot hold a lookup longer), bounded retries with exponential backoff and
jitter on transport errors and server errors, one re-login on 401, and a circuit
breaker that makes lookups fail fast (status ``gateway_unavailable``) while the gateway
is down. An answer without a known ``maKetQua`` and any HTTP redirect are gateway
errors too (counted by the breaker): redirects are never followed, because the check
URL carries the token and the MD5 password (domain.md) and a redirect would hand
them to whatever host the ``Location`` names. The client is thread-safe; :class:`BhytLookups` runs lookups on worker
threads so a slow or dead gateway never holds up card reading.

Names and ID numbers never reach the log (masked).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import random
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import requests

from agent.errors import ConfigError, IdAgentError
from agent.forward.bhyt_codes import CODES, LOCAL, UPSTREAM_FAILURES, BhytStatus, CodeInfo, lookup
from agent.forward.bhyt_token import token_expiry
from agent.forward.breaker import CircuitBreaker
from agent.forward.http_deadline import DeadlineAdapter, abort_after
from agent.logs import mask, register_secret

logger = logging.getLogger(__name__)

T = TypeVar("T")

TOKEN_PATH = "/api/token/take"
CHECK_PATH = "/api/egw/KQNhanLichSuKCB2024"
#: login answer code for success (domain.md)
LOGIN_OK = "200"
AUTH_FAILED = "401"
WRONG_DOB = "070"
#: gateway codes that mean "server trouble, try again"
RETRYABLE_CODES = frozenset({"101", "500"})
#: refresh the token this long before the gateway says it expires
TOKEN_MARGIN_S = 30.0

#: 12-digit citizen ID, or a 15-character BHYT card code: 2 letters (beneficiary
#: group), 1 digit (benefit level 1–5), 2-digit province, 10 digits (public clients of
#: the gateway validate it this way)
ID_RE = re.compile(r"^\d{12}$")
CARD_CODE_RE = re.compile(r"^[A-Z]{2}[1-5]\d{12}$")

#: statuses for which the gateway found the person, so the date of birth sent matched
IDENTIFIED = frozenset({
    BhytStatus.VALID, BhytStatus.VALID_OTHER_MINISTRY, BhytStatus.REPLACED, BhytStatus.EXPIRED,
    BhytStatus.WRONG_FACILITY, BhytStatus.REVOKED, BhytStatus.REPORTED_REDUCTION,
})


class BhytConfigError(ConfigError):
    code = "bhyt_config"
    exit_code = 3
    hint = "Set [bhyt] base_url, username and password (or password_file) in the config file."


class BhytInputError(IdAgentError):
    code = "bhyt_input"
    exit_code = 3
    hint = "Give the 12-digit ID number (or the 15-character BHYT card code), the full name and the date of birth."


# --------------------------------------------------------------------------- inputs

def normalize_name(name: str) -> str:
    """NFC, collapsed spaces, upper case (Vietnamese letters keep their marks: the
    gateway's register holds names in capitals with diacritics)."""
    text = " ".join(unicodedata.normalize("NFC", name).split())
    return unicodedata.normalize("NFC", text.upper())


def normalize_card(card: str) -> str:
    value = "".join(card.split()).upper()
    if not (ID_RE.match(value) or CARD_CODE_RE.match(value)):
        raise BhytInputError("the card number must be a 12-digit ID number or a 15-character BHYT card code")
    return value


@dataclass(frozen=True)
class DobInput:
    """The date of birth as the gateway takes it: ``full`` (dd/MM/yyyy) may be absent
    when only the year is known."""

    full: str | None
    year: str


def parse_dob(value: dt.date | str) -> DobInput:
    """Accept a date, dd/MM/yyyy, d/M/yyyy, yyyy-MM-dd, ddMMyyyy (the card's QR) or yyyy."""
    if isinstance(value, dt.date):
        return DobInput(value.strftime("%d/%m/%Y"), f"{value.year:04d}")
    text = value.strip()
    if re.fullmatch(r"\d{4}", text):
        return DobInput(None, text)
    for pattern in ("%d/%m/%Y", "%Y-%m-%d", "%d%m%Y", "%d-%m-%Y", "%d.%m.%Y"):
        try:
            date = dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
        return DobInput(date.strftime("%d/%m/%Y"), f"{date.year:04d}")
    raise BhytInputError("the date of birth must be dd/MM/yyyy, yyyy-MM-dd or a 4-digit year")


def gateway_date_to_iso(value: Any) -> str | None:
    """dd/MM/yyyy (or yyyy) from the gateway → ISO; unknown shapes are kept as they came."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return dt.datetime.strptime(text, "%d/%m/%Y").date().isoformat()
    except ValueError:
        return text


# --------------------------------------------------------------------------- result

@dataclass(frozen=True)
class BhytResult:
    status: BhytStatus
    code: str
    message_vi: str
    message_en: str
    usable: bool
    dob_sent: tuple[str, ...] = ()
    #: "full", "year", or None when the gateway did not identify the person
    dob_matched: str | None = None
    card_code: str | None = None
    card_valid_from: str | None = None
    card_valid_to: str | None = None
    facility_code: str | None = None
    insurance_office: str | None = None
    full_name: str | None = None
    insurance_dob: str | None = None
    gender: str | None = None
    address: str | None = None
    area_code: str | None = None
    five_years_from: str | None = None
    social_insurance_number: str | None = None
    new_card: Mapping[str, str | None] | None = None
    old_card_code: str | None = None
    gateway_note: str | None = None
    #: seconds spent, gateway time included
    elapsed: float = 0.0
    attempts: int = 0

    @property
    def upstream_failure(self) -> bool:
        return self.status in UPSTREAM_FAILURES

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value, "code": self.code, "usable": self.usable,
            "message_vi": self.message_vi, "message_en": self.message_en,
            "dob_sent": list(self.dob_sent), "dob_matched": self.dob_matched,
            "card_code": self.card_code, "card_valid_from": self.card_valid_from,
            "card_valid_to": self.card_valid_to, "facility_code": self.facility_code,
            "insurance_office": self.insurance_office, "full_name": self.full_name,
            "insurance_dob": self.insurance_dob, "gender": self.gender, "address": self.address,
            "area_code": self.area_code, "five_years_from": self.five_years_from,
            "social_insurance_number": self.social_insurance_number,
            "new_card": dict(self.new_card) if self.new_card else None,
            "old_card_code": self.old_card_code, "gateway_note": self.gateway_note,
            "elapsed_ms": round(self.elapsed * 1000, 1), "attempts": self.attempts,
        }

    def __repr__(self) -> str:
        return (f"BhytResult(status={self.status.value!r}, code={self.code!r}, "
                f"card={mask(self.card_code)!r}, dob_matched={self.dob_matched!r})")


def _local_result(status: BhytStatus, *, dob_sent: tuple[str, ...] = (), elapsed: float = 0.0,
                  attempts: int = 0, detail: str = "") -> BhytResult:
    info = LOCAL[status]
    en = f"{info.message_en} ({detail})" if detail else info.message_en
    return BhytResult(status, info.code, info.message_vi, en, False, dob_sent=dob_sent,
                      elapsed=elapsed, attempts=attempts)


def _result_from_answer(answer: Mapping[str, Any], info: CodeInfo, dob_sent: tuple[str, ...],
                        dob_matched: str | None) -> BhytResult:
    def text(key: str) -> str | None:
        value = answer.get(key)
        return str(value) if value not in (None, "") else None

    new_card = None
    if text("maTheMoi"):
        new_card = {"card_code": text("maTheMoi"),
                    "valid_from": gateway_date_to_iso(answer.get("gtTheTuMoi")),
                    "valid_to": gateway_date_to_iso(answer.get("gtTheDenMoi")),
                    "facility_code": text("maDKBDMoi"), "facility_name": text("tenDKBDMoi")}
    return BhytResult(
        info.status, info.code, info.message_vi, info.message_en, info.usable,
        dob_sent=dob_sent, dob_matched=dob_matched, card_code=text("maThe"),
        card_valid_from=gateway_date_to_iso(answer.get("gtTheTu")),
        card_valid_to=gateway_date_to_iso(answer.get("gtTheDen")),
        facility_code=text("maDKBD"), insurance_office=text("cqBHXH"), full_name=text("hoTen"),
        insurance_dob=text("ngaySinh"), gender=text("gioiTinh"), address=text("diaChi"),
        area_code=text("maKV"), five_years_from=gateway_date_to_iso(answer.get("ngayDu5Nam")),
        social_insurance_number=text("maSoBHXH"), new_card=new_card,
        old_card_code=text("maTheCu"), gateway_note=text("ghiChu"))


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
    def from_config(cls, config: Any) -> BhytSettings:
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
            if code == WRONG_DOB and dob_in.full is not None:
                # the register often holds another date, or only the year: ask again
                answer, n = self._check_once(card_value, name, dob_in.year, lookup_)
                attempts += n
                code = _code_of(answer)
        except _Unavailable as exc:
            return _local_result(exc.status, dob_sent=tuple(sent), attempts=attempts + exc.attempts,
                                 elapsed=self._clock() - started, detail=exc.detail)
        except _AuthFailed:
            return _local_result(BhytStatus.AUTH_ERROR, dob_sent=tuple(sent), attempts=attempts,
                                 elapsed=self._clock() - started)
        info = lookup(code)
        matched = None
        if info.status in IDENTIFIED:
            matched = "year" if (len(sent) == 2 or dob_in.full is None) else "full"
        result = _result_from_answer(answer, info, tuple(sent), matched)
        result = _with_timing(result, self._clock() - started, attempts)
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


def _with_timing(result: BhytResult, elapsed: float, attempts: int) -> BhytResult:
    return dataclasses.replace(result, elapsed=elapsed, attempts=attempts)


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


# --------------------------------------------------------------------------- lookups

def refused_result() -> BhytResult:
    """What a lookup refused by :class:`BhytLookups` (too many waiting) answers."""
    return _local_result(BhytStatus.GATEWAY_UNAVAILABLE, detail="too many lookups waiting")


class BhytLookups:
    """Runs lookups on a small thread pool so the caller (the daemon's card-reading
    loop) never waits on the gateway. At most ``max_pending`` lookups wait or run;
    beyond that a lookup is refused at once (``gateway_unavailable``,
    :func:`refused_result`) rather than queueing without bound behind a dead gateway.

    ``submit`` checks a card with ``client``; ``run`` runs any lookup job (the desk's
    ``agent.desk.forwarding``, which also stores and announces each result)."""

    def __init__(self, client: BhytClient | None = None, *, workers: int = 2, max_pending: int = 16) -> None:
        self.client = client
        self.max_pending = max_pending
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bhyt")
        self._slots = threading.BoundedSemaphore(max_pending)

    def submit(self, card: str, full_name: str, dob: dt.date | str) -> Future[BhytResult]:
        client = self.client
        if client is None:
            raise BhytConfigError("BhytLookups.submit needs a client", hint="Pass the BhytClient to BhytLookups.")
        future = self.run(lambda: client.check(card, full_name, dob))
        if future is None:
            done: Future[BhytResult] = Future()
            done.set_result(refused_result())
            return done
        return future

    def run(self, job: Callable[[], T]) -> Future[T] | None:
        """``job`` on the pool; None, at once, when ``max_pending`` lookups already wait or run."""
        if not self._slots.acquire(blocking=False):
            return None
        try:
            future = self._pool.submit(job)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _f: self._slots.release())
        return future

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
