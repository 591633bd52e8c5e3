"""Passive authentication (9303-11 §5.1, 9303-12 §7) against the test PKI."""

from __future__ import annotations

import pytest
from trust_helpers import DGS, NOW, SIGNED_EXPIRED_DSC, files_for

from agent.icao.checks import Status
from agent.icao.pa import passive_authentication
from agent.icao.sod import parse_sod
from agent.icao.trust import TrustStore


@pytest.mark.parametrize("dsc,kwargs", [
    ("dsc_rsa", {}),                                   # through the CSCA link certificate
    ("dsc_rsa", {"hash_name": "sha1"}),
    ("dsc_rsa", {"hash_name": "sha224"}),
    ("dsc_rsa", {"hash_name": "sha384"}),
    ("dsc_rsa", {"hash_name": "sha512"}),
    ("dsc_rsa_pss", {"pss": True}),
    ("dsc_ecdsa", {"hash_name": "sha256"}),
    ("dsc_explicit", {"hash_name": "sha512"}),         # explicit-parameter brainpoolP512r1 CSCA
])
def test_genuine_card_is_valid(pki, store, dsc, kwargs):
    result = passive_authentication(files_for(pki, dsc, **kwargs), store, now=NOW)
    assert result.check.status is Status.VALID, result.check.reason
    assert result.verified_dgs == frozenset(DGS)
    assert "TEST CSCA" in result.check.details["chain"][-1]


def test_chain_through_link_certificate(pki, store):
    result = passive_authentication(files_for(pki, "dsc_rsa"), store, now=NOW)
    # the DSC is signed by the renewed key; only the old root and the link are in the
    # store: DSC -> link certificate (new key, signed by the old) -> old root
    assert len(result.check.details["chain"]) == 3
    only_old_root = TrustStore.from_certificates([pki.cert("csca_rsa").public_bytes(_der())])
    untrusted = passive_authentication(files_for(pki, "dsc_rsa"), only_old_root, now=NOW)
    assert untrusted.check.status is Status.UNTRUSTED
    assert "verifies the signature" in untrusted.check.reason


def _der():
    from cryptography.hazmat.primitives.serialization import Encoding
    return Encoding.DER


@pytest.mark.parametrize("dg", sorted(DGS))
def test_one_byte_changed_after_signing_names_the_dg(pki, store, dg):
    files = files_for(pki)
    altered = bytearray(files[f"DG{dg}"])
    altered[-1] ^= 0x01
    files[f"DG{dg}"] = bytes(altered)
    result = passive_authentication(files, store, now=NOW)
    assert result.check.status is Status.INVALID
    assert f"DG{dg} does not match" in result.check.reason
    assert result.check.details["mismatched_dgs"] == [dg]


def test_dg_read_but_not_in_sod_is_invalid(pki, store):
    files = files_for(pki)
    files["DG11"] = b"\x6b\x00"
    result = passive_authentication(files, store, now=NOW)
    assert result.check.status is Status.INVALID
    assert "DG11" in result.check.reason


def test_unread_dg_is_a_note(pki, store):
    files = files_for(pki)
    del files["DG2"]
    result = passive_authentication(files, store, now=NOW)
    assert result.check.status is Status.VALID
    assert any("DG2" in note for note in result.check.notes)


def test_unknown_csca_is_untrusted_and_named(pki, store):
    result = passive_authentication(files_for(pki, "dsc_unknown"), store, now=NOW)
    assert result.check.status is Status.UNTRUSTED
    assert "trust anchor missing" in result.check.reason
    assert "TEST CSCA XX unknown" in result.check.reason


def test_rogue_csca_with_copied_name_is_untrusted(pki, store):
    result = passive_authentication(files_for(pki, "dsc_rogue"), store, now=NOW)
    assert result.check.status is Status.UNTRUSTED
    assert "TEST CSCA VN RSA" in result.check.reason


def test_empty_store_is_untrusted(pki):
    result = passive_authentication(files_for(pki), TrustStore(), now=NOW)
    assert result.check.status is Status.UNTRUSTED


def test_expired_dsc_valid_at_signing_is_valid_with_note(pki, store):
    files = files_for(pki, "dsc_rsa_expired", signing_time=SIGNED_EXPIRED_DSC)
    result = passive_authentication(files, store, now=NOW)
    assert result.check.status is Status.VALID, result.check.reason
    assert any("expired on 2021-01-01" in n and "valid when EF.SOD was signed" in n for n in result.check.notes)


def test_dsc_not_valid_at_signing_time_is_invalid(pki, store):
    files = files_for(pki, "dsc_rsa_expired")  # signed 2025, DSC ended 2021
    result = passive_authentication(files, store, now=NOW)
    assert result.check.status is Status.INVALID
    assert "was not valid when EF.SOD was signed" in result.check.reason


def test_revoked_dsc_is_invalid(pki, store):
    result = passive_authentication(files_for(pki, "dsc_rsa_revoked"), store, now=NOW)
    assert result.check.status is Status.INVALID
    assert "revoked on 2025-03-01" in result.check.reason
    skipped = passive_authentication(files_for(pki, "dsc_rsa_revoked"), store, now=NOW, check_crl=False)
    assert skipped.check.status is Status.VALID


def test_corrupt_sod_is_error_with_reason(pki, store):
    files = files_for(pki)
    files["SOD"] = files["SOD"][:40]
    result = passive_authentication(files, store, now=NOW)
    assert result.check.status is Status.ERROR
    assert "EF.SOD is malformed" in result.check.reason


def test_signature_byte_flipped_is_invalid(pki, store):
    files = files_for(pki)
    sod = bytearray(files["SOD"])
    sod[-5] ^= 0x40  # inside the RSA signature, the last field of SignerInfo
    files["SOD"] = bytes(sod)
    result = passive_authentication(files, store, now=NOW)
    assert result.check.status is Status.INVALID
    assert "signature" in result.check.reason


def test_no_sod_is_not_checked(store):
    result = passive_authentication({"DG1": DGS[1]}, store, now=NOW)
    assert result.check.status is Status.NOT_CHECKED


def test_sod_parse_gives_hashes(pki):
    files = files_for(pki, hash_name="sha384")
    sod = parse_sod(files["SOD"])
    assert sod.hash_algorithm == "sha384"
    assert set(sod.dg_hashes) == set(DGS)
    assert len(sod.certificates) == 1


def test_unsupported_dg_hash_is_error(pki, store):
    files = files_for(pki, hash_name="md5", signature_hash="sha256")
    result = passive_authentication(files, store, now=NOW)
    assert result.check.status is Status.ERROR
    assert "md5" in result.check.reason


def _crl(pki, signer_key_name, serials):
    import datetime as dt

    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding
    issuer = pki.cert("csca_rsa").subject
    when = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    builder = (cx509.CertificateRevocationListBuilder().issuer_name(issuer).last_update(when)
               .next_update(dt.datetime(2036, 1, 1, tzinfo=dt.UTC)))
    for serial in serials:
        builder = builder.add_revoked_certificate(
            cx509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build())
    return builder.sign(pki.key(signer_key_name), hashes.SHA256()).public_bytes(Encoding.DER)


def _store_with_crl(store, crl):
    return TrustStore.from_certificates([a.cert for a in store.anchors], [crl])


def test_crl_signed_by_the_old_csca_key_still_revokes(pki, store):
    crl = _crl(pki, "csca_rsa", [0x2004])  # dsc_rsa_revoked was issued by the NEW key
    result = passive_authentication(files_for(pki, "dsc_rsa_revoked"), _store_with_crl(store, crl), now=NOW)
    assert result.check.status is Status.INVALID
    assert "revoked" in result.check.reason


def test_forged_crl_is_ignored_with_a_note(pki, store):
    crl = _crl(pki, "csca_rogue", [0x2001])  # same issuer name, a key the store does not trust
    result = passive_authentication(files_for(pki, "dsc_rsa"), _store_with_crl(store, crl), now=NOW)
    assert result.check.status is Status.VALID
    assert any("ignored" in note for note in result.check.notes)


def test_ber_constructed_econtent_is_accepted(pki, store):
    """Some issuers encode eContent as a BER constructed OCTET STRING (chunks): the
    message digest covers the merged octets (RFC 5652 §5.4)."""
    from asn1crypto import cms, core

    from agent.icao.sod import unwrap_tag77
    from agent.sim.signing import wrap
    files = files_for(pki)
    signed = cms.ContentInfo.load(unwrap_tag77(files["SOD"]))["content"]
    encap = signed["encap_content_info"]
    econtent = encap["content"].native
    chunks = b"".join(core.OctetString(econtent[i:i + 50]).dump() for i in range(0, len(econtent), 50))
    ber_encap = wrap(0x30, encap["content_type"].dump() + b"\xa0\x80\x24\x80" + chunks + bytes(4))
    fields = [signed[name].dump() for name in ("version", "digest_algorithms")] + [ber_encap] + \
        [signed[name].dump() for name in ("certificates", "signer_infos")]
    content_info = wrap(0x30, core.ObjectIdentifier("1.2.840.113549.1.7.2").dump()
                        + wrap(0xA0, wrap(0x30, b"".join(fields))))
    files["SOD"] = wrap(0x77, content_info)
    result = passive_authentication(files, store, now=NOW)
    assert result.check.status is Status.VALID, result.check.reason


def test_signer_info_naming_only_id_ecpublickey(pki, store):
    """Some documents put id-ecPublicKey as the SignerInfo's signature algorithm; the
    digest algorithm then names the hash."""
    from asn1crypto import cms

    from agent.icao.sod import unwrap_tag77
    from agent.sim.signing import wrap
    files = files_for(pki, "dsc_ecdsa")
    info = cms.ContentInfo.load(unwrap_tag77(files["SOD"]))
    info["content"]["signer_infos"][0]["signature_algorithm"] = {"algorithm": "1.2.840.10045.2.1"}
    files["SOD"] = wrap(0x77, info.dump())
    result = passive_authentication(files, store, now=NOW)
    assert result.check.status is Status.VALID, result.check.reason
