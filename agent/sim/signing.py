"""The issuer side of the eMRTD PKI, for virtual chips and the test PKI: signing
EF.SOD (and other CMS SignedData such as master lists), building DG15 (and DG14
through the access engineer's SecurityInfo encoder), and deterministic test keys.

Everything here signs with TEST keys (fixtures/pki). Nothing in agent/icao imports it.

Typical use by a card profile builder::

    pki = load_test_pki()                       # fixtures/pki
    dsc = pki.dsc("dsc_rsa")                    # (certificate, private key)
    chip = derive_chip_keys(b"profile-1")      # CA key (brainpoolP256r1) + AA key
    dgs = {1: dg1, 2: dg2, 13: dg13,
           14: build_dg14(chip.ca_key.public_key()),   # ECDH, AES-128 by default
           15: build_dg15(chip.aa_key.public_key())}
    sod = build_sod(dgs, dsc.cert, dsc.key, hash_name="sha256",
                    signing_time=datetime(2025, 1, 2, tzinfo=timezone.utc))
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import algos, cms, core, keys, x509
from Crypto.PublicKey import RSA
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from agent.icao import params, securityinfo
from agent.icao import tlv as ber
from agent.icao.aa import DG15_TAG
from agent.icao.ca import OID_STANDARDIZED_DOMAIN_PARAMETERS
from agent.icao.cardsecurity import OID_SECURITY_OBJECT
from agent.icao.certs import CURVES, HASHES, curve_by_name
from agent.icao.crypto import Cipher
from agent.icao.params import DhGroup
from agent.icao.securityinfo import DG14_TAG
from agent.icao.sod import OID_LDS_SECURITY_OBJECT, SOD_TAG, LdsSecurityObject

#: the committed test PKI
DEFAULT_PKI_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "pki"


# -- deterministic test keys --------------------------------------------------------

def _drbg(seed: bytes) -> Callable[[int], bytes]:
    """A SHA-256 counter stream: deterministic 'randomness' for TEST key generation."""
    counter = 0

    def read(n: int) -> bytes:
        nonlocal counter
        out = b""
        while len(out) < n:
            out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
            counter += 1
        return out[:n]

    return read


def derive_ec_key(seed: bytes, curve: str = "brainpoolp256r1") -> ec.EllipticCurvePrivateKey:
    """A deterministic EC TEST key on ``curve`` (asn1crypto curve name, e.g.
    ``brainpoolp256r1``, ``secp256r1``) from ``seed``. Microseconds."""
    curve_obj = CURVES[curve]()
    # cryptography does not expose the group order; every curve in CURVES has an
    # order above 2^(bits-1), so a scalar in [1, 2^(bits-1)) is always a valid key.
    bound = 1 << (curve_obj.key_size - 1)
    scalar = int.from_bytes(_drbg(b"ec|" + seed)(64), "big") % (bound - 1) + 1
    return ec.derive_private_key(scalar, curve_obj)


def derive_rsa_key(seed: bytes, bits: int = 2048) -> rsa.RSAPrivateKey:
    """A deterministic RSA TEST key from ``seed`` (about 1 s for 2048 bits)."""
    key = RSA.generate(bits, randfunc=_drbg(b"rsa|" + seed))
    loaded = serialization.load_der_private_key(key.export_key(format="DER", pkcs=8), password=None)
    assert isinstance(loaded, rsa.RSAPrivateKey)
    return loaded


@dataclass(frozen=True)
class ChipKeys:
    """The chip's own key pairs: Chip Authentication (DG14) and Active Authentication (DG15)."""

    ca_key: ec.EllipticCurvePrivateKey | DhPrivateKey
    aa_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def derive_chip_keys(seed: bytes, *, ca_curve: str = "brainpoolp256r1",
                     aa: str = "rsa1024") -> ChipKeys:
    """Deterministic chip keys for a profile. ``aa`` is ``rsa1024``, ``rsa2048`` or an
    EC curve name (ECDSA AA). The CCCD uses ECDH on brainpoolP256r1 for CA (domain.md)."""
    if aa.startswith("rsa"):
        aa_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = derive_rsa_key(b"aa|" + seed, int(aa[3:]))
    else:
        aa_key = derive_ec_key(b"aa|" + seed, aa)
    return ChipKeys(ca_key=derive_ec_key(b"ca|" + seed, ca_curve), aa_key=aa_key)


# -- data groups --------------------------------------------------------------------

def wrap(tag: int, value: bytes) -> bytes:
    return ber.encode(tag, value)


def spki_der(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def build_dg15(aa_public_key: PublicKeyTypes) -> bytes:
    """EF.DG15 (9303-10 §4.7.15): tag 6F wrapping the AA SubjectPublicKeyInfo."""
    return wrap(DG15_TAG, spki_der(aa_public_key))


def build_dg14(ca_public_key: ec.EllipticCurvePublicKey | DhPublicKey, *, key_id: int | None = None,
               cipher: Cipher = Cipher.AES128, explicit: bool = False,
               aa_signature_algorithm: str | None = None) -> bytes:
    """EF.DG14 (9303-10 §4.7.14, 9303-11 §9.2.5): tag 6E wrapping the SecurityInfos
    ChipAuthenticationInfo (id-CA-ECDH-<cipher> or id-CA-DH-<cipher>, version 1) and ChipAuthenticationPublicKeyInfo for
    ``ca_public_key`` (an EC public key, or a ``DhPublicKey``). ``explicit=True``
    writes the EC domain parameters out in full, as many real chips do.
    ``aa_signature_algorithm`` (an OID such as ``ECDSA_PLAIN_SHA256``) adds the
    ActiveAuthenticationInfo that an ECDSA AA key needs (9303-11 §6.1).
    Encoded by ``agent.icao.securityinfo.encode_security_infos``."""
    ecdh = isinstance(ca_public_key, ec.EllipticCurvePublicKey)
    if isinstance(ca_public_key, ec.EllipticCurvePublicKey):
        spki = explicit_spki_der(ca_public_key) if explicit else spki_der(ca_public_key)
        pk_oid = securityinfo.ID_PK_ECDH
    else:
        spki = ca_public_key.spki_der()
        pk_oid = securityinfo.ID_PK_DH
    # 9303-11 §9.2.5: version 1 covers both the 3DES (MSE:Set KAT) and AES (MSE:Set AT +
    # GENERAL AUTHENTICATE) forms; the terminal picks the form from the cipher.
    infos: list[securityinfo.SecurityInfo] = [
        securityinfo.ChipAuthenticationInfo(securityinfo.ca_oid(ecdh, cipher), 1, key_id),
        securityinfo.ChipAuthenticationPublicKeyInfo(pk_oid, spki, key_id),
    ]
    if aa_signature_algorithm is not None:
        infos.append(securityinfo.ActiveAuthenticationInfo(securityinfo.ID_AA, 1, aa_signature_algorithm))
    return wrap(DG14_TAG, securityinfo.encode_security_infos(infos))


class _StandardizedAlgorithm(core.Sequence):
    _fields = [("algorithm", core.ObjectIdentifier), ("parameters", core.Integer)]


class _StandardizedKeyInfo(core.Sequence):
    _fields = [("algorithm", _StandardizedAlgorithm), ("public_key", core.OctetBitString)]


def standardized_spki_der(public_key: ec.EllipticCurvePublicKey, parameter_id: int) -> bytes:
    """The SubjectPublicKeyInfo naming its curve by standardized domain parameter id
    (BSI TR-03110-3 A.2.1.1: OID 0.4.0.127.0.7.1.2, parameters INTEGER id), as German
    documents publish their Chip Authentication keys."""
    point = public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return bytes(_StandardizedKeyInfo({
        "algorithm": {"algorithm": OID_STANDARDIZED_DOMAIN_PARAMETERS, "parameters": parameter_id},
        "public_key": point,
    }).dump())


def build_card_security(cam_public_key: ec.EllipticCurvePublicKey, parameter_id: int,
                        dsc_cert: cx509.Certificate | x509.Certificate | bytes, dsc_key: PrivateKeyTypes, *,
                        pace_infos: list[securityinfo.SecurityInfo] | None = None,
                        standardized: bool = True, signing_time: dt.datetime | None = None) -> bytes:
    """EF.CardSecurity (BSI TR-03110-3 A.1.2): a SignedData (id-SecurityObject) over the
    SecurityInfos, publishing the PACE-CAM key with keyId = the PACE parameter id."""
    spki = standardized_spki_der(cam_public_key, parameter_id) if standardized else spki_der(cam_public_key)
    infos: list[securityinfo.SecurityInfo] = list(pace_infos or [])
    infos += [securityinfo.ChipAuthenticationInfo(securityinfo.ca_oid(True, Cipher.AES128), 1, parameter_id),
              securityinfo.ChipAuthenticationPublicKeyInfo(securityinfo.ID_PK_ECDH, spki, parameter_id)]
    return build_signed_data(OID_SECURITY_OBJECT, securityinfo.encode_security_infos(infos), dsc_cert, dsc_key,
                             signing_time=signing_time)




def explicit_spki_der(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The SubjectPublicKeyInfo with the curve spelled out as SpecifiedECDomain
    (RFC 3279 §2.3.5 ECParameters) instead of a curve OID."""
    curve_name = public_key.curve.name.lower()
    curve = curve_by_name(curve_name)
    size = curve.field_len
    point = public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    domain = keys.SpecifiedECDomain({
        "version": "ecdpVer1",
        "field_id": {"field_type": "prime_field", "parameters": curve.p},
        "curve": {"a": curve.a.to_bytes(size, "big"), "b": curve.b.to_bytes(size, "big")},
        "base": b"\x04" + curve.gx.to_bytes(size, "big") + curve.gy.to_bytes(size, "big"),
        "order": curve.n,
        "cofactor": curve.h,
    })
    return bytes(keys.PublicKeyInfo({
        "algorithm": {"algorithm": "ec", "parameters": keys.ECDomainParameters(name="specified", value=domain)},
        "public_key": point,
    }).dump())


@dataclass(frozen=True, repr=False)
class DhPrivateKey:
    """A Chip Authentication DH key in one of the standardized MODP groups
    (``agent.icao.params`` ids 0-2, RFC 5114)."""

    group: DhGroup
    x: int

    def public_key(self) -> DhPublicKey:
        return DhPublicKey(self.group, self.group.mul_generator(self.x))

    def __repr__(self) -> str:
        return f"DhPrivateKey({self.group.name}, x=******)"


@dataclass(frozen=True)
class DhPublicKey:
    group: DhGroup
    y: int

    def spki_der(self) -> bytes:
        """X9.42 dhpublicnumber SubjectPublicKeyInfo (RFC 3279 §2.3.3), as DG14 carries it."""
        return bytes(keys.PublicKeyInfo({
            "algorithm": {"algorithm": "dh", "parameters": {"p": self.group.p, "g": self.group.g, "q": self.group.q}},
            "public_key": core.Integer(self.y),
        }).dump())


def derive_dh_key(seed: bytes, parameter_id: int = 2) -> DhPrivateKey:
    """A deterministic DH TEST key in standardized group ``parameter_id`` (0, 1 or 2)."""
    group = params.by_id(parameter_id)
    assert isinstance(group, DhGroup)
    x = int.from_bytes(_drbg(b"dh|" + seed)(64), "big") % (group.q - 2) + 1
    return DhPrivateKey(group, x)


# -- CMS SignedData -----------------------------------------------------------------

def _as_asn1_cert(cert: cx509.Certificate | x509.Certificate | bytes) -> x509.Certificate:
    if isinstance(cert, x509.Certificate):
        return cert
    if isinstance(cert, cx509.Certificate):
        cert = cert.public_bytes(serialization.Encoding.DER)
    return x509.Certificate.load(cert)


def _utc(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def sign_bytes(key: PrivateKeyTypes, data: bytes, hash_name: str,
               pss: bool = False) -> tuple[bytes, dict[str, object]]:
    """Sign ``data``; returns (signature, asn1crypto SignedDigestAlgorithm dict).
    ECDSA signatures are deterministic (RFC 6979) so fixtures rebuild byte-identical."""
    hash_obj = HASHES[hash_name]()
    if isinstance(key, rsa.RSAPrivateKey):
        if pss:
            salt = hash_obj.digest_size
            sig = key.sign(data, padding.PSS(mgf=padding.MGF1(HASHES[hash_name]()), salt_length=salt), hash_obj)
            params = algos.RSASSAPSSParams({
                "hash_algorithm": {"algorithm": hash_name},
                "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": hash_name}},
                "salt_length": salt,
            })
            return sig, {"algorithm": "rsassa_pss", "parameters": params}
        return key.sign(data, padding.PKCS1v15(), hash_obj), {"algorithm": f"{hash_name}_rsa"}
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hash_obj, deterministic_signing=True)), {"algorithm": f"{hash_name}_ecdsa"}
    raise TypeError(f"cannot sign with {type(key).__name__}")


def build_signed_data(content_type: str, econtent: bytes, signer_cert: cx509.Certificate | x509.Certificate | bytes,
                      signer_key: PrivateKeyTypes, *, hash_name: str = "sha256",
                      signing_time: dt.datetime | None = None, pss: bool = False,
                      include_cert: bool = True) -> bytes:
    """A DER CMS ContentInfo(SignedData) over ``econtent`` with signed attributes
    (content-type, signing-time when given, message-digest), one SignerInfo
    identified by issuer and serial number (9303-10 §4.6.2.1)."""
    cert = _as_asn1_cert(signer_cert)
    attrs: list[dict[str, object]] = [{"type": "content_type", "values": [content_type]}]
    if signing_time is not None:
        attrs.append({"type": "signing_time", "values": [cms.Time({"utc_time": _utc(signing_time)})]})
    attrs.append({"type": "message_digest", "values": [hashlib.new(hash_name, econtent).digest()]})
    signed_attrs = cms.CMSAttributes(attrs)
    signature, sig_alg = sign_bytes(signer_key, signed_attrs.dump(), hash_name, pss)
    signer = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier(name="issuer_and_serial_number", value={
            "issuer": cert.issuer, "serial_number": cert.serial_number}),
        "digest_algorithm": {"algorithm": hash_name},
        "signed_attrs": signed_attrs,
        "signature_algorithm": sig_alg,
        "signature": signature,
    })
    signed = cms.SignedData({
        "version": "v3",
        "digest_algorithms": [{"algorithm": hash_name}],
        "encap_content_info": {"content_type": content_type, "content": core.ParsableOctetString(econtent)},
        "certificates": [cert] if include_cert else None,
        "signer_infos": [signer],
    })
    if not include_cert:
        del signed["certificates"]
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump())


def build_lds_security_object(dg_bytes: Mapping[int, bytes], hash_name: str = "sha256") -> bytes:
    """The LDSSecurityObject (version 0) listing the hash of every data group given."""
    return bytes(LdsSecurityObject({
        "version": 0,
        "hash_algorithm": {"algorithm": hash_name},
        "data_group_hash_values": [
            {"data_group_number": n, "data_group_hash_value": hashlib.new(hash_name, dg_bytes[n]).digest()}
            for n in sorted(dg_bytes)
        ],
    }).dump())


def build_sod(dg_bytes: Mapping[int, bytes], dsc_cert: cx509.Certificate | x509.Certificate | bytes,
              dsc_key: PrivateKeyTypes, hash_name: str = "sha256",
              signing_time: dt.datetime | None = None, *, pss: bool = False,
              signature_hash: str | None = None) -> bytes:
    """EF.SOD bytes (tag 77) for data groups ``{number: file bytes}`` (each the whole
    file, tag included, exactly as READ BINARY returns it).

    ``dsc_cert`` is a cryptography or asn1crypto certificate or DER; ``dsc_key`` the
    DSC's private key (RSA → PKCS#1 v1.5, or RSA-PSS with ``pss=True``; EC → ECDSA).
    ``hash_name`` hashes the data groups; ``signature_hash`` (default the same) hashes
    the signed attributes. ``signing_time`` adds the signingTime attribute, which
    passive authentication uses to judge a DSC that has since expired."""
    econtent = build_lds_security_object(dg_bytes, hash_name)
    content_info = build_signed_data(OID_LDS_SECURITY_OBJECT, econtent, dsc_cert, dsc_key,
                                     hash_name=signature_hash or hash_name, signing_time=signing_time, pss=pss)
    return wrap(SOD_TAG, content_info)


# -- the committed test PKI ---------------------------------------------------------

@dataclass(frozen=True)
class CertAndKey:
    cert: cx509.Certificate
    key: PrivateKeyTypes

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class TestPki:
    """The test PKI generated by fixtures/pki/make_pki.py. Names are the file stems
    (``dsc_rsa``, ``dsc_ecdsa``, ``dsc_rsa_expired``, ``dsc_rsa_revoked``,
    ``dsc_explicit``, ``dsc_rogue``, ``csca_rsa`` …); ``store_dir`` is a ready trust
    store folder holding the test CSCAs and CRLs."""

    directory: Path

    __test__ = False  # not a pytest test class

    def cert(self, name: str) -> cx509.Certificate:
        return cx509.load_pem_x509_certificate((self.directory / f"{name}.pem").read_bytes())

    def key(self, name: str) -> PrivateKeyTypes:
        return serialization.load_pem_private_key((self.directory / f"{name}.key.pem").read_bytes(), password=None)

    def dsc(self, name: str = "dsc_rsa") -> CertAndKey:
        return CertAndKey(self.cert(name), self.key(name))

    @property
    def store_dir(self) -> Path:
        return self.directory / "store"


def load_test_pki(directory: Path | str | None = None) -> TestPki:
    return TestPki(Path(directory) if directory else DEFAULT_PKI_DIR)


def public_key_info(public_key: PublicKeyTypes) -> keys.PublicKeyInfo:
    return keys.PublicKeyInfo.load(spki_der(public_key))


__all__ = [
    "CertAndKey", "ChipKeys", "DhPrivateKey", "DhPublicKey", "TestPki", "build_dg14", "build_dg15",
    "build_lds_security_object", "build_signed_data", "build_sod", "derive_chip_keys", "derive_dh_key",
    "derive_ec_key", "derive_rsa_key", "explicit_spki_der", "load_test_pki", "sign_bytes",
]
