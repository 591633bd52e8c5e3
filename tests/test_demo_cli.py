"""The demo (python -m agent.demo) as a presenter uses it (issue 13): SIGTERM stops it
like Ctrl-C, removing the temporary state with the API token and the outbox/intake
keys; --help lists every synthetic card and variant; --no-qr makes the page ask for
the 6 digits."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_demo(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the demo's state dir goes here
    proc = subprocess.Popen([sys.executable, "-m", "agent.demo", "--backend", "sim", "--port", str(_free_port()),
                             "--delay", "600", *args], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if "#token=" in line:
            return proc
        assert time.monotonic() < deadline, "the demo did not print its page address"
    raise AssertionError(f"the demo exited before serving the page ({proc.wait()})")


def test_sigterm_cleans_up_like_ctrl_c(tmp_path: Path) -> None:
    proc = _start_demo(tmp_path)
    try:
        state = [p for p in tmp_path.iterdir() if p.name.startswith("idagent-demo-")]
        assert len(state) == 1 and (state[0] / "api.token").exists() and (state[0] / "intake.key").exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # no token, outbox key or intake key left behind in the temporary directory
    assert not list(tmp_path.glob("idagent-demo-*"))


def test_help_lists_every_card_and_variant() -> None:
    from agent.demo import _profiles_help
    from agent.sim.profile import PROFILE_DIR, VARIANTS

    text = _profiles_help()
    for path in PROFILE_DIR.glob("*.json"):
        assert f"  {path.stem} " in text
    for variant in VARIANTS:
        line = next(line for line in text.splitlines() if line.startswith(f"  +{variant} "))
        assert len(line.split(maxsplit=1)[1]) > 10, line  # says what the page shows
    assert "--no-qr" in text and "--intake-fails" in text
    out = subprocess.run([sys.executable, "-m", "agent.demo", "--help"], cwd=REPO, capture_output=True,
                         text=True, timeout=60).stdout
    assert "+cloned" in out and "--no-qr" in out


def test_no_qr_demo_asks_for_the_six_digits(tmp_path: Path) -> None:
    """--no-qr --delay 0: the card is laid down without its QR; the agent asks for access."""
    import json

    import websockets.sync.client as ws_client

    port = _free_port()
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "agent.demo", "--backend", "sim", "--port", str(port),
                             "--delay", "3", "--every", "0", "--no-qr"], cwd=REPO, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        token = next(line.split("#token=")[1].strip() for line in proc.stdout if "#token=" in line)
        with ws_client.connect(f"ws://127.0.0.1:{port}/events", open_timeout=5,
                               additional_headers={"Authorization": f"Bearer {token}"}) as conn:
            kinds = []
            deadline = time.monotonic() + 30
            while "need_access" not in kinds and time.monotonic() < deadline:
                kinds.append(json.loads(conn.recv(timeout=30)).get("type"))
        assert "need_access" in kinds and "identity_ready" not in kinds
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
