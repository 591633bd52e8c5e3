"""The module-matrix QR decoder (agent/qr/symbol.py, issue 12): same payload bytes as
zxing-cpp on clean symbols, errors and erasures within capacity, never a wrong payload
past it, None (never an exception) for garbage. Synthetic payloads only."""

from __future__ import annotations

import numpy as np
import pytest
import segno
import segno.consts
import zxingcpp
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from agent.qr import symbol
from agent.qr.symbol import SAFETY, Symbol, decode_modules, rs_correct
from bench.qr import corpus, symbol_montecarlo
from bench.qr.symbol_montecarlo import codeword_modules, damage, make_symbol

_SEGNO_LEVEL = {"L": segno.consts.ERROR_LEVEL_L, "M": segno.consts.ERROR_LEVEL_M,
                "Q": segno.consts.ERROR_LEVEL_Q, "H": segno.consts.ERROR_LEVEL_H}
_KANJI = "漢字日本語東京点茗電話番号名前住所"
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
MODES = ("numeric", "alnum", "byte", "kanji", "mixed", "eci")


def _render(dark: np.ndarray) -> np.ndarray:
    """Module size 4, quiet zone 4, dark = 0."""
    grid = np.pad(dark, 4)
    return np.where(np.kron(grid, np.ones((4, 4), bool)), 0, 255).astype(np.uint8)


def _zxing(dark: np.ndarray) -> list[zxingcpp.Barcode]:
    return list(zxingcpp.read_barcodes(_render(dark), formats=zxingcpp.BarcodeFormat.QRCode))


def _content(rng: np.random.Generator, mode: str, length: int) -> tuple[object, dict[str, object]]:
    if mode == "numeric":
        return "".join(str(d) for d in rng.integers(0, 10, length)), {"mode": "numeric"}
    if mode == "alnum":
        return "".join(_ALNUM[i] for i in rng.integers(0, len(_ALNUM), length)), {"mode": "alphanumeric"}
    if mode == "byte":
        return bytes(rng.integers(0, 256, length).astype(np.uint8)), {"mode": "byte"}
    if mode == "kanji":
        return "".join(_KANJI[i] for i in rng.integers(0, len(_KANJI), length)), {"mode": "kanji"}
    fields = corpus.synthetic_person(rng, long_address=False)
    if mode == "eci":
        return "|".join(fields)[:length], {"encoding": "utf-8", "eci": True}
    text = "|".join(fields[1:]).encode()[:length]
    return [(fields[0], segno.consts.MODE_NUMERIC), (text, segno.consts.MODE_BYTE)], {}


def _make(rng: np.random.Generator, version: int, level: str, mask: int, mode: str) -> segno.QRCode:
    length = int(rng.integers(1, 400))
    while True:
        content, kwargs = _content(rng, mode, length)
        try:
            return segno.make(content, error=level.lower(), version=version, mask=mask,  # type: ignore[arg-type]
                              boost_error=False, micro=False, **kwargs)  # type: ignore[arg-type]
        except segno.DataOverflowError:
            length = max(1, length // 2)


def test_tables_match_segno() -> None:
    for version in range(1, 41):
        if version > 1:
            assert symbol.alignment_positions(version) == list(segno.consts.ALIGNMENT_POS[version - 2])
        for level, key in _SEGNO_LEVEL.items():
            expected = [(ec.num_data, ec.num_total - ec.num_data)
                        for ec in segno.consts.ECC[version][key] for _ in range(ec.num_blocks)]
            assert symbol.blocks(version, level) == expected, (version, level)


def test_same_bytes_as_zxing() -> None:
    rng = np.random.default_rng(20261202)
    seen: set[tuple[str, int, str]] = set()
    for i in range(320):
        version = 1 + i % 20
        level = symbol.LEVELS[i // 20 % 4]
        mask = int(rng.integers(8))
        mode = MODES[(i // 80 + i) % len(MODES)]
        code = _make(rng, version, level, mask, mode)
        dark = np.array(code.matrix, bool)
        got = decode_modules(dark)
        found = _zxing(dark)
        assert len(found) == 1, (version, level, mask, mode)
        assert got is not None, (version, level, mask, mode)
        assert got.payload == found[0].bytes, (version, level, mask, mode)
        assert (got.version, got.level, got.mask, got.errors, got.erasures) == (version, level, mask, 0, 0)
        seen.add((level, mask, mode))
    assert {m for _, m, _ in seen} == set(range(8)) and {m for _, _, m in seen} == set(MODES)


def test_card_shape_and_versions_21_to_40() -> None:
    rng = np.random.default_rng(7)
    for _ in range(5):
        code, payload = corpus.make_code(rng, "card")
        got = decode_modules(np.array(code.matrix, bool))
        assert got is not None and got.payload == payload and got.version == 7 and got.level == "M"
    for version in range(21, 41, 3):
        dark, payload = make_symbol(rng, version, symbol.LEVELS[version % 4], version % 8)
        got = decode_modules(dark)
        assert got is not None and got.payload == payload and got.version == version


def test_structured_append_and_hanzi_as_zxing() -> None:
    for code in segno.make_sequence("SEQUENCE-" * 30, version=3, error="l"):
        dark = np.array(code.matrix, bool)
        got = decode_modules(dark)
        assert got is not None and got.payload == _zxing(dark)[0].bytes
    dark = np.array(segno.make("汉字", mode="hanzi", micro=False).matrix, bool)
    got = decode_modules(dark)
    assert got is not None and got.payload == "汉字".encode("gb2312")


# --- Reed-Solomon ---------------------------------------------------------------------------

def _rs_encode(data: list[int], nsym: int) -> list[int]:
    """Systematic RS encoding, generator prod (x - alpha^i), i = 0..nsym-1 (test oracle)."""
    gen = [1]
    for i in range(nsym):
        root = symbol._EXP[i]
        gen = [a ^ symbol._mul(b, root) for a, b in zip(gen + [0], [0] + gen, strict=True)]
    rem = list(data) + [0] * nsym
    for i in range(len(data)):
        coef = rem[i]
        if coef:
            for j in range(1, nsym + 1):
                rem[i + j] ^= symbol._mul(gen[j], coef)
    return list(data) + rem[len(data):]


def test_rs_up_to_full_capacity() -> None:
    rng = np.random.default_rng(1)
    for _ in range(300):
        nsym = int(rng.integers(2, 31))
        k = int(rng.integers(1, 255 - nsym + 1))
        clean = _rs_encode([int(x) for x in rng.integers(0, 256, k)], nsym)
        rho = int(rng.integers(0, nsym + 1))
        errors = (nsym - rho) // 2
        picked = rng.choice(len(clean), errors + rho, replace=False)
        received = list(clean)
        for p in picked:
            received[int(p)] ^= int(rng.integers(1, 256)) if p in picked[rho:] else int(rng.integers(0, 256))
        erasures = [int(p) for p in picked[:rho]]
        out = rs_correct(received, nsym, erasures, safety=0)
        assert out is not None and out[0] == clean
        assert out[1] == errors
        if 2 * errors + rho > nsym - SAFETY:
            assert rs_correct(received, nsym, erasures) is None


# --- damage within and beyond capacity --------------------------------------------------------

def _card(seed: int) -> tuple[np.ndarray, bytes]:
    code, payload = corpus.make_code(np.random.default_rng(seed), "card")
    return np.array(code.matrix, bool), payload


def test_errors_and_erasures_within_capacity() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        version = int(rng.integers(1, 21))
        level = symbol.LEVELS[int(rng.integers(4))]
        dark, payload = make_symbol(rng, version, level, int(rng.integers(8)))
        erased = np.zeros_like(dark)
        ecc = symbol.blocks(version, level)[0][1]
        total_errors = total_erasures = 0
        for codewords in codeword_modules(version, level):
            budget = int(rng.integers(0, ecc - SAFETY + 1))
            rho = int(rng.integers(0, budget + 1))
            errors = (budget - rho) // 2
            damage(rng, dark, erased, codewords, errors, rho)
            total_errors += errors
            total_erasures += rho
        got = decode_modules(dark, erased)
        assert got is not None and got.payload == payload
        # an erased codeword whose random values happen to be right still counts as erased
        assert (got.errors, got.erasures) == (total_errors, total_erasures)


def test_glare_band_and_blob() -> None:
    dark, payload = _card(11)
    n = dark.shape[0]
    glare = np.zeros_like(dark)
    glare[:, 14:18] = True  # a vertical streak, 4 modules wide, saturated white
    streaked = dark & ~glare
    assert decode_modules(streaked) is None  # unmarked, the streak is too many errors
    got = decode_modules(streaked, glare)
    assert got is not None and got.payload == payload and got.errors == 0 and got.erasures > 0
    glare[:, 14:25] = True  # 11 modules wide: 58 of the 196 codewords erased
    got = decode_modules(dark & ~glare, glare)
    assert got is not None and got.payload == payload and got.erasures == 58
    yy, xx = np.mgrid[:n, :n]
    blob = (yy - 30) ** 2 + (xx - 28) ** 2 <= 16
    got = decode_modules(dark & ~blob, blob)
    assert got is not None and got.payload == payload
    # format copy 1 and a version block erased and wrong: copy 2 and the other block read
    lost = np.zeros_like(dark)
    lost[:9, 8] = lost[8, :9] = True
    lost[n - 11:n - 8, :6] = True
    got = decode_modules(dark ^ lost, lost)
    assert got is not None and got.payload == payload


def test_beyond_capacity_is_none() -> None:
    dark, _ = _card(12)
    erased = np.zeros_like(dark)
    erased[:, 14:30] = True
    assert decode_modules(dark, erased) is None
    rng = np.random.default_rng(5)
    dark, payload = _card(13)
    erased = np.zeros_like(dark)
    blocks = codeword_modules(7, "M")
    damage(rng, dark, erased, blocks[2], 0, 18 - SAFETY + 1)
    assert decode_modules(dark, erased) is None
    assert decode_modules(dark, erased, safety=0) is not None


def test_padding_check() -> None:
    pad = bytes([0xEC, 0x11] * 4)
    assert symbol._padding_ok(b"\xab\xc0" + pad, 12)  # terminator, zeros to the boundary, pad
    assert symbol._padding_ok(b"\xab\xc0\x00", 12)  # terminator and zeros only
    assert symbol._padding_ok(b"\xab\xc0\x0e\xc1\x1e\xc1", 12)  # segno's shifted pad
    assert not symbol._padding_ok(b"\xab\xc0\xec\x12", 12)
    assert not symbol._padding_ok(b"\xab\xc0\x00\x00\xec\x11", 12)  # 20 zero bits
    assert not symbol._padding_ok(b"\xab\xc0\x11\xec", 12)


def test_version_information_must_agree() -> None:
    dark, _ = _card(14)
    n = dark.shape[0]
    word = symbol._VERSION_WORDS[8]
    for block in symbol._version_positions(n):
        for i, (r, c) in enumerate(block):
            dark[r, c] = bool(word >> i & 1)
    assert decode_modules(dark) is None


def test_no_wrong_payload_past_capacity() -> None:
    counts = symbol_montecarlo.run(300, seed=99)
    for (_, safety), c in counts.items():
        if safety >= SAFETY:
            assert c["wrong"] == 0
    assert sum(c["right"] for (kind, s), c in counts.items() if kind == "past" and s == SAFETY) > 0


# --- garbage in -------------------------------------------------------------------------------

@pytest.mark.parametrize("matrix", [
    np.zeros((21, 21), bool), np.ones((21, 21), bool), np.zeros((45, 45), bool), np.ones((177, 177), bool),
    np.zeros((22, 22), bool), np.zeros((21, 25), bool), np.zeros((17, 17), bool), np.zeros((181, 181), bool),
    np.zeros((21, 21), np.uint8), np.zeros((21,), bool), np.zeros((21, 21, 1), bool), np.zeros((0, 0), bool),
])
def test_garbage_is_none(matrix: np.ndarray) -> None:
    assert decode_modules(matrix) is None


def test_bad_arguments_are_none() -> None:
    dark, payload = _card(15)
    assert decode_modules(dark.tolist()) is None  # type: ignore[arg-type]
    assert decode_modules(dark, np.zeros((3, 3), bool)) is None
    assert decode_modules(dark, np.zeros(dark.shape, np.uint8)) is None
    assert decode_modules(dark, np.ones(dark.shape, bool)) is None
    got = decode_modules(dark, None)
    assert got is not None and got.payload == payload
    assert "payload" not in repr(got) and isinstance(got, Symbol)


@given(hnp.arrays(np.bool_, st.sampled_from([(21, 21), (25, 25), (45, 45), (20, 20), (21, 22)])),
       st.one_of(st.none(), hnp.arrays(np.bool_, st.sampled_from([(21, 21), (25, 25), (45, 45)]))))
def test_random_matrices_never_raise(dark: np.ndarray, erased: np.ndarray | None) -> None:
    got = decode_modules(dark, erased)
    assert got is None or isinstance(got, Symbol)


@given(st.integers(0, 2**32 - 1), st.floats(0, 0.5))
def test_damaged_symbols_never_raise(seed: int, rate: float) -> None:
    rng = np.random.default_rng(seed)
    dark, payload = _card(seed % 50)
    flips = rng.random(dark.shape) < rate / 4
    erased = rng.random(dark.shape) < rate
    got = decode_modules(dark ^ flips, erased)
    assert got is None or got.payload == payload
