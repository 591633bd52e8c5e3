"""`idagent trust last-read`: the signer chain of the last chip read, without personal
data — how an operator finds out, on the first real CCCD, whether its Document Signer
chains to "CSCA ePassport Vietnam" (README, unconfirmed behaviour)."""

from __future__ import annotations

import json
import stat

from realdata_helpers import ROOT

from agent.cli import main

TRUST = str(ROOT / "fixtures" / "pki" / "store")


def test_last_read_prints_the_signer_chain_and_no_personal_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IDAGENT_AGENT__STATE_DIR", str(tmp_path))
    assert main(["trust", "last-read"]) == 3
    assert "no chip read recorded" in capsys.readouterr().err
    assert main(["read", "--sim", "nguyen-van-an", "--trust", TRUST]) == 0
    capsys.readouterr()
    record = tmp_path / "last_signer.json"
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert main(["trust", "last-read"]) == 0
    out = capsys.readouterr().out
    assert "verified (issuing state VNM)" in out
    assert "  signer: " in out and "issuer: " in out and "TEST CSCA VN" in out
    assert main(["--json", "trust", "last-read"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passive"]["csca_country"] == "VN" and len(data["passive"]["chain"]) >= 2
    # nothing of the holder: name, ID number, document number, MRZ
    text = record.read_text(encoding="utf-8") + out
    for personal in ("Nguyễn", "NGUYEN", "001099012345", "099012345", "IDVNM"):
        assert personal not in text


def test_the_daemon_pipeline_records_the_last_signer_chain(tmp_path):
    from agent.config import Config
    from agent.icao.keys import CanKey
    from agent.pipeline import IcaoPipeline
    from agent.readers.sim import DEFAULT_READER, SimBackend
    from agent.sim.profile import load_profile, load_spec, virtual_chip

    config = Config.defaults().replace("agent", state_dir=str(tmp_path)).replace("trust", csca_dir=TRUST)
    pipeline = IcaoPipeline.from_config(config)
    backend = SimBackend(extended_length="auto")
    try:
        backend.insert(DEFAULT_READER, virtual_chip(load_profile("nguyen-van-an")))
        outcome = pipeline.read(backend.connect(DEFAULT_READER), CanKey(load_spec("nguyen-van-an").person.can),
                                lambda *_: None)
    finally:
        backend.close()
    assert outcome is not None
    data = json.loads((tmp_path / "last_signer.json").read_text(encoding="utf-8"))
    assert data["issuing_state"] == "VNM" and data["passive"]["csca_country"] == "VN"
