"""Domain parameters 0-18 (9303-11 §9.5.1) and the EC arithmetic, checked against
OpenSSL through `cryptography` where it knows the curve."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec as cec

from agent.icao import ec, params

_OPENSSL = {8: cec.SECP192R1, 9: cec.BrainpoolP192R1 if hasattr(cec, "BrainpoolP192R1") else None,
            10: cec.SECP224R1, 12: cec.SECP256R1, 13: cec.BrainpoolP256R1, 15: cec.SECP384R1,
            16: cec.BrainpoolP384R1, 17: cec.BrainpoolP512R1, 18: cec.SECP521R1}
EC_IDS = [pid for pid, g in params.STANDARD.items() if g.kind == "ECDH"]


def test_ids() -> None:
    assert sorted(params.STANDARD) == [0, 1, 2, *range(8, 19)]
    assert [params.STANDARD[i].name for i in (13, 18)] == ["brainpoolP256r1", "P-521"]
    with pytest.raises(params.UnsupportedParametersError):
        params.by_id(5)


@pytest.mark.parametrize("pid", EC_IDS)
def test_curve_consistency(pid: int) -> None:
    group = params.STANDARD[pid]
    assert isinstance(group, params.EcGroup)
    curve = group.curve
    assert ec.is_on_curve(curve, curve.generator)
    assert ec.mul(curve, curve.n, curve.generator) is None
    k = int.from_bytes(os.urandom(curve.order_len), "big") % curve.n
    assert ec.mul(curve, k, curve.generator) == ec.mul_base(curve, k)
    a, b = k // 3 + 1, k // 5 + 7
    assert ec.add(curve, ec.mul_base(curve, a), ec.mul_base(curve, b)) == ec.mul_base(curve, a + b)
    assert ec.add(curve, ec.mul_base(curve, a), ec.negate(curve, ec.mul_base(curve, a))) is None


@pytest.mark.parametrize("pid", [pid for pid, c in _OPENSSL.items() if c is not None])
def test_against_openssl(pid: int) -> None:
    group = params.STANDARD[pid]
    assert isinstance(group, params.EcGroup)
    curve_cls = _OPENSSL[pid]
    assert curve_cls is not None
    k = 1 + int.from_bytes(os.urandom(group.curve.order_len), "big") % (group.order - 1)
    numbers = cec.derive_private_key(k, curve_cls()).public_key().public_numbers()
    assert group.mul_generator(k) == (numbers.x, numbers.y)


@pytest.mark.parametrize("pid", [0, 1, 2])
def test_modp_groups(pid: int) -> None:
    group = params.STANDARD[pid]
    assert isinstance(group, params.DhGroup)
    assert pow(group.g, group.q, group.p) == 1 and group.g != 1
    y = group.mul_generator(12345)
    assert group.decode(group.encode(y)) == y
    with pytest.raises(ValueError):
        group.decode((2).to_bytes(group.size, "big") if pow(2, group.q, group.p) != 1 else b"\x01")


def test_decode_rejects_off_curve_and_pads_coordinates() -> None:
    group = params.STANDARD[13]
    assert isinstance(group, params.EcGroup)
    point = group.mul_generator(7)
    encoded = group.encode(point)
    assert len(encoded) == 65
    with pytest.raises(ValueError):
        group.decode(encoded[:-1] + bytes((encoded[-1] ^ 1,)))
    with pytest.raises(ValueError):
        group.decode(encoded[1:])
    # a point whose x has a leading zero byte still encodes at full width
    k = 1
    while True:
        p = group.mul_generator(k)
        if p[0] < 1 << 248:
            break
        k += 1
    assert len(group.encode(p)) == 65 and group.decode(group.encode(p)) == p


def test_random_scalar_redraws_zero() -> None:
    draws = iter([b"\x00" * 32, b"\x00" * 31 + b"\x05"])
    assert ec.random_scalar(lambda n: next(draws), params.STANDARD[13].order) == 5
