"""CMS SignedData (RFC 5652) as ICAO uses it, for EF.SOD (9303-10 §4.6.2), CSCA master
lists (9303-12 §9) and EF.CardSecurity (BSI TR-03110-3 A.1.2): parsing the envelope,
finding the signer's certificate, and checking the SignerInfo's signature over the
content. One module for all three, so that passive authentication (``pa``), the trust
store (``trust``) and master lists (``masterlist``) share it without importing each
other. Chains and trust are not decided here: ``agent.icao.pa`` does that.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Collection

from asn1crypto import cms, core, x509

from agent.errors import ParseError
from agent.icao import certs
from agent.icao.asn1 import ASN1_ERRORS
from agent.icao.certs import SignatureError

# -- the envelope ---------------------------------------------------------------------

def parse_signed_data(content_info_der: bytes, source: str) -> cms.SignedData:
    """A CMS ContentInfo holding SignedData (used by EF.SOD and CSCA master lists)."""
    try:
        info = cms.ContentInfo.load(content_info_der, strict=True)
        if info["content_type"].native != "signed_data":
            raise ParseError(f"CMS content is {info['content_type'].native}, not signed data", source=source)
        signed = info["content"]
        signed.native  # noqa: B018 - parse everything now, so later access cannot raise
    except ASN1_ERRORS as exc:
        raise ParseError(f"malformed CMS SignedData: {exc}", source=source) from exc
    return signed


def only_signer(signed: cms.SignedData, source: str) -> cms.SignerInfo:
    infos = signed["signer_infos"]
    if len(infos) != 1:
        # 9303-10 §4.6.2.1: EF.SOD carries exactly one SignerInfo.
        raise ParseError(f"{len(infos)} SignerInfos, expected exactly one", source=source)
    return infos[0]


def certificates_of(signed: cms.SignedData) -> tuple[x509.Certificate, ...]:
    certs = signed["certificates"]
    if not certs:
        return ()
    return tuple(choice.chosen for choice in certs if choice.name == "certificate")


def econtent_bytes(signed: cms.SignedData, source: str) -> tuple[str, bytes]:
    encap = signed["encap_content_info"]
    content_type = str(encap["content_type"].dotted)
    content = encap["content"]
    # Unknown content types (ICAO's) stay a ParsableOctetString. Its native value is the
    # eContent octets (a BER constructed OCTET STRING merged), which the message digest
    # covers (RFC 5652 §5.4).
    if not isinstance(content, core.OctetString | core.ParsableOctetString) or content.contents is None:
        raise ParseError("SignedData has no encapsulated content", source=source)
    value = content.native
    if not isinstance(value, bytes):
        raise ParseError("encapsulated content is not an OCTET STRING", source=source)
    return content_type, value


def open_signed(content_info_der: bytes, source: str, content_types: Collection[str],
                what: str) -> tuple[cms.SignedData, cms.SignerInfo, str, bytes]:
    """The SignedData, its one SignerInfo, the content type and the content, when the
    content type is one of ``content_types``; else ``ParseError`` saying it is not
    ``what``. What EF.SOD, EF.CardSecurity and master lists all start with."""
    signed = parse_signed_data(content_info_der, source)
    signer = only_signer(signed, source)
    content_type, econtent = econtent_bytes(signed, source)
    if content_type not in content_types:
        raise ParseError(f"content type {content_type} is not {what}", source=source)
    return signed, signer, content_type, econtent


# -- the signer and its signature ------------------------------------------------------

def find_signer_cert(signer: cms.SignerInfo, candidates: tuple[x509.Certificate, ...]) -> x509.Certificate | None:
    """The certificate the SignerInfo names (RFC 5652 §5.3: issuer and serial, or SKI)."""
    sid = signer["sid"]
    for cert in candidates:
        if sid.name == "issuer_and_serial_number":
            if cert.issuer == sid.chosen["issuer"] and cert.serial_number == sid.chosen["serial_number"].native:
                return cert
        elif sid.name == "subject_key_identifier":
            if cert.key_identifier is not None and cert.key_identifier == sid.chosen.native:
                return cert
    return None


def check_signed_data(signer: cms.SignerInfo, content_type: str, econtent: bytes,
                      cert: x509.Certificate) -> None:
    """Check a CMS SignerInfo over ``econtent`` with ``cert``'s key (RFC 5652 §5.4):
    signed attributes present → content-type and message-digest attributes must match
    and the signature covers the DER SET of attributes. Raises ``SignatureError``."""
    digest_name = str(signer["digest_algorithm"]["algorithm"].native)
    attrs = signer["signed_attrs"]
    if attrs.native is None or len(attrs) == 0:
        signed_bytes = econtent
    else:
        values = {a["type"].native: a["values"] for a in attrs}
        ctype = values.get("content_type")
        if ctype is None or len(ctype) != 1 or ctype[0].dotted != content_type:
            raise SignatureError("the signed content-type attribute does not name the signed content")
        digest = values.get("message_digest")
        if digest is None or len(digest) != 1:
            raise SignatureError("the signed attributes carry no message digest")
        if not hmac.compare_digest(bytes(digest[0].native), certs.hash_bytes(digest_name, econtent)):
            raise SignatureError("the message digest attribute is not the hash of the signed content")
        # RFC 5652 §5.4: the signature covers the attributes DER-encoded as a SET (tag 31),
        # not with the [0] IMPLICIT tag they carry inside SignerInfo.
        signed_bytes = b"\x31" + attrs.dump()[1:]
    certs.verify_signature(certs.cert_public_key(cert), signer["signature_algorithm"],
                           bytes(signer["signature"].native), signed_bytes, digest_fallback=digest_name)


def same_signer_reordered(signer: cms.SignerInfo, cert: x509.Certificate) -> bool:
    """The SignerInfo names ``cert`` by serial and issuer, the issuer's RDNs in another
    order (seen on genuine documents; ``agent.icao.pa`` decides what that is worth)."""
    sid = signer["sid"]
    if sid.name != "issuer_and_serial_number" or cert.serial_number != sid.chosen["serial_number"].native:
        return False
    return _rdn_multiset(sid.chosen["issuer"]) == _rdn_multiset(cert.issuer)


def _rdn_multiset(name: x509.Name) -> list[str]:
    """The name's RDNs in asn1crypto's normalized form, order ignored."""
    return sorted(rdn.hashable for rdn in name.chosen)


def signing_time_of(signer: cms.SignerInfo) -> dt.datetime | None:
    attrs = signer["signed_attrs"]
    if attrs.native is None:
        return None
    for attr in attrs:
        if attr["type"].native == "signing_time" and len(attr["values"]) == 1:
            value = attr["values"][0].native
            if isinstance(value, dt.datetime):
                return certs.aware(value)
    return None
