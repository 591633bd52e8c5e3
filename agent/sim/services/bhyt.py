"""A local stand-in for the BHYT card-check gateway, over a synthetic register.

Same endpoints, login, token expiry and result codes as the real gateway (domain.md);
for tests, the bench and the demo. Control endpoints (not part of the real gateway):

- ``POST /_control`` with JSON: ``delay_ms`` (answer slowly), ``outage`` (true/false),
  ``outage_mode`` ("503": answer 503 at once; "drop": close the connection),
  ``error_rate`` (share of checks answered with code 500), ``seed``, ``token_ttl``
  (seconds), ``revoke_tokens`` (true: every issued token answers 401 from now on),
  ``variant`` (name of a register variant, "" for none), and the misbehaviours an
  independent gateway showed (issue 14): ``check_answer`` (a JSON object answered to
  every check as it is, e.g. without ``maKetQua`` or with an unknown code; null: off),
  ``redirect`` (an HTTP 3xx status answered on the gateway endpoints, to ``redirect_to``;
  "self" loops back to the same path), ``trickle_ms`` (the answer goes out one byte every
  N ms: a gateway that keeps each socket read alive but never finishes in time) and
  ``expires_in`` (the login's ``expires_in`` as "seconds", "timestamp" (Unix seconds),
  "timestamp_ms", "datetime" (ISO 8601 with offset), "local_datetime" (dd/MM/yyyy
  HH:mm:ss, Vietnam time) or "missing").
- ``GET /_control`` gives the counters and the current settings.

Every gateway answer carries ``X-Gateway-Time-Ms``: the service's own time for it.

Run: ``python -m agent.sim.services.bhyt --port 8766 [--register FILE] [--variant NAME]``.
The register (fixtures/bhyt/register.json) holds made-up people only.

One module of over 400 lines on purpose: a stand-in reads best top to bottom, the fault
switches beside the answers they change.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import random
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from agent.forward.bhyt import CHECK_PATH, TOKEN_PATH
from agent.forward.bhyt_input import CARD_CODE_RE, ID_RE
from agent.sim.services.httpserver import JsonHandler, QuietServer, ServerThread, serve_until_interrupted

DEFAULT_REGISTER = Path(__file__).resolve().parents[3] / "fixtures" / "bhyt" / "register.json"
GATEWAY_TIME_HEADER = "X-Gateway-Time-Ms"
DOB_RE = re.compile(r"^(\d{2}/\d{2}/\d{4}|\d{4})$")
#: answer fields copied from a register entry (names as the gateway spells them)
ANSWER_FIELDS = ("maThe", "hoTen", "ngaySinh", "gioiTinh", "diaChi", "maDKBD", "cqBHXH", "gtTheTu",
                 "gtTheDen", "maKV", "ngayDu5Nam", "maSoBHXH", "maTheCu", "maTheMoi", "gtTheTuMoi",
                 "gtTheDenMoi", "maDKBDMoi", "tenDKBDMoi")


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


@dataclass
class Controls:
    delay_ms: int = 0
    outage: bool = False
    outage_mode: str = "503"
    error_rate: float = 0.0
    token_ttl: float = 3600.0
    variant: str = ""
    check_answer: dict[str, Any] | None = None
    redirect: int = 0
    redirect_to: str = "self"
    trickle_ms: int = 0
    expires_in: str = "seconds"


@dataclass
class Counters:
    logins: int = 0
    login_failures: int = 0
    checks: int = 0
    unauthorized: int = 0
    injected_errors: int = 0
    outage_answers: int = 0
    redirects: int = 0
    by_code: dict[str, int] = field(default_factory=dict)


class BhytRegister:
    """People, cards and accounts from the register file."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.accounts: dict[str, dict[str, Any]] = {a["username"]: a for a in data["accounts"]}
        self.people: list[dict[str, Any]] = list(data["people"])
        self.variants: dict[str, dict[str, dict[str, Any]]] = data.get("variants", {})

    @classmethod
    def load(cls, path: str | Path = DEFAULT_REGISTER) -> BhytRegister:
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def person(self, ma_the: str, variant: str) -> dict[str, Any] | None:
        for person in self.people:
            if ma_the in (person.get("idNumber"), person.get("maThe")):
                changes = self.variants.get(variant, {}).get(person.get("idNumber", ""), {})
                return {**person, **changes}
        return None

    def near_card(self, ma_the: str) -> dict[str, Any] | None:
        """A person whose card code has the same personal part (last 10 digits)."""
        for person in self.people:
            code = person.get("maThe", "")
            if len(code) == 15 and code[5:] == ma_the[5:]:
                return person
        return None


class BhytGatewayState:
    """The gateway's logic, separate from HTTP so tests can drive it directly."""

    def __init__(self, register: BhytRegister, *, clock: Callable[[], float] = time.monotonic,
                 seed: int = 0) -> None:
        self.register = register
        self.clock = clock
        self.controls = Controls()
        self.counters = Counters()
        self.lock = threading.Lock()
        self._rng = random.Random(seed)
        #: access_token → (username, id_token, expires_at, generation)
        self._tokens: dict[str, tuple[str, str, float, int]] = {}
        self._generation = 0

    # ---------------------------------------------------------------- control

    def control(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            c = self.controls
            if "delay_ms" in changes:
                c.delay_ms = max(0, int(changes["delay_ms"]))
            if "outage" in changes:
                c.outage = bool(changes["outage"])
            if "outage_mode" in changes:
                c.outage_mode = "drop" if changes["outage_mode"] == "drop" else "503"
            if "error_rate" in changes:
                c.error_rate = min(1.0, max(0.0, float(changes["error_rate"])))
            if "seed" in changes:
                self._rng = random.Random(int(changes["seed"]))
            if "token_ttl" in changes:
                c.token_ttl = float(changes["token_ttl"])
            if "variant" in changes:
                c.variant = str(changes["variant"])
            self._misbehaviours(changes)
            if changes.get("revoke_tokens"):
                self._generation += 1
            return self.snapshot_locked()

    def _misbehaviours(self, changes: Mapping[str, Any]) -> None:
        c = self.controls
        if "check_answer" in changes:
            answer = changes["check_answer"]
            c.check_answer = dict(answer) if isinstance(answer, dict) else None
        if "redirect" in changes:
            status = int(changes["redirect"] or 0)
            c.redirect = status if status in (301, 302, 303, 307, 308) else 0
        if "redirect_to" in changes:
            c.redirect_to = str(changes["redirect_to"])
        if "trickle_ms" in changes:
            c.trickle_ms = max(0, int(changes["trickle_ms"]))
        if "expires_in" in changes:
            value = str(changes["expires_in"])
            c.expires_in = value if value in EXPIRES_IN_FORMATS else "seconds"

    def snapshot_locked(self) -> dict[str, Any]:
        return {"controls": vars(self.controls).copy(),
                "counters": {**vars(self.counters), "by_code": dict(self.counters.by_code)}}

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return self.snapshot_locked()

    # ---------------------------------------------------------------- login

    def login(self, username: str, password_md5: str) -> tuple[int, dict[str, Any]]:
        account = self.register.accounts.get(username)
        expected = hashlib.md5(account["password"].encode("utf-8")).hexdigest() if account else ""
        with self.lock:
            if account is None or not hmac.compare_digest(expected, password_md5.lower()):
                self.counters.login_failures += 1
                return 401, {"maKetQua": "401", "APIKey": None}
            self.counters.logins += 1
            access, id_token = secrets.token_hex(16), secrets.token_hex(16)
            ttl = self.controls.token_ttl
            self._tokens[access] = (username, id_token, self.clock() + ttl, self._generation)
        key: dict[str, Any] = {"access_token": access, "id_token": id_token, "token_type": "Bearer",
                               "username": username}
        expires_in = _expires_in(self.controls.expires_in, ttl, time.time())
        if expires_in is not None:
            key["expires_in"] = expires_in
        return 200, {"maKetQua": "200", "APIKey": key}

    def _authorized(self, params: Mapping[str, str]) -> str | None:
        """The account of a valid token, or None."""
        with self.lock:
            entry = self._tokens.get(params.get("token", ""))
            if entry is None:
                return None
            username, id_token, expires_at, generation = entry
            if (generation != self._generation or self.clock() >= expires_at
                    or not hmac.compare_digest(id_token, params.get("id_token", ""))
                    or username != params.get("username")):
                return None
        account = self.register.accounts[username]
        expected = hashlib.md5(account["password"].encode("utf-8")).hexdigest()
        return username if hmac.compare_digest(expected, params.get("password", "").lower()) else None

    # ---------------------------------------------------------------- check

    def check(self, params: Mapping[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        username = self._authorized(params)
        with self.lock:
            self.counters.checks += 1
            if username is None:
                self.counters.unauthorized += 1
                return 401, {"maKetQua": "401", "ghiChu": "Token không hợp lệ hoặc đã hết hạn"}
            inject = self.controls.error_rate > 0 and self._rng.random() < self.controls.error_rate
            if inject:
                self.counters.injected_errors += 1
            variant = self.controls.variant
            canned = self.controls.check_answer
        if inject:
            return 200, self._count({"maKetQua": "500", "ghiChu": "Lỗi máy chủ (giả lập)"})
        if canned is not None:
            return 200, self._count(dict(canned))
        return 200, self._count(self._answer(self.register.accounts[username], body, variant))

    def _count(self, answer: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            code = str(answer.get("maKetQua", "(none)"))
            self.counters.by_code[code] = self.counters.by_code.get(code, 0) + 1
        return answer

    def _answer(self, account: Mapping[str, Any], body: Any, variant: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            return {"maKetQua": "205", "ghiChu": "Sai định dạng tham số"}
        ma_the = str(body.get("maThe") or "")
        ho_ten = str(body.get("hoTen") or "")
        ngay_sinh = str(body.get("ngaySinh") or "")
        if not (ID_RE.match(ma_the) or CARD_CODE_RE.match(ma_the)) or not ho_ten.strip() \
                or not DOB_RE.match(ngay_sinh):
            return {"maKetQua": "205", "ghiChu": "Sai định dạng tham số"}
        officer_error = _officer_code(account, str(body.get("hoTenCb") or ""), str(body.get("cccdCb") or ""))
        if officer_error:
            return {"maKetQua": officer_error, "ghiChu": "Cán bộ tra cứu không hợp lệ"}
        person = self.register.person(ma_the, variant)
        if person is None:
            return {"maKetQua": _missing_card_code(self.register, ma_the), "ghiChu": "Không có thông tin thẻ"}
        if _fold(ho_ten) != _fold(person["hoTen"]):
            first_ok = _fold(ho_ten)[:1] == _fold(person["hoTen"])[:1]
            return {"maKetQua": "061" if first_ok else "060", "ghiChu": "Họ tên không đúng"}
        if not _dob_matches(ngay_sinh, person["ngaySinh"]):
            return {"maKetQua": "070", "ghiChu": "Ngày sinh không đúng"}
        answer = {key: person[key] for key in ANSWER_FIELDS if key in person}
        answer["maKetQua"] = person.get("maKetQua", "000")
        answer["ghiChu"] = person.get("ghiChu", "")
        return answer


#: shapes of the login's ``expires_in`` the service can send (control ``expires_in``)
EXPIRES_IN_FORMATS = ("seconds", "timestamp", "timestamp_ms", "datetime", "local_datetime", "missing")
VIETNAM_TZ = dt.timezone(dt.timedelta(hours=7))


def _expires_in(shape: str, ttl: float, now: float) -> Any:
    """``expires_in`` for a token living ``ttl`` seconds, in the shape asked for."""
    at = now + ttl
    if shape == "timestamp":
        return int(at)
    if shape == "timestamp_ms":
        return int(at * 1000)
    if shape == "datetime":
        return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="seconds")
    if shape == "local_datetime":
        return dt.datetime.fromtimestamp(at, VIETNAM_TZ).strftime("%d/%m/%Y %H:%M:%S")
    if shape == "missing":
        return None
    return ttl


def _officer_code(account: Mapping[str, Any], name: str, cccd: str) -> str | None:
    officers = account.get("officers", [])
    if not officers:
        return None
    for officer in officers:
        if officer["cccd"] == cccd:
            return None if _fold(officer["hoTen"]) == _fold(name) else "055"
    return "054"


def _missing_card_code(register: BhytRegister, ma_the: str) -> str:
    if len(ma_the) != 15:
        return "050"
    near = register.near_card(ma_the)
    if near is None:
        return "050"
    known = near["maThe"]
    if known[3:5] != ma_the[3:5]:
        return "052"
    if known[2] != ma_the[2]:
        return "053"
    return "051"


def _dob_matches(sent: str, recorded: str) -> bool:
    """A full date must equal a full record; a year-only query matches on the year (the
    gateway compares what it is given). A year-only record never equals a full date:
    that is the field problem the client's fallback handles."""
    if len(sent) == 4:
        return recorded[-4:] == sent
    return sent == recorded


class _Handler(JsonHandler):
    server: _GatewayServer

    def _gate(self) -> bool:
        """Outage and delay, applied to the gateway endpoints (not to /_control)."""
        state = self.server.state
        with state.lock:
            controls = Controls(**vars(state.controls))
        if controls.delay_ms:
            time.sleep(controls.delay_ms / 1000)
        if controls.redirect:
            with state.lock:
                state.counters.redirects += 1
            target = self.path if controls.redirect_to == "self" else controls.redirect_to
            self.send_json(controls.redirect, {"moved": True}, {"Location": target})
            return False
        if controls.outage:
            with state.lock:
                state.counters.outage_answers += 1
            if controls.outage_mode == "drop":
                self.drop_connection()
            else:
                self.send_json(503, {"maKetQua": "503", "ghiChu": "Service unavailable"})
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if urlsplit(self.path).path == "/_control":
            self.send_json(200, self.server.state.snapshot())
        else:
            self.send_json(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        started = time.perf_counter()
        url = urlsplit(self.path)
        raw = self.read_body()
        if url.path == "/_control":
            try:
                changes = json.loads(raw or b"{}")
            except ValueError:
                self.send_json(400, {"error": "JSON expected"})
                return
            self.send_json(200, self.server.state.control(changes))
            return
        if url.path not in (TOKEN_PATH, CHECK_PATH):
            self.send_json(404, {"error": "not found"})
            return
        if not self._gate():
            return
        if url.path == TOKEN_PATH:
            form = _form(raw, self.headers.get("Content-Type", ""))
            status, body = self.server.state.login(form.get("username", ""), form.get("password", ""))
        else:
            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
            try:
                payload = json.loads(raw or b"null")
            except ValueError:
                payload = None
            status, body = self.server.state.check(params, payload)
        # the service's own answer time, so a bench can tell it apart from the client's
        headers = {GATEWAY_TIME_HEADER: f"{(time.perf_counter() - started) * 1000:.3f}"}
        with self.server.state.lock:
            trickle_ms = self.server.state.controls.trickle_ms
        if trickle_ms:
            self._trickle(status, body, headers, trickle_ms / 1000)
        else:
            self.send_json(status, body, headers)

    def _trickle(self, status: int, body: Any, headers: dict[str, str], pause: float) -> None:
        """The whole answer (status line, headers, body) one byte at a time."""
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        head = [f"HTTP/1.1 {status} OK", "Content-Type: application/json; charset=utf-8",
                f"Content-Length: {len(data)}", *(f"{k}: {v}" for k, v in headers.items())]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data
        self.close_connection = True
        try:
            for i in range(len(raw)):
                self.wfile.write(raw[i:i + 1])
                self.wfile.flush()
                time.sleep(pause)
        except OSError:
            pass  # the client gave up: what a trickling gateway's client should do


def _form(raw: bytes, content_type: str) -> dict[str, str]:
    if "json" in content_type:
        try:
            data = json.loads(raw)
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}


class _GatewayServer(QuietServer):
    def __init__(self, address: tuple[str, int], state: BhytGatewayState) -> None:
        super().__init__(address, _Handler)
        self.state = state


class BhytTestService(ServerThread):
    """``BhytTestService().start()``; ``.url``, ``.state`` (control it directly), ``.stop()``."""

    def __init__(self, register: BhytRegister | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 clock: Callable[[], float] = time.monotonic, seed: int = 0) -> None:
        self.state = BhytGatewayState(register or BhytRegister.load(), clock=clock, seed=seed)
        super().__init__(_GatewayServer((host, port), self.state))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.sim.services.bhyt",
                                     description="Local BHYT gateway test service (synthetic register).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--register", default=str(DEFAULT_REGISTER))
    parser.add_argument("--variant", default="", help="register variant, e.g. year_only")
    parser.add_argument("--token-ttl", type=float, default=3600.0)
    args = parser.parse_args(argv)
    service = BhytTestService(BhytRegister.load(args.register), host=args.host, port=args.port)
    service.state.control({"variant": args.variant, "token_ttl": args.token_ttl})
    print(f"BHYT test service on {service.url} (register {args.register})", flush=True)
    serve_until_interrupted(service.server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
