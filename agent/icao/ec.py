"""Elliptic-curve arithmetic over prime fields, for PACE Generic Mapping (G' = s·G + H,
9303-11 §4.4.3.3.1) and the ephemeral key agreement on the mapped generator, which no
library exposes (they only multiply their own standard generator).

Points are affine ``(x, y)`` tuples of Python ints; ``None`` is the point at infinity.
Inside, scalar multiplication works in Jacobian coordinates with a width-5 NAF for
arbitrary points and a fixed 4-bit window table per curve for the standard generator
(built once, lazily), so a 256-bit multiplication costs a few hundred field
multiplications of C-speed Python ints.

Public API: ``Curve``, ``Point``, ``is_on_curve``, ``add``, ``negate``, ``mul``,
``mul_base``, ``encode_point``, ``decode_point``, ``random_scalar``,
``coordinate_bytes``. Encodings always pad coordinates to the field size (domain.md:
an unpadded 31-byte coordinate broke PACE on real chips).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

Point = tuple[int, int] | None
_Jacobian = tuple[int, int, int]

#: uncompressed point encoding (SEC 1 §2.3.3, 9303-11 §9.4.4)
UNCOMPRESSED = 0x04
_WNAF_WIDTH = 5
_BASE_WINDOW = 4


@dataclass(frozen=True)
class Curve:
    """Short Weierstrass curve y² = x³ + a·x + b over GF(p), generator (gx, gy) of order n."""

    name: str
    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int
    h: int = 1

    @property
    def field_len(self) -> int:
        return (self.p.bit_length() + 7) // 8

    @property
    def order_len(self) -> int:
        return (self.n.bit_length() + 7) // 8

    @property
    def generator(self) -> tuple[int, int]:
        return (self.gx, self.gy)

    @property
    def a_is_minus_3(self) -> bool:
        return (self.a + 3) % self.p == 0


def is_on_curve(curve: Curve, point: Point) -> bool:
    if point is None:
        return False
    x, y = point
    p = curve.p
    if not (0 <= x < p and 0 <= y < p):
        return False
    return (y * y - (x * x * x + curve.a * x + curve.b)) % p == 0


def negate(curve: Curve, point: Point) -> Point:
    if point is None:
        return None
    return (point[0], (-point[1]) % curve.p)


def _double(curve: Curve, pt: _Jacobian) -> _Jacobian:
    x, y, z = pt
    p = curve.p
    if z == 0 or y == 0:
        return (1, 1, 0)
    yy = y * y % p
    s = 4 * x * yy % p
    zz = z * z % p
    if curve.a_is_minus_3:
        m = 3 * (x - zz) * (x + zz) % p
    else:
        m = (3 * x * x + curve.a * zz * zz) % p
    x3 = (m * m - 2 * s) % p
    y3 = (m * (s - x3) - 8 * yy * yy) % p
    return (x3, y3, 2 * y * z % p)


def _add_affine(curve: Curve, pt: _Jacobian, q: tuple[int, int]) -> _Jacobian:
    """Jacobian + affine ("mixed") addition."""
    x1, y1, z1 = pt
    p = curve.p
    if z1 == 0:
        return (q[0], q[1], 1)
    z1z1 = z1 * z1 % p
    u2 = q[0] * z1z1 % p
    s2 = q[1] * z1 * z1z1 % p
    h = (u2 - x1) % p
    r = (s2 - y1) % p
    if h == 0:
        return _double(curve, pt) if r == 0 else (1, 1, 0)
    hh = h * h % p
    hhh = h * hh % p
    v = x1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    y3 = (r * (v - x3) - y1 * hhh) % p
    return (x3, y3, z1 * h % p)


def _to_affine(curve: Curve, pt: _Jacobian) -> Point:
    x, y, z = pt
    if z == 0:
        return None
    p = curve.p
    zinv = pow(z, -1, p)
    zinv2 = zinv * zinv % p
    return (x * zinv2 % p, y * zinv2 * zinv % p)


def add(curve: Curve, first: Point, second: Point) -> Point:
    """Affine addition P + Q."""
    if first is None:
        return second
    if second is None:
        return first
    return _to_affine(curve, _add_affine(curve, (first[0], first[1], 1), second))


def _wnaf(k: int, width: int) -> list[int]:
    """Width-w non-adjacent form, least significant digit first."""
    digits: list[int] = []
    full = 1 << width
    half = full >> 1
    while k:
        if k & 1:
            d = k & (full - 1)
            if d >= half:
                d -= full
            k -= d
        else:
            d = 0
        digits.append(d)
        k >>= 1
    return digits


def mul(curve: Curve, k: int, point: Point) -> Point:
    """k·P for any point P on the curve (wNAF, Jacobian)."""
    k %= curve.n
    if point is None or k == 0:
        return None
    # odd multiples P, 3P, 5P, ... kept affine so the main loop uses mixed additions
    twice = _to_affine(curve, _double(curve, (point[0], point[1], 1)))
    odd: list[tuple[int, int]] = [point]
    for _ in range((1 << (_WNAF_WIDTH - 2)) - 1):
        nxt = add(curve, odd[-1], twice)
        if nxt is None:  # only for tiny orders; fall back to the plain ladder
            break
        odd.append(nxt)
    if len(odd) < 1 << (_WNAF_WIDTH - 2):
        return _mul_plain(curve, k, point)
    return _to_affine(curve, _wnaf_loop(curve, _wnaf(k, _WNAF_WIDTH), odd))


def _wnaf_loop(curve: Curve, digits: list[int], odd: list[tuple[int, int]]) -> _Jacobian:
    """The double-and-add loop with doubling and mixed addition inlined: this is
    where PACE spends its time, and Python function calls cost a fifth of it."""
    p, a = curve.p, curve.a
    minus_3 = curve.a_is_minus_3
    x, y, z = 1, 1, 0
    for d in reversed(digits):
        if z:  # double (same formulas as _double)
            yy = y * y % p
            s = 4 * x * yy % p
            zz = z * z % p
            m = 3 * (x - zz) * (x + zz) % p if minus_3 else (3 * x * x + a * zz * zz) % p
            x3 = (m * m - 2 * s) % p
            z = 2 * y * z % p
            y = (m * (s - x3) - 8 * yy * yy) % p
            x = x3
        if d == 0:
            continue
        qx, qy = odd[d >> 1] if d > 0 else odd[(-d) >> 1]
        if d < 0:
            qy = p - qy
        if z == 0:
            x, y, z = qx, qy, 1
            continue
        z1z1 = z * z % p
        h = (qx * z1z1 - x) % p
        r = (qy * z * z1z1 - y) % p
        if h == 0:
            x, y, z = _add_affine(curve, (x, y, z), (qx, qy))  # doubling or infinity: rare
            continue
        hh = h * h % p
        hhh = h * hh % p
        v = x * hh % p
        x3 = (r * r - hhh - 2 * v) % p
        y = (r * (v - x3) - y * hhh) % p
        z = z * h % p
        x = x3
    return (x, y, z)


def _mul_plain(curve: Curve, k: int, point: tuple[int, int]) -> Point:
    acc: _Jacobian = (1, 1, 0)
    for bit in bin(k)[2:]:
        acc = _double(curve, acc)
        if bit == "1":
            acc = _add_affine(curve, acc, point)
    return _to_affine(curve, acc)


@functools.cache
def _base_table(curve: Curve) -> tuple[tuple[tuple[int, int], ...], ...]:
    """rows[i][j] = (j+1)·16^i·G, affine; lets k·G be pure additions."""
    rows = []
    base: Point = curve.generator
    windows = (curve.n.bit_length() + _BASE_WINDOW - 1) // _BASE_WINDOW
    for _ in range(windows):
        assert base is not None
        row = [base]
        for _ in range((1 << _BASE_WINDOW) - 2):
            nxt = add(curve, row[-1], base)
            assert nxt is not None
            row.append(nxt)
        rows.append(tuple(row))
        base = add(curve, row[-1], base)  # 16·base
    return tuple(rows)


def mul_base(curve: Curve, k: int) -> Point:
    """k·G for the curve's standard generator, from the precomputed window table."""
    k %= curve.n
    if k == 0:
        return None
    table = _base_table(curve)
    acc: _Jacobian = (1, 1, 0)
    mask = (1 << _BASE_WINDOW) - 1
    i = 0
    while k:
        nibble = k & mask
        if nibble:
            acc = _add_affine(curve, acc, table[i][nibble - 1])
        k >>= _BASE_WINDOW
        i += 1
    return _to_affine(curve, acc)


def coordinate_bytes(curve: Curve, value: int) -> bytes:
    """A field element as exactly ``field_len`` bytes (never stripped of leading zeros)."""
    return value.to_bytes(curve.field_len, "big")


def encode_point(curve: Curve, point: Point) -> bytes:
    """Uncompressed encoding 04 || X || Y, each coordinate padded to the field size."""
    if point is None:
        raise ValueError("the point at infinity has no encoding here")
    return bytes((UNCOMPRESSED,)) + coordinate_bytes(curve, point[0]) + coordinate_bytes(curve, point[1])


def decode_point(curve: Curve, data: bytes) -> tuple[int, int]:
    """Parse an uncompressed point and check it lies on the curve (invalid-curve attacks)."""
    size = curve.field_len
    if len(data) != 1 + 2 * size or data[0] != UNCOMPRESSED:
        raise ValueError("not an uncompressed point of this curve")
    point = (int.from_bytes(data[1:1 + size], "big"), int.from_bytes(data[1 + size:], "big"))
    if not is_on_curve(curve, point):
        raise ValueError("point is not on the curve")
    return point


def random_scalar(rng: Callable[[int], bytes], order: int) -> int:
    """A private key in [1, order): rng bytes (as many as the order has) reduced mod
    the order. Deterministic for a given rng, so recorded sessions replay; a zero is
    re-drawn."""
    size = (order.bit_length() + 7) // 8
    while True:
        k = int.from_bytes(rng(size), "big") % order
        if k:
            return k
