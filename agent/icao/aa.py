"""Active Authentication (9303-11 §6.1): the chip signs an 8-byte challenge with the
private key matching the public key of DG15, proving it is not a copy.

* RSA keys answer with an ISO/IEC 9796-2 digital signature scheme 1 signature with
  partial message recovery: F = 6A || M1 || H(M1 || challenge) || trailer, where the
  trailer is BC (SHA-1, implicit) or (hash id) CC (9796-2 §B.2, hash ids of ISO/IEC
  10118-3: 33 SHA-1, 34 SHA-256, 35 SHA-512, 36 SHA-384, 38 SHA-224; the same table is
  used by public eMRTD readers, e.g. AndroidPassportReader DG15Constants).
* EC keys answer with a plain (r || s, BSI TR-03111 §5.2.1) ECDSA signature over the
  challenge; the hash comes from DG14's ActiveAuthenticationInfo.

``active_authentication`` runs it over a live channel; the 9796-2 encoding and
recovery are pure functions shared with the virtual chip (agent.sim.chip_auth).
"""

from __future__ import annotations

import hmac
import logging

from asn1crypto import keys
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from agent.errors import IdAgentError, ParseError
from agent.icao import certs
from agent.icao.asn1 import ASN1_ERRORS
from agent.icao.certs import SignatureError
from agent.icao.checks import CheckResult, Status
from agent.icao.lds.files import DATA_GROUPS
from agent.icao.securityinfo import ActiveAuthenticationInfo, SecurityInfos, parse_security_infos
from agent.readers.apdu import LE_MAX, SHORT_LE_MAX, Channel, Command, Ins
from agent.rng import Rng

logger = logging.getLogger(__name__)

#: 9303-11 §6.1: the challenge is 8 bytes
CHALLENGE_LEN = 8
DG15_TAG = DATA_GROUPS[15].tag
#: 9796-2 scheme 1 header of partial message recovery: bits 01, "more data" 1, then 1010 padding end
HEADER_PARTIAL = 0x6A
TRAILER_IMPLICIT_SHA1 = 0xBC
TRAILER_EXPLICIT = 0xCC
#: ISO/IEC 10118-3 hash function identifiers used in the explicit trailer
HASH_IDS: dict[int, str] = {0x33: "sha1", 0x34: "sha256", 0x35: "sha512", 0x36: "sha384", 0x38: "sha224"}
HASH_ID_OF: dict[str, int] = {name: ident for ident, name in HASH_IDS.items()}
#: ActiveAuthenticationInfo signatureAlgorithm OIDs → hash (BSI TR-03111 §4.2.1
#: ecdsa-plain-SHA*, and the X9.62 ecdsa-with-SHA* some issuers write instead)
ECDSA_PLAIN = "0.4.0.127.0.7.1.1.4.1"
AA_SIGNATURE_HASHES: dict[str, str] = {
    f"{ECDSA_PLAIN}.1": "sha1", f"{ECDSA_PLAIN}.2": "sha224", f"{ECDSA_PLAIN}.3": "sha256",
    f"{ECDSA_PLAIN}.4": "sha384", f"{ECDSA_PLAIN}.5": "sha512",
    "1.2.840.10045.4.1": "sha1", "1.2.840.10045.4.3.1": "sha224", "1.2.840.10045.4.3.2": "sha256",
    "1.2.840.10045.4.3.3": "sha384", "1.2.840.10045.4.3.4": "sha512",
}
ECDSA_PLAIN_SHA256 = f"{ECDSA_PLAIN}.3"
_DIGEST_LEN = {"sha1": 20, "sha224": 28, "sha256": 32, "sha384": 48, "sha512": 64}



def parse_dg15(data: bytes) -> keys.PublicKeyInfo:
    """EF.DG15 (9303-10 §4.7.15): tag 6F wrapping a SubjectPublicKeyInfo."""
    if len(data) < 2 or data[0] != DG15_TAG:
        raise ParseError("DG15 does not start with tag 6F", source="DG15", offset=0)
    length, offset = _ber_length(data, 1)
    body = data[offset:offset + length]
    if len(body) != length:
        raise ParseError("DG15 is truncated", source="DG15", offset=offset)
    try:
        spki = keys.PublicKeyInfo.load(body, strict=True)
        spki.native  # noqa: B018 - parse it all now
    except ASN1_ERRORS as exc:
        raise ParseError(f"DG15 holds no SubjectPublicKeyInfo: {exc}", source="DG15", offset=offset) from exc
    return spki


def _ber_length(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise ParseError("length missing", source="DG15", offset=pos)
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0 or count > 3 or pos + 1 + count > len(data):
        raise ParseError("bad length", source="DG15", offset=pos)
    return int.from_bytes(data[pos + 1:pos + 1 + count], "big"), pos + 1 + count


# -- ISO/IEC 9796-2 scheme 1 -----------------------------------------------------------

def iso9796_2_encode(m1: bytes, challenge: bytes, hash_name: str, modulus_bytes: int) -> bytes:
    """The message representative F the chip raises to its private exponent.
    ``m1`` must be exactly ``modulus_bytes - 1 - digest - trailer`` bytes."""
    trailer = bytes((TRAILER_IMPLICIT_SHA1,)) if hash_name == "sha1" else bytes((HASH_ID_OF[hash_name],
                                                                                TRAILER_EXPLICIT))
    digest = certs.hash_bytes(hash_name, m1 + challenge)
    f = bytes((HEADER_PARTIAL,)) + m1 + digest + trailer
    if len(f) != modulus_bytes:
        raise ValueError("M1 has the wrong length for this modulus")
    return f


def m1_length(hash_name: str, modulus_bytes: int) -> int:
    return modulus_bytes - 1 - _DIGEST_LEN[hash_name] - (1 if hash_name == "sha1" else 2)


def iso9796_2_verify(recovered: bytes, challenge: bytes) -> str:
    """Check a recovered representative F against the challenge; returns the hash name.
    Raises ``SignatureError`` naming what is wrong."""
    if not recovered or recovered[0] != HEADER_PARTIAL:
        raise SignatureError("the recovered message does not start with header 6A (ISO/IEC 9796-2 scheme 1)")
    if recovered[-1] == TRAILER_IMPLICIT_SHA1:
        hash_name, trailer_len = "sha1", 1
    elif recovered[-1] == TRAILER_EXPLICIT and len(recovered) >= 2 and recovered[-2] in HASH_IDS:
        hash_name, trailer_len = HASH_IDS[recovered[-2]], 2
    else:
        raise SignatureError(f"unknown ISO/IEC 9796-2 trailer {recovered[-2:].hex().upper()}")
    digest_len = _DIGEST_LEN[hash_name]
    if len(recovered) < 1 + digest_len + trailer_len:
        raise SignatureError("the recovered message is too short")
    digest = recovered[-trailer_len - digest_len:-trailer_len]
    m1 = recovered[1:-trailer_len - digest_len]
    if not hmac.compare_digest(digest, certs.hash_bytes(hash_name, m1 + challenge)):
        raise SignatureError("the signature does not cover our challenge")
    return hash_name


def verify_rsa_response(public_key: rsa.RSAPublicKey, challenge: bytes, signature: bytes) -> str:
    numbers = public_key.public_numbers()
    k = (numbers.n.bit_length() + 7) // 8
    s = int.from_bytes(signature, "big")
    if not 0 < s < numbers.n:
        raise SignatureError("the signature is not below the modulus")
    m = pow(s, numbers.e, numbers.n)
    # 9796-2 §B.5: a signer may send min(s, n - s); then the representative is n - m.
    if m & 0x0F != 0x0C:
        m = numbers.n - m
    return iso9796_2_verify(m.to_bytes(k, "big").lstrip(b"\x00"), challenge)


def verify_ec_response(public_key: ec.EllipticCurvePublicKey, challenge: bytes, signature: bytes,
                       hash_name: str) -> None:
    certs.verify_plain_ecdsa(public_key, hash_name, signature, challenge)


# -- the check over a live channel -------------------------------------------------------

class ActiveAuthenticationError(IdAgentError):
    code = "active_authentication"


def active_authentication(channel: Channel, dg15: bytes, *, rng: Rng,
                          aa_info: ActiveAuthenticationInfo | None = None) -> CheckResult:
    """Send INTERNAL AUTHENTICATE with an 8-byte challenge from ``rng`` and verify the
    answer with DG15's key. Returns valid / invalid / error; never raises on a bad card
    (transport failures other than the card's answer are left to the caller)."""
    try:
        spki = parse_dg15(dg15)
        public_key = certs.load_public_key(spki)
    except (ParseError, SignatureError) as exc:
        return CheckResult(Status.ERROR, f"DG15 key unusable: {exc}")
    hash_name = _ecdsa_hash(public_key, aa_info)
    if isinstance(hash_name, CheckResult):
        return hash_name
    challenge = rng(CHALLENGE_LEN)
    le = LE_MAX if channel.extended_length else SHORT_LE_MAX
    response = channel.send(Command(0x00, Ins.INTERNAL_AUTHENTICATE, 0x00, 0x00, challenge, le))
    logger.debug("INTERNAL AUTHENTICATE SW=%04X", response.sw)
    # the signature is kept (hex): the reader-kit protocol hands it to desk software
    details = {"key": _describe(public_key), "signature": response.data.hex()}
    if not response.ok or not response.data:
        # no signature to judge: a refusal proves nothing either way, and an unprotected
        # status word under secure messaging (a relay, a glitch) is not even the chip's
        # answer. Only a signature that verifiably fails is "invalid" (issue 14); the
        # caller may ask once more on a fresh session (details "retry")
        how = " outside secure messaging" if getattr(channel, "last_unprotected", False) else ""
        return CheckResult(Status.ERROR, f"no signature: INTERNAL AUTHENTICATE answered {response.sw:04X}{how} "
                                         "although DG15 says the chip supports Active Authentication",
                           details={**details, "retry": "fresh session"})
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            details["hash"] = verify_rsa_response(public_key, challenge, response.data)
            details["scheme"] = "ISO/IEC 9796-2 scheme 1"
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            assert isinstance(hash_name, str)
            verify_ec_response(public_key, challenge, response.data, hash_name)
            details["hash"] = hash_name
            details["scheme"] = "ECDSA (plain)"
    except SignatureError as exc:
        return CheckResult(Status.INVALID, f"Active Authentication failed: {exc} (the chip does not hold the "
                                           "private key of DG15)", details=details)
    return CheckResult(Status.VALID, "the chip signed our challenge with the private key of DG15", details=details)


def info_from_dg14(dg14: bytes | SecurityInfos | None) -> ActiveAuthenticationInfo | None:
    """DG14's ActiveAuthenticationInfo (the ECDSA hash), None when absent or unreadable.
    DG14 as parsed by the caller, or its bytes."""
    if dg14 is None:
        return None
    try:
        infos = dg14 if isinstance(dg14, SecurityInfos) else parse_security_infos(dg14, source="DG14")
    except ParseError:
        return None
    return infos.active_authentication[0] if infos.active_authentication else None


def internal_authenticate(channel: Channel, challenge: bytes) -> bytes:
    """INTERNAL AUTHENTICATE with a challenge chosen by the caller (9303-11 §6.1): the
    chip's signature, for a relying party that verifies it itself (the reader-kit
    protocol's ``/get_aa``). Raises ActiveAuthenticationError when the chip refuses."""
    if len(challenge) != CHALLENGE_LEN:
        raise ValueError("the Active Authentication challenge is 8 bytes")
    le = LE_MAX if channel.extended_length else SHORT_LE_MAX
    response = channel.send(Command(0x00, Ins.INTERNAL_AUTHENTICATE, 0x00, 0x00, challenge, le))
    if not response.ok or not response.data:
        raise ActiveAuthenticationError(f"the chip refused INTERNAL AUTHENTICATE (SW {response.sw:04X})",
                                        hint="This card may not support Active Authentication.")
    return response.data


def _ecdsa_hash(public_key: PublicKeyTypes, aa_info: ActiveAuthenticationInfo | None) -> str | None | CheckResult:
    if isinstance(public_key, rsa.RSAPublicKey):
        return None
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        return CheckResult(Status.NOT_SUPPORTED, f"DG15 holds a {type(public_key).__name__} key")
    if aa_info is None:
        return CheckResult(Status.ERROR, "DG15 holds an EC key but DG14 has no ActiveAuthenticationInfo naming "
                                         "the signature hash (9303-11 §6.1)")
    hash_name = AA_SIGNATURE_HASHES.get(aa_info.signature_algorithm)
    if hash_name is None:
        return CheckResult(Status.NOT_SUPPORTED, f"AA signature algorithm {aa_info.signature_algorithm} "
                                                 "is not supported")
    return hash_name


def _describe(public_key: PublicKeyTypes) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA {public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"EC {public_key.curve.name}"
    return type(public_key).__name__
