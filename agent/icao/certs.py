"""X.509 certificates of the eMRTD PKI (9303-12): loading, public keys (including EC
keys given by explicit domain parameters), signature checks and the facts the trust
store shows.

Certificates are handled as asn1crypto structures so that a certificate whose key
pyca/cryptography refuses (explicit-parameter EC, as the Vietnamese CSCA in the public
German/Dutch master lists, domain.md) can still be parsed, shown and used: the
explicit parameters are matched against the standardized curves of
``agent.icao.params`` and the key is rewritten to the named-curve form before it is
handed to cryptography for the arithmetic.

Why one module of ~430 lines: every certificate fact the trust store, passive
authentication and the master-list import need goes through the same asn1crypto ↔
cryptography bridge; the CMS checks are in ``cms.py``, the chain in ``trust.py``.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import re
import warnings

from asn1crypto import algos, keys, x509
from cryptography import x509 as cx509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dh, ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from agent.errors import ParseError
from agent.icao import params
from agent.icao.asn1 import ASN1_ERRORS
from agent.icao.ec import Curve

#: hash names as asn1crypto spells them → cryptography hash classes
HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

#: cryptography curve classes by the asn1crypto named-curve name
CURVES: dict[str, type[ec.EllipticCurve]] = {
    "secp192r1": ec.SECP192R1,
    "secp224r1": ec.SECP224R1,
    "secp256r1": ec.SECP256R1,
    "secp384r1": ec.SECP384R1,
    "secp521r1": ec.SECP521R1,
    "brainpoolp256r1": ec.BrainpoolP256R1,
    "brainpoolp384r1": ec.BrainpoolP384R1,
    "brainpoolp512r1": ec.BrainpoolP512R1,
}

#: id-ecPublicKey (RFC 5480), seen as a SignerInfo signatureAlgorithm on some documents
OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"

_PEM_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


class SignatureError(Exception):
    """A signature did not verify, or its algorithm is not one we can check.
    Internal to verification: callers turn it into a result with a reason."""


def hash_bytes(name: str, data: bytes) -> bytes:
    """Hash ``data`` with the algorithm named as asn1crypto names it (sha1 … sha512)."""
    if name not in HASHES:
        raise SignatureError(f"unsupported hash algorithm {name}")
    return hashlib.new(name, data).digest()


def pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    """The (label, DER) pairs of every PEM block in ``data``; [] when there is none."""
    out = []
    for label, body in _PEM_RE.findall(data):
        try:
            out.append((label.decode("ascii"), base64.b64decode(body, validate=False)))
        except ValueError as exc:
            raise ParseError(f"bad base64 in PEM block: {exc}", source="PEM") from exc
    return out


def load_certificate(data: bytes, source: str = "certificate") -> x509.Certificate:
    """Parse one certificate, PEM or DER. Raises ``ParseError`` when malformed."""
    blocks = pem_blocks(data)
    if blocks:
        data = blocks[0][1]
    try:
        cert = x509.Certificate.load(data, strict=True)
        # parse it all now (signature included): asn1crypto parses lazily, and a part
        # left unparsed raised IndexError later, out of passive authentication. OpenSSL's
        # strict DER parser checks a well-formed certificate ~25 times faster than
        # building asn1crypto's native form (a 600-member master list); whatever it
        # refuses gets the full parse, which accepts or names what is wrong.
        if not _parses_in_openssl(data):
            cert.native  # noqa: B018
        cert.key_identifier  # noqa: B018 - parses every extension asn1crypto knows
        cert.not_valid_after  # noqa: B018
        cert["signature_value"].native  # noqa: B018
    except ASN1_ERRORS as exc:
        raise ParseError(f"not an X.509 certificate: {describe_asn1_error(exc)}{_named(data)}",
                         source=source) from exc
    return cert


def _parses_in_openssl(der: bytes) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. a non-positive serial number, seen on real CSCAs
        try:
            parsed = cx509.load_der_x509_certificate(der)
            parsed.extensions  # noqa: B018
            parsed.signature  # noqa: B018
        except Exception:  # noqa: BLE001 - any refusal means: take the slow, thorough path
            return False
    return True


def describe_asn1_error(exc: Exception) -> str:
    """asn1crypto's message on one line: its first line and, when it says so, the
    innermost structure being parsed (``in x509.Extension``)."""
    lines = str(exc).splitlines()
    where = [line.split("asn1crypto.")[-1] for line in lines[1:] if "while parsing asn1crypto.x509." in line]
    return lines[0] + (f" (in {where[0]})" if where else "") if lines else type(exc).__name__


def looks_like_certificate(data: bytes) -> bool:
    """True when ``data`` has the outline of an X.509 certificate (its subject reads),
    even though it does not parse strictly."""
    return bool(_named(data))


def _named(data: bytes) -> str:
    """`` — subject …`` of a certificate that does not parse strictly, when its
    subject still reads (e.g. only an extension is malformed); '' otherwise."""
    try:
        return f"; subject {x509.Certificate.load(data)['tbs_certificate']['subject'].human_friendly}"
    except ASN1_ERRORS:
        return ""


#: params.py names (9303-11 §9.5.1 table) → asn1crypto / RFC 5480 named-curve names
_NIST_NAMES = {"P-192": "secp192r1", "P-224": "secp224r1", "P-256": "secp256r1",
               "P-384": "secp384r1", "P-521": "secp521r1"}


def curve_asn1_name(name: str) -> str:
    """``P-256`` → ``secp256r1``, ``brainpoolP256r1`` → ``brainpoolp256r1``."""
    return _NIST_NAMES.get(name, name.lower())


def standard_curves() -> dict[str, Curve]:
    """The standardized prime curves (from ``agent.icao.params``) by asn1crypto name."""
    out: dict[str, Curve] = {}
    for group in params.STANDARD.values():
        if isinstance(group, params.EcGroup):
            out[curve_asn1_name(group.curve.name)] = group.curve
    return out


def curve_by_name(name: str) -> Curve:
    """A standardized curve by asn1crypto name (``brainpoolp512r1``, ``secp256r1`` …)."""
    try:
        return standard_curves()[name]
    except KeyError:
        raise SignatureError(f"curve {name} is not a standardized curve we know") from None


def _named_curve_of_specified(domain: keys.SpecifiedECDomain) -> str:
    """Find the standardized curve whose (p, a, b, G, n, h) equal these explicit
    parameters. 9303-11 §9.2 lets documents carry explicit parameters; cryptography
    only takes named curves (the real Vietnamese CSCA is such a key, domain.md)."""
    field = domain["field_id"]
    if field["field_type"].native != "prime_field":
        raise SignatureError("explicit EC parameters over a binary field are not supported")
    p = field["parameters"].native
    curve = domain["curve"]
    a = int.from_bytes(curve["a"].native, "big")
    b = int.from_bytes(curve["b"].native, "big")
    gx, gy = _decode_point(domain["base"].native, p)
    n = domain["order"].native
    h = domain["cofactor"].native if domain["cofactor"].native is not None else 1
    for name, known in standard_curves().items():
        if (known.p, known.a % known.p, known.b % known.p, known.gx, known.gy, known.n, known.h) == \
                (p, a % p, b % p, gx, gy, n, h):
            return name
    raise SignatureError("explicit EC parameters match no standardized curve we know")


def _decode_point(raw: bytes, p: int) -> tuple[int, int]:
    size = (p.bit_length() + 7) // 8
    if len(raw) != 1 + 2 * size or raw[0] != 0x04:
        raise SignatureError("explicit EC base point is not an uncompressed point")
    return int.from_bytes(raw[1:1 + size], "big"), int.from_bytes(raw[1 + size:], "big")


def named_curve_name(spki: keys.PublicKeyInfo) -> str:
    """The standardized curve name of an EC SubjectPublicKeyInfo, named or explicit."""
    parameters = spki["algorithm"]["parameters"]
    if parameters.name == "named":
        return str(parameters.chosen.native)
    if parameters.name == "specified":
        return _named_curve_of_specified(parameters.chosen)
    raise SignatureError("EC key without domain parameters (implicitlyCA) cannot be checked")


def normalize_spki(spki: keys.PublicKeyInfo) -> keys.PublicKeyInfo:
    """Rewrite an explicit-parameter EC key to the named-curve form; others unchanged."""
    if spki["algorithm"]["algorithm"].native != "ec":
        return spki
    parameters = spki["algorithm"]["parameters"]
    if parameters.name == "named":
        return spki
    name = named_curve_name(spki)
    return keys.PublicKeyInfo({
        "algorithm": {"algorithm": "ec", "parameters": keys.ECDomainParameters(name="named", value=name)},
        "public_key": spki["public_key"].native,
    })


def load_public_key(spki: keys.PublicKeyInfo) -> PublicKeyTypes:
    """A cryptography public key from a SubjectPublicKeyInfo (explicit EC curves mapped).

    Raises ``SignatureError`` when the key cannot be used. Keys are cached by their
    DER: a trust store's CSCA keys are loaded on every read otherwise."""
    return _load_public_key_der(spki.dump())


@functools.lru_cache(maxsize=2048)
def _load_public_key_der(spki_der: bytes) -> PublicKeyTypes:
    try:
        spki = normalize_spki(keys.PublicKeyInfo.load(spki_der))
        return serialization.load_der_public_key(spki.dump())
    except (ValueError, UnsupportedAlgorithm, TypeError) as exc:
        raise SignatureError(f"public key cannot be loaded: {exc}") from exc


def signature_hash(algorithm: algos.SignedDigestAlgorithm, digest_fallback: str | None = None) -> str:
    """The hash of a signature algorithm. CMS SignerInfos may name only the key type
    (rsaEncryption, id-ecPublicKey); the digestAlgorithm then gives the hash."""
    try:
        return str(algorithm.hash_algo)
    except ValueError:
        if digest_fallback is None:
            raise SignatureError(f"signature algorithm {algorithm['algorithm'].dotted} names no hash") from None
        return digest_fallback


def verify_signature(public_key: PublicKeyTypes, algorithm: algos.SignedDigestAlgorithm,
                     signature: bytes, data: bytes, digest_fallback: str | None = None) -> None:
    """Check ``signature`` over ``data``: RSA PKCS#1 v1.5, RSA-PSS or ECDSA (DER).

    Raises ``SignatureError`` (with the reason) when it does not verify."""
    try:
        # Some SignerInfos name only the key type, id-ecPublicKey, as the signature
        # algorithm; the digestAlgorithm then gives the hash.
        if algorithm["algorithm"].dotted == OID_EC_PUBLIC_KEY and digest_fallback is not None:
            kind = "ecdsa"
            algorithm = algos.SignedDigestAlgorithm({"algorithm": f"{digest_fallback}_ecdsa"})
        else:
            kind = algorithm.signature_algo
        if kind == "rsassa_pss":
            _verify_pss(public_key, algorithm, signature, data)
            return
        hash_cls = HASHES.get(signature_hash(algorithm, digest_fallback))
        if hash_cls is None:
            raise SignatureError("unsupported hash in signature algorithm")
        if kind == "rsassa_pkcs1v15" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), hash_cls())
        elif kind == "ecdsa" and isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(hash_cls()))
        else:
            raise SignatureError(f"signature algorithm {kind} does not fit a {_key_kind(public_key)} key")
    except InvalidSignature:
        raise SignatureError("signature does not verify") from None
    except (ValueError, KeyError, TypeError, UnsupportedAlgorithm) as exc:
        # asn1crypto raises ValueError for unknown algorithm OIDs and bad parameters
        raise SignatureError(f"signature cannot be checked: {exc}") from exc


def verify_plain_ecdsa(public_key: ec.EllipticCurvePublicKey, hash_name: str,
                       signature: bytes, data: bytes) -> None:
    """Check a plain (r || s, BSI TR-03111 §5.2.1) ECDSA signature over ``data``."""
    if len(signature) % 2 or not signature:
        raise SignatureError("plain ECDSA signature has odd length")
    half = len(signature) // 2
    r = int.from_bytes(signature[:half], "big")
    s = int.from_bytes(signature[half:], "big")
    hash_cls = HASHES.get(hash_name)
    if hash_cls is None:
        raise SignatureError(f"unsupported hash {hash_name}")
    try:
        public_key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hash_cls()))
    except InvalidSignature:
        raise SignatureError("signature does not verify") from None


def _verify_pss(public_key: PublicKeyTypes, algorithm: algos.SignedDigestAlgorithm,
                signature: bytes, data: bytes) -> None:
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SignatureError("RSA-PSS signature with a non-RSA key")
    params = algorithm["parameters"]
    hash_name = params["hash_algorithm"]["algorithm"].native
    mgf = params["mask_gen_algorithm"]
    mgf_hash = mgf["parameters"]["algorithm"].native
    if mgf["algorithm"].native != "mgf1" or hash_name not in HASHES or mgf_hash not in HASHES:
        raise SignatureError("unsupported RSA-PSS parameters")
    pad = padding.PSS(mgf=padding.MGF1(HASHES[mgf_hash]()), salt_length=params["salt_length"].native)
    public_key.verify(signature, data, pad, HASHES[hash_name]())


def _key_kind(public_key: PublicKeyTypes) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "EC"
    if isinstance(public_key, dh.DHPublicKey):
        return "DH"
    return type(public_key).__name__


def cert_public_key(cert: x509.Certificate) -> PublicKeyTypes:
    return load_public_key(cert["tbs_certificate"]["subject_public_key_info"])


def verify_issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    """Check that ``issuer``'s key signed ``cert`` (signature only; names and
    validity are the chain builder's). Raises ``SignatureError``."""
    verify_signature(cert_public_key(issuer), cert["signature_algorithm"],
                     cert["signature_value"].native, cert["tbs_certificate"].dump())


# -- facts about a certificate ------------------------------------------------------

def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, hex."""
    return hashlib.sha256(cert.dump()).hexdigest()


def country(name: x509.Name) -> str:
    return str(name.native.get("country_name", "")) if isinstance(name.native, dict) else ""


def subject_text(cert: x509.Certificate) -> str:
    return str(cert.subject.human_friendly)


def key_description(cert: x509.Certificate) -> str:
    """``RSA 2048``, ``EC brainpoolP512r1 (explicit parameters)`` …"""
    spki = cert["tbs_certificate"]["subject_public_key_info"]
    algorithm = spki["algorithm"]["algorithm"].native
    if algorithm == "rsa":
        return f"RSA {spki.bit_size}"
    if algorithm == "rsassa_pss":
        return f"RSA-PSS {spki.bit_size}"
    if algorithm == "ec":
        explicit = spki["algorithm"]["parameters"].name == "specified"
        try:
            curve = _pretty_curve(named_curve_name(spki))
        except SignatureError:
            curve = "unknown curve"
        return f"EC {curve}" + (" (explicit parameters)" if explicit else "")
    return str(algorithm)


def _pretty_curve(name: str) -> str:
    return name.replace("brainpoolp", "brainpoolP")


def validity(cert: x509.Certificate) -> tuple[dt.datetime, dt.datetime]:
    return cert.not_valid_before, cert.not_valid_after


def is_valid_at(cert: x509.Certificate, when: dt.datetime) -> bool:
    start, end = validity(cert)
    return start <= when <= end


def is_self_signed(cert: x509.Certificate) -> bool:
    """Self-issued (subject = issuer). A link certificate is self-issued too: use
    ``is_root`` to know whether the certificate's own key signed it."""
    return bool(cert.subject == cert.issuer)


def is_root(cert: x509.Certificate) -> bool:
    if not is_self_signed(cert):
        return False
    try:
        verify_issued_by(cert, cert)
    except SignatureError:
        return False
    return True


def short_name(name: x509.Name) -> str:
    """``TEST CSCA VN RSA (VN)``: common name and country, for human reasons."""
    native = name.native if isinstance(name.native, dict) else {}
    cn = native.get("common_name") or native.get("organization_name") or str(name.human_friendly)
    if isinstance(cn, list):
        cn = ", ".join(str(x) for x in cn)
    country_code = native.get("country_name")
    return f"{cn} ({country_code})" if country_code else str(cn)


def short_subject(cert: x509.Certificate) -> str:
    return short_name(cert.subject)


def common_name(cert: x509.Certificate) -> str:
    value = cert.subject.native.get("common_name", "") if isinstance(cert.subject.native, dict) else ""
    return str(value) or subject_text(cert)


def is_ca(cert: x509.Certificate) -> bool:
    constraints = cert.basic_constraints_value
    return bool(constraints is not None and constraints["ca"].native)


def key_usage(cert: x509.Certificate) -> set[str] | None:
    """The key usage bits set, or None when the extension is absent."""
    value = cert.key_usage_value
    return None if value is None else set(value.native)


def aware(when: dt.datetime) -> dt.datetime:
    """Naive datetimes are taken as UTC (asn1crypto returns aware ones)."""
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
