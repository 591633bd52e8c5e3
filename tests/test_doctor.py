from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from agent.cli.doctor import check_bhyt, check_state, check_trust
from agent.config import Config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_missing_trust_folder_fails_with_a_fix(tmp_path: Path) -> None:
    check = check_trust(Config.defaults().replace("trust", csca_dir=str(tmp_path / "nope")))
    assert check.status == "fail" and "does not exist" in check.detail and "trust import" in check.fix


def test_empty_trust_folder_warns(tmp_path: Path) -> None:
    check = check_trust(Config.defaults().replace("trust", csca_dir=str(tmp_path)))
    assert check.status == "warn" and "no CSCA" in check.detail


def test_unreachable_gateway_fails(tmp_path: Path) -> None:
    config = Config.defaults().replace("bhyt", enabled=True, base_url=f"http://127.0.0.1:{_free_port()}")
    check = check_bhyt(config)
    assert check.status == "fail" and "registered" in check.fix


def test_loose_outbox_key_permissions_fail(tmp_path: Path) -> None:
    key = tmp_path / "outbox.key"
    key.write_bytes(b"k" * 32)
    key.chmod(0o644)
    config = Config.defaults().replace("agent", state_dir=str(tmp_path)).replace("outbox", key_file=str(key))
    check = check_state(config)
    assert check.status == "fail" and "chmod 600" in check.fix


def test_doctor_json_exit_code(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[trust]\ncsca_dir = "{tmp_path / "missing"}"\n[readers]\nbackends = ["sim"]\n'
                   f'[agent]\nstate_dir = "{tmp_path / "state"}"\n', encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "agent", "--config", str(cfg), "doctor", "--json"],
                          capture_output=True, text=True, timeout=60)
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert proc.returncode == 1
    assert checks["trust store"]["status"] == "fail"
    assert checks["pcscd"]["status"] == "skip"
