"""Long texts through the text parsers (issue 8): the CCCD QR payload, QR text repair,
MRZ text and the config file, fed the long shapes of ``fuzz_targets.long_texts`` (the
texts tests/robustness/test_robust_parsers.py runs, which bounds their work but does
not time them).

Prints, per text, the median wall time and the CPU time of this thread over N runs,
at 64 K and at 256 K characters, and the ratio of the two: linear work grows about 4x,
quadratic work about 16x.

Run: ``.venv/bin/python bench/bench_long_inputs.py [--runs 3] [--json]``
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _fuzz_targets() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_targets", ROOT / "fuzz" / "fuzz_targets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_targets"] = module
    spec.loader.exec_module(module)
    return module


def _time(check: Any, data: bytes, runs: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.thread_time()
        check(data)
        cpus.append(time.thread_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    ft = _fuzz_targets()
    small, large = ft.long_texts(64 * 1024), ft.long_texts(256 * 1024)
    rows = []
    for (name, short_text), (_, long_text) in zip(small, large, strict=True):
        check = ft.TARGETS[name].check
        check(short_text.encode("utf-8"))  # warm-up: imports, compiled patterns
        wall_s, cpu_s = _time(check, short_text.encode("utf-8"), args.runs)
        wall_l, cpu_l = _time(check, long_text.encode("utf-8"), args.runs)
        rows.append({"target": name, "text": long_text[:12], "chars_64k": len(short_text),
                     "chars_256k": len(long_text), "wall_ms_64k": round(wall_s, 1), "cpu_ms_64k": round(cpu_s, 1),
                     "wall_ms_256k": round(wall_l, 1), "cpu_ms_256k": round(cpu_l, 1),
                     "growth": round(cpu_l / cpu_s, 1) if cpu_s > 0.5 else None})
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; median of {args.runs} runs")
    print(f"{'target':11} {'text':16} {'64K wall/cpu ms':>17} {'256K wall/cpu ms':>18} {'cpu growth':>10}")
    for r in rows:
        growth = f"{r['growth']}x" if r["growth"] is not None else "-"
        print(f"{r['target']:11} {ascii(r['text']):16} {r['wall_ms_64k']:>8}/{r['cpu_ms_64k']:<8} "
              f"{r['wall_ms_256k']:>9}/{r['cpu_ms_256k']:<8} {growth:>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
