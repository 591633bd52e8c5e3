"""A local stand-in for an OpenCPS v2 portal (tests, the bench, the demo), faithful to
what the opencps-v2 source shows of the dossier API (agent/forward/opencps.py):

- ``POST {api}/dossiers`` (form body only), ``GET {api}/dossiers/{id or referenceUid}``
  (an all-digit value is a dossier id), ``PUT {api}/dossiers/{id}``,
  ``GET {api}/onegate/serviceconfigs/processes`` (the procedures an account may file);
  ``/c/portal/login`` is the HTML login page. Anything else under ``/o/`` is 404.
- HTTP Basic auth against the accounts below; no or wrong credentials → 203
  "Non-Authoritative Information." (or, with ``login_mode``, a 302 to the login page or
  the login page itself with 200). ``groupId`` header must name the site, else 403.
- Employee accounts: the role check runs first, so a procedure the account may not file
  (or an unknown one) → 203; the admin account gets 403 ``{"description": "Cant find
  process"}`` for an unknown procedure. A citizen account's own profile overwrites the
  applicant (as the portal does).
- Dates: the POST parser reads the ``dd/MM/yyyy`` prefix in the server zone
  (``server_utc_offset``, default 0: the JVM's GMT), the PUT parser needs
  ``dd/MM/yyyy HH:mm:ss`` and blanks a bad value, answers show dates in +07
  (``display_utc_offset``) as ``dd/MM/yyyy HH:mm:ss``.
- ``referenceUid`` reuse returns the dossier already filed, by check-then-insert with no
  unique index: with ``race_window_ms`` two concurrent POSTs for one value both insert
  (``duplicates`` counts them), exactly the race the client must never start.
- Answers are JSON only when ``Accept`` asks for it, else XML.
- Faults on command (``POST /_control`` JSON): ``fail_before`` (share answered 503 before
  anything is stored), ``fail_after`` (stored, then 500: the answer is lost),
  ``delay_ms`` (slow answers), ``login_mode`` ("203", "redirect", "html"), ``seed``.
  ``GET /_stats`` counters, ``GET /_references`` dossiers per referenceUid.

Run: ``python -m agent.sim.services.opencps --port 8768`` (accounts printed).
One module of over 400 lines on purpose: the portal's quirks above are each a few lines,
and a stand-in reads best as one piece.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.sax.saxutils import escape

from agent.sim.services.httpserver import JsonHandler, QuietServer, ServerThread, serve_until_interrupted

API = "/o/rest/v2"
LOGIN_PATH = "/c/portal/login"
GROUP_ID = "35417"
REQUIRED = ("serviceCode", "govAgencyCode", "dossierTemplateNo", "originality")
LOGIN_HTML = ("<!DOCTYPE html><html><head><title>Đăng nhập - Dịch vụ công</title></head><body>"
              "<form action=\"/c/portal/login\" method=\"post\"><input name=\"login\"></form></body></html>")


@dataclass(frozen=True)
class Procedure:
    service_code: str
    service_name: str
    gov_agency_code: str
    gov_agency_name: str
    template_no: str


#: synthetic site configuration: two procedures of a commune's one-stop counter
PROCEDURES = (
    Procedure("1.001612", "Đăng ký thường trú", "UBND-XA-BA-DINH", "UBND Phường Ba Đình", "TP-DKTT-01"),
    Procedure("2.000986", "Chứng thực bản sao từ bản chính", "UBND-XA-BA-DINH", "UBND Phường Ba Đình", "TP-CT-01"),
)


@dataclass(frozen=True)
class Account:
    password: str
    role: str  # "employee", "admin" or "citizen"
    procedures: frozenset[str] = frozenset()  # service codes this account may file
    profile_name: str = ""
    profile_id: str = ""


ACCOUNTS: dict[str, Account] = {
    "motcua.badinh": Account("mat-khau-can-bo", "employee", frozenset({"1.001612"})),
    "quantri": Account("mat-khau-quan-tri", "admin"),
    "congdan001": Account("mat-khau-cong-dan", "citizen", profile_name="TÀI KHOẢN CÔNG DÂN",
                          profile_id="001099000001"),
}
EMPLOYEE = "motcua.badinh"


def _parse_day(text: str, fmt: str, offset_h: int) -> dt.datetime | None:
    """Java's SimpleDateFormat: ``dd/MM/yyyy`` reads a prefix; the instant is in ``offset_h``."""
    try:
        width = 10 if fmt == "%d/%m/%Y" else 19
        value = dt.datetime.strptime(text.strip()[:width], fmt)
    except ValueError:
        return None
    return value.replace(tzinfo=dt.timezone(dt.timedelta(hours=offset_h)))


@dataclass
class PortalState:
    server_utc_offset: int = 0
    display_utc_offset: int = 7
    fail_before: float = 0.0
    fail_after: float = 0.0
    delay_ms: int = 0
    race_window_ms: int = 0
    login_mode: str = "203"
    assign_numbers: bool = False
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("requests", "posts", "gets", "filed", "reused", "duplicates", "not_authorised", "refused",
         "failed_before", "failed_after", "not_form", "unknown_lookups"), 0))
    dossiers: dict[int, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    _next_id: int = 70001

    def control(self, changes: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            for name in ("fail_before", "fail_after"):
                if name in changes:
                    setattr(self, name, min(1.0, max(0.0, float(changes[name]))))
            for name in ("delay_ms", "race_window_ms", "server_utc_offset", "display_utc_offset"):
                if name in changes:
                    setattr(self, name, int(changes[name]))
            if "login_mode" in changes:
                self.login_mode = str(changes["login_mode"])
            if "assign_numbers" in changes:
                self.assign_numbers = bool(changes["assign_numbers"])
            if "seed" in changes:
                self.rng = random.Random(int(changes["seed"]))
            return self.stats_locked()

    def stats_locked(self) -> dict[str, Any]:
        refs = self.references_locked()
        return {**self.counters, "dossiers": len(self.dossiers), "unique_references": len(refs),
                "references_filed_twice": sum(1 for n in refs.values() if n > 1)}

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return self.stats_locked()

    def references_locked(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.dossiers.values():
            out[d["referenceUid"]] = out.get(d["referenceUid"], 0) + 1
        return out

    def references(self) -> dict[str, int]:
        with self.lock:
            return self.references_locked()

    def count(self, name: str) -> None:
        with self.lock:
            self.counters[name] += 1

    # ------------------------------------------------------------------ model

    def show_date(self, instant: dt.datetime | None) -> str:
        if instant is None:
            return ""
        return instant.astimezone(dt.timezone(dt.timedelta(hours=self.display_utc_offset))).strftime(
            "%d/%m/%Y %H:%M:%S")

    def model(self, d: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in d.items() if not k.startswith("_")}
        out["applicantIdDate"] = self.show_date(d["_applicantIdDate"])
        return out

    def find(self, key: str) -> dict[str, Any] | None:
        with self.lock:
            if key.isdigit():
                return self.dossiers.get(int(key))
            return next((d for d in self.dossiers.values() if d["referenceUid"] == key), None)

    def create(self, form: dict[str, str], account: Account) -> dict[str, Any]:
        """Check-then-insert, as the portal does (no unique index on referenceUid)."""
        ref = form.get("referenceUid", "")
        existing = self.find(ref) if ref and not ref.isdigit() else None
        if existing is not None:
            self.count("reused")
            return existing
        if self.race_window_ms:
            time.sleep(self.race_window_ms / 1000)
        applicant = (account.profile_name, account.profile_id) if account.role == "citizen" else (
            form.get("applicantName", "").upper(), form.get("applicantIdNo", ""))
        with self.lock:
            if any(d["referenceUid"] == ref for d in self.dossiers.values()) and ref:
                self.counters["duplicates"] += 1
            dossier_id = self._next_id
            self._next_id += 1
            self.counters["filed"] += 1
            d = {"dossierId": dossier_id, "referenceUid": ref or f"auto-{dossier_id}",
                 "dossierNo": f"{dossier_id:06d}/2026/HS" if self.assign_numbers else "",
                 "dossierStatus": "new", "serviceCode": form["serviceCode"], "govAgencyCode": form["govAgencyCode"],
                 "dossierTemplateNo": form["dossierTemplateNo"], "originality": int(form["originality"]),
                 "applicantName": applicant[0], "applicantIdType": form.get("applicantIdType", ""),
                 "applicantIdNo": applicant[1], "address": form.get("address", ""),
                 "cityCode": form.get("cityCode", ""), "districtCode": form.get("districtCode", ""),
                 "wardCode": form.get("wardCode", ""), "metaData": form.get("metaData", ""),
                 "_applicantIdDate": _parse_day(form.get("applicantIdDate", ""), "%d/%m/%Y",
                                                self.server_utc_offset)}
            self.dossiers[dossier_id] = d
            return d

    def update(self, dossier: dict[str, Any], form: dict[str, str]) -> None:
        with self.lock:
            if "applicantIdDate" in form:
                # the PUT parser wants the time too; a bad value blanks the date
                dossier["_applicantIdDate"] = _parse_day(form["applicantIdDate"], "%d/%m/%Y %H:%M:%S",
                                                         self.server_utc_offset)
            for name in ("applicantName", "address", "cityCode", "districtCode", "wardCode"):
                if name in form:
                    dossier[name] = form[name].upper() if name == "applicantName" else form[name]


def _procedure(form: dict[str, str]) -> Procedure | None:
    return next((p for p in PROCEDURES if (p.service_code, p.gov_agency_code, p.template_no) ==
                 (form.get("serviceCode"), form.get("govAgencyCode"), form.get("dossierTemplateNo"))), None)


class _Handler(JsonHandler):
    server: _PortalServer

    # ------------------------------------------------------------------ plumbing

    def _answer(self, status: int, body: Any) -> None:
        if "application/json" in (self.headers.get("Accept") or ""):
            self.send_json(status, body)
            return
        # JAX-RS picks the first @Produces type, XML, when JSON is not asked for
        items = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in (body or {}).items()
                        if not isinstance(v, (list, dict)))
        self._send(status, "application/xml", f"<result>{items}</result>".encode())

    def _send(self, status: int, ctype: str, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype + "; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _account(self) -> Account | None:
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(auth[6:]).decode("utf-8").partition(":")
        except ValueError:
            return None
        account = ACCOUNTS.get(user)
        return account if account is not None and account.password == password else None

    def _not_logged_in(self) -> None:
        state = self.server.state
        state.count("not_authorised")
        if state.login_mode == "redirect":
            self._send(302, "text/html", b"", {"Location": LOGIN_PATH + "?redirect=%2Fo%2Frest"})
        elif state.login_mode == "html":
            self._send(200, "text/html", LOGIN_HTML.encode("utf-8"))
        else:
            self._answer(203, {"code": 203, "message": "Non-Authoritative Information.",
                               "description": "Non-Authoritative Information."})

    def _gate(self) -> tuple[Account, str] | None:
        """Auth, then the site header; None when an answer was sent."""
        state = self.server.state
        if state.delay_ms:
            time.sleep(state.delay_ms / 1000)
        account = self._account()
        if account is None:
            self._not_logged_in()
            return None
        if (self.headers.get("groupId") or "") != GROUP_ID:
            state.count("refused")
            self._answer(403, {"code": 403, "message": "Forbidden", "description": "groupId: no such site"})
            return None
        return account, self.headers.get("groupId") or ""

    # ------------------------------------------------------------------ routes

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        path = urlsplit(self.path).path
        state = self.server.state
        if path == "/_stats":
            self.send_json(200, state.stats())
            return
        if path == "/_references":
            self.send_json(200, state.references())
            return
        if path == LOGIN_PATH:
            self._send(200, "text/html", LOGIN_HTML.encode("utf-8"))
            return
        state.count("requests")
        if path == API + "/onegate/serviceconfigs/processes":
            gate = self._gate()
            if gate is not None:
                self._answer(200, self._processes(gate[0]))
            return
        if path.startswith(API + "/dossiers/") and path.count("/") == 5:
            state.count("gets")
            if self._gate() is None:
                return
            found = state.find(unquote(path.rsplit("/", 1)[1]))
            if found is None:
                state.count("unknown_lookups")
            # an unknown dossier is 200 with an empty model
            self._answer(200, state.model(found) if found else {})
            return
        self._answer(404, {"code": 404, "message": "Not Found", "description": path})

    def _processes(self, account: Account) -> dict[str, Any]:
        allowed = [p for p in PROCEDURES if account.role == "admin" or p.service_code in account.procedures]
        data = [{"serviceConfigId": i + 1, "serviceCode": p.service_code, "serviceName": p.service_name,
                 "govAgencyCode": p.gov_agency_code, "govAgencyName": p.gov_agency_name,
                 "options": [{"processOptionId": 100 + i, "optionName": "Nộp tại quầy", "templateNo": p.template_no,
                              "templateName": p.service_name}]}
                for i, p in enumerate(allowed)] if account.role != "citizen" else []
        return {"total": len(data), "data": data}

    def _form(self) -> dict[str, str] | None:
        raw = self.read_body()
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            self.server.state.count("not_form")
            self._answer(415, {"code": 415, "message": "Unsupported Media Type",
                               "description": "form fields expected (application/x-www-form-urlencoded)"})
            return None
        return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        path = urlsplit(self.path).path
        state = self.server.state
        if path == "/_control":
            self.send_json(200, state.control(json.loads(self.read_body() or b"{}")))
            return
        state.count("requests")
        if path != API + "/dossiers":
            self.read_body()
            self._answer(404, {"code": 404, "message": "Not Found", "description": path})
            return
        state.count("posts")
        form = self._form()
        if form is None:
            return
        gate = self._gate()
        if gate is not None:
            self._file(gate[0], form)

    def _file(self, account: Account, form: dict[str, str]) -> None:
        state = self.server.state
        missing = [k for k in REQUIRED if not form.get(k)]
        if missing or not form["originality"].lstrip("-").isdigit():
            state.count("refused")
            self._answer(403, {"code": 403, "message": "Forbidden",
                               "description": f"invalid or missing: {', '.join(missing) or 'originality'}"})
            return
        procedure = _procedure(form)
        if account.role != "admin" and (procedure is None or procedure.service_code not in account.procedures):
            # the role check runs before the procedure look-up for clerk accounts
            self._not_logged_in()
            return
        if procedure is None:
            state.count("refused")
            self._answer(403, {"code": 403, "message": "Forbidden", "description": "Cant find process"})
            return
        with state.lock:
            fail_before = state.fail_before and state.rng.random() < state.fail_before
            fail_after = state.fail_after and state.rng.random() < state.fail_after
        if fail_before:
            state.count("failed_before")
            self._answer(503, {"code": 503, "message": "Service Unavailable", "description": "injected"})
            return
        dossier = state.create(form, account)
        if fail_after:
            state.count("failed_after")
            self._answer(500, {"code": 500, "message": "Internal Server Error", "description": "injected"})
            return
        self._answer(200, state.model(dossier))

    def do_PUT(self) -> None:  # noqa: N802 - stdlib name
        path = urlsplit(self.path).path
        state = self.server.state
        state.count("requests")
        form = self._form()
        if form is None:
            return
        if self._gate() is None:
            return
        key = path.rsplit("/", 1)[1]
        found = state.find(key) if path.startswith(API + "/dossiers/") and key.isdigit() else None
        if found is None:
            self._answer(404, {"code": 404, "message": "Not Found", "description": path})
            return
        state.update(found, form)
        self._answer(200, state.model(found))


class _PortalServer(QuietServer):
    def __init__(self, address: tuple[str, int], state: PortalState) -> None:
        super().__init__(address, _Handler)
        self.state = state


class OpenCpsTestService(ServerThread):
    """``OpenCpsTestService().start()``; ``.url`` (the portal), ``.state``, ``.stop()``."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = PortalState()
        super().__init__(_PortalServer((host, port), self.state))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.sim.services.opencps",
                                     description="Local OpenCPS v2 stand-in portal (synthetic site).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8768)
    parser.add_argument("--fail-before", type=float, default=0.0)
    parser.add_argument("--fail-after", type=float, default=0.0)
    parser.add_argument("--delay-ms", type=int, default=0)
    parser.add_argument("--race-window-ms", type=int, default=0,
                        help="time between the referenceUid check and the insert")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    service = OpenCpsTestService(host=args.host, port=args.port)
    service.state.control({"fail_before": args.fail_before, "fail_after": args.fail_after,
                           "delay_ms": args.delay_ms, "race_window_ms": args.race_window_ms, "seed": args.seed})
    print(f"OpenCPS test portal on {service.url} (groupId {GROUP_ID}); clerk account {EMPLOYEE} / "
          f"{ACCOUNTS[EMPLOYEE].password}; procedure {PROCEDURES[0].service_code} / {PROCEDURES[0].gov_agency_code}"
          f" / {PROCEDURES[0].template_no}", flush=True)
    serve_until_interrupted(service.server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
