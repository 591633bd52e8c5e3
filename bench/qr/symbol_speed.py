"""Speed of the module-matrix decoder (agent/qr/symbol.py, issue 12) on the card's
shape (version 7-M, numeric + byte segments): clean, a glare streak given as erasures,
and scattered errors, plus a version-20 symbol for scale.

    .venv/bin/python -m bench.qr.symbol_speed [--repeat 300]

Prints the median and p95 per decode in ms (CPython, one core).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from agent.qr.symbol import decode_modules
from bench.qr import corpus
from bench.qr.symbol_montecarlo import codeword_modules, damage, make_symbol


def _time(dark: np.ndarray, erased: np.ndarray | None, repeat: int) -> tuple[float, float]:
    assert decode_modules(dark, erased) is not None
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        decode_modules(dark, erased)
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1e3
    return float(np.median(ms)), float(np.percentile(ms, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    rng = np.random.default_rng(20261202)
    code, _ = corpus.make_code(rng, "card")
    dark = np.array(code.matrix, bool)
    decode_modules(dark)  # warm the per-version caches
    streak = np.zeros_like(dark)
    streak[:, 14:25] = True
    scattered = dark.copy()
    erased = np.zeros_like(dark)
    for codewords in codeword_modules(7, "M"):
        damage(rng, scattered, erased, codewords, 4, 6)
    v20, _ = make_symbol(rng, 20, "M", 3)
    cases = {
        "7-M clean": (dark, None),
        "7-M streak 11 modules erased (58 codewords)": (dark & ~streak, streak),
        "7-M 4 errors + 6 erasures per block": (scattered, erased),
        "20-M clean": (v20, None),
    }
    print("| case | median ms | p95 ms |")
    print("|---|---|---|")
    for name, (matrix, lost) in cases.items():
        median, p95 = _time(matrix, lost, args.repeat)
        print(f"| {name} | {median:.2f} | {p95:.2f} |")


if __name__ == "__main__":
    main()
