"""Basic Access Control (ICAO 9303-11 §4.3): document basic access keys from the MRZ
data, the mutual authentication, and the session keys of 3DES secure messaging.

Public API:

* ``mrz_information(key)``: document number, birth and expiry dates with check digits.
* ``basic_access_keys(key) -> (k_enc, k_mac)``: 9303-11 §9.7.2.
* ``authenticate(channel, key, rng) -> SecureMessaging``: GET CHALLENGE + EXTERNAL
  AUTHENTICATE; raises ``AccessDeniedError`` on 6300 (wrong MRZ data).
* ``session_from_exchange(...)``, ``build_cryptogram``, ``open_cryptogram``: the pieces
  the virtual chip reuses for the card side.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from dataclasses import dataclass

from agent.errors import ProtocolError
from agent.icao import crypto
from agent.icao.crypto import Cipher
from agent.icao.keys import MrzKey
from agent.icao.mrz import check_digit
from agent.icao.sm import AccessDeniedError, SecureMessaging
from agent.readers.apdu import SW, ApduError, Channel, Command, Ins, check
from agent.rng import Rng

logger = logging.getLogger(__name__)


RND_LEN = 8
KEY_MATERIAL_LEN = 16
#: E_IFD (32) + M_IFD (8)
CRYPTOGRAM_LEN = 40
#: the document number field of the MRZ is 9 characters, '<'-filled (9303-3 §4.2)
DOC_NUMBER_FIELD = 9


def mrz_information(key: MrzKey) -> str:
    """9303-11 §9.7.2: doc number + check digit, DOB + check digit, expiry + check digit."""
    number = key.document_number.upper().ljust(DOC_NUMBER_FIELD, "<")
    return "".join(field + str(check_digit(field))
                   for field in (number, key.date_of_birth, key.date_of_expiry))


def key_seed(key: MrzKey) -> bytes:
    """K_seed: the first 16 bytes of SHA-1 over the MRZ information (9303-11 §9.7.2)."""
    return hashlib.sha1(mrz_information(key).encode("ascii")).digest()[:16]


def basic_access_keys(key: MrzKey) -> tuple[bytes, bytes]:
    """(K_enc, K_mac) of BAC: KDF(K_seed, 1) and KDF(K_seed, 2) with 3DES parity."""
    seed = key_seed(key)
    return crypto.kdf(seed, crypto.KDF_ENC, Cipher.DES3), crypto.kdf(seed, crypto.KDF_MAC, Cipher.DES3)


def build_cryptogram(k_enc: bytes, k_mac: bytes, plain: bytes) -> bytes:
    """E = 3DES-CBC(K_enc, plain) followed by M = retail MAC(K_mac, E) (9303-11 §4.3.3)."""
    encrypted = crypto.encrypt(Cipher.DES3, k_enc, plain)
    return encrypted + crypto.mac(Cipher.DES3, k_mac, encrypted)


def open_cryptogram(k_enc: bytes, k_mac: bytes, data: bytes) -> bytes | None:
    """Verify M and decrypt E; None when the length or the MAC is wrong."""
    if len(data) != CRYPTOGRAM_LEN:
        return None
    encrypted, tag = data[:32], data[32:]
    if not hmac.compare_digest(crypto.mac(Cipher.DES3, k_mac, encrypted), tag):
        return None
    return crypto.decrypt(Cipher.DES3, k_enc, encrypted)


@dataclass(frozen=True, repr=False)
class BacSession:
    """The outcome of BAC: 3DES session keys and the starting SSC."""

    ks_enc: bytes
    ks_mac: bytes
    ssc: int

    def __repr__(self) -> str:
        return "BacSession(keys=******)"


def session_from_exchange(k_ifd: bytes, k_ic: bytes, rnd_ic: bytes, rnd_ifd: bytes) -> BacSession:
    """9303-11 §9.7.3 / §9.8.2: K_seed = K.IFD xor K.IC; SSC = the last 4 bytes of
    RND.IC || the last 4 bytes of RND.IFD."""
    seed = bytes(a ^ b for a, b in zip(k_ifd, k_ic, strict=True))
    ssc = int.from_bytes(rnd_ic[4:] + rnd_ifd[4:], "big")
    return BacSession(crypto.kdf(seed, crypto.KDF_ENC, Cipher.DES3),
                      crypto.kdf(seed, crypto.KDF_MAC, Cipher.DES3), ssc)


def get_challenge(channel: Channel) -> bytes:
    response = channel.send(Command(0x00, Ins.GET_CHALLENGE, 0x00, 0x00, le=RND_LEN))
    rnd_ic = check(response, "GET CHALLENGE")
    if len(rnd_ic) != RND_LEN:
        raise ProtocolError(f"GET CHALLENGE returned {len(rnd_ic)} bytes, expected {RND_LEN}")
    return rnd_ic


def authenticate(channel: Channel, key: MrzKey, rng: Rng = os.urandom) -> SecureMessaging:
    """Run BAC (9303-11 §4.3.3) and return 3DES secure messaging over ``channel``.

    ``rng`` supplies RND.IFD (8 bytes) then K.IFD (16 bytes), in that order."""
    k_enc, k_mac = basic_access_keys(key)
    rnd_ic = get_challenge(channel)
    rnd_ifd = rng(RND_LEN)
    k_ifd = rng(KEY_MATERIAL_LEN)
    data = build_cryptogram(k_enc, k_mac, rnd_ifd + rnd_ic + k_ifd)
    response = channel.send(Command(0x00, Ins.EXTERNAL_AUTHENTICATE, 0x00, 0x00, data, le=CRYPTOGRAM_LEN))
    if response.sw == SW.WARNING_AUTH_FAILED:
        raise AccessDeniedError("the chip refused the MRZ data (BAC answered 6300)")
    try:
        answer = check(response, "EXTERNAL AUTHENTICATE")
    except ApduError as exc:
        if response.sw in (SW.SECURITY_STATUS_NOT_SATISFIED, SW.CONDITIONS_NOT_SATISFIED):
            raise AccessDeniedError(f"the chip refused BAC ({response.sw:04X})") from exc
        raise
    plain = open_cryptogram(k_enc, k_mac, answer)
    if plain is None:
        raise ProtocolError("BAC: the chip's cryptogram does not verify")
    if not hmac.compare_digest(plain[:8], rnd_ic) or not hmac.compare_digest(plain[8:16], rnd_ifd):
        raise ProtocolError("BAC: the chip's cryptogram does not echo our challenge")
    session = session_from_exchange(k_ifd, plain[16:32], rnd_ic, rnd_ifd)
    logger.info("BAC established")
    return SecureMessaging(channel, session.ks_enc, session.ks_mac, Cipher.DES3, session.ssc)
