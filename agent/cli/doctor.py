"""``idagent doctor``: checks what the agent needs and says how to fix what is wrong."""

from __future__ import annotations

import argparse
import grp
import json
import os
import shutil
import socket
import stat
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.config import Config
from agent.errors import IdAgentError

UDEV_RULES = ("/etc/udev/rules.d/60-idagent.rules", "/lib/udev/rules.d/60-idagent.rules")
AGENT_GROUP = "idagent"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok", "warn", "fail", "skip"
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


def check_pcscd(config: Config) -> Check:
    if "pcsc" not in config.readers.backends:
        return Check("pcscd", "skip", "the pcsc backend is not configured")
    if not shutil.which("pcscd"):
        return Check("pcscd", "fail", "pcscd is not installed", "sudo apt-get install pcscd")
    from agent.readers.pcsc import pcscd_status

    ok, message = pcscd_status()
    return Check("pcscd", "ok" if ok else "fail", message,
                 "" if ok else "sudo systemctl enable --now pcscd.socket")


def check_readers(config: Config) -> Check:
    from agent.readers.registry import make_backend

    names: list[str] = []
    problems: list[str] = []
    for backend_name in config.readers.backends:
        if backend_name == "sim":
            continue
        try:
            backend = make_backend(backend_name)
            names += [r.name for r in backend.list_readers()]
            backend.close()
        except IdAgentError as err:
            problems.append(f"{backend_name}: {err.message}")
    if names:
        return Check("readers", "ok", ", ".join(names))
    return Check("readers", "fail", "; ".join(problems) or "no card reader found",
                 "Plug in a reader (ACS ACR1252U, Identiv uTrust ...) and check `lsusb`; "
                 "install the udev rules (see README).")


def check_udev(config: Config) -> Check:
    present = [p for p in UDEV_RULES if os.path.exists(p)]
    if present:
        return Check("udev rules", "ok", present[0])
    return Check("udev rules", "warn", "the idagent udev rules are not installed",
                 "sudo cp udev/60-idagent.rules /etc/udev/rules.d/ && sudo udevadm control --reload")


def check_group(config: Config) -> Check:
    try:
        group = grp.getgrnam(AGENT_GROUP)
    except KeyError:
        return Check("permissions", "warn", f"group {AGENT_GROUP!r} does not exist",
                     f"sudo groupadd --system {AGENT_GROUP} && sudo usermod -aG {AGENT_GROUP} <agent user>")
    if os.getuid() == 0 or group.gr_gid in os.getgroups():
        return Check("permissions", "ok", f"this user may use devices of group {AGENT_GROUP!r}")
    return Check("permissions", "warn", f"this user is not in group {AGENT_GROUP!r}",
                 f"sudo usermod -aG {AGENT_GROUP} $USER, then log in again")


def check_config(config: Config) -> Check:
    return Check("config", "ok", f"valid ({config.source})")


def check_trust(config: Config) -> Check:
    folder = Path(config.trust.csca_dir)
    if not folder.is_dir():
        return Check("trust store", "fail", f"{folder} does not exist",
                     f"mkdir -p {folder} and import a CSCA master list: idagent trust import FILE")
    from agent.icao.trust import TrustStore

    try:
        store = TrustStore.load(folder)
    except IdAgentError as err:
        return Check("trust store", "fail", err.message, err.hint)
    anchors = store.anchors
    if not anchors:
        return Check("trust store", "warn", f"{folder} holds no CSCA certificate: no card can be shown as verified",
                     "idagent trust import <master list .ml> (see config/csca/README)")
    if store.problems:
        return Check("trust store", "warn", f"{len(anchors)} CSCA certificate(s) in {folder}; "
                     f"unreadable: {'; '.join(store.problems)}", "Remove or replace the unreadable files.")
    return Check("trust store", "ok", f"{len(anchors)} CSCA certificate(s), {len(store.crls)} CRL(s) in {folder}")


def _reachable(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return False, f"{url!r} is not an http(s) URL"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True, f"{parsed.hostname}:{port} accepts connections"
    except OSError as exc:
        return False, f"{parsed.hostname}:{port}: {exc.strerror or exc}"


def check_bhyt(config: Config) -> Check:
    if not config.bhyt.enabled:
        return Check("BHYT gateway", "skip", "disabled in [bhyt]")
    ok, detail = _reachable(config.bhyt.base_url)
    return Check("BHYT gateway", "ok" if ok else "fail", detail,
                 "" if ok else "Check [bhyt] base_url and that this machine's IP is registered with the gateway.")


def check_intake(config: Config) -> Check:
    if not config.intake.enabled:
        return Check("intake", "skip", "disabled in [intake]")
    if config.intake.target == "opencps":
        ok, detail = _reachable(config.opencps.portal)
        return Check("intake", "ok" if ok else "fail", f"OpenCPS portal: {detail}",
                     "" if ok else "Check [opencps] portal; then run: idagent intake test")
    ok, detail = _reachable(config.intake.url)
    return Check("intake", "ok" if ok else "fail", detail, "" if ok else "Check [intake] url.")


def check_state(config: Config) -> Check:
    # a check only looks: run from any folder, doctor must not leave a ./var behind
    state = Path(config.agent.state_dir)
    if not state.exists():
        parent = next((p for p in state.absolute().parents if p.exists()), Path("/"))
        if os.access(parent, os.W_OK):
            return Check("state folder", "warn", f"{state} does not exist yet; the agent creates it at start",
                         f"Or create it now: install -d -m 0700 {state}")
        return Check("state folder", "fail", f"{state} does not exist and {parent} is not writable",
                     f"sudo install -d -m 0700 -o idagent {state}")
    if not state.is_dir():
        return Check("state folder", "fail", f"{state} is not a folder", "Point [agent] state_dir at a folder.")
    if not os.access(state, os.W_OK):
        return Check("state folder", "fail", f"{state} is not writable", f"sudo chown idagent {state}")
    key = Path(config.outbox.key_file)
    if key.exists() and stat.S_IMODE(key.stat().st_mode) & 0o077:
        return Check("state folder", "fail", f"{key} is readable by others", f"chmod 600 {key}")
    return Check("state folder", "ok", f"{state} is writable")


def check_api_port(config: Config) -> Check:
    if _port_in_use(config.api.host, config.api.port):
        return Check("API port", "warn", f"{config.api.host}:{config.api.port} is in use (the agent may be running)",
                     "If the agent is not running, change [api] port.")
    return Check("API port", "ok", f"{config.api.host}:{config.api.port} is free")


def check_wedge(config: Config) -> Check:
    if not config.wedge.enabled:
        return Check("keyboard wedge", "skip", "disabled in [wedge]")
    from agent.wedge.wedge import WedgeSettings, describe

    settings = WedgeSettings.from_config(config)
    settings.pattern()  # an empty or invalid window_title is a config error
    state = describe(settings)
    if not state["ok"]:
        return Check("keyboard wedge", "fail", f"{settings.backend}: {state['problem']}; nothing will be typed",
                     "x11: run the agent in the clerk's X session (DISPLAY); uinput: modprobe uinput and "
                     "install udev/60-idagent.rules (group idagent, 0660)")
    return Check("keyboard wedge", "ok", f"{settings.backend}: {state['method']}")


#: a desk certificate about to expire is worth a warning this many days ahead
CERT_WARN_DAYS = 30


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _compat_certificate(cert_file: str, key_file: str) -> Check | None:
    """Problems with [compat] tls_cert/tls_key, or None when https is set up well."""
    import datetime as dt

    from cryptography import x509

    from agent.compat.socketio_server import ssl_context
    from agent.config import CompatSection

    try:
        ssl_context(CompatSection(tls_cert=cert_file, tls_key=key_file))
    except IdAgentError as err:
        return Check("reader-kit service", "fail", err.message, err.hint)
    if stat.S_IMODE(Path(key_file).stat().st_mode) & 0o077:
        return Check("reader-kit service", "fail", f"{key_file} (the https private key) is readable by others",
                     f"chmod 600 {key_file}")
    cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    if left.total_seconds() <= 0:
        return Check("reader-kit service", "fail", f"{cert_file} expired on {cert.not_valid_after_utc:%Y-%m-%d}: "
                     "desk software refuses the https connection",
                     "Make a new pair: python -m agent.compat.tls DIR, then trust it in the desk's browser")
    if left.days < CERT_WARN_DAYS:
        return Check("reader-kit service", "warn", f"{cert_file} expires on {cert.not_valid_after_utc:%Y-%m-%d} "
                     f"({left.days} days)", "Make a new pair before then: python -m agent.compat.tls DIR")
    return None


def check_compat(config: Config) -> Check:
    """The reader-kit drop-in: its ports free (or held by us), https files usable, the
    webcam source present."""
    section = config.compat
    if not section.enabled:
        return Check("reader-kit service", "skip", "disabled in [compat]")
    busy = [f"{section.host}:{port}" for port in (section.port, section.camera_port if section.camera else 0)
            if port and _port_in_use(section.host, port)]
    if section.tls_cert or section.tls_key:
        problem = _compat_certificate(section.tls_cert, section.tls_key)
        if problem is not None:
            return problem
    camera = section.camera
    if camera and not camera.isdigit() and not Path(camera).exists():
        return Check("reader-kit service", "fail", f"[compat] camera = {camera!r}: no such device, folder or file",
                     "Give a camera index (0), a /dev/videoN device, an image folder or a video file, "
                     "or \"\" for no webcam stream.")
    scheme = "https" if section.tls_cert else "http"
    if busy:
        return Check("reader-kit service", "warn", f"{', '.join(busy)} in use (the agent may be running; "
                     "the kits' own service must not be)",
                     "Stop and disable the reader kit's own service, or change [compat] port/camera_port.")
    return Check("reader-kit service", "ok", f"{scheme}://{section.host}:{section.port} free"
                 + (f", webcam {camera!r} on port {section.camera_port}" if camera else ""))


CHECKS: tuple[Callable[[Config], Check], ...] = (
    check_config, check_pcscd, check_readers, check_udev, check_group, check_trust,
    check_state, check_api_port, check_bhyt, check_intake, check_wedge, check_compat,
)


def run_checks(config: Config) -> list[Check]:
    results = []
    for fn in CHECKS:
        try:
            results.append(fn(config))
        except IdAgentError as err:
            results.append(Check(fn.__name__.removeprefix("check_"), "fail", err.message, err.hint))
    return results


def _handle(args: argparse.Namespace, config: Config) -> int:
    results = run_checks(config)
    if args.json:
        print(json.dumps({"checks": [r.to_dict() for r in results]}, ensure_ascii=False, indent=2))
    else:
        marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}
        for r in results:
            print(f"[{marks[r.status]}] {r.name}: {r.detail}")
            if r.fix and r.status in ("warn", "fail"):
                print(f"       fix: {r.fix}")
    return 1 if any(r.status == "fail" for r in results) else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("doctor", help="check pcscd, readers, permissions, config, trust store, services",
                                   description="Checks what the agent needs and says how to fix what is wrong. "
                                               "Exit 0 when nothing failed.")
    parser.set_defaults(handler=_handle)
