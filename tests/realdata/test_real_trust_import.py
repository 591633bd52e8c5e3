"""Importing real trust material (issue 11 item 5, "Bad input"): every member checked on
its own, the good ones imported, the refused ones listed with the reason."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from realdata_helpers import FIXTURES, ROOT, shared

from agent.cli import main
from agent.icao import certs
from agent.icao.masterlist import OID_CSCA_MASTER_LIST, read_master_list
from agent.icao.trust import TrustStore, TrustStoreError, cert_file_name, import_file
from agent.sim.signing import build_signed_data

LT = sorted((FIXTURES / "csca").glob("LT_*.der"))
VN = FIXTURES / "csca" / "VN_CSCA_ePassport_Vietnam_6b5fa6fe45cc4e85.der"


@pytest.mark.parametrize("name,members,signer_country", [
    ("DE_ML_2024-08-07-07-38-24.ml", 541, "DE"),
    ("DE_ML_2026-05-28-08-28-45.ml", 588, "DE"),
    ("NL_ML_2026-07-22.ml", 411, "NL"),
    ("ICAO_allowlist_zenopie_2025-08.ml", 520, "UN"),
])
def test_real_master_lists_verify(name, members, signer_country):
    listing = read_master_list((shared() / "masterlists" / name).read_bytes())
    assert listing.signer_country == signer_country
    assert len(listing.certificates) + len(listing.refused) == members
    # the Vietnamese CSCA is in each of them
    assert VN.read_bytes() in {c.dump() for c in listing.certificates}


def test_real_master_list_imports_with_counts(de_store):
    folder, report = de_store
    assert report.kind == "master list" and report.total == 588
    assert "CSCA Master List Signer" in report.signer
    # every member is accounted for: written, a duplicate, or refused with a reason
    assert len(report.added) + report.already_present + len(report.skipped) == 588
    assert report.skipped and all("not a CA certificate" in r for r in report.skipped)
    assert len(TrustStore.load(folder)) == len(report.added) >= 580
    assert cert_file_name(certs.load_certificate(VN.read_bytes())) in report.added


def test_pem_bundle_imports_every_good_certificate_and_lists_the_rest(tmp_path, capsys):
    bundle = shared() / "bundles" / "AndyQ_masterList_SPM.pem"
    assert main(["trust", "import", str(bundle), "--trust", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "certificate bundle: 707 added" in out and "13 refused, of 720 certificates" in out
    # the 3 Lithuanian CSCAs with a non-DER key identifier, named, with the reason
    assert out.count("(in x509.Extension); subject") == 3 and "Country: LT" in out
    # non-CA certificates are refused as anchors, and the reason says why
    assert out.count("not a CA certificate (basicConstraints cA not set)") == 10
    assert "warning: 13 certificate(s) of AndyQ_masterList_SPM.pem were not imported" in err
    assert len(TrustStore.load(tmp_path)) == 707


def test_lithuanian_non_der_cscas_are_refused_with_the_reason(tmp_path):
    assert len(LT) == 3
    for path in LT:
        with pytest.raises(TrustStoreError, match="Insufficient data") as info:
            import_file(path, tmp_path)
        assert "subject" in info.value.message and "LT" in info.value.message


def test_master_list_with_malformed_members_imports_the_good_ones(pki, tmp_path, capsys):
    """A list signed correctly but holding the three real Lithuanian members: the list
    is not refused whole, the good members are imported, the three are listed."""
    good = [pki.cert(name) for name in ("csca_rsa", "csca_ecdsa")]
    from cryptography.hazmat.primitives.serialization import Encoding
    members = [c.public_bytes(Encoding.DER) for c in good] + [p.read_bytes() for p in LT]
    cert_set = b"".join(sorted(members))
    body = b"\x02\x01\x00" + b"\x31" + _length(len(cert_set)) + cert_set
    econtent = b"\x30" + _length(len(body)) + body
    signer = pki.dsc("ml_signer")
    ml = tmp_path / "with_lt.ml"
    ml.write_bytes(build_signed_data(OID_CSCA_MASTER_LIST, econtent, signer.cert, signer.key))
    assert main(["trust", "import", str(ml), "--trust", str(tmp_path / "store")]) == 0
    out, err = capsys.readouterr()
    assert "master list: 2 added" in out and "3 refused, of 5 certificates" in out
    assert out.count("Insufficient data") == 3
    assert "warning: 3 certificate(s)" in err
    assert len(TrustStore.load(tmp_path / "store")) == 2


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def test_real_single_certificates_import(tmp_path):
    for path in [VN, FIXTURES / "masterlists" / "DE_ROOT_CA_CSCA07.cer", FIXTURES / "masterlists" / "NL_ROOT_CA.cer",
                 *sorted((FIXTURES / "masterlists" / "IDN_2010_SERIES_CSCA_CERT").glob("*.cer"))]:
        report = import_file(path, tmp_path)
        assert report.kind == "certificate" and len(report.added) == 1, path.name
    store = TrustStore.load(tmp_path)
    assert len(store) == 8 and not store.problems
    idn = [a for a in store.anchors if a.country == "ID"]
    assert len(idn) == 5 and any(a.is_link for a in idn)
    vn = next(a for a in store.anchors if a.country == "VN")
    assert vn.summary()["key"] == "EC brainpoolP512r1 (explicit parameters)"


def test_store_folder_with_a_broken_real_file_loads_the_good_ones(tmp_path, capsys):
    (tmp_path / "VN.der").write_bytes(VN.read_bytes())
    (tmp_path / "LT_002.der").write_bytes(LT[0].read_bytes())
    store = TrustStore.load(tmp_path)
    assert len(store) == 1 and len(store.problems) == 1 and "LT_002.der" in store.problems[0]
    assert main(["--json", "trust", "list", "--trust", str(tmp_path)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [a["country"] for a in listed["anchors"]] == ["VN"]
    assert "LT_002.der" in listed["problems"][0] and "Insufficient data" in listed["problems"][0]


def test_trust_list_into_head_prints_no_traceback(de_store):
    tmp_path = de_store[0]
    # enough output to fill the pipe after head has gone
    proc = subprocess.run(f"'{sys.executable}' -m agent.cli trust list --trust '{tmp_path}' | head -1",
                          shell=True, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          executable="/bin/bash")
    assert proc.stdout.count("\n") == 1
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_doctor_lists_a_broken_real_file_and_counts_the_good_ones(tmp_path):
    from agent.cli.doctor import check_trust
    from agent.config import Config

    (tmp_path / "VN.der").write_bytes(VN.read_bytes())
    (tmp_path / "LT_003.der").write_bytes(LT[1].read_bytes())
    check = check_trust(Config.defaults().replace("trust", csca_dir=str(tmp_path)))
    assert check.status == "warn"
    assert "1 CSCA certificate(s)" in check.detail and "LT_003.der" in check.detail
