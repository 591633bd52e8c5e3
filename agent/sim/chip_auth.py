"""The card side of Chip Authentication and Active Authentication for the virtual chip.

``ChipAuthHandler()`` plugs into the virtual chip's handler hook
(``chip.add_handler(ChipAuthHandler())``, agent.sim.chip): it is offered every command
after secure-messaging unwrapping and answers the ones it owns, with the keys of the
chip's profile (``ChipProfile.ca_private_key``: a cryptography EC private key or a
``signing.DhPrivateKey``; ``aa_private_key``: RSA or EC) and the chip's rng:

* MSE:Set KAT (00 22 41 A6, 3DES CA, 9303-11 §6.2): agree on the key in DO91,
  answer 9000 under the old keys, then switch to KDF(K, 1/2) with SSC 0;
* MSE:Set AT (00 22 41 A4, DO80 = an id-CA OID) + GENERAL AUTHENTICATE (7C/80 ephemeral
  key, 9303-11 §6.2): the same for AES;
* INTERNAL AUTHENTICATE (00 88 00 00, 8-byte challenge, 9303-11 §6.1): RSA ISO/IEC
  9796-2 scheme 1 or plain ECDSA with the AA key. The ECDSA nonce is derived from the
  key and the challenge (RFC 6979 §3.2, deterministic ECDSA), so a recorded read of
  an ECDSA-AA chip replays byte for byte; the signature verifies like any ECDSA one.

A "cloned" chip is simply this handler holding other keys than DG14/DG15 name.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterator
from typing import Any

from asn1crypto import core
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from agent.errors import ParseError
from agent.icao import aa, ca, certs, params, securityinfo
from agent.icao import tlv as ber
from agent.icao.crypto import Cipher
from agent.icao.params import DhGroup, EcGroup, Element
from agent.icao.sm import SessionKeys
from agent.readers.apdu import SW, Command, Ins, Response
from agent.rng import Rng
from agent.sim.chip import ChipState
from agent.sim.chip_access import CardSession
from agent.sim.signing import DhPrivateKey

logger = logging.getLogger(__name__)



#: key of the pending CA cipher in ``state.extra`` between MSE:Set AT and GENERAL AUTHENTICATE
_PENDING = "chip_auth.pending_cipher"


def _sw(sw: int) -> Response:
    return Response(b"", sw)


def ca_group(ca_key: ec.EllipticCurvePrivateKey | DhPrivateKey) -> tuple[EcGroup | DhGroup, int]:
    """The key agreement group and private scalar of the chip's CA key."""
    if isinstance(ca_key, DhPrivateKey):
        return ca_key.group, ca_key.x
    curve = certs.curve_by_name(ca_key.curve.name.lower())
    group = next((g for g in params.STANDARD.values() if isinstance(g, EcGroup) and g.curve == curve),
                 EcGroup(-1, curve))
    return group, ca_key.private_numbers().private_value


def sign_challenge(aa_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, challenge: bytes, *,
                   rng: Rng, hash_name: str) -> bytes:
    """The chip's INTERNAL AUTHENTICATE answer (9303-11 §6.1)."""
    if isinstance(aa_key, rsa.RSAPrivateKey):
        numbers = aa_key.private_numbers()
        n = numbers.public_numbers.n
        k = (n.bit_length() + 7) // 8
        m1 = rng(aa.m1_length(hash_name, k))
        f = aa.iso9796_2_encode(m1, challenge, hash_name, k)
        return pow(int.from_bytes(f, "big"), numbers.d, n).to_bytes(k, "big")
    r, s = ecdsa_sign_deterministic(aa_key, challenge, hash_name)
    size = (aa_key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _bits2int(data: bytes, qlen: int) -> int:
    """RFC 6979 §2.3.2: the leftmost qlen bits of ``data`` as an integer."""
    value = int.from_bytes(data, "big")
    excess = len(data) * 8 - qlen
    return value >> excess if excess > 0 else value


def rfc6979_nonces(x: int, q: int, h1: bytes, hash_name: str) -> Iterator[int]:
    """The candidate nonces k of RFC 6979 §3.2 for private key ``x``, group order
    ``q`` and message hash ``h1`` (HMAC_DRBG with ``hash_name``), in order."""
    qlen = q.bit_length()
    rolen = (qlen + 7) // 8
    hlen = hashlib.new(hash_name).digest_size

    def mac(key: bytes, data: bytes) -> bytes:
        return hmac.new(key, data, hash_name).digest()

    seed = x.to_bytes(rolen, "big") + (_bits2int(h1, qlen) % q).to_bytes(rolen, "big")
    v, k = b"\x01" * hlen, b"\x00" * hlen
    k = mac(k, v + b"\x00" + seed)
    v = mac(k, v)
    k = mac(k, v + b"\x01" + seed)
    v = mac(k, v)
    while True:
        t = b""
        while len(t) < rolen:
            v = mac(k, v)
            t += v
        candidate = _bits2int(t[:rolen], qlen)
        if 1 <= candidate < q:
            yield candidate
        k = mac(k, v + b"\x00")
        v = mac(k, v)


def ecdsa_sign_deterministic(key: ec.EllipticCurvePrivateKey, message: bytes, hash_name: str) -> tuple[int, int]:
    """ECDSA (r, s) over ``message`` with the RFC 6979 nonce (SEC 1 §4.1.3 signing)."""
    group = _ec_group(key)
    q = group.order
    x = key.private_numbers().private_value
    h1 = hashlib.new(hash_name, message).digest()
    e = _bits2int(h1, q.bit_length())
    for k in rfc6979_nonces(x, q, h1, hash_name):
        r = group.mul_generator(k)[0] % q
        s = pow(k, -1, q) * (e + r * x) % q
        if r and s:
            return r, s
    raise AssertionError("unreachable: the nonce stream is endless")


def _ec_group(key: ec.EllipticCurvePrivateKey) -> EcGroup:
    curve = certs.curve_by_name(key.curve.name.lower())
    return next((g for g in params.STANDARD.values() if isinstance(g, EcGroup) and g.curve == curve),
                EcGroup(-1, curve))


class ChipAuthHandler:
    """Card-side CA and AA for the virtual chip's handler hook.

    ``aa_hash`` is the hash of the AA signature (RSA: the 9796-2 trailer; ECDSA: must
    match DG14's ActiveAuthenticationInfo). ``ca_key`` / ``aa_key`` override the
    profile's keys (a cloned chip: same files, other keys)."""

    def __init__(self, *, aa_hash: str = "sha1", ca_key: Any = None, aa_key: Any = None) -> None:
        self.aa_hash = aa_hash
        self.ca_key = ca_key
        self.aa_key = aa_key

    def handle(self, cmd: Command, state: ChipState) -> Response | None:
        if cmd.ins == Ins.MSE and cmd.p1 == ca.MSE_SET_P1 and cmd.p2 == ca.MSE_KAT:
            return self._set_kat(cmd, state)
        if cmd.ins == Ins.MSE and cmd.p1 == ca.MSE_SET_P1 and cmd.p2 == ca.MSE_AT:
            return self._set_at(cmd, state)
        if cmd.ins == Ins.GENERAL_AUTHENTICATE and _PENDING in state.extra:
            return self._general_authenticate(cmd, state)
        if cmd.ins == Ins.INTERNAL_AUTHENTICATE:
            return self._internal_authenticate(cmd, state)
        return None

    def _ca_key(self, state: ChipState) -> ec.EllipticCurvePrivateKey | DhPrivateKey | None:
        key = self.ca_key if self.ca_key is not None else state.profile.ca_private_key
        return key if isinstance(key, ec.EllipticCurvePrivateKey | DhPrivateKey) else None

    def _aa_key(self, state: ChipState) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None:
        key = self.aa_key if self.aa_key is not None else state.profile.aa_private_key
        return key if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) else None

    # -- chip authentication --

    @staticmethod
    def _objects(data: bytes) -> dict[int, bytes] | None:
        try:
            return dict(ber.pairs(data, source="CA command"))
        except ParseError:
            return None

    def _agree(self, ephemeral: bytes, cipher: Cipher, state: ChipState) -> bool:
        key = self._ca_key(state)
        if key is None:
            return False
        group, private = ca_group(key)
        try:
            peer: Element = group.decode(ephemeral)
            shared = group.shared_secret(group.mul(private, peer))
        except ValueError:
            return False
        ks_enc, ks_mac = ca.session_keys(shared, cipher)
        state.set_session_after_response(CardSession(SessionKeys(ks_enc, ks_mac, cipher), ssc=0))
        logger.debug("virtual chip: chip authentication keys set (%s)", cipher.label)
        return True

    def _set_kat(self, command: Command, state: ChipState) -> Response:
        objects = self._objects(command.data)
        if self._ca_key(state) is None:
            return _sw(SW.FUNCTION_NOT_SUPPORTED)
        if objects is None or ca.DO_EPHEMERAL_KEY not in objects:
            return _sw(SW.WRONG_DATA)
        if not self._agree(objects[ca.DO_EPHEMERAL_KEY], Cipher.DES3, state):
            return _sw(SW.WRONG_DATA)
        return _sw(SW.OK)

    def _set_at(self, command: Command, state: ChipState) -> Response | None:
        objects = self._objects(command.data)
        if objects is None or ca.DO_PROTOCOL not in objects:
            return None
        protocol = _oid_from_value(objects[ca.DO_PROTOCOL])
        known = securityinfo.ca_protocol(protocol) if protocol else None
        if known is None:
            return None
        if self._ca_key(state) is None:
            return _sw(SW.REFERENCED_DATA_NOT_FOUND)
        state.extra[_PENDING] = known[1]
        return _sw(SW.OK)

    def _general_authenticate(self, command: Command, state: ChipState) -> Response:
        cipher = state.extra.pop(_PENDING, None)
        objects = self._objects(command.data)
        inner = self._objects(objects.get(ca.DO_DYNAMIC_AUTH, b"")) if objects else None
        if not isinstance(cipher, Cipher) or inner is None or ca.DO_GA_EPHEMERAL not in inner:
            return _sw(SW.WRONG_DATA)
        if not self._agree(inner[ca.DO_GA_EPHEMERAL], cipher, state):
            return _sw(SW.WRONG_DATA)
        return Response(ber.encode(ca.DO_DYNAMIC_AUTH, b""), SW.OK)

    # -- active authentication --

    def _internal_authenticate(self, command: Command, state: ChipState) -> Response:
        key = self._aa_key(state)
        if key is None:
            return _sw(SW.INS_NOT_SUPPORTED)
        if len(command.data) != aa.CHALLENGE_LEN:
            return _sw(SW.WRONG_LENGTH)
        return Response(sign_challenge(key, command.data, rng=state.rng, hash_name=self.aa_hash), SW.OK)


def _oid_from_value(value: bytes) -> str | None:
    try:
        return str(core.ObjectIdentifier.load(b"\x06" + bytes((len(value),)) + value).dotted)
    except (ValueError, TypeError):
        return None
