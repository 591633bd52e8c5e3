"""`idagent verify` on files read elsewhere (issue 11 item 11) and the issuing state in
DG1 against the country of the signer (item 4), with the real German master list
imported and the BSI TR-03105-5 reference document."""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil

import pytest
from realdata_helpers import BSI, bsi_files, make_ca_pair

from agent.cli import main
from agent.icao.checks import Status
from agent.icao.trust import Anchor, TrustStore
from agent.icao.verify import verify
from agent.sim.signing import build_sod

SIGNED = dt.datetime(2025, 1, 15, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
#: the synthetic Vietnamese DG1 of the test suite (domain.md's made-up citizen)
VN_DG1 = (b"\x61\x5d\x5f\x1f\x5a" + b"IDVNM0990123459001099012345<<0" + b"9903159M3903157VNM<<<<<<<<<<<0"
          + b"NGUYEN<<VAN<AN<<<<<<<<<<<<<<<<")


def _store_with(de_store, *extra: bytes) -> TrustStore:
    store = TrustStore.load(de_store[0])
    from agent.icao import certs
    for der in extra:
        store.add(Anchor(certs.load_certificate(der), "test"))
    return store


def _signed(dgs: dict[int, bytes], dsc: bytes, key: object) -> dict[str, bytes]:
    files = {f"DG{n}": v for n, v in dgs.items()}
    files["SOD"] = build_sod(dgs, dsc, key, signing_time=SIGNED)  # type: ignore[arg-type]
    return files


def test_vietnamese_dg1_signed_under_another_countrys_csca_is_not_verified(de_store):
    csca, _, dsc, key = make_ca_pair("DE", "foreign")
    store = _store_with(de_store, csca)
    result = verify(None, _signed({1: VN_DG1}, dsc, key), trust_store=store, now=NOW, require_chip_auth=False)
    assert result.passive.status is Status.INVALID
    assert "VNM (VN)" in result.passive.reason and "DE" in result.passive.reason
    assert result.status == "not_verified"


def test_genuine_foreign_document_is_not_accepted_unless_listed(de_store):
    # the BSI reference document's DG1 (issuing state "D"), re-signed under a test CSCA of DE
    csca, _, dsc, key = make_ca_pair("DE", "bsi")
    store = _store_with(de_store, csca)
    dg1 = (BSI / "Datagroup1.bin").read_bytes()
    files = _signed({1: dg1}, dsc, key)
    refused = verify(None, files, trust_store=store, now=NOW, require_chip_auth=False, accepted_issuers=["VNM"])
    assert refused.passive.status is Status.VALID and refused.issuer.status is Status.NOT_SUPPORTED
    assert refused.status == "not_verified" and "not accepted here" in refused.reason
    assert "issued by D (DE)" in refused.reason
    accepted = verify(None, files, trust_store=store, now=NOW, require_chip_auth=False,
                      accepted_issuers=["VNM", "D"])
    assert accepted.status == "verified" and accepted.issuer.status is Status.VALID


def test_bsi_reference_document_with_unsigned_dg15_is_invalid():
    # DG15 is on the card but EF.SOD lists no hash for it: never verified
    result = verify(None, bsi_files(1, 2, 3, 4, 14, 15), trust_store=TrustStore(), require_chip_auth=False)
    assert result.passive.status is Status.INVALID
    assert "DG15 was read but EF.SOD lists no hash for it" in result.passive.reason
    # without DG15 every hash matches; the HJP test CSCA is in no trust store: untrusted
    result = verify(None, bsi_files(1, 2, 3, 4, 14), trust_store=TrustStore(), require_chip_auth=False)
    assert result.passive.status is Status.UNTRUSTED and "HJP PB CS" in result.passive.reason
    assert result.passive.details["data_groups"] == [1, 2, 3, 4, 14]


def test_verify_cli_sod_alone_prints_the_signer_chain(pki, tmp_path, capsys):
    files = _signed({1: VN_DG1}, pki.dsc("dsc_ecdsa").cert.public_bytes(__import__(
        "cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.DER),
        pki.dsc("dsc_ecdsa").key)
    (tmp_path / "sod.b64").write_bytes(base64.encodebytes(files["SOD"]))
    code = main(["--json", "verify", "--trust", str(pki.store_dir), "--sod", str(tmp_path / "sod.b64")])
    out = json.loads(capsys.readouterr().out)["verification"]
    assert code == 0 and out["status"] == "verified"
    assert out["passive"]["status"] == "valid"
    assert "no data group was compared" in out["passive"]["reason"]
    assert "TEST DSC VN ECDSA" in out["passive"]["signer"] or "DSC" in out["passive"]["signer"]
    assert len(out["passive"]["chain"]) == 2
    # no personal data in the answer: the MRZ is not there
    assert "NGUYEN" not in json.dumps(out) and "0990123459" not in json.dumps(out)


def test_verify_cli_on_the_bsi_files(tmp_path, capsys):
    sod, dg1, dg15 = (str(BSI / n) for n in ("EF_SOD.bin", "Datagroup1.bin", "Datagroup15.bin"))
    assert main(["verify", "--trust", str(tmp_path), "--sod", sod, "--dg1", dg1, "--dg15", dg15]) == 2
    out = capsys.readouterr().out
    assert out.startswith("not_verified") and "DG15 was read but EF.SOD lists no hash" in out
    assert main(["verify", "--trust", str(tmp_path), "--sod", sod]) == 2
    out = capsys.readouterr().out
    assert "untrusted" in out and "signer: Common Name: HJP PB DS" in out


@pytest.mark.parametrize("content,expected", [
    (b"", "is empty"),
    (b"QUJD=X", "neither the binary file nor valid base64"),
])
def test_verify_cli_bad_input_is_a_clear_error(tmp_path, capsys, content, expected):
    (tmp_path / "sod").write_bytes(content)
    assert main(["verify", "--trust", str(tmp_path), "--sod", str(tmp_path / "sod")]) == 3
    assert expected in capsys.readouterr().err


def test_verify_cli_with_card_security(pki, tmp_path, capsys):
    from cryptography.hazmat.primitives.serialization import Encoding

    from agent.sim.signing import build_card_security, derive_ec_key

    dsc = pki.dsc("dsc_ecdsa")
    files = _signed({1: VN_DG1}, dsc.cert.public_bytes(Encoding.DER), dsc.key)
    (tmp_path / "sod").write_bytes(files["SOD"])
    (tmp_path / "dg1").write_bytes(files["DG1"])
    (tmp_path / "cs").write_bytes(build_card_security(derive_ec_key(b"cam", "brainpoolp256r1").public_key(), 13,
                                                      dsc.cert, dsc.key, signing_time=SIGNED))
    shutil.copytree(pki.store_dir, tmp_path / "store")
    assert main(["--json", "verify", "--trust", str(tmp_path / "store"), "--sod", str(tmp_path / "sod"),
                 "--dg1", str(tmp_path / "dg1"), "--card-security", str(tmp_path / "cs")]) == 0
    out = json.loads(capsys.readouterr().out)["verification"]
    assert out["card_security"]["status"] == "valid" and out["issuer"]["status"] == "valid"


def test_verify_cli_binary_junk_is_a_result_not_a_crash(tmp_path, capsys):
    (tmp_path / "sod").write_bytes(b"not an EF.SOD at all!")
    assert main(["--json", "verify", "--trust", str(tmp_path), "--sod", str(tmp_path / "sod")]) == 2
    out = json.loads(capsys.readouterr().out)["verification"]
    assert out["status"] == "error" and "EF.SOD is malformed" in out["passive"]["reason"]


def test_config_accepted_issuers_and_pace_parameter_id(tmp_path):
    from agent.config import ConfigValueError, load_config

    good = tmp_path / "good.toml"
    good.write_text('[trust]\naccepted_issuers = ["VNM", "D"]\n[card]\npace_parameter_id = "when_ambiguous"\n')
    config = load_config(good, env={})
    assert config.trust.accepted_issuers == ["VNM", "D"] and config.card.pace_parameter_id == "when_ambiguous"
    assert load_config(None, env={}).trust.accepted_issuers == ["VNM"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[trust]\naccepted_issuers = ["VIETNAM"]\n')
    with pytest.raises(ConfigValueError, match="accepted_issuers"):
        load_config(bad, env={})
