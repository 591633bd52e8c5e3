"""The issuer side of the eMRTD PKI, for virtual chips and the test PKI: signing
EF.SOD (and other CMS SignedData such as master lists), building DG15 (and DG14
through the access engineer's SecurityInfo encoder), and deterministic test keys.

Everything here signs with TEST keys (fixtures/pki). Nothing in agent/icao imports it.

Typical use by a card profile builder::

    pki = load_test_pki()                       # fixtures/pki
    dsc = pki.dsc("dsc_rsa")                    # (certificate, private key)
    chip = derive_chip_keys(b"profile-1")      # CA key (brainpoolP256r1) + AA key
    dgs = {1: dg1, 2: dg2, 13: dg13,
           14: build_dg14(chip.ca_key.public_key()),
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
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from agent.icao.certs import CURVES, HASHES
from agent.icao.sod import OID_LDS_SECURITY_OBJECT, SOD_TAG, LdsSecurityObject

#: 9303-10 §4.7.15: EF.DG15 tag
DG15_TAG = 0x6F
#: 9303-10 §4.7.14: EF.DG14 tag
DG14_TAG = 0x6E
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

    ca_key: ec.EllipticCurvePrivateKey
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

def ber_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def wrap(tag: int, value: bytes) -> bytes:
    return bytes((tag,)) + ber_length(len(value)) + value


def spki_der(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def build_dg15(aa_public_key: PublicKeyTypes) -> bytes:
    """EF.DG15 (9303-10 §4.7.15): tag 6F wrapping the AA SubjectPublicKeyInfo."""
    return wrap(DG15_TAG, spki_der(aa_public_key))


def build_dg14(ca_public_key: ec.EllipticCurvePublicKey, *, key_id: int | None = None,
               cipher: str = "aes128", aa_hash: str | None = None) -> bytes:
    """EF.DG14 (9303-10 §4.7.14) with ChipAuthenticationInfo + ChipAuthenticationPublicKeyInfo
    for ``ca_public_key`` (ECDH; ``cipher`` one of 3des, aes128, aes192, aes256) and,
    when ``aa_hash`` is given (sha1 … sha512), an ActiveAuthenticationInfo naming the
    ECDSA hash for an EC AA key. Encoded by ``agent.icao.securityinfo``."""
    from agent.icao import securityinfo

    return securityinfo.build_dg14(ca_public_key=ca_public_key, key_id=key_id, cipher=cipher, aa_hash=aa_hash)


# -- CMS SignedData -----------------------------------------------------------------

def _as_asn1_cert(cert: cx509.Certificate | x509.Certificate | bytes) -> x509.Certificate:
    if isinstance(cert, x509.Certificate):
        return cert
    if isinstance(cert, cx509.Certificate):
        cert = cert.public_bytes(serialization.Encoding.DER)
    return x509.Certificate.load(cert)


def _utc(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def sign_bytes(key: PrivateKeyTypes, data: bytes, hash_name: str, pss: bool = False) -> tuple[bytes, dict]:
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
    attrs = [{"type": "content_type", "values": [content_type]}]
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
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()


def build_lds_security_object(dg_bytes: Mapping[int, bytes], hash_name: str = "sha256") -> bytes:
    """The LDSSecurityObject (version 0) listing the hash of every data group given."""
    return LdsSecurityObject({
        "version": 0,
        "hash_algorithm": {"algorithm": hash_name},
        "data_group_hash_values": [
            {"data_group_number": n, "data_group_hash_value": hashlib.new(hash_name, dg_bytes[n]).digest()}
            for n in sorted(dg_bytes)
        ],
    }).dump()


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
    "ChipKeys", "CertAndKey", "TestPki", "build_dg14", "build_dg15", "build_lds_security_object",
    "build_signed_data", "build_sod", "derive_chip_keys", "derive_ec_key", "derive_rsa_key",
    "load_test_pki", "sign_bytes", "hashes",
]
