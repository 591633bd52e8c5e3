"""Wrong payloads from the module-matrix decoder (agent/qr/symbol.py) just past its
capacity, by Monte-Carlo (issue 12).

    .venv/bin/python -m bench.qr.symbol_montecarlo [--trials 6000] [--seed 20261202] [--heavy 20000]

Three kinds of trial, each decoded at every SAFETY in 0..3 (the same damaged matrix):

* ``past``: a synthetic card-like payload (numeric + byte segments) at a random version
  1-20, level and mask; one block gets damage just past capacity, 2*errors + erasures
  from ecc-2 to ecc+4 codewords (erasures 0..ecc, their modules overwritten with random
  values, errors a random non-empty bit flip), the other blocks light damage within
  capacity. Right payload, None, or *wrong* payload;
* ``garbage``: a valid format and function patterns around random data modules (the
  format reads, Reed-Solomon must refuse), or a wholly random matrix;
* ``wrong_n``: a real symbol cropped or padded by 4 modules (another valid n).

A wrong payload is any payload other than the symbol's (for garbage: any payload). Prints
the counts per kind and SAFETY; agent.qr.symbol.SAFETY is chosen from these figures.
Helpers here (``make_symbol``, ``codeword_modules``, ``damage``) are shared with
tests/qr/test_symbol.py.
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np
import segno
import segno.consts

from agent.qr import symbol
from bench.qr import corpus

SAFETIES = (0, 1, 2, 3)


def make_symbol(rng: np.random.Generator, version: int, level: str, mask: int) -> tuple[np.ndarray, bytes]:
    """A card-like symbol (the ID digits as a numeric segment, the rest UTF-8 bytes) that
    fills 30-100 % of ``version``-``level``; its module matrix and payload."""
    fields = corpus.synthetic_person(rng, long_address=bool(rng.integers(2)))
    digits = fields[0]
    rest = ("|" + "|".join(fields[1:])).encode()
    keep = len(rest) * float(rng.uniform(0.3, 1.0))
    while True:
        tail = rest[: int(keep)]
        segments = [(digits, segno.consts.MODE_NUMERIC)] + ([(tail, segno.consts.MODE_BYTE)] if tail else [])
        try:
            code = segno.make(segments, error=level.lower(), version=version, mask=mask,  # type: ignore[arg-type]
                              boost_error=False, micro=False)
        except segno.DataOverflowError:
            if not tail:
                digits = digits[: len(digits) // 2]
                if not digits:
                    raise
            keep *= 0.7
            continue
        return np.array(code.matrix, bool), digits.encode() + tail


def codeword_modules(version: int, level: str) -> list[list[np.ndarray]]:
    """For each block, for each of its codewords (data then EC, block order), the flat
    indices (row * n + col) of its 8 modules."""
    n = 17 + 4 * version
    rows, cols = symbol._placement(version)
    flat = (rows * n + cols).reshape(-1, 8)
    layout = symbol.blocks(version, level)
    members: list[list[np.ndarray]] = [[] for _ in layout]
    index = 0
    for i in range(max(d for d, _ in layout)):
        for b, (d, _) in enumerate(layout):
            if i < d:
                members[b].append(flat[index])
                index += 1
    for _ in range(layout[0][1]):
        for b in range(len(layout)):
            members[b].append(flat[index])
            index += 1
    return members


def damage(rng: np.random.Generator, dark: np.ndarray, erased: np.ndarray, codewords: list[np.ndarray],
           errors: int, erasures: int) -> None:
    """In place: ``erasures`` codewords of one block get 1-8 of their modules marked erased
    and random values there; ``errors`` other codewords get a random non-empty bit flip."""
    picked = rng.choice(len(codewords), size=errors + erasures, replace=False)
    flat_dark = dark.reshape(-1)
    flat_erased = erased.reshape(-1)
    for k in picked[:erasures]:
        modules = codewords[int(k)]
        lost = modules[rng.permutation(8)[: int(rng.integers(1, 9))]]
        flat_erased[lost] = True
        flat_dark[lost] = rng.integers(0, 2, lost.shape[0]).astype(bool)
    for k in picked[erasures:]:
        modules = codewords[int(k)]
        flips = rng.integers(1, 256)
        for bit in range(8):
            if flips >> bit & 1:
                flat_dark[modules[bit]] ^= True


def _block_words(dark: np.ndarray, erased: np.ndarray, codewords: list[np.ndarray], mask: int
                 ) -> tuple[list[int], list[int]]:
    """The block's codeword values (unmasked) and its erased positions."""
    bits = dark.reshape(-1) ^ symbol._mask_bits(mask, dark.shape[0]).reshape(-1)
    words = [int(np.packbits(bits[m])[0]) for m in codewords]
    lost = [i for i, m in enumerate(codewords) if erased.reshape(-1)[m].any()]
    return words, lost


#: Reed-Solomon alone on the victim block of ``past`` trials: right / none / wrong per
#: SAFETY (a wrong block is a miscorrection the bit-stream checks must then catch)
BLOCK_COUNTS: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)


def _past(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, bytes | None]:
    version = int(rng.integers(1, 21))
    level = symbol.LEVELS[int(rng.integers(4))]
    mask = int(rng.integers(8))
    dark, payload = make_symbol(rng, version, level, mask)
    clean = dark.copy()
    erased = np.zeros_like(dark)
    blocks = codeword_modules(version, level)
    ecc = symbol.blocks(version, level)[0][1]
    victim = int(rng.integers(len(blocks)))
    for b, codewords in enumerate(blocks):
        if b == victim:
            weight = int(rng.integers(ecc - 2, ecc + 5))
            rho = int(rng.integers(0, min(weight, ecc) + 1))
            if (weight - rho) % 2:
                rho = rho + 1 if rho < min(weight, ecc) else rho - 1
            errors = (weight - rho) // 2
        else:
            budget = int(rng.integers(0, ecc - 3 + 1))
            rho = int(rng.integers(0, budget + 1))
            errors = (budget - rho) // 2
        errors = min(errors, len(codewords) - rho)
        damage(rng, dark, erased, codewords, errors, rho)
    truth, _ = _block_words(clean, erased, blocks[victim], mask)
    received, lost = _block_words(dark, erased, blocks[victim], mask)
    for safety in SAFETIES:
        fixed = symbol.rs_correct(received, ecc, lost, safety)
        outcome = "none" if fixed is None else "right" if fixed[0] == truth else "wrong"
        BLOCK_COUNTS[safety][outcome] += 1
    return dark, erased, payload


def _garbage(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, bytes | None]:
    version = int(rng.integers(1, 21))
    n = 17 + 4 * version
    if rng.random() < 0.2:
        return rng.random((n, n)) < 0.5, np.zeros((n, n), bool), None
    level = symbol.LEVELS[int(rng.integers(4))]
    dark, _ = make_symbol(rng, version, level, int(rng.integers(8)))
    data = ~symbol.function_mask(version)
    dark[data] = rng.random(int(data.sum())) < 0.5
    erased = np.zeros_like(dark)
    if rng.random() < 0.5:  # some erased modules too
        erased[data] = rng.random(int(data.sum())) < rng.uniform(0, 0.2)
    return dark, erased, None


def _wrong_n(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, bytes | None]:
    version = int(rng.integers(2, 20))
    level = symbol.LEVELS[int(rng.integers(4))]
    dark, payload = make_symbol(rng, version, level, int(rng.integers(8)))
    if rng.random() < 0.5:
        dark = dark[:-4, :-4]
    else:
        dark = np.pad(dark, ((0, 4), (0, 4)))
    return dark, np.zeros_like(dark), payload


KINDS = {"past": _past, "garbage": _garbage, "wrong_n": _wrong_n}


def run(trials: int, seed: int) -> dict[tuple[str, int], collections.Counter[str]]:
    """Counts of right / none / wrong per (kind, safety)."""
    rng = np.random.default_rng(seed)
    counts: dict[tuple[str, int], collections.Counter[str]] = collections.defaultdict(collections.Counter)
    names = list(KINDS)
    weights = np.array([0.8, 0.12, 0.08])
    for _ in range(trials):
        kind = names[int(rng.choice(len(names), p=weights))]
        dark, erased, payload = KINDS[kind](rng)
        for safety in SAFETIES:
            got = symbol.decode_modules(dark, erased, safety=safety)
            if got is None:
                outcome = "none"
            elif got.payload == payload:
                outcome = "right"
            else:
                outcome = "wrong"
            counts[(kind, safety)][outcome] += 1
    return counts


def heavy_erasures(trials: int, seed: int) -> dict[int, collections.Counter[str]]:
    """Reed-Solomon alone in the worst regime for miscorrection: a version 7-M block (49
    codewords, 18 EC) with nearly all its redundancy erased (3 or 4 check symbols left)
    and 2-6 unknown errors on top, past capacity at every SAFETY. Counts of wrong
    (miscorrected) / none per SAFETY."""
    rng = np.random.default_rng(seed)
    counts: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    n, ecc = 49, 18
    gen = [1]
    for i in range(ecc):
        gen = [a ^ symbol._mul(b, symbol._EXP[i]) for a, b in zip(gen + [0], [0] + gen, strict=True)]
    for _ in range(trials):
        data = [int(x) for x in rng.integers(0, 256, n - ecc)]
        rem = data + [0] * ecc
        for i in range(n - ecc):
            if rem[i]:
                coef = rem[i]
                for j in range(1, ecc + 1):
                    rem[i + j] ^= symbol._mul(gen[j], coef)
        clean = data + rem[n - ecc:]
        rho = ecc - int(rng.integers(3, 5))
        errors = int(rng.integers(2, 7))
        picked = rng.choice(n, rho + errors, replace=False)
        received = list(clean)
        for p in picked[:rho]:
            received[int(p)] = int(rng.integers(0, 256))
        for p in picked[rho:]:
            received[int(p)] ^= int(rng.integers(1, 256))
        for safety in SAFETIES:
            fixed = symbol.rs_correct(received, ecc, [int(p) for p in picked[:rho]], safety)
            counts[safety]["none" if fixed is None else "right" if fixed[0] == clean else "wrong"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--heavy", type=int, default=20000, help="trials of the heavy-erasure RS test")
    args = parser.parse_args()
    start = time.perf_counter()
    counts = run(args.trials, args.seed)
    print(f"{args.trials} trials, seed {args.seed}, {time.perf_counter() - start:.0f} s")
    print("| kind | SAFETY | trials | right | none | wrong |")
    print("|---|---|---|---|---|---|")
    for (kind, safety), c in sorted(counts.items()):
        print(f"| {kind} | {safety} | {sum(c.values())} | {c['right']} | {c['none']} | {c['wrong']} |")
    print()
    print("Reed-Solomon alone, the damaged block of the past trials:")
    print("| SAFETY | blocks | right | none | wrong (miscorrected) |")
    print("|---|---|---|---|---|")
    for safety, c in sorted(BLOCK_COUNTS.items()):
        print(f"| {safety} | {sum(c.values())} | {c['right']} | {c['none']} | {c['wrong']} |")
    print()
    print(f"Reed-Solomon alone, 7-M block with 3-4 check symbols left and 2-6 errors ({args.heavy} trials):")
    print("| SAFETY | right | none | wrong (miscorrected) |")
    print("|---|---|---|---|")
    for safety, c in sorted(heavy_erasures(args.heavy, args.seed).items()):
        print(f"| {safety} | {c['right']} | {c['none']} | {c['wrong']} |")


if __name__ == "__main__":
    main()
