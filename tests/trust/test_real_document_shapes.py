"""Shapes of EF.SOD and of trust stores seen on genuine documents (issue 11 items 2, 3
and 6), reproduced with the test PKI: the real documents that showed them carry
personal data and are not in shared/real-emrtd (its README describes them)."""

from __future__ import annotations

import datetime as dt

import pytest
from asn1crypto import cms, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from trust_helpers import DGS, NOW, SIGNED, files_for

from agent.icao.checks import Status
from agent.icao.pa import passive_authentication
from agent.icao.sod import SOD_TAG, unwrap_tag77
from agent.icao.trust import TrustStore
from agent.sim.signing import build_lds_security_object, build_signed_data, build_sod, derive_ec_key, wrap


@pytest.mark.parametrize("content_type", [
    "2.23.136.1.1.1",          # id-icao-ldsSecurityObject
    "1.3.27.1.1.1",            # older Belgian/French passports
    "1.2.528.1.1006.1.20.1",   # Dutch (Sdu) passports
    "1.2.840.113549.1.7.1",    # id-data: Chinese passports
])
def test_lds_security_object_under_the_content_types_of_genuine_documents(pki, store, content_type):
    signer = pki.dsc("dsc_rsa")
    econtent = build_lds_security_object(DGS)
    sod = wrap(SOD_TAG, build_signed_data(content_type, econtent, signer.cert, signer.key, signing_time=SIGNED))
    files = {**{f"DG{n}": v for n, v in DGS.items()}, "SOD": sod}
    check = passive_authentication(files, store, now=NOW).check
    assert check.status is Status.VALID, check.reason
    # the signed content-type attribute must still name the type used
    altered = {**files, "DG1": files["DG1"][:-1] + b"X"}
    assert passive_authentication(altered, store, now=NOW).check.status is Status.INVALID


def test_unknown_content_type_is_an_error_with_the_type_named(pki, store):
    signer = pki.dsc("dsc_rsa")
    sod = wrap(SOD_TAG, build_signed_data("1.2.3.4", build_lds_security_object(DGS), signer.cert, signer.key))
    check = passive_authentication({"SOD": sod, "DG1": DGS[1]}, store, now=NOW).check
    assert check.status is Status.ERROR and "1.2.3.4" in check.reason


def _with_signer_id(sod: bytes, issuer: x509.Name | None = None, serial: int | None = None) -> bytes:
    info = cms.ContentInfo.load(unwrap_tag77(sod))
    signer = info["content"]["signer_infos"][0]
    sid = signer["sid"].chosen
    signer["sid"] = cms.SignerIdentifier(name="issuer_and_serial_number", value={
        "issuer": issuer if issuer is not None else sid["issuer"],
        "serial_number": serial if serial is not None else sid["serial_number"].native})
    return wrap(SOD_TAG, info.dump(force=True))


def _reversed(name: x509.Name) -> x509.Name:
    rdns = list(name.chosen)
    assert len(rdns) > 1
    return x509.Name(name="", value=x509.RDNSequence(list(reversed(rdns))))


def test_signer_named_with_rdns_in_another_order_falls_back_to_the_sods_certificate(pki, store):
    files = files_for(pki, "dsc_rsa")
    issuer = cms.ContentInfo.load(unwrap_tag77(files["SOD"]))["content"]["signer_infos"][0]["sid"].chosen["issuer"]
    result = passive_authentication({**files, "SOD": _with_signer_id(files["SOD"], _reversed(issuer))},
                                    store, now=NOW).check
    assert result.status is Status.VALID, result.reason
    assert any("another order" in note for note in result.notes)


def test_signer_fallback_still_needs_the_serial_and_the_signature(pki, store):
    files = files_for(pki, "dsc_rsa")
    issuer = cms.ContentInfo.load(unwrap_tag77(files["SOD"]))["content"]["signer_infos"][0]["sid"].chosen["issuer"]
    wrong_serial = _with_signer_id(files["SOD"], _reversed(issuer), serial=12345)
    check = passive_authentication({**files, "SOD": wrong_serial}, store, now=NOW).check
    assert check.status is Status.ERROR and "matching its SignerInfo" in check.reason
    # same name parts reordered, but the SOD's certificate did not sign: invalid
    other = pki.dsc("dsc_rogue")
    forged = build_sod(DGS, pki.dsc("dsc_rsa").cert, other.key, signing_time=SIGNED)
    forged = _with_signer_id(forged, _reversed(issuer))
    check = passive_authentication({**files, "SOD": forged}, store, now=NOW).check
    assert check.status is Status.INVALID


# -- a CSCA rollover: old root (expired), renewed root and link certificate -------------

def _cert(subject: cx509.Name, issuer: cx509.Name, public: ec.EllipticCurvePublicKey,
          signer: ec.EllipticCurvePrivateKey, serial: int, start: int, end: int, ca: bool = True) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding
    builder = (cx509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
               .serial_number(serial).not_valid_before(dt.datetime(start, 1, 1, tzinfo=dt.UTC))
               .not_valid_after(dt.datetime(end, 1, 1, tzinfo=dt.UTC))
               .add_extension(cx509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
               .add_extension(cx509.KeyUsage(digital_signature=not ca, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                                             key_cert_sign=ca, crl_sign=ca, encipher_only=False,
                                             decipher_only=False), critical=True))
    return builder.sign(signer, hashes.SHA256()).public_bytes(Encoding.DER)


def _rollover() -> tuple[dict[str, bytes], dict[str, bytes]]:
    name = cx509.Name([cx509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                       cx509.NameAttribute(NameOID.COMMON_NAME, "TEST ROLLOVER CSCA")])
    dsc_name = cx509.Name([cx509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                           cx509.NameAttribute(NameOID.COMMON_NAME, "TEST ROLLOVER DSC")])
    old, new, dsc_key = (derive_ec_key(seed, "secp256r1") for seed in (b"old root", b"new root", b"rollover dsc"))
    anchors = {
        "old_root": _cert(name, name, old.public_key(), old, 1, 2008, 2020),      # expired in 2020
        "link": _cert(name, name, new.public_key(), old, 2, 2019, 2030),
        "new_root": _cert(name, name, new.public_key(), new, 3, 2019, 2035),
    }
    dsc = _cert(dsc_name, name, dsc_key.public_key(), new, 4, 2024, 2034, ca=False)
    files = {f"DG{n}": v for n, v in DGS.items()}
    files["SOD"] = build_sod(DGS, dsc, dsc_key, signing_time=SIGNED)
    return anchors, files


@pytest.mark.parametrize("order", [("link", "new_root", "old_root"), ("new_root", "link", "old_root"),
                                   ("old_root", "link", "new_root")])
def test_renewed_root_is_chosen_over_link_whatever_the_order(order):
    anchors, files = _rollover()
    store = TrustStore.from_certificates([anchors[name] for name in order])
    check = passive_authentication(files, store, now=NOW).check
    # the link certificate would drag in the old root, expired before the DSC was issued
    assert check.status is Status.VALID, check.reason
    assert len(check.details["chain"]) == 2


def test_store_lookup_is_indexed_not_a_scan(pki, store):
    # the same answers from the index as from comparing every anchor's name
    dsc = pki.cert("dsc_ecdsa")
    from agent.icao import certs
    asn1 = certs.load_certificate(dsc.public_bytes(__import__("cryptography.hazmat.primitives.serialization",
                                                              fromlist=["Encoding"]).Encoding.DER))
    expected = {a.fingerprint for a in store.anchors if a.cert.subject == asn1.issuer}
    assert {a.fingerprint for a in store.issuers_of(asn1)} == expected and expected
