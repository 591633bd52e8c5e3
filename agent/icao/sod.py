"""EF.SOD, the Document Security Object (9303-10 §4.6.2):
tag 77 wrapping a CMS SignedData whose encapsulated content is an LDSSecurityObject
listing the hash of every data group.

``parse_sod`` is a pure parser: it checks structure only. Signatures, hashes and the
certificate chain are checked by ``agent.icao.pa``; the CMS SignedData parts it shares
with master lists and EF.CardSecurity are in ``agent.icao.cms``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from asn1crypto import algos, cms, core, x509

from agent.errors import ParseError
from agent.icao.asn1 import ASN1_ERRORS
from agent.icao.cms import certificates_of, open_signed
from agent.icao.lds.files import SOD as SOD_FILE

#: 9303-10 §4.6.2.2: id-icao-mrtd-security-ldsSecurityObject
OID_LDS_SECURITY_OBJECT = "2.23.136.1.1.1"
#: eContent types genuine documents use for the LDSSecurityObject besides ICAO's own
#: (shared/real-emrtd/README.md): older Belgian/French, Dutch (Sdu), id-data (China).
#: The content is an LDSSecurityObject all the same; the signed content-type attribute
#: must still name the type used (agent.icao.pa).
LDS_CONTENT_TYPES = {
    OID_LDS_SECURITY_OBJECT: "id-icao-ldsSecurityObject",
    "1.3.27.1.1.1": "1.3.27.1.1.1 (older Belgian/French documents)",
    "1.2.528.1.1006.1.20.1": "1.2.528.1.1006.1.20.1 (Dutch documents)",
    "1.2.840.113549.1.7.1": "id-data (Chinese documents)",
}
#: tag of EF.SOD (application 23, constructed) 9303-10 §4.6.2
SOD_TAG = SOD_FILE.tag
SOURCE = "SOD"


class DataGroupHash(core.Sequence):
    _fields = [
        ("data_group_number", core.Integer),
        ("data_group_hash_value", core.OctetString),
    ]


class DataGroupHashes(core.SequenceOf):
    _child_spec = DataGroupHash


class LdsVersionInfo(core.Sequence):
    _fields = [
        ("lds_version", core.PrintableString),
        ("unicode_version", core.PrintableString),
    ]


class LdsSecurityObject(core.Sequence):
    """9303-10 §4.6.2.2 LDSSecurityObject (V0 and V1)."""

    _fields = [
        ("version", core.Integer),
        ("hash_algorithm", algos.DigestAlgorithm),
        ("data_group_hash_values", DataGroupHashes),
        ("lds_version_info", LdsVersionInfo, {"optional": True}),
    ]


@dataclass(frozen=True)
class Sod:
    """A parsed EF.SOD. ``signed_data`` and ``signer_info`` stay asn1crypto objects
    because the signature check needs their exact encoding."""

    raw: bytes
    signed_data: cms.SignedData = field(repr=False)
    signer_info: cms.SignerInfo = field(repr=False)
    content_type: str
    econtent: bytes = field(repr=False)
    hash_algorithm: str
    dg_hashes: dict[int, bytes] = field(repr=False)
    certificates: tuple[x509.Certificate, ...] = field(repr=False)
    lds_version: str | None = None


def unwrap_tag77(raw: bytes) -> bytes:
    """The ContentInfo inside the tag-77 wrapper of EF.SOD."""
    try:
        outer = core.Asn1Value.load(raw, strict=True)
    except (ValueError, TypeError) as exc:
        raise ParseError(f"not a BER TLV: {exc}", source=SOURCE, offset=0) from exc
    if outer.class_ != 1 or outer.tag != 23 or outer.method != 1:
        raise ParseError(f"outer tag is not 77 (class {outer.class_}, tag {outer.tag})", source=SOURCE, offset=0)
    return bytes(outer.contents)


def parse_sod(raw: bytes) -> Sod:
    """Parse EF.SOD (with its tag 77). Raises ``ParseError(source="SOD")``."""
    signed, signer, content_type, econtent = open_signed(
        unwrap_tag77(raw), SOURCE, LDS_CONTENT_TYPES,
        f"an LDSSecurityObject (known: {', '.join(LDS_CONTENT_TYPES)})")
    try:
        lds = LdsSecurityObject.load(econtent, strict=True)
        hash_name = str(lds["hash_algorithm"]["algorithm"].native)
        hashes: dict[int, bytes] = {}
        for entry in lds["data_group_hash_values"]:
            number = int(entry["data_group_number"].native)
            if not 1 <= number <= 16 or number in hashes:
                raise ParseError(f"bad or repeated data group number {number}", source=SOURCE)
            hashes[number] = bytes(entry["data_group_hash_value"].native)
        version_info = lds["lds_version_info"]
        lds_version = None if version_info.native is None else str(version_info["lds_version"].native)
        certificates = certificates_of(signed)
        for cert in certificates:
            cert.native  # noqa: B018 - a corrupt certificate is a parse error here, not later
        signer.native  # noqa: B018
    except ParseError:
        raise
    except ASN1_ERRORS as exc:
        raise ParseError(f"malformed LDSSecurityObject: {exc}", source=SOURCE) from exc
    return Sod(raw=raw, signed_data=signed, signer_info=signer, content_type=content_type,
               econtent=econtent, hash_algorithm=hash_name, dg_hashes=hashes,
               certificates=certificates, lds_version=lds_version)
