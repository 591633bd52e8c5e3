from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli.doctor import check_bhyt, check_compat, check_state, check_trust
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


def _compat(tmp_path: Path, **values: object) -> Config:
    values.setdefault("port", _free_port())
    return Config.defaults().replace("compat", enabled=True, **values)


def test_compat_disabled_is_skipped() -> None:
    assert check_compat(Config.defaults()).status == "skip"


def test_compat_free_port_is_ok_and_a_busy_one_warns(tmp_path: Path) -> None:
    config = _compat(tmp_path)
    check = check_compat(config)
    assert check.status == "ok" and f":{config.compat.port}" in check.detail and check.detail.startswith("http://")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", config.compat.port))
        busy.listen()
        check = check_compat(config)
    assert check.status == "warn" and "in use" in check.detail and "kit's own service" in check.fix


def test_compat_certificate_problems_are_named(tmp_path: Path) -> None:
    from agent.compat.tls import make_self_signed

    cert, key = make_self_signed(tmp_path / "tls")
    assert check_compat(_compat(tmp_path, tls_cert=str(cert), tls_key=str(key))).detail.startswith("https://")
    half = check_compat(_compat(tmp_path, tls_cert=str(cert)))
    assert half.status == "fail" and "go together" in half.detail
    other_cert, _ = make_self_signed(tmp_path / "other")
    mismatch = check_compat(_compat(tmp_path, tls_cert=str(other_cert), tls_key=str(key)))
    assert mismatch.status == "fail" and "cannot load" in mismatch.detail and "agent.compat.tls" in mismatch.fix
    key.chmod(0o644)
    loose = check_compat(_compat(tmp_path, tls_cert=str(cert), tls_key=str(key)))
    assert loose.status == "fail" and "readable by others" in loose.detail and loose.fix == f"chmod 600 {key}"


def _backdate(cert_path: Path, key_path: Path) -> None:
    """Re-issue the certificate with the same key, valid only in the past."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    old = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(old.subject).issuer_name(old.issuer)
               .public_key(old.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=900)).not_valid_after(now - dt.timedelta(days=1)))
    cert_path.write_bytes(builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))  # type: ignore[arg-type]


def test_compat_expired_and_expiring_certificates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.compat import tls

    monkeypatch.setattr(tls, "VALID_DAYS", 10)
    cert, key = tls.make_self_signed(tmp_path / "soon")
    soon = check_compat(_compat(tmp_path, tls_cert=str(cert), tls_key=str(key)))
    assert soon.status == "warn" and "expires on" in soon.detail
    cert, key = tls.make_self_signed(tmp_path / "old")
    _backdate(cert, key)
    old = check_compat(_compat(tmp_path, tls_cert=str(cert), tls_key=str(key)))
    assert old.status == "fail" and "expired" in old.detail


def test_compat_missing_camera_source_fails(tmp_path: Path) -> None:
    check = check_compat(_compat(tmp_path, camera=str(tmp_path / "no-such-folder")))
    assert check.status == "fail" and "no such device" in check.detail
    (tmp_path / "frames").mkdir()
    assert check_compat(_compat(tmp_path, camera=str(tmp_path / "frames"))).status == "ok"
