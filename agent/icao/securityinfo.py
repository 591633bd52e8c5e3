"""SecurityInfos of EF.CardAccess and DG14 (ICAO 9303-11 §9.2; BSI TR-03110-3 §A.1):
which PACE, Chip Authentication, Terminal and Active Authentication variants a chip
offers, and its Chip Authentication public keys.

Public API:

* OID constants (defined here once) and ``pace_oid(mapping, cipher)``.
* ``Mapping`` (GM/IM/CAM over DH or ECDH) and ``pace_protocol(oid) -> (Mapping, Cipher)``.
* Frozen records: ``PaceInfo``, ``PaceDomainParameterInfo``, ``ChipAuthenticationInfo``,
  ``ChipAuthenticationPublicKeyInfo``, ``ActiveAuthenticationInfo``,
  ``TerminalAuthenticationInfo``, ``UnknownSecurityInfo`` (kept raw), gathered in
  ``SecurityInfos``.
* ``parse_security_infos(data, source="EF.CardAccess")``: bytes → ``SecurityInfos``;
  DG14's 6E wrapper is accepted. Malformed input raises ``ParseError(source, offset)``.
* ``encode_security_infos(infos) -> bytes``: DER SET (for the virtual chip and fixtures).

The structures are declared with asn1crypto (``_SecurityInfos`` and the typed
SecurityInfos) and both parsing and encoding go through them. Elements are held to the
limits of the LDS reader (tlv.py: definite lengths, at most 4 tag and length bytes), and
an error names the offset of the element that failed.

Why one module of ~450 lines: the OID table, the asn1crypto declarations and the seven
records are one vocabulary; each record is parsed and encoded through the same
declarations, and split apart the pieces would import each other both ways.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from asn1crypto import core, parser

from agent.errors import ParseError
from agent.icao import tlv as ber
from agent.icao.asn1 import ASN1_ERRORS
from agent.icao.crypto import Cipher
from agent.icao.lds.files import DATA_GROUPS

# --- object identifiers (BSI TR-03110-3 §A.1.1, 9303-11 §9.2) ---
BSI_DE = "0.4.0.127.0.7"
ID_STANDARDIZED_DOMAIN_PARAMETERS = BSI_DE + ".1.2"
ID_PK = BSI_DE + ".2.2.1"
ID_PK_DH = ID_PK + ".1"
ID_PK_ECDH = ID_PK + ".2"
ID_TA = BSI_DE + ".2.2.2"
ID_CA = BSI_DE + ".2.2.3"
ID_CA_DH = ID_CA + ".1"
ID_CA_ECDH = ID_CA + ".2"
ID_PACE = BSI_DE + ".2.2.4"
ID_AA = "2.23.136.1.1.5"
#: DG14 is wrapped in application tag 14 (9303-10 §4.7.14)
DG14_TAG = DATA_GROUPS[14].tag

#: the cipher arc that ends PACE and CA protocol OIDs (TR-03110-3 §A.1.1.1/A.1.1.2)
CIPHER_ARCS: dict[int, Cipher] = {1: Cipher.DES3, 2: Cipher.AES128, 3: Cipher.AES192, 4: Cipher.AES256}
_ARC_OF_CIPHER = {cipher: arc for arc, cipher in CIPHER_ARCS.items()}


class Mapping(enum.Enum):
    """PACE mappings (9303-11 §4.4.3.3). Value: (label, OID arc, key agreement)."""

    DH_GM = ("DH-GM", 1, "DH")
    ECDH_GM = ("ECDH-GM", 2, "ECDH")
    DH_IM = ("DH-IM", 3, "DH")
    ECDH_IM = ("ECDH-IM", 4, "ECDH")
    ECDH_CAM = ("ECDH-CAM", 6, "ECDH")

    @property
    def label(self) -> str:
        return self.value[0]

    @property
    def arc(self) -> int:
        return self.value[1]

    @property
    def agreement(self) -> str:
        return self.value[2]


_MAPPING_OF_ARC = {m.arc: m for m in Mapping}


def pace_oid(mapping: Mapping, cipher: Cipher) -> str:
    """e.g. ECDH-GM + AES-128 → 0.4.0.127.0.7.2.2.4.2.2 (the CCCD's protocol)."""
    return f"{ID_PACE}.{mapping.arc}.{_ARC_OF_CIPHER[cipher]}"


def pace_protocol(oid: str) -> tuple[Mapping, Cipher] | None:
    """(mapping, cipher) of a PACEInfo protocol OID; None for unknown ones."""
    prefix = ID_PACE + "."
    if not oid.startswith(prefix):
        return None
    arcs = oid[len(prefix):].split(".")
    if len(arcs) != 2 or not all(a.isdigit() for a in arcs):
        return None
    mapping = _MAPPING_OF_ARC.get(int(arcs[0]))
    cipher = CIPHER_ARCS.get(int(arcs[1]))
    if mapping is None or cipher is None:
        return None
    return mapping, cipher


def ca_oid(ecdh: bool, cipher: Cipher) -> str:
    """id-CA-(EC)DH-<cipher> (TR-03110-3 §A.1.1.2)."""
    return f"{ID_CA_ECDH if ecdh else ID_CA_DH}.{_ARC_OF_CIPHER[cipher]}"


def ca_protocol(oid: str) -> tuple[str, Cipher] | None:
    """("ECDH" or "DH", cipher) of a ChipAuthenticationInfo OID."""
    for family, label in ((ID_CA_ECDH, "ECDH"), (ID_CA_DH, "DH")):
        if oid.startswith(family + "."):
            tail = oid[len(family) + 1:]
            if tail.isdigit() and int(tail) in CIPHER_ARCS:
                return label, CIPHER_ARCS[int(tail)]
    return None


@dataclass(frozen=True)
class PaceInfo:
    protocol: str
    version: int
    parameter_id: int | None = None

    @property
    def mapping(self) -> Mapping | None:
        known = pace_protocol(self.protocol)
        return known[0] if known else None

    @property
    def cipher(self) -> Cipher | None:
        known = pace_protocol(self.protocol)
        return known[1] if known else None


@dataclass(frozen=True)
class PaceDomainParameterInfo:
    """Explicit (non-standardized) PACE parameters: kept as the DER AlgorithmIdentifier."""

    protocol: str
    domain_parameter: bytes
    parameter_id: int | None = None


@dataclass(frozen=True)
class ChipAuthenticationInfo:
    protocol: str
    version: int
    key_id: int | None = None


@dataclass(frozen=True)
class ChipAuthenticationPublicKeyInfo:
    """``public_key_info`` is the DER SubjectPublicKeyInfo (parse with asn1crypto keys)."""

    protocol: str
    public_key_info: bytes
    key_id: int | None = None


@dataclass(frozen=True)
class ActiveAuthenticationInfo:
    protocol: str
    version: int
    signature_algorithm: str


@dataclass(frozen=True)
class TerminalAuthenticationInfo:
    protocol: str
    version: int
    ef_cvca: bytes | None = None  # raw DER of the optional FileID


@dataclass(frozen=True)
class UnknownSecurityInfo:
    protocol: str
    raw: bytes  # the whole DER SecurityInfo


SecurityInfo = (PaceInfo | PaceDomainParameterInfo | ChipAuthenticationInfo | ChipAuthenticationPublicKeyInfo
                | ActiveAuthenticationInfo | TerminalAuthenticationInfo | UnknownSecurityInfo)


@dataclass(frozen=True)
class SecurityInfos:
    infos: tuple[SecurityInfo, ...]

    def _of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [info for info in self.infos if isinstance(info, kind)]

    @property
    def pace(self) -> list[PaceInfo]:
        return self._of(PaceInfo)

    @property
    def chip_authentication(self) -> list[ChipAuthenticationInfo]:
        return self._of(ChipAuthenticationInfo)

    @property
    def chip_authentication_keys(self) -> list[ChipAuthenticationPublicKeyInfo]:
        return self._of(ChipAuthenticationPublicKeyInfo)

    @property
    def active_authentication(self) -> list[ActiveAuthenticationInfo]:
        return self._of(ActiveAuthenticationInfo)

    @property
    def terminal_authentication(self) -> list[TerminalAuthenticationInfo]:
        return self._of(TerminalAuthenticationInfo)


# --- ASN.1 declarations (9303-11 §9.2, TR-03110-3 §A.1.1) ---
# Each SecurityInfo is read as the generic SecurityInfo of 9303-11 §9.2, then as the
# type its protocol OID names. Fields the spec types as AlgorithmIdentifier,
# SubjectPublicKeyInfo or FileID are ``core.Any``: the records keep their DER (ca.group_of_der
# reads the keys). Fields after the declared ones are ignored (asn1crypto keeps them aside).

class _SecurityInfo(core.Sequence):
    """SecurityInfo ::= SEQUENCE { protocol OBJECT IDENTIFIER,
    requiredData ANY DEFINED BY protocol, optionalData ANY DEFINED BY protocol OPTIONAL }"""

    _fields = [
        ("protocol", core.ObjectIdentifier),
        ("required_data", core.Any),
        ("optional_data", core.Any, {"optional": True}),
    ]


class _SecurityInfos(core.SetOf):
    """SecurityInfos ::= SET OF SecurityInfo (EF.CardAccess, DG14, EF.CardSecurity)."""

    _child_spec = _SecurityInfo


class _PaceInfo(core.Sequence):
    _fields = [
        ("protocol", core.ObjectIdentifier),
        ("version", core.Integer),
        ("parameter_id", core.Integer, {"optional": True}),
    ]


class _PaceDomainParameterInfo(core.Sequence):
    _fields = [
        ("protocol", core.ObjectIdentifier),
        ("domain_parameter", core.Any),  # AlgorithmIdentifier
        ("parameter_id", core.Integer, {"optional": True}),
    ]


class _ChipAuthenticationInfo(core.Sequence):
    _fields = [
        ("protocol", core.ObjectIdentifier),
        ("version", core.Integer),
        ("key_id", core.Integer, {"optional": True}),
    ]


class _ChipAuthenticationPublicKeyInfo(core.Sequence):
    """DG14's CA keys, and the PACE-CAM key of EF.CardSecurity (9303-11 §9.2.5/§9.2.6)."""

    _fields = [
        ("protocol", core.ObjectIdentifier),
        ("chip_authentication_public_key", core.Any),  # SubjectPublicKeyInfo
        ("key_id", core.Integer, {"optional": True}),
    ]


class _ActiveAuthenticationInfo(core.Sequence):
    _fields = [
        ("protocol", core.ObjectIdentifier),
        ("version", core.Integer),
        ("signature_algorithm", core.ObjectIdentifier),
    ]


class _TerminalAuthenticationInfo(core.Sequence):
    _fields = [
        ("protocol", core.ObjectIdentifier),
        ("version", core.Integer),
        ("ef_cvca", core.Any, {"optional": True}),  # FileID
    ]


def _spec_of(protocol: str) -> type[core.Sequence] | None:
    """The declared SecurityInfo type of a protocol OID; None: kept as unknown."""
    if pace_protocol(protocol) is not None:
        return _PaceInfo
    if protocol.startswith(ID_PACE + ".") and protocol.count(".") == ID_PACE.count(".") + 1:
        return _PaceDomainParameterInfo  # id-PACE-DH-GM … (TR-03110-3 §A.1.1.1): no cipher arc
    if ca_protocol(protocol) is not None:
        return _ChipAuthenticationInfo
    if protocol in (ID_PK_DH, ID_PK_ECDH):
        return _ChipAuthenticationPublicKeyInfo
    if protocol == ID_AA:
        return _ActiveAuthenticationInfo
    if protocol == ID_TA:
        return _TerminalAuthenticationInfo
    return None


# --- parsing ---

@dataclass(frozen=True)
class _Element:
    """One DER element of the input: where it starts (for ParseError) and its exact bytes
    (records keep fields as read, not as re-encoded)."""

    offset: int
    der: bytes
    contents: bytes
    content_offset: int


def _element(data: bytes, offset: int, source: str, base: int = 0) -> _Element:
    """The element at ``data[offset]`` (``base``: where ``data`` starts in the file),
    within the limits the LDS reader (tlv.py) sets: definite length (DER), at most 4 tag
    and 4 length bytes."""
    at = base + offset
    try:
        _class, _method, _tag, header, contents, trailer = parser.parse(data[offset:], strict=False)
    except ValueError as exc:
        raise ParseError(f"malformed DER element: {exc}", source=source, offset=at) from exc
    tag_len = 1
    if header[0] & ber.MULTI_BYTE_TAG_MASK == ber.MULTI_BYTE_TAG_MASK:
        tag_len += next(i for i, byte in enumerate(header[1:], 1) if not byte & ber.TAG_MORE_BIT)
    if tag_len > ber.MAX_TAG_BYTES:
        raise ParseError(f"tag longer than {ber.MAX_TAG_BYTES} bytes", source=source, offset=at)
    if trailer:
        raise ParseError("indefinite length is not allowed here", source=source, offset=at + tag_len)
    if len(header) - tag_len - 1 > ber.MAX_LENGTH_BYTES:
        raise ParseError(f"length field of {len(header) - tag_len - 1} bytes (at most {ber.MAX_LENGTH_BYTES} allowed)",
                         source=source, offset=at + tag_len)
    size = len(header) + len(contents)
    return _Element(at, data[offset:offset + size], contents, at + len(header))


def _members(parent: _Element, source: str) -> list[_Element]:
    """The elements inside a constructed element, with their absolute offsets."""
    out = []
    pos = 0
    while pos < len(parent.contents):
        member = _element(parent.contents, pos, source, parent.content_offset)
        out.append(member)
        pos += len(member.der)
    return out


def _optional_int(value: core.Sequence, name: str, present: bool) -> int | None:
    """The optional INTEGER ``name`` when the SecurityInfo has a third field: asn1crypto
    reads a third field of another type as "optional field absent, one extra field", and
    the spec allows nothing but the INTEGER there."""
    if not present:
        return None
    field = value[name]
    if isinstance(field, core.Void):
        raise ValueError(f"{name} is not an INTEGER")
    return int(field.native)


def _record(element: _Element, generic: _SecurityInfo, source: str) -> SecurityInfo:
    """The record of one SecurityInfo (``element``, read as ``generic``), through its
    declared type."""
    fields = _members(element, source)  # exact DER of the fields kept raw
    protocol = str(generic["protocol"].dotted)
    generic["required_data"]  # noqa: B018 - a SecurityInfo without its required data is malformed
    spec = _spec_of(protocol)
    if spec is None:
        return UnknownSecurityInfo(protocol, element.der)
    value = spec.load(element.der, strict=True)
    optional = len(fields) > 2
    if spec is _PaceInfo:
        return PaceInfo(protocol, int(value["version"].native), _optional_int(value, "parameter_id", optional))
    if spec is _PaceDomainParameterInfo:
        return PaceDomainParameterInfo(protocol, fields[1].der, _optional_int(value, "parameter_id", optional))
    if spec is _ChipAuthenticationInfo:
        return ChipAuthenticationInfo(protocol, int(value["version"].native), _optional_int(value, "key_id", optional))
    if spec is _ChipAuthenticationPublicKeyInfo:
        return ChipAuthenticationPublicKeyInfo(protocol, fields[1].der, _optional_int(value, "key_id", optional))
    if spec is _ActiveAuthenticationInfo:
        return ActiveAuthenticationInfo(protocol, int(value["version"].native),
                                        str(value["signature_algorithm"].dotted))
    return TerminalAuthenticationInfo(protocol, int(value["version"].native), fields[2].der if optional else None)


def _security_infos_element(data: bytes, source: str) -> _Element:
    """The SET OF SecurityInfo, inside DG14's 6E wrapper if there is one. Bytes after
    it are ignored, as for every LDS file (tlv.parse_file)."""
    outer = _element(data, 0, source)
    if data[0] != DG14_TAG:
        return outer
    return _element(outer.contents, 0, source, outer.content_offset)


def parse_security_infos(data: bytes, source: str = "EF.CardAccess") -> SecurityInfos:
    """Parse a DER ``SET OF SecurityInfo`` (EF.CardAccess), or DG14 (6E-wrapped)."""
    whole = _security_infos_element(data, source)
    try:
        declared = _SecurityInfos.load(whole.der, strict=True)
    except ASN1_ERRORS as exc:
        raise ParseError(f"expected a SET OF SecurityInfo: {exc}", source=source, offset=whole.offset) from exc
    infos: list[SecurityInfo] = []
    for index, element in enumerate(_members(whole, source)):
        try:
            infos.append(_record(element, declared[index], source))
        except ParseError:
            raise
        except ASN1_ERRORS as exc:
            raise ParseError(f"malformed SecurityInfo: {exc}", source=source, offset=element.offset) from exc
    return SecurityInfos(tuple(infos))


# --- encoding (DER) ---

def _any(der: bytes) -> core.Any:
    return core.Any.load(der, strict=True)


def _encode_one(info: SecurityInfo) -> bytes:
    if isinstance(info, UnknownSecurityInfo):
        return info.raw
    value: core.Sequence
    if isinstance(info, PaceInfo):
        value = _PaceInfo({"protocol": info.protocol, "version": info.version, "parameter_id": info.parameter_id})
    elif isinstance(info, ChipAuthenticationInfo):
        value = _ChipAuthenticationInfo({"protocol": info.protocol, "version": info.version, "key_id": info.key_id})
    elif isinstance(info, PaceDomainParameterInfo):
        value = _PaceDomainParameterInfo({"protocol": info.protocol, "domain_parameter": _any(info.domain_parameter),
                                          "parameter_id": info.parameter_id})
    elif isinstance(info, ChipAuthenticationPublicKeyInfo):
        value = _ChipAuthenticationPublicKeyInfo({
            "protocol": info.protocol, "chip_authentication_public_key": _any(info.public_key_info),
            "key_id": info.key_id})
    elif isinstance(info, ActiveAuthenticationInfo):
        value = _ActiveAuthenticationInfo({"protocol": info.protocol, "version": info.version,
                                           "signature_algorithm": info.signature_algorithm})
    else:
        value = _TerminalAuthenticationInfo({"protocol": info.protocol, "version": info.version,
                                             "ef_cvca": None if info.ef_cvca is None else _any(info.ef_cvca)})
    return bytes(value.dump())


def encode_security_infos(infos: Iterable[SecurityInfo]) -> bytes:
    """DER ``SET OF SecurityInfo`` (elements sorted, as DER requires)."""
    members = sorted(_encode_one(info) for info in infos)
    return bytes(_SecurityInfos([_SecurityInfo.load(der, strict=True) for der in members]).dump())
