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
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from asn1crypto import core

from agent.errors import ParseError
from agent.icao import tlv as ber
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
#: ASN.1 universal tags used by the hand-built encoder
_TAG_SEQUENCE = 0x30
_TAG_SET = 0x31

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


# --- parsing ---

def _header(data: bytes, pos: int, source: str) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``pos``."""
    header = ber.read_header(data, pos, source=source, check_bounds=False)
    if header.end > len(data):
        raise ParseError(f"element of {header.length} bytes runs past the end", source=source, offset=pos)
    return header.tag, header.value_offset, header.end


def _elements(data: bytes, start: int, end: int, source: str) -> list[tuple[int, int, int, int]]:
    """(offset, tag, content start, content end) of each element in data[start:end]."""
    out = []
    pos = start
    while pos < end:
        tag, cstart, cend = _header(data, pos, source)
        if cend > end:
            raise ParseError("element runs past its parent", source=source, offset=pos)
        out.append((pos, tag, cstart, cend))
        pos = cend
    return out


def _oid(raw: bytes) -> str:
    value = core.ObjectIdentifier.load(raw, strict=True).dotted
    return str(value)


def _int(raw: bytes) -> int:
    value = core.Integer.load(raw, strict=True).native
    if not isinstance(value, int):
        raise ValueError("not an INTEGER")
    return value


def _interpret(protocol: str, fields: list[bytes], whole: bytes) -> SecurityInfo:
    """Build the record for one SecurityInfo; ``fields`` are the DER elements after the OID."""
    optional = fields[1] if len(fields) > 1 else None
    if pace_protocol(protocol) is not None:
        return PaceInfo(protocol, _int(fields[0]), _int(optional) if optional else None)
    if protocol.startswith(ID_PACE + ".") and protocol.count(".") == ID_PACE.count(".") + 1:
        return PaceDomainParameterInfo(protocol, fields[0], _int(optional) if optional else None)
    if ca_protocol(protocol) is not None:
        return ChipAuthenticationInfo(protocol, _int(fields[0]), _int(optional) if optional else None)
    if protocol in (ID_PK_DH, ID_PK_ECDH):
        return ChipAuthenticationPublicKeyInfo(protocol, fields[0], _int(optional) if optional else None)
    if protocol == ID_AA:
        if optional is None:
            raise ValueError("ActiveAuthenticationInfo lacks its signature algorithm")
        return ActiveAuthenticationInfo(protocol, _int(fields[0]), _oid(optional))
    if protocol == ID_TA:
        return TerminalAuthenticationInfo(protocol, _int(fields[0]), optional)
    return UnknownSecurityInfo(protocol, whole)


def parse_security_infos(data: bytes, source: str = "EF.CardAccess") -> SecurityInfos:
    """Parse a DER ``SET OF SecurityInfo`` (EF.CardAccess), or DG14 (6E-wrapped)."""
    tag, start, end = _header(data, 0, source)
    if tag == DG14_TAG:
        tag, start, end = _header(data, start, source)
        outer_start = start
    else:
        outer_start = start
    if tag != _TAG_SET:
        raise ParseError(f"expected a SET (31), found tag {tag:02X}", source=source, offset=outer_start - 2)
    infos: list[SecurityInfo] = []
    for offset, itag, istart, iend in _elements(data, start, end, source):
        if itag != _TAG_SEQUENCE:
            raise ParseError(f"SecurityInfo must be a SEQUENCE, found {itag:02X}", source=source, offset=offset)
        parts = _elements(data, istart, iend, source)
        if len(parts) < 2 or parts[0][1] != 0x06:
            raise ParseError("SecurityInfo needs a protocol OID and required data", source=source, offset=offset)
        raw = [data[p[0]:p[3]] for p in parts]
        try:
            protocol = _oid(raw[0])
            infos.append(_interpret(protocol, raw[1:], data[offset:iend]))
        except (ValueError, TypeError) as exc:
            raise ParseError(f"malformed SecurityInfo: {exc}", source=source, offset=offset) from exc
    return SecurityInfos(tuple(infos))


# --- encoding (DER) ---

def _encode_one(info: SecurityInfo) -> bytes:
    if isinstance(info, UnknownSecurityInfo):
        return info.raw
    parts = [core.ObjectIdentifier(info.protocol).dump()]
    if isinstance(info, PaceInfo | ChipAuthenticationInfo):
        parts.append(core.Integer(info.version).dump())
        extra = info.parameter_id if isinstance(info, PaceInfo) else info.key_id
        if extra is not None:
            parts.append(core.Integer(extra).dump())
    elif isinstance(info, PaceDomainParameterInfo | ChipAuthenticationPublicKeyInfo):
        parts.append(info.domain_parameter if isinstance(info, PaceDomainParameterInfo) else info.public_key_info)
        extra = info.parameter_id if isinstance(info, PaceDomainParameterInfo) else info.key_id
        if extra is not None:
            parts.append(core.Integer(extra).dump())
    elif isinstance(info, ActiveAuthenticationInfo):
        parts += [core.Integer(info.version).dump(), core.ObjectIdentifier(info.signature_algorithm).dump()]
    else:
        parts.append(core.Integer(info.version).dump())
        if info.ef_cvca is not None:
            parts.append(info.ef_cvca)
    return ber.encode(_TAG_SEQUENCE, b"".join(parts))


def encode_security_infos(infos: Iterable[SecurityInfo]) -> bytes:
    """DER ``SET OF SecurityInfo`` (elements sorted, as DER requires)."""
    return ber.encode(_TAG_SET, b"".join(sorted(_encode_one(info) for info in infos)))
