"""OpenCPS intake: the applicant of a verified read, filed as a dossier in the province's
one-stop system (VietOpenCPS/opencps-v2, REST API v2), through the outbox.

Wire format (from the opencps-v2 source, DossierManagement / OneGateController; what is
not confirmed on a live deployment is listed in the README):

- ``POST {portal}{api_path}/dossiers`` with a form body (``application/x-www-form-urlencoded;
  charset=UTF-8``; the resource takes ``@FormParam`` fields, not JSON), ``Accept:
  application/json`` (the resources also produce XML, the default for some clients),
  header ``groupId: <site id>`` and HTTP Basic auth of a clerk (Employee) account.
- ``referenceUid`` is the outbox idempotency key (``idagent-<uuid4>``: it must contain a
  letter, or the server reads it as a numeric dossier id). A repeated POST with the same
  value returns the dossier already filed; the server checks-then-inserts without a
  unique index, so two requests for one key must never be in flight at once (the outbox
  has one worker per file, a claim lease per item, and this sender a per-key guard).
- A retry (any attempt after the first: a timeout, a crash between sending and marking)
  first looks the dossier up with ``GET {api_path}/dossiers/{referenceUid}`` and files it
  only when the portal does not have it.
- Answers: 200 with ``dossierId`` (a GET of an unknown dossier is 200 with an empty
  model, so ``dossierId`` is required); 203 "Non-Authoritative Information" means not
  authenticated or not allowed; 403 carries the reason in ``description``; a redirect or
  an HTML page is the portal's login page, never success.
- Dates go as ``dd/MM/yyyy HH:mm:ss`` with ``[opencps] time_of_day`` (the POST parser reads
  the ``dd/MM/yyyy`` prefix, the PUT parser needs the time, a bad value is blanked). The
  server parses in its JVM zone and shows in +07; the echoed ``applicantIdDate`` is
  compared with the day sent and a shifted day is noted on the delivered item.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import requests

from agent.errors import ConfigError
from agent.forward.keyfile import read_secret
from agent.forward.opencps_regions import RegionTable
from agent.forward.outbox import Outbox, OutboxItem, Outcome
from agent.forward.settings import ForwardConfig
from agent.identity import Identity

logger = logging.getLogger(__name__)

KIND = "opencps"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
REFERENCE_PREFIX = "idagent-"
APPLICANT_ID_TYPE = "citizen"
DATE_FORMAT = "%d/%m/%Y"
RETRYABLE_STATUS = frozenset({408, 425, 429})


class OpenCpsConfigError(ConfigError):
    code = "opencps_config"
    exit_code = 3
    hint = ("Set [opencps] portal, group_id, username, password_file, service_code, gov_agency_code and "
            "dossier_template_no (check them with: idagent intake test).")


# --------------------------------------------------------------------------- settings

@dataclass(frozen=True)
class OpenCpsSettings:
    portal: str
    group_id: str
    username: str
    password: str = field(repr=False)
    service_code: str
    gov_agency_code: str
    dossier_template_no: str
    originality: int = 3
    api_path: str = "/o/rest/v2"
    time_of_day: str = "00:00:00"
    timeout: float = 10.0
    #: after a timeout or a dead worker, wait this long before the look-up and re-send, so
    #: the portal has finished the request it may still be working on
    settle: float = 30.0
    regions: RegionTable | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_config(cls, config: ForwardConfig) -> OpenCpsSettings:
        s = config.opencps
        missing = [k for k in ("portal", "group_id", "username", "password_file", "service_code",
                               "gov_agency_code", "dossier_template_no") if not getattr(s, k)]
        if missing:
            raise OpenCpsConfigError("[opencps] " + ", ".join(missing) + (" is" if len(missing) == 1 else " are")
                                     + " not set")
        password = read_secret(s.password_file, what="[opencps] password_file", min_bytes=1).decode("utf-8")
        return cls(portal=s.portal.rstrip("/"), group_id=s.group_id, username=s.username, password=password,
                   service_code=s.service_code, gov_agency_code=s.gov_agency_code,
                   dossier_template_no=s.dossier_template_no, originality=s.originality,
                   api_path="/" + s.api_path.strip("/"), time_of_day=s.time_of_day, timeout=s.timeout,
                   settle=s.settle,
                   regions=RegionTable.load(s.region_table))

    def url(self, path: str) -> str:
        return f"{self.portal}{self.api_path}{path}"

    def headers(self) -> dict[str, str]:
        return {"Accept": "application/json", "groupId": self.group_id}


def new_reference() -> str:
    """An outbox idempotency key that is also a valid ``referenceUid`` (has letters)."""
    return REFERENCE_PREFIX + str(uuid.uuid4())


def portal_date(value: dt.date | None, time_of_day: str) -> str:
    return f"{value.strftime(DATE_FORMAT)} {time_of_day}" if value else ""


# --------------------------------------------------------------------------- form

def build_form(identity: Identity, settings: OpenCpsSettings, reference_uid: str) -> dict[str, str]:
    """The POST fields for one dossier. Birth date and sex have no column: ``metaData``."""
    regions = settings.regions or RegionTable.load()
    region = regions.resolve(identity.place_of_residence)
    meta = {"applicantBirthDate": identity.date_of_birth.strftime(DATE_FORMAT) if identity.date_of_birth else "",
            "applicantGender": identity.sex_label, "source": "idagent: chip read, verified"}
    return {
        "referenceUid": reference_uid, "serviceCode": settings.service_code,
        "govAgencyCode": settings.gov_agency_code, "dossierTemplateNo": settings.dossier_template_no,
        "originality": str(settings.originality),
        "applicantName": identity.full_name or "", "applicantIdType": APPLICANT_ID_TYPE,
        "applicantIdNo": identity.id_number or "",
        "applicantIdDate": portal_date(identity.date_of_issue, settings.time_of_day),
        "address": identity.place_of_residence or "",
        "cityCode": region.city_code if region else "", "districtCode": region.district_code if region else "",
        "wardCode": region.ward_code if region else "",
        "metaData": json.dumps(meta, ensure_ascii=False, separators=(",", ":")),
    }


def encode_form(form: dict[str, str]) -> bytes:
    return urlencode(form, encoding="utf-8").encode("ascii")


def enqueue_dossier(outbox: Outbox, identity: Identity, settings: OpenCpsSettings) -> str:
    """Queue one dossier; returns its idempotency key (= ``referenceUid``)."""
    key = new_reference()
    form = build_form(identity, settings, key)
    if not form["wardCode"]:
        logger.warning("opencps: no region codes for the address (key %s); the clerk completes them", key)
    outbox.put(KIND, encode_form(form), content_type=FORM_CONTENT_TYPE, idem_key=key)
    logger.info("opencps dossier queued (key %s)", key)
    return key


# --------------------------------------------------------------------------- answers

@dataclass(frozen=True)
class Answer:
    """A portal answer, classified. ``dossier``: the JSON model when it names a dossier."""

    outcome: Outcome | None
    dossier: dict[str, Any] | None = None


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def classify(response: requests.Response, what: str) -> Answer:
    """Every way an OpenCPS portal answers, as a clear outcome (or a dossier)."""
    status = response.status_code
    ctype = response.headers.get("Content-Type", "").lower()
    if 300 <= status < 400:
        where = urlsplit(response.headers.get("Location", "")).path or "?"
        return Answer(Outcome(False, f"{what}: the portal redirected to {where} (a login page?): check [opencps] "
                                     "portal and the account", permanent=True))
    if status == 203:
        return Answer(Outcome(False, f"{what}: not authorised (HTTP 203): wrong username or password, or the "
                                     "account may not file this procedure", permanent=True))
    if status == 401:
        return Answer(Outcome(False, f"{what}: login refused (HTTP 401): check [opencps] username and "
                                     "password_file", permanent=True))
    if status == 403:
        body = _json(response)
        reason = body.get("description") or body.get("message") if isinstance(body, dict) else None
        return Answer(Outcome(False, f"{what}: refused (HTTP 403): {str(reason or 'no reason given')[:120]}",
                              permanent=True))
    if status == 404:
        return Answer(Outcome(False, f"{what}: the portal does not serve {urlsplit(response.url).path} (HTTP 404):"
                                     " check [opencps] portal and api_path", permanent=True))
    if status >= 500 or status in RETRYABLE_STATUS:
        return Answer(Outcome(False, f"{what}: portal error HTTP {status}; will retry"))
    if not 200 <= status < 300:
        return Answer(Outcome(False, f"{what}: HTTP {status}", permanent=True))
    if "html" in ctype:
        return Answer(Outcome(False, f"{what}: the portal answered with an HTML page (a login page?), not JSON: "
                                     "check [opencps] portal and the account", permanent=True))
    body = _json(response)
    if not isinstance(body, dict):
        return Answer(Outcome(False, f"{what}: the portal's answer is not JSON (HTTP {status}); will retry"))
    if not body.get("dossierId"):
        return Answer(None)
    return Answer(None, body)


def receipt_of(dossier: dict[str, Any]) -> str:
    """What the clerk sees: the dossier number, or the reference while it is a draft."""
    return str(dossier.get("dossierNo") or dossier.get("referenceUid") or dossier.get("dossierId"))


def date_note(form: dict[str, str], dossier: dict[str, Any]) -> str:
    """A note when the portal shows another issue date than the one sent (a zone shift)."""
    sent = form.get("applicantIdDate", "")[:10]
    echoed = str(dossier.get("applicantIdDate") or "")[:10]
    if sent and echoed and sent != echoed:
        return f"the portal shows the ID issue date as {echoed} (sent {sent}): check its time zone"
    return ""


# --------------------------------------------------------------------------- delivery

class OpenCpsSender:
    """Delivers outbox items of kind ``opencps``. Thread-safe: one session per thread."""

    def __init__(self, settings: OpenCpsSettings, *,
                 session_factory: Callable[[], requests.Session] = requests.Session) -> None:
        self.settings = settings
        self._session_factory = session_factory
        self._local = threading.local()
        self._inflight: set[str] = set()
        self._inflight_lock = threading.Lock()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._session_factory()
            session.auth = (self.settings.username, self.settings.password)
            self._local.session = session
        return session

    @contextmanager
    def _exclusive(self, key: str) -> Iterator[bool]:
        """Never two requests for one referenceUid at once (the server would file two)."""
        with self._inflight_lock:
            free = key not in self._inflight
            if free:
                self._inflight.add(key)
        try:
            yield free
        finally:
            if free:
                with self._inflight_lock:
                    self._inflight.discard(key)

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> Answer:
        try:
            response = self._session().request(method, self.settings.url(path), headers=self.settings.headers(),
                                               timeout=self.settings.timeout, allow_redirects=False, **kwargs)
        except requests.Timeout:
            return Answer(Outcome(False, f"{what}: the portal did not answer in {self.settings.timeout:g} s; "
                                         "it is looked up before sending again"))
        except requests.RequestException as exc:
            return Answer(Outcome(False, f"{what}: portal unreachable ({exc.__class__.__name__}); will retry"))
        return classify(response, what)

    def lookup(self, reference_uid: str) -> Answer:
        return self._request("GET", "/dossiers/" + quote(reference_uid, safe=""), "look-up")

    def __call__(self, item: OutboxItem) -> Outcome:
        with self._exclusive(item.idem_key) as free:
            if not free:
                return Outcome(False, "a request for this dossier is still in flight; will retry")
            return self._deliver(item)

    def _deliver(self, item: OutboxItem) -> Outcome:
        form = dict(parse_qsl(item.body.decode("ascii"), keep_blank_values=True))
        # the procedure is the site's current setting: after a fix in [opencps] and
        # `idagent outbox retry`, queued dossiers go to the corrected procedure
        form.update(serviceCode=self.settings.service_code, govAgencyCode=self.settings.gov_agency_code,
                    dossierTemplateNo=self.settings.dossier_template_no,
                    originality=str(self.settings.originality))
        if item.attempts > 1:
            found = self.lookup(item.idem_key)
            if found.outcome is not None:
                return found.outcome
            if found.dossier is not None:
                return self._delivered(form, found.dossier, "found on the portal")
        answer = self._post(encode_form(form))
        if answer.outcome is not None:
            return answer.outcome
        if answer.dossier is None:
            return Outcome(False, "filing: HTTP 200 without a dossierId (not filed?); will look it up and retry")
        return self._delivered(form, answer.dossier, "filed")

    def _post(self, body: bytes) -> Answer:
        headers = {**self.settings.headers(), "Content-Type": FORM_CONTENT_TYPE + "; charset=UTF-8"}
        try:
            response = self._session().post(self.settings.url("/dossiers"), data=body, headers=headers,
                                            timeout=self.settings.timeout, allow_redirects=False)
        except requests.Timeout:
            return Answer(Outcome(False, f"filing: the portal did not answer in {self.settings.timeout:g} s; "
                                         "it is looked up before sending again", retry_after=self.settings.settle))
        except requests.RequestException as exc:
            # the request may have reached the portal before the connection broke
            return Answer(Outcome(False, f"filing: portal unreachable ({exc.__class__.__name__}); will retry",
                                  retry_after=self.settings.settle))
        return classify(response, "filing")

    def _delivered(self, form: dict[str, str], dossier: dict[str, Any], how: str) -> Outcome:
        echoed = str(dossier.get("referenceUid") or "")
        if echoed and echoed != form.get("referenceUid"):
            return Outcome(False, "the portal answered with another dossier's reference; not counted as filed",
                           permanent=True)
        note = date_note(form, dossier)
        logger.info("opencps: dossier %s (%s)", how, receipt_of(dossier))
        return Outcome(True, note, receipt=receipt_of(dossier))


# --------------------------------------------------------------------------- set-up check

@dataclass(frozen=True)
class CheckResult:
    ok: bool
    lines: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": self.lines}


def check_portal(settings: OpenCpsSettings, *, session: requests.Session | None = None) -> CheckResult:
    """``idagent intake test``: log in and list the procedures this account may file at the
    counter (``GET {api_path}/onegate/serviceconfigs/processes``, read-only), then look for
    the configured serviceCode / govAgencyCode / dossierTemplateNo. Files nothing."""
    s = session or requests.Session()
    s.auth = (settings.username, settings.password)
    try:
        response = s.get(settings.url("/onegate/serviceconfigs/processes"), headers=settings.headers(),
                         timeout=settings.timeout, allow_redirects=False)
    except requests.RequestException as exc:
        return CheckResult(False, [f"portal {settings.portal}: unreachable ({exc.__class__.__name__})"])
    answer = classify(response, "log-in")
    if answer.outcome is not None:
        return CheckResult(False, [answer.outcome.error])
    body = _json(response)
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return CheckResult(False, ["log-in: the portal's answer has no procedure list (is this OpenCPS v2?)"])
    lines = [f"log-in as {settings.username} on site {settings.group_id}: ok ({len(data)} procedure(s) "
             "this account may file)"]
    return _check_procedure(settings, data, lines)


def _check_procedure(settings: OpenCpsSettings, data: list[Any], lines: list[str]) -> CheckResult:
    services = [d for d in data if isinstance(d, dict) and d.get("serviceCode") == settings.service_code]
    if not services:
        return CheckResult(False, lines + [f"serviceCode {settings.service_code!r}: not among this account's "
                                           "procedures (unknown code, or the account lacks the role)"])
    agencies = [d for d in services if d.get("govAgencyCode") == settings.gov_agency_code]
    if not agencies:
        known = ", ".join(sorted({str(d.get("govAgencyCode")) for d in services}))
        return CheckResult(False, lines + [f"govAgencyCode {settings.gov_agency_code!r}: not configured for "
                                           f"{settings.service_code} (configured: {known})"])
    templates = {str(o.get("templateNo")) for d in agencies for o in d.get("options") or [] if isinstance(o, dict)}
    if settings.dossier_template_no not in templates:
        return CheckResult(False, lines + [f"dossierTemplateNo {settings.dossier_template_no!r}: not a template "
                                           f"of this procedure (templates: {', '.join(sorted(templates)) or 'none'})"])
    name = agencies[0].get("serviceName") or settings.service_code
    return CheckResult(True, lines + [f"procedure {settings.service_code} / {settings.gov_agency_code} / "
                                      f"{settings.dossier_template_no}: ok ({name})"])
