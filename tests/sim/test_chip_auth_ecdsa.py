"""The virtual chip's ECDSA Active Authentication is deterministic (RFC 6979 nonce), so
recordings of an ECDSA-AA chip replay, and its signatures still verify as ECDSA."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from agent.sim.chip_auth import ecdsa_sign_deterministic, rfc6979_nonces, sign_challenge

# RFC 6979 Appendix A.2.5 (ECDSA, 256 bits, NIST P-256), SHA-256
P256_Q = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
X = 0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721
SAMPLE_K = 0xA6E3C57DD01ABE90086538398355DD4C3B17AA873382B0F24D6129493D8AAD60
SAMPLE_R = 0xEFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716
SAMPLE_S = 0xF7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8
TEST_K = 0xD16B6AE827F17175E040871A1C7EC3500192C4C92677336EC2537ACAEE0008E0


def _no_rng(n: int) -> bytes:
    raise AssertionError("ECDSA Active Authentication must not draw randomness")


def test_rfc6979_nonce_vectors() -> None:
    assert next(rfc6979_nonces(X, P256_Q, hashlib.sha256(b"sample").digest(), "sha256")) == SAMPLE_K
    assert next(rfc6979_nonces(X, P256_Q, hashlib.sha256(b"test").digest(), "sha256")) == TEST_K


def test_rfc6979_signature_vector() -> None:
    key = ec.derive_private_key(X, ec.SECP256R1())
    assert ecdsa_sign_deterministic(key, b"sample", "sha256") == (SAMPLE_R, SAMPLE_S)


def test_aa_signature_is_deterministic_and_verifies() -> None:
    key = ec.derive_private_key(0x1234567890ABCDEF << 64, ec.BrainpoolP256R1())
    challenge = bytes.fromhex("0102030405060708")
    first = sign_challenge(key, challenge, rng=_no_rng, hash_name="sha256")
    assert first == sign_challenge(key, challenge, rng=_no_rng, hash_name="sha256")
    assert first != sign_challenge(key, bytes(8), rng=_no_rng, hash_name="sha256")
    r, s = int.from_bytes(first[:32], "big"), int.from_bytes(first[32:], "big")
    key.public_key().verify(encode_dss_signature(r, s), challenge, ec.ECDSA(hashes.SHA256()))
