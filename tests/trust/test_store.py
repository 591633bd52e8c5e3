"""Trust store, explicit-parameter CSCA keys, master lists and `idagent trust`."""

from __future__ import annotations

import json
import shutil

import pytest
from asn1crypto import keys
from cryptography import x509 as cx509
from cryptography.exceptions import UnsupportedAlgorithm
from trust_helpers import NOW, files_for

from agent.cli import main
from agent.errors import ParseError
from agent.icao import certs
from agent.icao.checks import Status
from agent.icao.masterlist import MasterListError, read_master_list
from agent.icao.pa import passive_authentication
from agent.icao.trust import TrustStore, TrustStoreError, import_file


def test_explicit_parameter_brainpoolp512r1_csca_loads_and_verifies(pki):
    raw = (pki.directory / "csca_explicit.pem").read_bytes()
    # the shape of the real Vietnamese CSCA (domain.md): cryptography refuses the key ...
    with pytest.raises((ValueError, UnsupportedAlgorithm)):
        cx509.load_pem_x509_certificate(raw).public_key()
    cert = certs.load_certificate(raw)
    spki = cert["tbs_certificate"]["subject_public_key_info"]
    assert spki["algorithm"]["parameters"].name == "specified"
    # ... we recognise the curve and verify with it
    assert certs.named_curve_name(spki) == "brainpoolp512r1"
    assert certs.key_description(cert) == "EC brainpoolP512r1 (explicit parameters)"
    certs.verify_issued_by(cert, cert)
    result = passive_authentication(files_for(pki, "dsc_explicit", hash_name="sha512"),
                                    TrustStore.from_certificates([cert]), now=NOW)
    assert result.check.status is Status.VALID, result.check.reason


def test_explicit_parameters_of_unknown_curve_are_refused(pki):
    cert = certs.load_certificate((pki.directory / "csca_explicit.pem").read_bytes())
    spki = cert["tbs_certificate"]["subject_public_key_info"]
    domain = spki["algorithm"]["parameters"].chosen.copy()
    domain["order"] = domain["order"].native - 2
    forged = keys.PublicKeyInfo({
        "algorithm": {"algorithm": "ec", "parameters": keys.ECDomainParameters(name="specified", value=domain)},
        "public_key": spki["public_key"].native,
    })
    with pytest.raises(certs.SignatureError, match="match no standardized curve"):
        certs.load_public_key(forged)


def test_store_loads_folder_and_reports_bad_files(pki, tmp_path):
    shutil.copytree(pki.store_dir, tmp_path / "csca")
    (tmp_path / "csca" / "broken.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    (tmp_path / "csca" / "README").write_text("ignored")
    store = TrustStore.load(tmp_path / "csca")
    assert len(store) == 4
    assert len(store.crls) == 2
    assert store.problems and "broken.pem" in store.problems[0]
    links = [a for a in store.anchors if a.is_link]
    assert len(links) == 1 and links[0].common_name == "TEST CSCA VN RSA"


def test_missing_store_folder_is_a_config_error(tmp_path):
    with pytest.raises(TrustStoreError):
        TrustStore.load(tmp_path / "nope")


def test_master_list_good_signature(pki):
    listing = read_master_list((pki.directory / "test.ml").read_bytes())
    assert len(listing.certificates) == 4
    assert "Master List Signer" in listing.signer_subject
    assert listing.signer_country == "VN"


def test_master_list_bad_signature_is_refused(pki, tmp_path):
    with pytest.raises(MasterListError, match="signature does not verify"):
        read_master_list((pki.directory / "test_bad_signature.ml").read_bytes())
    with pytest.raises(MasterListError):
        import_file(pki.directory / "test_bad_signature.ml", tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_master_list_signer_outside_the_list_is_refused(pki):
    from agent.icao.masterlist import OID_CSCA_MASTER_LIST, build_master_list_content
    from agent.sim.signing import build_signed_data
    # a list holding only the ECDSA CSCA, signed by a signer issued by the RSA CSCA
    content = build_master_list_content([pki.cert("csca_ecdsa").public_bytes(_der())])
    signer = pki.dsc("ml_signer")
    raw = build_signed_data(OID_CSCA_MASTER_LIST, content, signer.cert, signer.key)
    with pytest.raises(MasterListError, match="not issued by any CSCA in the list"):
        read_master_list(raw)


def test_garbage_is_not_a_master_list():
    with pytest.raises(ParseError):
        read_master_list(b"\x30\x03\x02\x01\x00")


def _der():
    from cryptography.hazmat.primitives.serialization import Encoding
    return Encoding.DER


def test_import_then_verify(pki, tmp_path):
    report = import_file(pki.directory / "test.ml", tmp_path / "csca")
    assert report.kind == "master list" and len(report.added) == 4
    again = import_file(pki.directory / "test.ml", tmp_path / "csca")
    assert again.added == () and again.already_present == 4
    crl = import_file(pki.store_dir / "crl_rsa.crl", tmp_path / "csca")
    assert crl.kind == "CRL"
    store = TrustStore.load(tmp_path / "csca")
    assert passive_authentication(files_for(pki), store, now=NOW).check.status is Status.VALID
    revoked = passive_authentication(files_for(pki, "dsc_rsa_revoked"), store, now=NOW)
    assert revoked.check.status is Status.INVALID


def test_import_refuses_a_document_signer(pki, tmp_path):
    with pytest.raises(TrustStoreError, match="not a CSCA"):
        import_file(pki.directory / "dsc_rsa.pem", tmp_path / "csca")


def test_cli_import_and_list(pki, tmp_path, capsys):
    store = str(tmp_path / "csca")
    assert main(["trust", "import", str(pki.directory / "test.ml"), "--trust", store]) == 0
    assert "4 added" in capsys.readouterr().out
    assert main(["--json", "trust", "list", "--trust", store]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {a["key"] for a in listed["anchors"]} >= {"RSA 2048", "EC brainpoolP512r1 (explicit parameters)"}
    assert all(len(a["fingerprint"]) == 64 and a["valid_until"] for a in listed["anchors"])
    assert main(["trust", "import", str(pki.directory / "test_bad_signature.ml"), "--trust", store]) == 3
    captured = capsys.readouterr()
    assert "signature does not verify" in captured.err + captured.out


def _cert_with_empty_signature_bits(pki) -> bytes:
    """A CSCA certificate whose signature BIT STRING lacks its unused-bits byte
    (03 00): asn1crypto loads it lazily and raises IndexError on first access."""
    from asn1crypto import x509
    good = x509.Certificate.load(pki.cert("csca_ecdsa").public_bytes(_der()))
    body = good["tbs_certificate"].dump() + good["signature_algorithm"].dump() + b"\x03\x00"
    return b"\x30\x82" + len(body).to_bytes(2, "big") + body


def test_master_list_with_a_malformed_member_lists_it_and_keeps_the_others(pki):
    # a downloaded master list is outside input: a malformed member is refused with a
    # reason (not IndexError, and not the whole list: issue 11)
    from asn1crypto import x509

    from agent.icao.masterlist import OID_CSCA_MASTER_LIST, CscaMasterList
    from agent.sim.signing import build_signed_data
    bad = x509.Certificate.load(_cert_with_empty_signature_bits(pki))
    good = certs.load_certificate((pki.directory / "csca_rsa.pem").read_bytes())
    content = CscaMasterList({"version": 0, "cert_list": [good, bad]}).dump()
    signer = pki.dsc("ml_signer")
    listing = read_master_list(build_signed_data(OID_CSCA_MASTER_LIST, content, signer.cert, signer.key))
    assert [c.dump() for c in listing.certificates] == [good.dump()]
    assert len(listing.refused) == 1 and "not an X.509 certificate" in listing.refused[0]


def test_malformed_certificate_in_the_store_is_a_problem_not_a_crash(pki, tmp_path):
    # load_certificate must parse the whole certificate: one accepted lazily raised
    # IndexError later, out of passive authentication, when its signature was looked at
    bad = _cert_with_empty_signature_bits(pki)
    with pytest.raises(ParseError):
        certs.load_certificate(bad)
    (tmp_path / "broken.der").write_bytes(bad)
    store = TrustStore.load(tmp_path)
    assert len(store) == 0 and "broken.der" in store.problems[0]
    check = passive_authentication(files_for(pki, "dsc_ecdsa"), store, now=NOW).check
    assert check.status is Status.UNTRUSTED
