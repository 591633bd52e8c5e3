"""PACE v2, terminal side (ICAO 9303-11 §4.4): MSE:Set AT, then four GENERAL
AUTHENTICATE steps (encrypted nonce, mapping, key agreement, mutual authentication).

Mappings: Generic Mapping over ECDH and DH (§4.4.3.3.1), Integrated Mapping over
ECDH and DH (§4.4.3.3.2, point encoding of Appendix B; not on P-224 whose p ≡ 1 mod 4)
and Chip Authentication Mapping (§4.4.3.5, ECDH with a GM mapping step, plus the
chip's encrypted Chip Authentication data in the last answer). Ciphers 3DES
and AES-128/192/256; any standardized domain parameter 0-18 (agent.icao.params).

Public API:

* ``authenticate(channel, key, info, *, rng=os.urandom, send_parameter_id=False) -> PaceResult``.
  ``rng`` is asked for, in order: the mapping private key (GM, CAM) or the nonce t
  (IM), then the ephemeral private key. Wrong CAN/MRZ (the chip's 6300) raises
  ``AccessDeniedError``; other failures raise ``PaceError`` (BAC may be tried after it).
* ``PaceResult``: the SM channel and what was negotiated; ``cam_data`` holds the chip's
  encrypted Chip Authentication data (CAM) and ``cam_ca_ic`` its decryption, to be
  checked by the trust layer as PK_map,IC = CA_IC · PK_IC (9303-11 §4.4.3.5.2).
* Building blocks the virtual chip reuses: ``password``, ``key_reference``,
  ``nonce_length``, ``gm_generator``, ``public_key_object``,
  ``token``, ``session_keys``, ``encrypt_cam_data``/``decrypt_cam_data``, tag constants.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from dataclasses import dataclass

from asn1crypto import core

from agent.errors import ParseError, ProtocolError
from agent.icao import bac, crypto, ec, params
from agent.icao import tlv as ber
from agent.icao.crypto import Cipher
from agent.icao.keys import AccessKey, CanKey, MrzKey
from agent.icao.params import Element, Group
from agent.icao.securityinfo import Mapping, PaceInfo
from agent.icao.sm import AccessDeniedError, SecureMessaging
from agent.readers.apdu import SHORT_LE_MAX, SW, Channel, Command, Ins, Response
from agent.rng import Rng

logger = logging.getLogger(__name__)


# MSE:Set AT (9303-11 §4.4.4.1)
MSE_SET_AT_P1 = 0xC1
MSE_SET_AT_P2 = 0xA4
TAG_PROTOCOL = 0x80
TAG_KEY_REFERENCE = 0x83
TAG_PARAMETER_ID = 0x84
KEY_REF_MRZ = 0x01
KEY_REF_CAN = 0x02
# GENERAL AUTHENTICATE dynamic authentication data (9303-11 §4.4.4.2)
TAG_DYNAMIC_AUTH = 0x7C
TAG_NONCE = 0x80
TAG_MAP_IFD = 0x81
TAG_MAP_IC = 0x82
TAG_EPH_IFD = 0x83
TAG_EPH_IC = 0x84
TAG_TOKEN_IFD = 0x85
TAG_TOKEN_IC = 0x86
TAG_CAM_DATA = 0x8A
#: CLA of every GENERAL AUTHENTICATE but the last (command chaining, 7816-4 §5.4.1)
CLA_CHAINING = 0x10
# public key data object (9303-11 §9.4.2)
TAG_PUBLIC_KEY = 0x7F49
TAG_PK_OID = 0x06
TAG_PK_DH_VALUE = 0x84
TAG_PK_EC_POINT = 0x86


#: mappings this terminal runs (9303-11 §4.4.3.3)
SUPPORTED_MAPPINGS = (Mapping.ECDH_GM, Mapping.DH_GM, Mapping.ECDH_IM, Mapping.DH_IM, Mapping.ECDH_CAM)
INTEGRATED_MAPPINGS = (Mapping.ECDH_IM, Mapping.DH_IM)

#: constants c0, c1 of the pseudo-random number mapping, for nonces of 128 and 256
#: bits (9303-11 §4.4.3.3.2)
IM_C0 = {
    16: bytes.fromhex("a668892a7c41e3ca739f40b057d85904"),
    32: bytes.fromhex("d463d65234124ef7897054986dca0a174e28df758cbaa03f240616414d5a1676"),
}
IM_C1 = {
    16: bytes.fromhex("a4e136ac725f738b01c1f60217c188ad"),
    32: bytes.fromhex("54bd7255f0aaf831bec3423fcf39d69b6cbf066677d0faae5aadd99df8e53517"),
}


class PaceError(ProtocolError):
    """PACE failed for a reason other than a wrong password; BAC may still work."""

    code = "pace_failed"
    exit_code = 6


@dataclass(frozen=True, repr=False)
class PaceResult:
    sm: SecureMessaging
    oid: str
    mapping: Mapping
    cipher: Cipher
    parameter_id: int
    key_type: str  # "MRZ" or "CAN"
    chip_mapping_key: bytes | None = None  # PK_map,IC (GM/CAM), encoded
    chip_ephemeral_key: bytes = b""
    cam_data: bytes | None = None  # A_IC, the encrypted Chip Authentication data
    cam_ca_ic: bytes | None = None  # CA_IC = decrypted A_IC

    def __repr__(self) -> str:
        return f"PaceResult({self.mapping.label}, {self.cipher.label}, param={self.parameter_id}, {self.key_type})"


# ---- building blocks (shared with the virtual chip) ----

def password(key: AccessKey) -> bytes:
    """π (9303-11 §4.4.3.1 / §9.7.3): SHA-1 of the MRZ information, or the CAN's digits."""
    if isinstance(key, MrzKey):
        return hashlib.sha1(bac.mrz_information(key).encode("ascii")).digest()
    return key.can.encode("ascii")


def key_reference(key: AccessKey) -> int:
    return KEY_REF_CAN if isinstance(key, CanKey) else KEY_REF_MRZ


def key_type(key: AccessKey) -> str:
    return "CAN" if isinstance(key, CanKey) else "MRZ"


def nonce_length(cipher: Cipher) -> int:
    """Length of the chip's nonce s: at least the key length (9303-11 §4.4.3.1), rounded
    up to whole cipher blocks since s is encrypted without padding (AES-192: 32)."""
    return -(-cipher.key_len // cipher.block) * cipher.block


def oid_value(oid: str) -> bytes:
    """The content octets of an OID (DO80 of MSE:Set AT and DO06 of key objects carry
    the OID without its 06 tag)."""
    return bytes(core.ObjectIdentifier(oid).contents)


def gm_generator(group: Group, nonce: bytes, shared: Element) -> Element:
    """Generic Mapping (9303-11 §4.4.3.3.1): G' = s·G + H (EC) or g^s · h (DH)."""
    return group.combine(group.mul_generator(int.from_bytes(nonce, "big")), shared)


def im_pseudorandom(cipher: Cipher, s: bytes, t: bytes, prime: int) -> int:
    """R_p(s, t) of Integrated Mapping (9303-11 §4.4.3.3.2): a block-cipher PRF keyed
    with t over s, stretched with the constants c0/c1 to n = ⌈(log2 p + 64) / l⌉
    blocks of l bits, then reduced mod p. Keys longer than the cipher's key length are
    truncated to it (k_i, and t for AES-192 whose nonces are 256 bits here)."""
    size = len(s)
    if size not in IM_C0 or len(t) != size:
        raise ValueError("IM nonces must both be 128 or 256 bits")
    c0, c1 = IM_C0[size], IM_C1[size]
    blocks = -(-(prime.bit_length() + 64) // (8 * size))
    key = crypto.encrypt(cipher, t[:cipher.key_len], s)
    out = bytearray()
    for _ in range(blocks):
        key = key[:cipher.key_len]
        out += crypto.encrypt(cipher, key, c1)
        key = crypto.encrypt(cipher, key, c0)
    return int.from_bytes(out, "big") % prime


def _point_encoding(curve: ec.Curve, t: int) -> tuple[int, int]:
    """f_G (9303-11 Appendix B, affine version) for curves with p ≡ 3 mod 4: a
    deterministic point from the field element t."""
    p, a, b = curve.p, curve.a, curve.b
    if p % 4 != 3:
        raise ValueError("the IM point encoding needs p ≡ 3 (mod 4)")
    alpha = -t * t % p
    alpha_sum = (alpha + alpha * alpha) % p
    x2 = -b * (1 + alpha_sum) * pow(a * alpha_sum % p, p - 2, p) % p
    x3 = alpha * x2 % p
    h2 = (x2 * x2 * x2 + a * x2 + b) % p
    u = t * t * t * h2 % p
    root = pow(h2, p - 1 - (p + 1) // 4, p)
    point = (x2, root * h2 % p) if root * root * h2 % p == 1 else (x3, root * u % p)
    if not ec.is_on_curve(curve, point):
        raise ValueError("IM point encoding left the curve")
    return point


def im_generator(group: Group, cipher: Cipher, s: bytes, t: bytes) -> Element:
    """Integrated Mapping: G' = f_G(R_p(s, t)) for ECDH, g' = R_p(s, t)^((p-1)/q) for DH."""
    if isinstance(group, params.EcGroup):
        return _point_encoding(group.curve, im_pseudorandom(cipher, s, t, group.curve.p))
    mapped = pow(im_pseudorandom(cipher, s, t, group.p), (group.p - 1) // group.q, group.p)
    if mapped == 1:
        raise ValueError("IM mapped the nonce to the identity")
    return mapped


def im_supported(group: Group) -> bool:
    """IM needs p ≡ 3 mod 4 on curves: all standardized ones but P-224 (parameter 10)."""
    return not isinstance(group, params.EcGroup) or group.curve.p % 4 == 3


def public_key_object(oid: str, group: Group, element: Element) -> bytes:
    """7F49 { 06 OID, 86 point | 84 value } (9303-11 §9.4.2), the input of the tokens."""
    value_tag = TAG_PK_EC_POINT if group.kind == "ECDH" else TAG_PK_DH_VALUE
    return ber.encode(TAG_PUBLIC_KEY, ber.encode(TAG_PK_OID, oid_value(oid))
                      + ber.encode(value_tag, group.encode(element)))


def token(cipher: Cipher, ks_mac: bytes, oid: str, group: Group, element: Element) -> bytes:
    """Authentication token T = MAC(KSmac, public key data object) (9303-11 §4.4.3.4)."""
    return crypto.mac(cipher, ks_mac, public_key_object(oid, group, element))


def session_keys(shared_secret: bytes, cipher: Cipher) -> tuple[bytes, bytes]:
    return crypto.kdf(shared_secret, crypto.KDF_ENC, cipher), crypto.kdf(shared_secret, crypto.KDF_MAC, cipher)


def _cam_iv(ks_enc: bytes) -> bytes:
    """9303-11 §4.4.3.5.1: IV = E(KSenc, -1), -1 being the all-ones block."""
    return crypto.encrypt(Cipher.AES128 if len(ks_enc) == 16 else
                          Cipher.AES192 if len(ks_enc) == 24 else Cipher.AES256,
                          ks_enc, b"\xff" * crypto.AES_BLOCK)


def _aes_for(ks_enc: bytes) -> Cipher:
    return {16: Cipher.AES128, 24: Cipher.AES192, 32: Cipher.AES256}[len(ks_enc)]


def encrypt_cam_data(ks_enc: bytes, ca_ic: bytes) -> bytes:
    """A_IC = E(KSenc, CA_IC), AES-CBC with IV = E(KSenc, -1), padded (9303-11 §4.4.3.5.1)."""
    cipher = _aes_for(ks_enc)
    return crypto.encrypt(cipher, ks_enc, crypto.pad(ca_ic, crypto.AES_BLOCK), _cam_iv(ks_enc))


def decrypt_cam_data(ks_enc: bytes, a_ic: bytes) -> bytes:
    cipher = _aes_for(ks_enc)
    return crypto.unpad(crypto.decrypt(cipher, ks_enc, a_ic, _cam_iv(ks_enc)))


def dynamic_auth(*objects: tuple[int, bytes]) -> bytes:
    return ber.encode(TAG_DYNAMIC_AUTH, b"".join(ber.encode(tag, value) for tag, value in objects))


def parse_dynamic_auth(data: bytes, source: str) -> dict[int, bytes]:
    """The objects inside 7C; raises ParseError on malformed input."""
    outer = ber.pairs(data, source=source)
    if len(outer) != 1 or outer[0][0] != TAG_DYNAMIC_AUTH:
        raise ParseError("expected one 7C dynamic authentication data object", source=source, offset=0)
    return dict(ber.pairs(outer[0][1], source=source))


# ---- the terminal ----

class _Terminal:
    def __init__(self, channel: Channel, key: AccessKey, info: PaceInfo, rng: Rng) -> None:
        if info.mapping is None or info.cipher is None:
            raise PaceError(f"PACE protocol {info.protocol} is not supported")
        if info.parameter_id is None:
            raise params.UnsupportedParametersError(
                "the chip offers PACE with explicit domain parameters only; they are not supported")
        self.channel, self.key, self.info, self.rng = channel, key, info, rng
        self.mapping: Mapping = info.mapping
        self.cipher: Cipher = info.cipher
        self.group = params.by_id(info.parameter_id)
        if self.group.kind != self.mapping.agreement:
            raise PaceError(f"{self.mapping.label} cannot run on domain parameters {info.parameter_id}")

    def general_authenticate(self, step: str, objects: tuple[tuple[int, bytes], ...], last: bool = False
                             ) -> dict[int, bytes]:
        command = Command(0x00 if last else CLA_CHAINING, Ins.GENERAL_AUTHENTICATE, 0x00, 0x00,
                          dynamic_auth(*objects), le=SHORT_LE_MAX)
        response = self.channel.send(command)
        self.check(response, step)
        try:
            return parse_dynamic_auth(response.data, f"PACE {step}")
        except ParseError as exc:
            raise PaceError(f"PACE {step}: malformed answer ({exc.message})") from exc

    @staticmethod
    def check(response: Response, step: str) -> None:
        if response.sw == SW.WARNING_AUTH_FAILED or response.sw >> 4 == 0x63C:
            raise AccessDeniedError(f"the chip refused the PACE password at {step} ({response.sw:04X})")
        if response.sw != SW.OK:
            raise PaceError(f"PACE {step}: the chip answered {response.sw:04X}")

    def decode(self, data: bytes | None, what: str) -> Element:
        if data is None:
            raise PaceError(f"PACE: the chip's answer lacks its {what}")
        try:
            return self.group.decode(data)
        except ValueError as exc:
            raise PaceError(f"PACE: the chip's {what} is invalid ({exc})") from exc

    def set_at(self, send_parameter_id: bool) -> None:
        body = ber.encode(TAG_PROTOCOL, oid_value(self.info.protocol))
        body += ber.encode(TAG_KEY_REFERENCE, bytes((key_reference(self.key),)))
        if send_parameter_id:
            body += ber.encode(TAG_PARAMETER_ID, bytes((self.group.id,)))
        response = self.channel.send(Command(0x00, Ins.MSE, MSE_SET_AT_P1, MSE_SET_AT_P2, body))
        self.check(response, "MSE:Set AT")

    def nonce(self) -> bytes:
        answer = self.general_authenticate("step 1 (nonce)", ())
        encrypted = answer.get(TAG_NONCE)
        if not encrypted or len(encrypted) % self.cipher.block:
            raise PaceError("PACE step 1: no encrypted nonce in the answer")
        k_pi = crypto.kdf(password(self.key), crypto.KDF_PI, self.cipher)
        return crypto.decrypt(self.cipher, k_pi, encrypted)

    def map_generic(self, nonce: bytes) -> tuple[Element, bytes]:
        sk_map = self.group.random_private(self.rng)
        pk_map = self.group.mul_generator(sk_map)
        answer = self.general_authenticate("step 2 (mapping)", ((TAG_MAP_IFD, self.group.encode(pk_map)),))
        pk_map_ic = self.decode(answer.get(TAG_MAP_IC), "mapping public key")
        if pk_map_ic == pk_map:
            raise PaceError("PACE step 2: the chip echoed our mapping key")
        shared = self.group.mul(sk_map, pk_map_ic)
        return gm_generator(self.group, nonce, shared), self.group.encode(pk_map_ic)

    def map_integrated(self, nonce: bytes) -> Element:
        t = self.rng(len(nonce))
        self.general_authenticate("step 2 (mapping)", ((TAG_MAP_IFD, t),))
        try:
            return im_generator(self.group, self.cipher, nonce, t)
        except ValueError as exc:
            raise PaceError(f"PACE integrated mapping failed: {exc}") from exc

    def run(self, send_parameter_id: bool) -> PaceResult:
        try:
            return self._run(send_parameter_id)
        except ValueError as exc:
            # arithmetic on the chip's values hit an impossible case (point at infinity,
            # identity): a broken or hostile chip, not a wrong password
            raise PaceError(f"PACE: the chip's values are unusable ({exc})") from exc

    def _run(self, send_parameter_id: bool) -> PaceResult:
        if self.mapping in INTEGRATED_MAPPINGS and not im_supported(self.group):
            raise PaceError(f"{self.mapping.label} is not defined on {self.group.name}")
        self.set_at(send_parameter_id)
        nonce = self.nonce()
        chip_map = None
        if self.mapping in INTEGRATED_MAPPINGS:
            generator = self.map_integrated(nonce)
        else:
            generator, chip_map = self.map_generic(nonce)
        sk_eph = self.group.random_private(self.rng)
        pk_eph = self.group.mul(sk_eph, generator)
        answer = self.general_authenticate("step 3 (key agreement)", ((TAG_EPH_IFD, self.group.encode(pk_eph)),))
        pk_eph_ic = self.decode(answer.get(TAG_EPH_IC), "ephemeral public key")
        if pk_eph_ic == pk_eph:
            # 9303-11 §4.4.1 step 4: the ephemeral keys must differ
            raise PaceError("PACE step 3: the chip echoed our ephemeral key")
        shared = self.group.shared_secret(self.group.mul(sk_eph, pk_eph_ic))
        ks_enc, ks_mac = session_keys(shared, self.cipher)
        oid = self.info.protocol
        t_ifd = token(self.cipher, ks_mac, oid, self.group, pk_eph_ic)
        answer = self.general_authenticate("step 4 (tokens)", ((TAG_TOKEN_IFD, t_ifd),), last=True)
        expected = token(self.cipher, ks_mac, oid, self.group, pk_eph)
        if not hmac.compare_digest(answer.get(TAG_TOKEN_IC, b""), expected):
            raise PaceError("PACE step 4: the chip's authentication token does not verify")
        cam_data, ca_ic = self.cam(answer, ks_enc)
        logger.info("PACE established: %s %s param %s", self.mapping.label, self.cipher.label, self.group.id)
        return PaceResult(SecureMessaging(self.channel, ks_enc, ks_mac, self.cipher, 0), oid, self.mapping,
                          self.cipher, self.group.id, key_type(self.key), chip_map,
                          self.group.encode(pk_eph_ic), cam_data, ca_ic)

    def cam(self, answer: dict[int, bytes], ks_enc: bytes) -> tuple[bytes | None, bytes | None]:
        if self.mapping is not Mapping.ECDH_CAM:
            return None, None
        a_ic = answer.get(TAG_CAM_DATA)
        if not a_ic or len(a_ic) % crypto.AES_BLOCK:
            raise PaceError("PACE-CAM: the chip sent no encrypted Chip Authentication data")
        try:
            return a_ic, decrypt_cam_data(ks_enc, a_ic)
        except ValueError as exc:
            raise PaceError("PACE-CAM: the Chip Authentication data does not decrypt") from exc


def authenticate(channel: Channel, key: AccessKey, info: PaceInfo, *, rng: Rng = os.urandom,
                 send_parameter_id: bool = False) -> PaceResult:
    """Run PACE with the protocol and parameters of ``info`` (from EF.CardAccess).

    ``send_parameter_id`` adds DO84 to MSE:Set AT, required when the chip offers more
    than one parameter set (9303-11 §4.4.4.1)."""
    return _Terminal(channel, key, info, rng).run(send_parameter_id)
