"""ICAO CSCA master lists (9303-12 §9): a CMS SignedData whose content is
``CscaMasterList ::= SEQUENCE { version INTEGER, certList SET OF Certificate }``,
signed by a Master List Signer whose certificate is issued by a CSCA in the list.

``read_master_list`` checks the signature (signed attributes, message digest) and
that the signer chains to a CSCA contained in the list, then returns the CSCAs.
That proves the list is intact and self-consistent; whether to trust the country that
signed it is the operator's decision (they chose the file).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from asn1crypto import cms, core, x509

from agent.errors import IdAgentError, ParseError
from agent.icao import certs
from agent.icao.asn1 import ASN1_ERRORS
from agent.icao.certs import SignatureError
from agent.icao.cms import certificates_of, check_signed_data, find_signer_cert, open_signed, signing_time_of

#: 9303-12 §9: id-icao-cscaMasterList
OID_CSCA_MASTER_LIST = "2.23.136.1.1.2"
SOURCE = "master list"


class CertificateSet(core.SetOf):
    _child_spec = x509.Certificate


class CscaMasterList(core.Sequence):
    _fields = [("version", core.Integer), ("cert_list", CertificateSet)]


class _RawSet(core.SetOf):
    _child_spec = core.Any


class _RawMasterList(core.Sequence):
    """CscaMasterList with members left as raw TLVs, so that each one is parsed (and
    refused) on its own: real lists hold a few members that are not strict DER."""

    _fields = [("version", core.Integer), ("cert_list", _RawSet)]


class MasterListError(IdAgentError):
    """A master list whose signature or signer chain does not verify: nothing is imported."""

    code = "master_list"
    exit_code = 3
    hint = "Download the master list again from its publisher; do not import a list whose signature fails."


@dataclass(frozen=True)
class MasterList:
    certificates: tuple[x509.Certificate, ...] = field(repr=False)
    signer_subject: str
    signer_country: str
    signed_by: str
    signing_time: dt.datetime | None = None
    #: members that could not be parsed: "member N: reason"
    refused: tuple[str, ...] = ()


def build_master_list_content(certificate_ders: Iterable[bytes]) -> bytes:
    """The DER CscaMasterList (version 0) holding these certificates."""
    content = CscaMasterList({"version": 0, "cert_list": [x509.Certificate.load(d) for d in certificate_ders]})
    return bytes(content.dump())


def _parse(raw: bytes) -> tuple[list[x509.Certificate], list[str], tuple[cms.SignedData, cms.SignerInfo], str,
                                bytes]:
    signed, signer, content_type, econtent = open_signed(raw, SOURCE, (OID_CSCA_MASTER_LIST,), "a CSCA master list")
    try:
        listing = _RawMasterList.load(econtent, strict=True)
        raw_members = [member.dump() for member in listing["cert_list"]]
    except ASN1_ERRORS as exc:
        # IndexError/AttributeError too: asn1crypto's answers to some malformed DER (sod.py)
        raise ParseError(f"malformed CscaMasterList: {exc}", source=SOURCE) from exc
    members: list[x509.Certificate] = []
    refused: list[str] = []
    for number, member in enumerate(raw_members, 1):
        try:
            members.append(certs.load_certificate(member, f"member {number}"))
        except ParseError as exc:
            refused.append(f"member {number} of {len(raw_members)}: {_first_line(exc.message)}")
    return members, refused, (signed, signer), content_type, econtent


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else text


def read_master_list(raw: bytes) -> MasterList:
    """Parse and verify a master list. Raises ``ParseError`` (malformed) or
    ``MasterListError`` (signature or signer chain fails)."""
    members, refused, (signed, signer), content_type, econtent = _parse(raw)
    carried = certificates_of(signed)
    signer_cert = find_signer_cert(signer, carried) or find_signer_cert(signer, tuple(members))
    if signer_cert is None:
        raise MasterListError("the master list does not carry its signer's certificate")
    try:
        check_signed_data(signer, content_type, econtent, signer_cert)
    except SignatureError as exc:
        raise MasterListError(f"the master list signature does not verify: {exc}") from exc
    issuer = _issuer_in(signer_cert, members)
    if issuer is None:
        raise MasterListError(
            f"the master list signer {certs.subject_text(signer_cert)} is not issued by any CSCA in the list")
    signing_time = signing_time_of(signer)
    return MasterList(tuple(members), certs.subject_text(signer_cert), certs.country(signer_cert.subject),
                      certs.subject_text(issuer), signing_time, tuple(refused))


def _issuer_in(cert: x509.Certificate, members: list[x509.Certificate]) -> x509.Certificate | None:
    if certs.is_root(cert) and cert in members:
        return cert
    for candidate in members:
        if candidate.subject != cert.issuer:
            continue
        try:
            certs.verify_issued_by(cert, candidate)
        except SignatureError:
            continue
        return candidate
    return None


