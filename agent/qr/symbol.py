"""A QR symbol decoder from a module matrix, with Reed-Solomon errors-and-erasures decoding.

The last stage after a grid sampler (issue 12): the sampler turns a located code into an
n x n matrix of module values and marks the modules it could not read (saturated by a
sleeve's glare, or too uncertain) as *erased*. zxing and ZBar take an image and know
nothing of erasures; an erased codeword costs Reed-Solomon half of what an unknown error
costs, so a glare streak that would sink them can still decode here.

:func:`decode_modules` is pure (numpy only, no I/O) and never raises: anything that is not
a readable QR code (model 2, versions 1-40, not mirrored) gives None. The payload is the
symbol's data bytes exactly as zxing-cpp's ``Barcode.bytes`` gives them (segments
concatenated; numeric and alphanumeric as ASCII, byte mode raw, kanji as Shift_JIS,
hanzi as GB2312; ECI designators dropped; FNC1's application indicator and '%' rules
applied).

Facts from ISO/IEC 18004:2015 (clause numbers of that edition):

* 7.3 mode indicators (Table 2), character count widths by version range (Table 3);
  7.4.3-7.4.6 numeric, alphanumeric (Table 5), byte, kanji encodation; 7.4.2 ECI;
  7.4.8 FNC1 (first and second position, '%' handling); 8 structured append header;
  7.4.9 terminator, 7.4.10 pad codewords 0xEC 0x11;
* 7.5 error correction: Table 9 (blocks and EC codewords per version and level), 7.5.2
  generator polynomial over GF(2^8) with prime polynomial 0x11d, roots alpha^0 ...
  alpha^(ecc-1) (annex A);
* 7.6 interleaving of the blocks, 7.7.3 codeword placement (upward/downward 2-module
  columns skipping the vertical timing pattern);
* 6.3 function patterns (finder, separator, timing, alignment at the positions of annex E),
  7.8 data masks (Table 10), 7.9 format information (BCH(15,5), generator 0x537, XOR
  mask 0x5412, annex C), 7.10 version information (BCH(18,6), generator 0x1f25, annex D).

The Reed-Solomon decoder (Berlekamp-Massey started from the erasure locator, Chien
search, Forney) is written here rather than taken from a package, so that the capacity
rule below is ours: a block decodes only when 2*errors + erasures <= ecc - SAFETY.

Why one module of ~660 lines: decoding is one pipeline (format, placement, unmasking,
de-interleaving, Reed-Solomon, bitstream) over tables they share (EC blocks, function
patterns, placement order); its parts have no use apart, and the tests check it whole
against zxing-cpp.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

#: Reed-Solomon margin: a block decodes only when 2*errors + erasures <= ecc - SAFETY.
#: Spending the whole capacity lets a received word just past it land on a wrong codeword
#: (miscorrection), worst when erasures leave few check symbols to locate errors with.
#: bench/qr/symbol_montecarlo.py (seed 20261202): 6,000 whole-symbol trials just past
#: capacity, garbage and wrong n gave 22 wrong payloads at SAFETY=0 and none at 1, 2, 3;
#: Reed-Solomon alone with 3-4 check symbols left miscorrected 72 of 20,000 blocks at
#: SAFETY=0, 2 at SAFETY=1 and none at 2. Each step of margin costs one erased codeword
#: (half an error) per block.
SAFETY = 2

LEVELS = ("L", "M", "Q", "H")
#: format-information EC level bits (7.9.1, Table 12), by level
_LEVEL_BITS = {"L": 0b01, "M": 0b00, "Q": 0b11, "H": 0b10}

# Table 9, in compact form: EC codewords per block and number of blocks, per version 1-40.
# The block lengths follow from the total codeword count (the data modules / 8): the
# first blocks are the short ones, the last (total % blocks) one codeword longer.
_ECC_PER_BLOCK = {
    "L": (7, 10, 15, 20, 26, 18, 20, 24, 30, 18, 20, 24, 26, 30, 22, 24, 28, 30, 28, 28,
          28, 28, 30, 30, 26, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30),
    "M": (10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26,
          26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28),
    "Q": (13, 22, 18, 26, 18, 24, 18, 22, 20, 24, 28, 26, 24, 20, 30, 24, 28, 28, 26, 30,
          28, 30, 30, 30, 30, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30),
    "H": (17, 28, 22, 16, 22, 28, 26, 26, 24, 28, 24, 28, 22, 24, 24, 30, 28, 28, 26, 28,
          30, 24, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30),
}
_NUM_BLOCKS = {
    "L": (1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 6, 6, 6, 6, 7, 8,
          8, 9, 9, 10, 12, 12, 12, 13, 14, 15, 16, 17, 18, 19, 19, 20, 21, 22, 24, 25),
    "M": (1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16,
          17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49),
    "Q": (1, 1, 2, 2, 4, 4, 6, 6, 8, 8, 8, 10, 12, 16, 12, 17, 16, 18, 21, 20,
          23, 23, 25, 27, 29, 34, 34, 35, 38, 40, 43, 45, 48, 51, 53, 56, 59, 62, 65, 68),
    "H": (1, 1, 2, 4, 4, 4, 5, 6, 8, 8, 11, 11, 16, 16, 18, 16, 19, 21, 25, 25,
          25, 34, 30, 32, 35, 37, 40, 42, 45, 48, 51, 54, 57, 60, 63, 66, 70, 74, 77, 81),
}

_ALNUM = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


@dataclass(frozen=True)
class Symbol:
    """A decoded symbol. ``errors`` and ``erasures`` count codewords over all blocks:
    codewords Reed-Solomon corrected at unknown positions, and codewords given as erased
    (any of their 8 modules erased). The payload stays out of the repr (it holds an ID
    number)."""

    payload: bytes = field(repr=False)
    version: int
    level: str
    mask: int
    errors: int
    erasures: int


# --- GF(256), prime polynomial 0x11d, alpha = 2 -------------------------------------------

def _gf_tables() -> tuple[list[int], list[int]]:
    exp = [0] * 512
    log = [0] * 256
    x = 1
    for i in range(255):
        exp[i] = x
        log[x] = i
        x <<= 1
        if x & 0x100:
            x ^= 0x11D
    for i in range(255, 512):
        exp[i] = exp[i - 255]
    return exp, log


_EXP, _LOG = _gf_tables()
_EXP_NP = np.array(_EXP, np.int64)
_LOG_NP = np.array(_LOG, np.int64)


def _mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def _div(a: int, b: int) -> int:
    # b != 0 at every call site
    if a == 0:
        return 0
    return _EXP[(_LOG[a] - _LOG[b]) % 255]


def _poly_eval(poly: list[int], x: int) -> int:
    """Value of ``poly`` (coefficient i of x^i) at x."""
    y = 0
    for c in reversed(poly):
        y = _mul(y, x) ^ c
    return y


def _syndromes(block: np.ndarray, nsym: int) -> np.ndarray:
    """S_j = r(alpha^j), j = 0 .. nsym-1, codeword 0 being the highest power (fcr = 0)."""
    n = block.shape[0]
    nz = block != 0
    if not nz.any():
        return np.zeros(nsym, np.int64)
    logs = _LOG_NP[block[nz]]
    powers = (n - 1 - np.nonzero(nz)[0])
    j = np.arange(nsym, dtype=np.int64)[:, None]
    terms = _EXP_NP[(logs[None, :] + j * powers[None, :]) % 255]
    return np.asarray(np.bitwise_xor.reduce(terms, axis=1), np.int64)


def rs_correct(block: list[int], nsym: int, erasures: list[int], safety: int = SAFETY) -> tuple[list[int], int] | None:
    """Correct one received Reed-Solomon block (data then EC codewords, ``nsym`` of them)
    in place of a copy; ``erasures`` are indices into ``block``. Returns the corrected
    block and the number of errors found at non-erased positions, or None when the block
    is beyond 2*errors + erasures <= nsym - safety or inconsistent."""
    n = len(block)
    erasures = sorted(set(erasures))
    rho = len(erasures)
    if n > 255 or nsym >= n or rho > nsym - safety:
        return None
    synd_np = _syndromes(np.array(block, np.int64), nsym)
    if not synd_np.any():
        return list(block), 0
    synd = [int(s) for s in synd_np]
    # erasure locator Gamma(x) = prod (1 - X_i x), X_i = alpha^(n-1-index)
    gamma = [1]
    for idx in erasures:
        xi = _EXP[n - 1 - idx]
        gamma = gamma + [0]
        for k in range(len(gamma) - 1, 0, -1):
            gamma[k] ^= _mul(gamma[k - 1], xi)
    # Berlekamp-Massey started from the erasure locator (Blahut)
    lam = list(gamma)
    prev = list(gamma)
    length = rho
    for k in range(rho, nsym):
        delta = 0
        for i in range(min(len(lam), k + 1)):
            delta ^= _mul(lam[i], synd[k - i])
        shifted = [0] + prev  # x * B(x)
        if delta == 0:
            prev = shifted
            continue
        size = max(len(lam), len(shifted))
        new = [(lam[i] if i < len(lam) else 0) ^ (_mul(delta, shifted[i]) if i < len(shifted) else 0)
               for i in range(size)]
        if 2 * length <= k + rho:
            inv = _div(1, delta)
            prev = [_mul(inv, c) for c in lam]
            length = k + 1 + rho - length
        else:
            prev = shifted
        lam = new
    while len(lam) > 1 and lam[-1] == 0:
        lam.pop()
    degree = len(lam) - 1
    errors = length - rho
    if degree != length or errors < 0 or 2 * errors + rho > nsym - safety:
        return None
    # Chien search over the block's own positions: Lambda(X^-1) == 0, X = alpha^p
    p = np.arange(n, dtype=np.int64)
    acc = np.zeros(n, np.int64)
    for i, c in enumerate(lam):
        if c:
            acc ^= _EXP_NP[(_LOG[c] - i * p) % 255]
    roots = [int(q) for q in np.nonzero(acc == 0)[0]]  # powers p
    if len(roots) != degree:
        return None
    # Forney (fcr = 0): Y = X * Omega(X^-1) / Lambda'(X^-1), Omega = S * Lambda mod x^nsym
    omega = [0] * nsym
    for i, c in enumerate(lam):
        if c:
            for j in range(nsym - i):
                omega[i + j] ^= _mul(c, synd[j])
    deriv = [lam[i] if i % 2 == 1 else 0 for i in range(1, len(lam))]
    out = list(block)
    erased_set = set(erasures)
    found_errors = 0
    for power in roots:
        xinv = _EXP[(255 - power) % 255]
        den = _poly_eval(deriv, xinv)
        if den == 0:
            return None
        value = _mul(_EXP[power], _div(_poly_eval(omega, xinv), den))
        idx = n - 1 - power
        out[idx] ^= value
        if idx not in erased_set and value:
            found_errors += 1
    if _syndromes(np.array(out, np.int64), nsym).any():
        return None
    return out, found_errors


# --- symbol geometry ------------------------------------------------------------------------

def _bch_remainder(value: int, generator: int) -> int:
    top = generator.bit_length() - 1
    value <<= top
    while value.bit_length() > top:
        value ^= generator << (value.bit_length() - generator.bit_length())
    return value


#: the 32 format words (7.9, annex C), by (level, mask)
_FORMAT_WORDS: dict[tuple[str, int], int] = {
    (level, mask): (((_LEVEL_BITS[level] << 3 | mask) << 10) | _bch_remainder(_LEVEL_BITS[level] << 3 | mask, 0x537))
    ^ 0x5412
    for level in LEVELS for mask in range(8)
}
#: the 34 version words (7.10, annex D), by version 7-40
_VERSION_WORDS = {v: (v << 12) | _bch_remainder(v, 0x1F25) for v in range(7, 41)}


def alignment_positions(version: int) -> list[int]:
    """Row/column centres of the alignment patterns (annex E, Table E.1)."""
    if version == 1:
        return []
    count = version // 7 + 2
    size = 17 + 4 * version
    step = 26 if version == 32 else (version * 4 + count * 2 + 1) // (count * 2 - 2) * 2
    return [6] + [size - 7 - i * step for i in range(count - 2, -1, -1)]


def _format_positions(n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(row, col) of format bit i (i = 0 least significant) in copy 1 (around the
    top-left finder) and copy 2 (split between the other two finders)."""
    first = [(i, 8) for i in range(6)] + [(7, 8), (8, 8), (8, 7)] + [(8, 14 - i) for i in range(9, 15)]
    second = [(8, n - 1 - i) for i in range(8)] + [(n - 15 + i, 8) for i in range(8, 15)]
    return first, second


def _version_positions(n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(row, col) of version bit i in the top-right and the bottom-left block."""
    top_right = [(i // 3, n - 11 + i % 3) for i in range(18)]
    bottom_left = [(n - 11 + i % 3, i // 3) for i in range(18)]
    return top_right, bottom_left


@functools.lru_cache(maxsize=64)
def function_mask(version: int) -> np.ndarray:
    """n x n bool: True on function-pattern modules (finders and separators, timing,
    alignment, format and version information, the dark module)."""
    n = 17 + 4 * version
    fn = np.zeros((n, n), bool)
    fn[:9, :9] = True  # finder, separator, format copy 1
    fn[:9, n - 8:] = True  # finder, separator, format copy 2 (row 8)
    fn[n - 8:, :9] = True  # finder, separator, format copy 2 (column 8), dark module
    fn[6, :] = True
    fn[:, 6] = True
    centres = alignment_positions(version)
    last = len(centres) - 1
    for a, r in enumerate(centres):
        for b, c in enumerate(centres):
            if (a, b) in ((0, 0), (0, last), (last, 0)):
                continue
            fn[r - 2:r + 3, c - 2:c + 3] = True
    if version >= 7:
        fn[:6, n - 11:n - 8] = True
        fn[n - 11:n - 8, :6] = True
    fn.flags.writeable = False
    return fn


@functools.lru_cache(maxsize=64)
def _placement(version: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the data modules in bit order (7.7.3): 2-module columns from
    the right, alternately upward and downward, right module first, column 6 skipped.
    Only the 8 * total-codewords modules (remainder bits left out)."""
    n = 17 + 4 * version
    fn = function_mask(version)
    rows: list[int] = []
    cols: list[int] = []
    right = n - 1
    while right >= 1:
        if right == 6:
            right = 5
        upward = ((right + 1) & 2) == 0
        for vert in range(n):
            r = n - 1 - vert if upward else vert
            for c in (right, right - 1):
                if not fn[r, c]:
                    rows.append(r)
                    cols.append(c)
        right -= 2
    total = len(rows) // 8 * 8
    out = np.array(rows[:total], np.intp), np.array(cols[:total], np.intp)
    for a in out:
        a.flags.writeable = False
    return out


def total_codewords(version: int) -> int:
    return int(_placement(version)[0].shape[0]) // 8


def blocks(version: int, level: str) -> list[tuple[int, int]]:
    """(data codewords, EC codewords) of each block, in interleaving order."""
    count = _NUM_BLOCKS[level][version - 1]
    ecc = _ECC_PER_BLOCK[level][version - 1]
    total = total_codewords(version)
    short = total // count
    n_long = total % count
    return [(short - ecc + (1 if i >= count - n_long else 0), ecc) for i in range(count)]


def _mask_bits(mask: int, n: int) -> np.ndarray:
    """Table 10: True where the data mask inverts the module (i = row, j = column)."""
    i, j = np.indices((n, n))
    if mask == 0:
        return np.asarray((i + j) % 2 == 0)
    if mask == 1:
        return np.asarray(i % 2 == 0)
    if mask == 2:
        return np.asarray(j % 3 == 0)
    if mask == 3:
        return np.asarray((i + j) % 3 == 0)
    if mask == 4:
        return np.asarray((i // 2 + j // 3) % 2 == 0)
    if mask == 5:
        return np.asarray((i * j) % 2 + (i * j) % 3 == 0)
    if mask == 6:
        return np.asarray(((i * j) % 2 + (i * j) % 3) % 2 == 0)
    return np.asarray(((i + j) % 2 + (i * j) % 3) % 2 == 0)


@functools.lru_cache(maxsize=256)
def _data_mask(version: int, mask: int) -> np.ndarray:
    """The mask's bits at the data modules, in bit order."""
    rows, cols = _placement(version)
    out = np.asarray(_mask_bits(mask, 17 + 4 * version)[rows, cols], bool)
    out.flags.writeable = False
    return out


# --- format and version information --------------------------------------------------------

def _read_bits(dark: np.ndarray, erased: np.ndarray, where: list[tuple[int, int]]) -> tuple[int, int]:
    """(value, known-bit mask) of the modules at ``where``, bit i from where[i]."""
    value = 0
    known = 0
    for i, (r, c) in enumerate(where):
        if not erased[r, c]:
            known |= 1 << i
            if dark[r, c]:
                value |= 1 << i
    return value, known


def _format_candidates(dark: np.ndarray, erased: np.ndarray) -> list[tuple[str, int]]:
    """(level, mask) candidates, best first: the format words within unique-decoding
    reach of copy 1, copy 2 (2*distance + erased bits <= 6, the code's distance being 7;
    without erasures that is distance <= 3) or both copies together (<= 12 of 14)."""
    n = dark.shape[0]
    first, second = _format_positions(n)
    v1, k1 = _read_bits(dark, erased, first)
    v2, k2 = _read_bits(dark, erased, second)
    e1 = 15 - k1.bit_count()
    e2 = 15 - k2.bit_count()
    found: list[tuple[int, tuple[str, int]]] = []
    for key, word in _FORMAT_WORDS.items():
        d1 = ((v1 ^ word) & k1).bit_count()
        d2 = ((v2 ^ word) & k2).bit_count()
        if 2 * d1 + e1 <= 6 or 2 * d2 + e2 <= 6 or 2 * (d1 + d2) + e1 + e2 <= 12:
            found.append((2 * (d1 + d2) + e1 + e2, key))
    found.sort()
    return [key for _, key in found[:2]]


def _version_consistent(dark: np.ndarray, erased: np.ndarray, version: int) -> bool:
    """False when a version-information block clearly reads another version (within
    2*distance + erased <= 7 of its word, the code's distance being 8) and neither block
    clearly reads ``version``; True otherwise (unreadable blocks leave n to decide)."""
    if version < 7:
        return True
    n = dark.shape[0]
    mine = False
    other = False
    for where in _version_positions(n):
        value, known = _read_bits(dark, erased, where)
        missing = 18 - known.bit_count()
        for v, word in _VERSION_WORDS.items():
            if 2 * ((value ^ word) & known).bit_count() + missing <= 7:
                if v == version:
                    mine = True
                else:
                    other = True
    return mine or not other


# --- the bit stream (7.4) ------------------------------------------------------------------

class _Bits:
    __slots__ = ("data", "pos", "size")

    def __init__(self, data: bytes) -> None:
        self.data = int.from_bytes(data, "big") if data else 0
        self.size = 8 * len(data)
        self.pos = 0

    def available(self) -> int:
        return self.size - self.pos

    def peek(self, count: int) -> int:
        return (self.data >> (self.size - self.pos - count)) & ((1 << count) - 1)

    def read(self, count: int) -> int | None:
        if count > self.size - self.pos:
            return None
        value = self.peek(count)
        self.pos += count
        return value


def _count_bits(mode: int, version: int) -> int:
    """Character count indicator width (Table 3)."""
    band = 0 if version <= 9 else 1 if version <= 26 else 2
    return {1: (10, 12, 14), 2: (9, 11, 13), 4: (8, 16, 16), 8: (8, 10, 12), 13: (8, 10, 12)}[mode][band]


def _parse(data: bytes, version: int) -> tuple[bytes, bool] | None:
    """The payload of the data codewords and whether the padding after the terminator is
    the standard one; None for an invalid mode or a count that runs past the data."""
    bits = _Bits(data)
    out = bytearray()
    fnc1 = False
    while True:
        left = bits.available()
        if left == 0 or bits.peek(min(4, left)) == 0:
            break
        mode = bits.read(4)
        if mode is None:
            return None
        if mode in (5, 9):  # FNC1 in first / second position
            if mode == 9:
                if out:
                    return None
                ind = bits.read(8)
                if ind is None:
                    return None
                if ind < 100:
                    out += b"%02d" % ind
                elif 165 <= ind <= 190 or 197 <= ind <= 222:
                    out.append(ind - 100)
                else:
                    return None
            fnc1 = True
            continue
        if mode == 3:  # structured append: index, count, parity
            if bits.read(16) is None:
                return None
            continue
        if mode == 7:  # ECI designator: 1, 2 or 3 bytes, the charset is not our concern
            first = bits.read(8)
            if first is None:
                return None
            extra = 0 if first & 0x80 == 0 else 1 if first & 0xC0 == 0x80 else 2 if first & 0xE0 == 0xC0 else -1
            if extra < 0 or bits.read(8 * extra) is None:
                return None
            continue
        if mode == 13:  # hanzi (GB/T 18284), subset 1 = GB2312, as zxing reads it
            if bits.read(4) != 1:
                return None
        elif mode not in (1, 2, 4, 8):
            return None
        count = bits.read(_count_bits(mode, version))
        if count is None:
            return None
        segment = _segment(bits, mode, count)
        if segment is None:
            return None
        if fnc1 and mode == 2:
            segment = segment.replace(b"%%", b"\0").replace(b"%", b"\x1d").replace(b"\0", b"%")
        out += segment
    return bytes(out), _padding_ok(data, bits.pos)


def _segment(bits: _Bits, mode: int, count: int) -> bytes | None:
    out = bytearray()
    if mode == 1:
        while count > 0:
            digits = min(count, 3)
            value = bits.read(1 + 3 * digits)
            if value is None or value >= 10 ** digits:
                return None
            out += b"%0*d" % (digits, value)
            count -= digits
    elif mode == 2:
        while count > 0:
            if count >= 2:
                value = bits.read(11)
                if value is None or value >= 45 * 45:
                    return None
                out.append(_ALNUM[value // 45])
                out.append(_ALNUM[value % 45])
                count -= 2
            else:
                value = bits.read(6)
                if value is None or value >= 45:
                    return None
                out.append(_ALNUM[value])
                count -= 1
    elif mode == 4:
        if 8 * count > bits.available():
            return None
        for _ in range(count):
            out.append(bits.peek(8))
            bits.pos += 8
    else:
        if 13 * count > bits.available():
            return None
        for _ in range(count):
            value = bits.peek(13)
            bits.pos += 13
            if mode == 8:  # kanji: back to Shift_JIS (7.4.6)
                word = (value // 0xC0) << 8 | value % 0xC0
                word += 0x8140 if word < 0x1F00 else 0xC140
            else:  # hanzi: back to GB2312
                word = (value // 0x60) << 8 | value % 0x60
                word += 0xA1A1 if word < 0xA00 else 0xA6A1
            out.append(word >> 8 & 0xFF)
            out.append(word & 0xFF)
    return bytes(out)


def _padding_ok(data: bytes, pos: int) -> bool:
    """After the terminator: zero bits, then pad codewords 0xEC 0x11 alternating to the
    end (7.4.9, 7.4.10). Standard is 4 terminator bits and zeros to the byte boundary
    (<= 11 zeros); up to 15 are accepted, and the pad pattern at any bit offset, because
    encoders get this wrong (segno 1.6 puts 12 zero bits after some mixed-segment data,
    so its pad bytes are off the byte grid); zxing does not look at the padding at all."""
    size = 8 * len(data)
    left = size - pos
    tail = int.from_bytes(data, "big") & ((1 << left) - 1) if left > 0 else 0
    if tail == 0:
        return True
    zeros = left - tail.bit_length()
    if zeros > 15:
        return False
    rest = tail.bit_length()
    repeats = rest // 16 + 1
    pattern = int.from_bytes(b"\xec\x11" * repeats, "big")
    return tail == pattern >> (16 * repeats - rest)


# --- the decoder ----------------------------------------------------------------------------

def decode_modules(dark: np.ndarray, erased: np.ndarray | None = None, *, safety: int = SAFETY) -> Symbol | None:
    """Decode a QR symbol from its module matrix.

    ``dark``: n x n bool array (True = dark module), row-major ``[row, col]``, the
    top-left finder at [0, 0], no quiet zone; n = 17 + 4v, v = 1..40. ``erased``: same
    shape, True where the module's value is unknown (None: nothing erased). Returns the
    decoded :class:`Symbol`, or None for anything else (wrong shape or dtype, unreadable
    format information, a version information that reads another size, a block beyond
    2*errors + erasures <= ecc - ``safety``, an invalid bit stream, a non-standard pad
    after corrected errors). Never raises.
    """
    if not isinstance(dark, np.ndarray) or dark.dtype != np.bool_ or dark.ndim != 2:
        return None
    n = dark.shape[0]
    if dark.shape[1] != n or n < 21 or n > 177 or (n - 17) % 4:
        return None
    if erased is None:
        erased = np.zeros((n, n), bool)
    elif not isinstance(erased, np.ndarray) or erased.dtype != np.bool_ or erased.shape != (n, n):
        return None
    if not isinstance(safety, int) or safety < 0:
        return None
    version = (n - 17) // 4
    if not _version_consistent(dark, erased, version):
        return None
    rows, cols = _placement(version)
    raw = dark[rows, cols]
    lost = erased[rows, cols].reshape(-1, 8).any(axis=1)
    for level, mask in _format_candidates(dark, erased):
        words = np.packbits(raw ^ _data_mask(version, mask)).tolist()
        symbol = _decode_codewords(words, lost.tolist(), version, level, mask, safety)
        if symbol is not None:
            return symbol
    return None


def _decode_codewords(words: list[int], lost: list[bool], version: int, level: str, mask: int,
                      safety: int) -> Symbol | None:
    layout = blocks(version, level)
    count = len(layout)
    # de-interleave (7.6): data codewords block by block in turn, the long blocks' last
    # data codeword after all the others, then the EC codewords likewise
    members: list[list[int]] = [[] for _ in range(count)]
    index = 0
    for i in range(max(d for d, _ in layout)):
        for b, (d, _) in enumerate(layout):
            if i < d:
                members[b].append(index)
                index += 1
    ecc = layout[0][1]
    for _ in range(ecc):
        for b in range(count):
            members[b].append(index)
            index += 1
    data = bytearray()
    errors = 0
    erasures = 0
    for (d, _), idx in zip(layout, members, strict=True):
        received = [words[k] for k in idx]
        gone = [pos for pos, k in enumerate(idx) if lost[k]]
        fixed = rs_correct(received, ecc, gone, safety)
        if fixed is None:
            return None
        block, found = fixed
        errors += found
        erasures += len(gone)
        data += bytes(block[:d])
    parsed = _parse(bytes(data), version)
    if parsed is None:
        return None
    payload, padding_ok = parsed
    if errors and not padding_ok:
        return None
    return Symbol(payload=payload, version=version, level=level, mask=mask, errors=errors, erasures=erasures)
