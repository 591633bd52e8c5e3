"""The demo: a whole desk on one machine, with a synthetic card.

``python -m agent.demo`` starts

1. pcscd with the vpcd driver, and a virtual CCCD chip (a made-up citizen, signed by
   the test PKI of fixtures/pki) served to "Virtual PCD 00 00" (``agent.sim``);
2. the local BHYT test gateway over the synthetic register (``agent.sim.services.bhyt``)
   and a local intake receiver;
3. the agent, configured for them: PC/SC backend, BHYT lookups on, intake on, trust
   store = the test PKI's CSCAs (fixtures/pki/store);

prints the counter page's address, then "taps" the card: the QR code is "scanned"
(its text goes to ``POST /qr``, as a desk scanner would) and the card is laid on the
reader a few seconds after start, then taken off and laid down again every
``--every`` seconds (or on Enter). Ctrl-C stops everything.

``--check`` runs the same flow headless once and exits 0 when the identity event
arrived verified and the BHYT lookup answered "valid", 1 otherwise (for CI).
``--backend sim`` uses the in-process virtual reader instead of pcscd (no system
daemon needed; what the e2e tests and the bench use).

Everything here is test material: never point a production agent at it.

Why one module of ~430 lines: it is the demo's whole script (config, the stack of
stand-in services, the tappers, the check and the CLI), used as one unit by
``scripts/demo.sh``, the e2e tests and the benches.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from agent.config import Config
from agent.daemon import Daemon
from agent.icao.verify import VerificationStatus
from agent.readers.base import ReaderBackend

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
TRUST_DIR = REPO / "fixtures" / "pki" / "store"
REGISTER = REPO / "fixtures" / "bhyt" / "register.json"
DEMO_PROFILE = "nguyen-van-an"
SIM_READER = "idagent virtual reader 0"


def qr_text_for(profile: str) -> str:
    """The front-side QR text a 2021 CCCD of this synthetic person would carry
    (domain.md: ID|old ID|name|ddMMyyyy birth|Nam/Nữ|residence|ddMMyyyy issue)."""
    from agent.sim.profile import load_spec, split_name

    person = load_spec(split_name(profile)[0]).person

    def ddmmyyyy(value: Any) -> str:
        day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
        return day.strftime("%d%m%Y")

    sex = "Nam" if person.sex == "M" else "Nữ"
    return "|".join([person.id_number, person.old_id_number or "", person.full_name,
                     ddmmyyyy(person.date_of_birth), sex, person.place_of_residence or "",
                     ddmmyyyy(person.date_of_issue)])


def _demo_account() -> dict[str, Any]:
    register = json.loads(REGISTER.read_text(encoding="utf-8"))
    account = register["accounts"][0]
    officer = account["officers"][0]
    return {"username": account["username"], "password": account["password"],
            "facility_code": account["facility_code"], "officer_name": officer["hoTen"],
            "officer_id": officer["cccd"]}


def demo_config(state_dir: Path, *, bhyt_url: str, intake_url: str | None, backend: str, port: int,
                intake_fails: int = 0) -> Config:
    """The agent's config for the demo (validated like a config file). With
    ``intake_fails`` the outbox gives a dossier up after that many attempts, a second
    apart, so a refused dossier shows as failed within seconds."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    config = Config.defaults()
    config = config.replace("agent", state_dir=str(state_dir))
    config = config.replace("readers", backends=[backend], poll_interval=0.1,
                            include=["Virtual PCD 00 00"] if backend == "pcsc" else [])
    config = config.replace("trust", csca_dir=str(TRUST_DIR))
    account = _demo_account()
    config = config.replace("bhyt", enabled=True, base_url=bhyt_url, timeout=3.0, retries=1, **account)
    if intake_url is not None:
        key_file = state_dir / "intake.key"
        if not key_file.exists():
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
        config = config.replace("intake", enabled=True, url=intake_url, hmac_key_file=str(key_file))
    config = config.replace("outbox", path=str(state_dir / "outbox.sqlite3"), key_file=str(state_dir / "outbox.key"))
    if intake_fails:
        config = config.replace("outbox", max_attempts=intake_fails, base_backoff=1.0, max_backoff=2.0)
    origins = [f"http://127.0.0.1:{port}", f"http://localhost:{port}"] if port else []
    return config.replace("api", token_file=str(state_dir / "api.token"), port=port or 8765,
                          allowed_origins=origins)


@dataclass
class DeskStack:
    """The running demo: gateway, intake receiver, agent, and a way to tap the card."""

    daemon: Daemon
    config: Config
    gateway: Any
    intake: Any
    card_profile: str
    tapper: Any

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.daemon.port}"

    @property
    def token(self) -> str:
        return str(self.daemon._api.token)

    @property
    def page_url(self) -> str:
        return f"{self.base}/#token={self.token}"

    def scan_qr(self) -> None:
        """What a desk QR scanner does: hand the card's QR text to the agent."""
        resp = requests.post(self.base + "/qr", json={"text": qr_text_for(self.card_profile)},
                             headers={"Authorization": f"Bearer {self.token}"}, timeout=5)
        resp.raise_for_status()

    def tap(self, *, with_qr: bool = True) -> None:
        if with_qr:
            self.scan_qr()
        self.tapper.insert()

    def lift(self) -> None:
        self.tapper.remove()


class SimTapper:
    """The in-process virtual reader (agent.readers.sim)."""

    def __init__(self, backend: Any, profile: str) -> None:
        self.backend = backend
        self.profile = profile

    def insert(self) -> None:
        from agent.sim.profile import load_profile, virtual_chip

        self.backend.insert(SIM_READER, virtual_chip(load_profile(self.profile)))

    def remove(self) -> None:
        self.backend.remove(SIM_READER)


class VpcdTapper:
    """The card on pcscd's virtual reader (vpcd), through the real PC/SC stack."""

    def __init__(self, profile: str) -> None:
        from agent.sim.profile import load_profile, virtual_chip
        from agent.sim.vpcd import VpcdClient

        self.profile = profile
        self.client = VpcdClient(virtual_chip(load_profile(profile)), inserted=False).start()

    def insert(self) -> None:
        from agent.sim.profile import load_profile, virtual_chip

        self.client.insert(virtual_chip(load_profile(self.profile)))

    def remove(self) -> None:
        self.client.remove()

    def close(self) -> None:
        self.client.stop()


@contextlib.contextmanager
def desk_stack(*, backend: str = "pcsc", profile: str = DEMO_PROFILE, port: int = 0,
               state_dir: Path | None = None, intake: bool = True, intake_fails: int = 0,
               bhyt_down: bool = False, wedge: dict[str, Any] | None = None,
               compat: dict[str, Any] | None = None) -> Iterator[DeskStack]:
    """Start the whole desk (see the module docstring); stop it all on exit.
    ``intake_fails``: the receiver answers 503 to that many deliveries (the dossier is
    given up after as many attempts, then accepted when sent again); ``bhyt_down``:
    the agent's BHYT gateway address answers nothing; ``wedge``: [wedge] settings (the
    keyboard wedge, e.g. ``{"enabled": True, "window_title": "...", "display": ":5"}``);
    ``compat``: [compat] settings (the reader-kit service, e.g. ``{"enabled": True,
    "port": 0}``)."""
    from agent.sim.services.bhyt import BhytRegister, BhytTestService

    exits = contextlib.ExitStack()
    with exits:
        if state_dir is None:
            state_dir = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="idagent-demo-")))
        gateway = BhytTestService(BhytRegister.load(REGISTER)).start()
        exits.callback(gateway.stop)
        bhyt_url = _dead_url() if bhyt_down else gateway.url
        receiver = None
        intake_url = None
        if intake:
            from agent.sim.services.intake import IntakeTestService

            config_probe = demo_config(state_dir, bhyt_url=bhyt_url, intake_url="http://127.0.0.1:1/",
                                       backend=backend, port=port)
            key = Path(config_probe.intake.hmac_key_file).read_bytes().strip()
            service = IntakeTestService(key)
            service.state.control({"fail_next": intake_fails})
            service.start()
            exits.callback(service.stop)
            intake_url = service.intake_url
            receiver = service
        config = demo_config(state_dir, bhyt_url=bhyt_url, intake_url=intake_url, backend=backend, port=port,
                             intake_fails=intake_fails)
        if wedge:
            config = config.replace("wedge", **wedge)
        if compat:
            config = config.replace("compat", **compat)
        backends: list[ReaderBackend] | None = None
        tapper: Any
        if backend == "pcsc":
            from agent.sim.pcscd import ensure_pcscd

            exits.enter_context(ensure_pcscd())
            vpcd = VpcdTapper(profile)
            exits.callback(vpcd.close)
            tapper = vpcd
        else:
            from agent.readers.sim import SimBackend

            sim = SimBackend((SIM_READER,))
            backends = [sim]
            tapper = SimTapper(sim, profile)
        daemon = Daemon.from_config(config, backends=backends, port=port)
        daemon.start()
        exits.callback(daemon.stop)
        yield DeskStack(daemon, config, gateway, receiver, profile, tapper)


def _dead_url() -> str:
    """An address where nothing listens (a port just bound and released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def check_once(stack: DeskStack, timeout: float = 30.0) -> tuple[bool, dict[str, Any]]:
    """Tap once; wait for the identity and lookup events on the WebSocket."""
    import websockets.sync.client as ws_client

    url = f"ws://127.0.0.1:{stack.daemon.port}/events"
    seen: dict[str, Any] = {}
    # the websockets library logs request headers at DEBUG: this client's own logger
    # stays at INFO so the token never reaches a log
    quiet = logging.getLogger("agent.demo.wsclient")
    quiet.setLevel(logging.INFO)
    with ws_client.connect(url, additional_headers={"Authorization": f"Bearer {stack.token}"},
                           open_timeout=5, logger=quiet) as conn:
        json.loads(conn.recv(timeout=5))  # hello
        started = time.monotonic()
        stack.tap()
        while time.monotonic() - started < timeout and "lookup_result" not in seen:
            try:
                event = json.loads(conn.recv(timeout=max(0.1, timeout - (time.monotonic() - started))))
            except TimeoutError:
                break
            kind = event.get("type")
            if kind in ("identity_ready", "verification", "lookup_result", "error", "need_access"):
                seen.setdefault(kind, event)
        seen["elapsed_s"] = round(time.monotonic() - started, 3)
    verified = seen.get("verification", {}).get("status") == VerificationStatus.VERIFIED
    looked_up = seen.get("lookup_result", {}).get("status") == "valid"
    return bool(seen.get("identity_ready")) and verified and looked_up, seen


def _print_check(ok: bool, seen: dict[str, Any]) -> None:
    ready = seen.get("identity_ready") or {}
    print(json.dumps({
        "ok": ok, "elapsed_s": seen.get("elapsed_s"),
        "identity_event": bool(ready),
        "verification": (seen.get("verification") or {}).get("status"),
        "bhyt": (seen.get("lookup_result") or {}).get("status"),
        "read_ms": (ready.get("timings") or {}).get("read_ms"),
        "error": (seen.get("error") or {}).get("code"),
    }, ensure_ascii=False))


def _tap_loop(stack: DeskStack, first_delay: float, every: float, stop: threading.Event, with_qr: bool) -> None:
    if stop.wait(first_delay):
        return
    while True:
        print("» Thẻ được đặt lên đầu đọc (card laid on the reader)", flush=True)
        _survive(lambda: stack.tap(with_qr=with_qr), "tap")
        if every <= 0 or stop.wait(every):
            return
        print("» Thẻ được nhấc ra (card lifted)", flush=True)
        _survive(stack.lift, "lift")
        if stop.wait(2.0):
            return


def _survive(step: Any, name: str) -> None:
    """One failed tap (the API busy or flooded, the virtual reader gone) is logged and the
    loop goes on: it used to end the tap thread for the rest of the demo."""
    try:
        step()
    except Exception as exc:  # noqa: BLE001 - the demo's tap thread must outlive any one failure
        logger.warning("demo %s failed (%s); trying again at the next tap", name, type(exc).__name__)


def _profiles_help() -> str:
    """The --help epilog: every synthetic card and variant, and what the page shows."""
    from agent.sim.profile import PROFILE_DIR, VARIANTS

    register = {person["idNumber"]: person["_case"] for person in
                json.loads(REGISTER.read_text(encoding="utf-8"))["people"]}
    lines = ["cards (--profile NAME):"]
    for path in sorted(PROFILE_DIR.glob("*.json")):
        person = json.loads(path.read_text(encoding="utf-8")).get("person", {})
        bhyt = register.get(str(person.get("id_number")), "not in the BHYT test register: 'not found'")
        lines.append(f"  {path.stem:<22} BHYT: {bhyt}")
    lines.append("variants (--profile NAME+VARIANT), what the counter page shows:")
    for variant in VARIANTS:
        lines.append(f"  +{variant:<21} {VARIANT_SHOWS.get(variant, '')}")
    lines.append("other states: --no-qr (the page asks for the 6 digits), --intake-fails N (dossier "
                 "retrying, then failed, then 'Gửi lại' delivers it), --bhyt-down (gateway not answering); "
                 "Enter re-taps; 'Xóa' with the card on the reader offers 'Đọc lại'.")
    return "\n".join(lines)


#: what the page shows for each variant of agent.sim.profile (for --help)
VARIANT_SHOWS = {
    "tampered-dg1": "data altered after signing: red verdict, no BHYT lookup, 'Gửi hồ sơ' refused",
    "tampered-dg2": "photo altered after signing: as tampered-dg1",
    "tampered-dg13": "citizen data altered after signing: as tampered-dg1",
    "rogue-dsc": "signed by an issuer not in the trust store: amber 'Chưa xác thực'",
    "expired-dsc": "signing certificate not valid at signing time: as tampered-dg1",
    "revoked-dsc": "signing certificate revoked by its issuer: as tampered-dg1",
    "pss-dsc": "genuine card, RSA-PSS signature: verified",
    "ecdsa-dsc": "genuine card, ECDSA signature: verified",
    "cloned": "copied chip: red 'Nghi thẻ giả', BHYT result 'chưa đáng tin', 'Gửi hồ sơ' refused",
}


def _stop_on_sigterm() -> None:
    """SIGTERM (systemd, kill, a terminal closing) stops the demo like Ctrl-C: the
    context managers run, so the temporary state directory with the API token and
    the outbox and intake keys is removed, and pcscd is released."""
    import signal

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.demo", description=__doc__.split("\n\n")[0],
                                     epilog=_profiles_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8765, help="counter page / API port (default 8765)")
    parser.add_argument("--backend", choices=("pcsc", "sim"), default="pcsc",
                        help="pcsc: pcscd + vpcd virtual reader (default); sim: in-process reader")
    parser.add_argument("--profile", default=DEMO_PROFILE,
                        help="synthetic card profile (fixtures/profiles), e.g. nguyen-van-an+cloned")
    parser.add_argument("--delay", type=float, default=4.0, help="seconds before the first tap")
    parser.add_argument("--every", type=float, default=20.0, help="re-tap every N seconds (0: once)")
    parser.add_argument("--check", "--once", dest="check", action="store_true",
                        help="headless: tap once, exit 0 if verified and BHYT looked up, else 1")
    parser.add_argument("--no-qr", action="store_true",
                        help="lay the card down without scanning its QR code: the page asks for the 6 digits")
    parser.add_argument("--intake-fails", type=int, default=0, metavar="N",
                        help="the intake receiver refuses the first N deliveries (503); the dossier "
                             "fails after N attempts and 'Gửi lại' sends it again")
    parser.add_argument("--bhyt-down", action="store_true", help="the BHYT gateway does not answer")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    from agent.logs import setup_logging

    setup_logging("INFO" if args.verbose else "WARNING")
    if args.intake_fails < 0:
        parser.error("--intake-fails must be 0 or more")
    port = 0 if args.check else args.port
    _stop_on_sigterm()
    try:
        return _run(args, port)
    except KeyboardInterrupt:  # SIGTERM or Ctrl-C while starting or stopping
        print("\nStopped.", flush=True)
        return 0


def _run(args: argparse.Namespace, port: int) -> int:
    with desk_stack(backend=args.backend, profile=args.profile, port=port, intake_fails=args.intake_fails,
                    bhyt_down=args.bhyt_down) as stack:
        if args.check:
            ok, seen = check_once(stack)
            _print_check(ok, seen)
            return 0 if ok else 1
        print(f"\nidagent demo: mở trang quầy / open the counter page:\n\n    {stack.page_url}\n", flush=True)
        print(f"BHYT test gateway: {stack.gateway.url}   card: {args.profile} (synthetic)", flush=True)
        print(f"The card is laid on the reader in {args.delay:.0f} s"
              + (f", then every {args.every:.0f} s" if args.every > 0 else "")
              + ". Press Enter to tap again. Stop with Ctrl-C.\n", flush=True)
        stop = threading.Event()
        looper = threading.Thread(target=_tap_loop, args=(stack, args.delay, args.every, stop, not args.no_qr),
                                  daemon=True)
        looper.start()
        try:
            while True:
                line = sys.stdin.readline()
                if not line:  # stdin closed (not a terminal): just wait for Ctrl-C
                    threading.Event().wait()
                stack.lift()
                time.sleep(0.5)
                print("» Thẻ được đặt lại (card tapped again)", flush=True)
                stack.tap(with_qr=not args.no_qr)
        except KeyboardInterrupt:
            print("\nStopping the demo…", flush=True)
        finally:
            stop.set()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
