"""Symmetric primitives of ICAO 9303-11: padding, 3DES/AES in CBC mode, the retail MAC,
AES-CMAC, the key derivation function and the SSC-derived IV of AES secure messaging.

Public API (used by BAC, PACE, secure messaging and Chip Authentication):

* ``Cipher``: the four SM ciphers (3DES, AES-128/192/256) with key and block sizes.
* ``pad`` / ``unpad``: ISO/IEC 9797-1 padding method 2.
* ``encrypt(cipher, key, data, iv)`` / ``decrypt(...)``: CBC without padding.
* ``mac(cipher, key, data)``: the 8-byte MAC of unpadded data as PACE tokens use it
  (3DES: retail MAC over pad(data); AES: CMAC truncated to 8 bytes).
* ``retail_mac``, ``aes_cmac``: the two MACs themselves.
* ``kdf(secret, counter, cipher)``: 9303-11 §9.7.1; ``KDF_ENC``, ``KDF_MAC``, ``KDF_PI``.
* ``adjust_parity``: DES odd parity (9303-11 §9.7.1 keys for 3DES).
* ``sm_iv(cipher, ks_enc, ssc)``: 9303-11 §9.8.6.1, IV = E(KSenc, SSC) for AES, zero for 3DES.

Keys never reach a log.
"""

from __future__ import annotations

import enum
import functools
import hashlib

from Crypto.Cipher import AES
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher as _CipherEngine
from cryptography.hazmat.primitives.ciphers import modes

#: KDF counters (9303-11 §9.7.1)
KDF_ENC = 1
KDF_MAC = 2
KDF_PI = 3

#: ISO/IEC 9797-1 padding method 2 starts with this byte
PAD_START = 0x80

DES_BLOCK = 8
AES_BLOCK = 16
#: secure messaging MACs are 8 bytes for every cipher (9303-11 §9.8.3)
SM_MAC_LEN = 8


class Cipher(enum.Enum):
    """Secure-messaging ciphers. Value: (name, key length, block length)."""

    DES3 = ("3DES", 16, DES_BLOCK)
    AES128 = ("AES-128", 16, AES_BLOCK)
    AES192 = ("AES-192", 24, AES_BLOCK)
    AES256 = ("AES-256", 32, AES_BLOCK)

    @property
    def label(self) -> str:
        return self.value[0]

    @property
    def key_len(self) -> int:
        return self.value[1]

    @property
    def block(self) -> int:
        return self.value[2]

    @property
    def is_aes(self) -> bool:
        return self is not Cipher.DES3


def pad(data: bytes, block: int = DES_BLOCK) -> bytes:
    """ISO/IEC 9797-1 padding method 2: 0x80 then zeros up to a block multiple."""
    fill = block - (len(data) + 1) % block
    if fill == block:
        fill = 0
    return data + b"\x80" + b"\x00" * fill


def unpad(data: bytes) -> bytes:
    """Undo ``pad``; raise ValueError when the padding is malformed."""
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != PAD_START:
        raise ValueError("bad ISO 9797-1 method 2 padding")
    return stripped[:-1]


def adjust_parity(key: bytes) -> bytes:
    """Set each byte's low bit so the byte has odd parity (DES key convention)."""
    out = bytearray()
    for byte in key:
        high = byte & 0xFE
        out.append(high | (bin(high).count("1") + 1) % 2)
    return bytes(out)


def _des3_key(key: bytes) -> bytes:
    """Two-key 3DES (K1, K2) as the 24-byte K1 K2 K1 key of three-key EDE."""
    if len(key) == 16:
        return key + key[:8]
    if len(key) == 24:
        return key
    raise ValueError("3DES key must be 16 or 24 bytes")


def _tdes(key24: bytes, mode: modes.CBC | modes.ECB, data: bytes, encrypt: bool) -> bytes:
    """3DES through OpenSSL (``cryptography``): pycryptodome's DES3 recomputes key
    parity in Python on every call (~110 µs per SM APDU, measured) and refuses
    K1 = K2, which single DES (K1 = K2 = K3) needs in the retail MAC."""
    engine = _CipherEngine(TripleDES(key24), mode)
    ctx = engine.encryptor() if encrypt else engine.decryptor()
    return ctx.update(data) + ctx.finalize()


def _des3_cbc(key: bytes, data: bytes, iv: bytes, encrypt: bool) -> bytes:
    return _tdes(_des3_key(key), modes.CBC(iv), data, encrypt)


def _cbc(cipher: Cipher, key: bytes, data: bytes, iv: bytes | None, encrypt: bool) -> bytes:
    if len(data) % cipher.block:
        raise ValueError("data is not a multiple of the block size")
    iv = iv if iv is not None else b"\x00" * cipher.block
    if cipher is Cipher.DES3:
        return _des3_cbc(key, data, iv, encrypt)
    aes = AES.new(key, AES.MODE_CBC, iv=iv)
    return aes.encrypt(data) if encrypt else aes.decrypt(data)


def encrypt(cipher: Cipher, key: bytes, data: bytes, iv: bytes | None = None) -> bytes:
    """CBC-encrypt ``data`` (already a block multiple); zero IV by default."""
    return _cbc(cipher, key, data, iv, True)


def decrypt(cipher: Cipher, key: bytes, data: bytes, iv: bytes | None = None) -> bytes:
    """CBC-decrypt ``data`` (a block multiple); zero IV by default."""
    return _cbc(cipher, key, data, iv, False)


def retail_mac(key: bytes, data: bytes) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 with DES (9303-11 §9.8.3.1): single-DES CBC with
    K1 over all blocks, then decrypt with K2 and encrypt with K1 on the last one.
    ``data`` must already be padded."""
    if len(data) % DES_BLOCK or not data:
        raise ValueError("retail MAC input must be padded to 8 bytes")
    k1, k2 = key[:8], key[8:16]
    # single-DES CBC (K1 three times) over all blocks but the last, then the last one
    # through EDE(K1, K2, K1): the same as ending with D_K2 then E_K1 (ISO 9797-1 §7.2.3)
    chain = b"\x00" * DES_BLOCK
    if len(data) > DES_BLOCK:
        chain = _tdes(k1 * 3, modes.CBC(chain), data[:-DES_BLOCK], True)[-DES_BLOCK:]
    last = (int.from_bytes(data[-DES_BLOCK:], "big") ^ int.from_bytes(chain, "big")).to_bytes(DES_BLOCK, "big")
    return _tdes(k1 + k2 + k1, modes.ECB(), last, True)


#: SP 800-38B §5.3: R_128 for the subkey doubling
_CMAC_RB = 0x87
_BLOCK_MASK = (1 << 128) - 1


def _dbl(block: int) -> int:
    shifted = (block << 1) & _BLOCK_MASK
    return shifted ^ _CMAC_RB if block >> 127 else shifted


@functools.lru_cache(maxsize=32)
def _aes_ecb(key: bytes):  # type: ignore[no-untyped-def]
    """One ECB engine per key: SM asks for E(KSenc, SSC) and CMAC blocks on every APDU."""
    return AES.new(key, AES.MODE_ECB)


@functools.lru_cache(maxsize=32)
def _cmac_subkeys(key: bytes) -> tuple[int, int]:
    k1 = _dbl(int.from_bytes(_aes_ecb(key).encrypt(b"\x00" * AES_BLOCK), "big"))
    return k1, _dbl(k1)


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """The full 16-byte AES-CMAC (NIST SP 800-38B §6.2). All blocks but the last go
    through one C-level CBC pass; the last is masked with K1 (complete) or K2 (padded)."""
    k1, k2 = _cmac_subkeys(key)
    if data and len(data) % AES_BLOCK == 0:
        head, last, mask = data[:-AES_BLOCK], data[-AES_BLOCK:], k1
    else:
        padded = pad(data, AES_BLOCK)
        head, last, mask = padded[:-AES_BLOCK], padded[-AES_BLOCK:], k2
    chain = 0
    if head:
        chain = int.from_bytes(AES.new(key, AES.MODE_CBC, iv=b"\x00" * AES_BLOCK).encrypt(head)[-AES_BLOCK:], "big")
    final = int.from_bytes(last, "big") ^ mask ^ chain
    return bytes(_aes_ecb(key).encrypt(final.to_bytes(AES_BLOCK, "big")))


def mac(cipher: Cipher, key: bytes, data: bytes) -> bytes:
    """The 8-byte MAC used by SM and PACE tokens (9303-11 §9.8.3): retail MAC over
    ``pad(data)`` for 3DES, AES-CMAC truncated to 8 bytes for AES (CMAC pads itself)."""
    if cipher is Cipher.DES3:
        return retail_mac(key, pad(data, DES_BLOCK))
    return aes_cmac(key, data)[:SM_MAC_LEN]


def kdf(secret: bytes, counter: int, cipher: Cipher) -> bytes:
    """9303-11 §9.7.1: H(secret || counter as 32-bit big endian), SHA-1 for 3DES and
    AES-128, SHA-256 for AES-192/256; 3DES keys get DES parity bits."""
    material = secret + counter.to_bytes(4, "big")
    if cipher in (Cipher.DES3, Cipher.AES128):
        digest = hashlib.sha1(material).digest()
    else:
        digest = hashlib.sha256(material).digest()
    key = digest[:cipher.key_len]
    return adjust_parity(key) if cipher is Cipher.DES3 else key


def sm_iv(cipher: Cipher, ks_enc: bytes, ssc: bytes) -> bytes:
    """The CBC IV of SM encryption (9303-11 §9.8.6.1): E(KSenc, SSC) for AES, zero for 3DES."""
    if cipher is Cipher.DES3:
        return b"\x00" * DES_BLOCK
    return bytes(_aes_ecb(ks_enc).encrypt(ssc))
