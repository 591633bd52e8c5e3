"""``idagent read``: the --json contract and the exit codes, on the in-process virtual
chip (--sim), a recording (--replay) and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main

ROOT = Path(__file__).resolve().parents[2]
TRUST = str(ROOT / "fixtures" / "pki" / "store")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_sim_json_contract_verified(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    photo = tmp_path / "face.jpg"
    code, out, _ = _run(capsys, "read", "--sim", "nguyen-van-an", "--trust", TRUST, "--photo", str(photo), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["complete"] is True and doc["exit_code"] == 0
    assert doc["access"]["protocol"] == "PACE" and doc["access"]["key_type"] == "CAN"
    ident = doc["identity"]
    assert ident["document_number"] == "099012345" and ident["id_number"] == "001099012345"
    assert ident["full_name"] == "Nguyễn Văn An"
    assert (ident["date_of_birth"], ident["date_of_expiry"]) == ("1999-03-15", "2039-03-15")
    assert (ident["sex"], ident["nationality"]) == ("M", "Việt Nam")
    assert ident["place_of_residence"].startswith("Số 12")
    assert doc["files"]["DG3"] == {"status": "skipped", "reason": "needs terminal authentication"}
    assert doc["files"]["DG2"]["status"] == "read"
    assert doc["verification"]["status"] == "verified"
    assert doc["timing"]["apdus"] > 0 and doc["timing"]["bytes_received"] > 18_000
    assert photo.read_bytes()[:2] == b"\xff\xd8" and doc["photo_file"] == str(photo)


def test_sim_not_verified_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "read", "--sim", "nguyen-van-an+tampered-dg13", "--trust", TRUST, "--json")
    assert code == 2
    assert json.loads(out)["verification"]["status"] == "not_verified"


def test_sim_bac_profile_uses_its_mrz_and_prints_labels(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "read", "--sim", "le-hoang-duc", "--trust", TRUST)
    assert code == 0
    assert "Họ và tên: Lê Hoàng Đức" in out
    assert "Có giá trị đến: Không thời hạn" in out
    assert "Truy cập chip: BAC" in out


def test_mrz_option(capsys: pytest.CaptureFixture[str]) -> None:
    mrz = "IDVNM0990123459001099012345<<0\n9903159M3903157VNM<<<<<<<<<<<0\nNGUYEN<<VAN<AN<<<<<<<<<<<<<<<<"
    code, out, _ = _run(capsys, "read", "--sim", "nguyen-van-an", "--mrz", mrz, "--trust", TRUST, "--json")
    assert code == 0
    assert json.loads(out)["access"]["key_type"] == "MRZ"


def test_wrong_can_exit_5(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "read", "--sim", "nguyen-van-an", "--can", "000000", "--json")
    assert code == 5
    assert json.loads(out)["error"]["code"] == "access_denied"


def test_replay_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    fixture = str(ROOT / "fixtures" / "recordings" / "bac-le-hoang-duc.json")
    code, out, _ = _run(capsys, "read", "--replay", fixture, "--trust", TRUST, "--json")
    assert code == 0
    assert json.loads(out)["identity"]["id_number"] == "048060007788"


def test_usage_errors_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "read", "--sim", "no-such-person", "--json")[0] == 3
    assert _run(capsys, "read", "--sim", "nguyen-van-an", "--can", "012345", "--mrz", "X", "--json")[0] == 3
    assert _run(capsys, "read", "--sim", "nguyen-van-an", "--document-number", "099012345", "--json")[0] == 3


def test_sim_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "sim", "--list", "--json")
    assert code == 0
    names = {item["name"] for item in json.loads(out)}
    assert {"nguyen-van-an", "tran-thi-bich-ngoc", "le-hoang-duc", "pham-minh-chau"} <= names


def test_qr_option_opens_the_chip(capsys: pytest.CaptureFixture[str]) -> None:
    # the 2021 front QR layout (domain.md): ID|CMND|name|birth|sex|residence|issue date
    qr = ("001099012345|012345678|Nguyễn Văn An|15031999|Nam|"
          "Số 12 Phố Hàng Bạc, Phường Hàng Bạc, Hoàn Kiếm, Hà Nội|01072024")
    code, out, _ = _run(capsys, "read", "--sim", "nguyen-van-an", "--qr", qr, "--trust", TRUST, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["access"]["key_type"] == "CAN"
    assert doc["identity"]["id_number"] == "001099012345"


def test_qr_mrz_keys_open_a_bac_only_chip(capsys: pytest.CaptureFixture[str]) -> None:
    # no PACE: the CAN is refused, the MRZ data computed from the QR's dates open BAC
    qr = ("048060007788|201234567|Lê Hoàng Đức|20111960|Nam|"
          "Tổ 5, Phường Hải Châu I, Quận Hải Châu, Đà Nẵng|15012024")
    code, out, _ = _run(capsys, "read", "--sim", "le-hoang-duc", "--qr", qr, "--trust", TRUST, "--json")
    doc = json.loads(out)
    assert code == 0, doc
    assert doc["access"]["protocol"] == "BAC"


def test_no_card_exit_4(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "idagent.toml"
    config.write_text('[readers]\nbackends = ["sim"]\n', encoding="utf-8")
    code, out, _ = _run(capsys, "--config", str(config), "read", "--can", "012345", "--json")
    assert code == 4
    assert json.loads(out)["error"]["code"] == "no_card"


def test_access_data_from_stdin_keeps_it_off_the_command_line(capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("000000\n"))
    code, out, _ = _run(capsys, "read", "--sim", "nguyen-van-an", "--can", "-", "--json")
    assert code == 5  # the piped CAN was used (and is wrong), not the profile's own
    mrz = "IDVNM0990123459001099012345<<0\n9903159M3903157VNM<<<<<<<<<<<0\nNGUYEN<<VAN<AN<<<<<<<<<<<<<<<<\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(mrz))
    code, out, _ = _run(capsys, "read", "--sim", "nguyen-van-an", "--mrz", "-", "--trust", TRUST, "--json")
    assert code == 0 and json.loads(out)["access"]["key_type"] == "MRZ"
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = _run(capsys, "read", "--sim", "nguyen-van-an", "--can", "-")
    assert code == 3 and "standard input was empty" in err
