"""Symmetric primitives (9303-11 §9.7, §9.8; ISO/IEC 9797-1; NIST SP 800-38B)."""

from __future__ import annotations

import hashlib
import os

import pytest
from Crypto.Cipher import AES, DES
from Crypto.Hash import CMAC

from agent.icao import crypto
from agent.icao.crypto import Cipher

H = bytes.fromhex


@pytest.mark.parametrize("data,padded", [
    (b"", H("8000000000000000")),
    (H("01"), H("0180000000000000")),
    (H("0102030405060708"), H("01020304050607088000000000000000")),
])
def test_padding_method_2(data: bytes, padded: bytes) -> None:
    assert crypto.pad(data) == padded
    assert crypto.unpad(padded) == data


@pytest.mark.parametrize("bad", [H("0000000000000000"), H("0102030405060708"), b""])
def test_unpad_rejects_bad_padding(bad: bytes) -> None:
    with pytest.raises(ValueError):
        crypto.unpad(bad)


def test_aes_cmac_sp800_38b_examples() -> None:
    key = H("2b7e151628aed2a6abf7158809cf4f3c")
    assert crypto.aes_cmac(key, b"") == H("bb1d6929e95937287fa37d129b756746")
    assert crypto.aes_cmac(key, H("6bc1bee22e409f96e93d7e117393172a")) == H("070a16b46b4d4144f79bdd9dd04a287c")
    msg40 = H("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411")
    assert crypto.aes_cmac(key, msg40) == H("dfa66747de9ae63030ca32611497c827")


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 33, 64, 250])
@pytest.mark.parametrize("key_len", [16, 24, 32])
def test_aes_cmac_matches_pycryptodome(size: int, key_len: int) -> None:
    key, data = os.urandom(key_len), os.urandom(size)
    assert crypto.aes_cmac(key, data) == CMAC.new(key, msg=data, ciphermod=AES).digest()


def test_sm_mac_truncates_aes_to_8_bytes() -> None:
    key = os.urandom(16)
    assert crypto.mac(Cipher.AES128, key, b"abc") == crypto.aes_cmac(key, b"abc")[:8]
    assert len(crypto.mac(Cipher.DES3, key, b"abc")) == 8


def test_kdf_hash_choice() -> None:
    secret = b"\x01" * 32
    assert crypto.kdf(secret, 2, Cipher.AES128) == hashlib.sha1(secret + H("00000002")).digest()[:16]
    assert crypto.kdf(secret, 1, Cipher.AES192) == hashlib.sha256(secret + H("00000001")).digest()[:24]
    assert crypto.kdf(secret, 3, Cipher.AES256) == hashlib.sha256(secret + H("00000003")).digest()
    des = crypto.kdf(secret, 1, Cipher.DES3)
    assert des == crypto.adjust_parity(hashlib.sha1(secret + H("00000001")).digest()[:16])
    assert all(bin(b).count("1") % 2 == 1 for b in des)


def test_degenerate_3des_key_still_works() -> None:
    # K1 == K2: 3DES EDE collapses to single DES; pycryptodome refuses such keys
    k = H("0123456789ABCDEF")
    data = os.urandom(16)
    expected = DES.new(k, DES.MODE_CBC, iv=b"\x00" * 8).encrypt(data)
    assert crypto.encrypt(Cipher.DES3, k + k, data) == expected
    assert crypto.decrypt(Cipher.DES3, k + k, expected) == data


def test_sm_iv() -> None:
    key = os.urandom(16)
    ssc = (5).to_bytes(16, "big")
    assert crypto.sm_iv(Cipher.AES128, key, ssc) == AES.new(key, AES.MODE_ECB).encrypt(ssc)
    assert crypto.sm_iv(Cipher.DES3, key, ssc[:8]) == b"\x00" * 8


def test_cbc_needs_whole_blocks() -> None:
    with pytest.raises(ValueError):
        crypto.encrypt(Cipher.AES128, os.urandom(16), b"x" * 15)
