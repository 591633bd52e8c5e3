"""``idagent run`` as a process (SIGHUP reload, SIGTERM clean exit), the demo's
``--check`` mode, and the real adapters of agent.pipeline."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from agent.config import Config
from agent.icao.checks import CheckResult, Status
from agent.icao.verify import Verification, VerificationStatus
from agent.pipeline import CccdQrDecoder, make_qr_sources, plain_reason

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_run_process_reload_and_clean_shutdown(tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "idagent.toml"
    token_file = tmp_path / "api.token"
    body = (f'[readers]\nbackends = ["sim"]\npoll_interval = 0.1\n[trust]\ncsca_dir = "{tmp_path}/none"\n'
            f'[api]\nport = {port}\ntoken_file = "{token_file}"\nidentity_ttl = 60.0\n')
    config.write_text(body)
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "--config", str(config), "run", "--json"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        started = json.loads(line)
        assert started["status"] == "running" and started["port"] == port
        token = token_file.read_text().strip()
        assert started["page_url"].endswith("/#token=" + token)
        assert os.stat(token_file).st_mode & 0o777 == 0o600
        headers = {"Authorization": f"Bearer {token}"}
        health = requests.get(f"http://127.0.0.1:{port}/health", headers=headers, timeout=5).json()
        assert health["backends"] == ["sim"]
        config.write_text(body.replace("identity_ttl = 60.0", "identity_ttl = 30.0"))
        proc.send_signal(signal.SIGHUP)
        seen = bytearray()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and b"config reloaded" not in seen:
            time.sleep(0.2)
            seen += _read_available(proc)
        # the API kept serving through the reload
        assert requests.get(f"http://127.0.0.1:{port}/health", headers=headers, timeout=5).ok
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        err = seen.decode() + proc.stderr.read()  # type: ignore[union-attr]
        assert "config reloaded" in err and "agent stopped" in err
        assert token not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _read_available(proc: subprocess.Popen[str]) -> bytes:
    """What the running process has written to stderr so far (non-blocking)."""
    import fcntl

    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    try:
        return os.read(fd, 1 << 16)
    except BlockingIOError:
        return b""
    finally:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)


def test_demo_check_mode_in_process_reader() -> None:
    proc = subprocess.run([sys.executable, "-m", "agent.demo", "--check", "--backend", "sim"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["ok"] and report["verification"] == "verified" and report["bhyt"] == "valid"


def test_demo_check_fails_on_a_tampered_card() -> None:
    proc = subprocess.run([sys.executable, "-m", "agent.demo", "--check", "--backend", "sim",
                           "--profile", "nguyen-van-an+tampered-dg1"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert json.loads(proc.stdout.strip().splitlines()[-1])["verification"] == "not_verified"


def test_plain_reasons_have_no_jargon() -> None:
    cases = {
        ("verified", "valid"): "chip thật",
        ("probable_clone", "valid"): "sao chép",
        ("not_verified", "invalid"): "bị sửa",
        ("not_verified", "untrusted"): "cơ quan cấp thẻ",
    }
    for (status, passive), words in cases.items():
        ok = CheckResult(Status.VALID, "ok")
        text = plain_reason(Verification(CheckResult(Status(passive), "p"), ok, ok, VerificationStatus(status), "r"))
        assert words in text
        for jargon in ("CSCA", "SOD", "DG", "PACE", "passive", "Chip Authentication"):
            assert jargon not in text


def test_qr_decoder_gives_can_first_and_a_qr_identity() -> None:
    text = "001099012345|012345678|Nguyễn Văn An|15031999|Nam|Số 12 Phố Hàng Bạc, Hà Nội|01072024"
    scan = CccdQrDecoder().decode(text.encode("utf-8"))
    assert getattr(scan.keys[0], "can", None) == "012345"
    assert scan.identity.full_name == "Nguyễn Văn An" and scan.identity.sources["full_name"] == "qr"


def test_no_qr_sources_by_default() -> None:
    assert make_qr_sources(Config.defaults()) == []


def test_camera_qr_source_feeds_the_daemon(tmp_path: Path) -> None:
    """config.qr.camera = an image folder (agent.readers.camera): the QR in the image
    reaches the daemon as a scan with its access key."""
    import shutil

    from api_fakes import FakeBackend, FakePipeline

    from agent.daemon import Daemon

    folder = tmp_path / "frames"
    folder.mkdir()
    shutil.copy(REPO / "fixtures" / "qr" / "hard_80px_blur1_card.png", folder / "frame.png")
    config = Config.defaults().replace("api", token_file=str(tmp_path / "api.token"))
    config = config.replace("qr", camera=str(folder))
    backend = FakeBackend(["Reader A"])
    daemon = Daemon(config, pipeline=FakePipeline(), backends=[backend], qr_decoder=CccdQrDecoder(), port=0)
    seen: list[dict[str, object]] = []
    daemon.hub.listeners.append(lambda event: seen.append(event.native()))
    daemon.start()
    try:
        deadline = time.monotonic() + 20
        while not any(e["type"] == "qr_scanned" for e in seen) and time.monotonic() < deadline:
            time.sleep(0.05)
        scanned = next(e for e in seen if e["type"] == "qr_scanned")
        assert scanned["source"] == f"camera:{folder}" and scanned["keys"] >= 1  # type: ignore[operator]
        assert daemon.keys_for_card()
        assert daemon.metrics.qr_scans.value(result="ok") == 1
    finally:
        daemon.stop()


def test_demo_check_over_pcscd_and_vpcd(pcscd: object) -> None:
    """The demo's own path: pcscd + vpcd + the virtual chip through pyscard. The session's
    pcscd is shared (the demo joins its lease) so the test does not restart the daemon
    while vpcd's ports may still be in TIME_WAIT from an earlier test."""
    import pytest

    from agent.sim.pcscd import missing_prerequisites

    missing = missing_prerequisites()
    if missing:
        pytest.skip("needs " + ", ".join(missing))
    proc = subprocess.run([sys.executable, "-m", "agent.demo", "--check"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["verification"] == "verified" and report["bhyt"] == "valid"


def test_a_full_desk_read_logs_no_personal_data(caplog) -> None:  # type: ignore[no-untyped-def]
    """The whole stack at DEBUG, the log captured before any redaction filter: no ID
    number, CAN, name or birth date reaches it (the filter is only a second line)."""
    import logging

    from agent.demo import check_once, desk_stack

    caplog.set_level(logging.DEBUG)
    with desk_stack(backend="sim", port=0) as stack:
        ok, _seen = check_once(stack)
        stack.daemon.submit_intake()
        stack.lift()
        time.sleep(0.3)
    assert ok
    text = caplog.text
    assert "card read on" in text
    for secret in ("001099012345", "099012345", "012345678", "Nguyễn", "NGUYEN", "15/03/1999", "1999-03-15",
                   stack.token):
        assert secret not in text, secret
