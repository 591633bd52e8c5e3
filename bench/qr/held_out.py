"""Decoders side by side on a folder of real, labelled photos: the held-out sets of
issue 12 (real CCCD photos; zxing-cpp's public ``test/samples/qrcode-1`` … ``qrcode-7``).

    .venv/bin/python -m bench.qr.held_out DIR [DIR ...] [--decoders zxing,zbar,opencv,ours]
        [--budget-ms 250] [--json out.json]

Neither set is on this machine (no package or registry reachable from here carries
them), so this is the tool a desk or a maintainer runs where they are. Each image
(.png .jpg .jpeg .bmp .gif .tif .tiff .webp, found recursively) is labelled by, first
found:

* ``NAME.bin``: the exact payload bytes;
* ``NAME.txt``: the payload as text (zxing-cpp's sample layout; UTF-8);
* ``labels.json`` in the image's folder: ``{"NAME.jpg": {"text": "..."} | {"hex": "..."}
  | null}`` (``null``: the photo holds no code; any decode of it is wrong).

An image with no label is listed as unlabelled and not counted. A decode is right when
its bytes are the label's bytes or, for a text label, decode to that text in one of
the encodings QR codes use (UTF-8, ISO-8859-1, Shift_JIS, GB18030, CP1258): zxing-cpp's
``.txt`` files hold its decoded text, not the raw bytes. Any other payload is wrong.

Prints, per decoder, read / wrong / missed and latency; then every image that some
library read and ours did not (issue 12: "ours must read at least what each single
library reads"), and every wrong decode. ``ours`` runs with the CLI's file budget
(``PHOTO_BUDGET_MS``) on its CPU clock, as ``idagent qr decode`` does. Exit 0 always:
this measures, it does not judge.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agent.qr.decode import decode_frame
from agent.qr.images import load_image
from bench.qr.desk_run import PHOTO_BUDGET_MS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
#: the encodings a text label may have been decoded from
TEXT_ENCODINGS = ("utf-8", "iso-8859-1", "shift_jis", "gb18030", "cp1258")
#: a label of "no code here"
NO_CODE = b""


@dataclass(frozen=True)
class Label:
    """What one photo must decode to: exact ``data`` bytes, or ``text`` (any encoding
    in TEXT_ENCODINGS), or neither (no code in the photo)."""

    data: bytes | None = None
    text: str | None = None

    @property
    def no_code(self) -> bool:
        return self.data is None and self.text is None

    def matches(self, payload: bytes) -> bool:
        if self.data is not None:
            return payload == self.data
        if self.text is None:
            return False
        for encoding in TEXT_ENCODINGS:
            try:
                if payload.decode(encoding) == self.text:
                    return True
            except UnicodeDecodeError:
                continue
        return False


@dataclass
class Photo:
    path: Path
    label: Label | None


@dataclass
class Tally:
    read: int = 0
    wrong: int = 0
    missed: int = 0
    no_code_ok: int = 0
    ms: list[float] = field(default_factory=list)
    read_paths: set[Path] = field(default_factory=set)
    wrong_paths: list[tuple[Path, bytes]] = field(default_factory=list)


def _folder_labels(folder: Path, cache: dict[Path, dict[str, object]]) -> dict[str, object]:
    if folder not in cache:
        path = folder / "labels.json"
        try:
            cache[folder] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except (OSError, ValueError) as exc:
            raise SystemExit(f"{path}: not a JSON object of labels ({exc}); see --help for the format") from exc
        if not isinstance(cache[folder], dict):
            raise SystemExit(f"{path}: expected a JSON object {{file name: label}}")
    return cache[folder]


def _label_for(image: Path, cache: dict[Path, dict[str, object]]) -> Label | None:
    """The label of one image (module docstring: .bin, then .txt, then labels.json)."""
    binary, text = image.with_suffix(".bin"), image.with_suffix(".txt")
    if binary.exists():
        return Label(data=binary.read_bytes())
    if text.exists():
        return Label(text=text.read_text(encoding="utf-8"))
    labels = _folder_labels(image.parent, cache)
    if image.name not in labels:
        return None
    entry = labels[image.name]
    if entry is None:
        return Label()
    if isinstance(entry, dict) and isinstance(entry.get("hex"), str):
        return Label(data=bytes.fromhex(entry["hex"]))
    if isinstance(entry, dict) and isinstance(entry.get("text"), str):
        return Label(text=entry["text"])
    raise SystemExit(f"{image.parent / 'labels.json'}: the label of {image.name!r} must be null, "
                     '{"text": "..."} or {"hex": "..."}')


def photos(folders: list[Path]) -> Iterator[Photo]:
    """Every image under the folders (sorted), with its label or None."""
    cache: dict[Path, dict[str, object]] = {}
    for folder in folders:
        if not folder.is_dir():
            raise SystemExit(f"{folder}: not a folder of photos")
        for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            yield Photo(path, _label_for(path, cache))


def decoder(name: str, budget_ms: float) -> Callable[[np.ndarray], tuple[bytes, ...]]:
    if name == "ours":
        return lambda grey: decode_frame(grey, budget_ms=budget_ms).payloads
    from agent.qr import decoders

    if name not in decoders.LIBRARIES:
        raise SystemExit(f"unknown decoder {name!r}: choose from ours, {', '.join(decoders.LIBRARIES)}")
    fn = decoders.LIBRARIES[name]
    return lambda grey: tuple(f.payload for f in fn(grey) if f.payload is not None)


def run(folders: list[Path], names: list[str], budget_ms: float) -> tuple[dict[str, Tally], list[Path], int]:
    fns = {name: decoder(name, budget_ms) for name in names}
    tallies = {name: Tally() for name in names}
    unlabelled: list[Path] = []
    counted = 0
    for photo in photos(folders):
        if photo.label is None:
            unlabelled.append(photo.path)
            continue
        grey = load_image(photo.path)
        counted += 1
        for name, fn in fns.items():
            t0 = time.perf_counter()
            got = fn(grey)
            tally = tallies[name]
            tally.ms.append((time.perf_counter() - t0) * 1000.0)
            wrong = [p for p in got if not photo.label.matches(p)]
            tally.wrong += len(wrong)
            tally.wrong_paths += [(photo.path, p) for p in wrong]
            if photo.label.no_code:
                tally.no_code_ok += int(not got)
            elif len(wrong) < len(got):
                tally.read += 1
                tally.read_paths.add(photo.path)
            else:
                tally.missed += 1
    return tallies, unlabelled, counted


def report(tallies: dict[str, Tally], unlabelled: list[Path], counted: int) -> str:
    lines = [f"{counted} labelled photos" + (f", {len(unlabelled)} unlabelled (not counted)" if unlabelled else ""),
             "", "| decoder | read | missed | wrong decodes | no-code photos left alone | median ms | p95 ms |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, t in tallies.items():
        ms = np.array(t.ms) if t.ms else np.zeros(1)
        lines.append(f"| {name} | {t.read} | {t.missed} | {t.wrong} | {t.no_code_ok} | "
                     f"{np.median(ms):.1f} | {np.percentile(ms, 95):.1f} |")
    if "ours" in tallies:
        ours = tallies["ours"].read_paths
        for name, t in tallies.items():
            if name == "ours":
                continue
            lost = sorted(t.read_paths - ours)
            lines.append(f"\nread by {name}, not by ours: {len(lost)}")
            lines += [f"  {p}" for p in lost]
    for name, t in tallies.items():
        for path, payload in t.wrong_paths:
            lines.append(f"WRONG ({name}): {path}: {len(payload)} bytes that are not the label")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--decoders", default="zxing,zbar,opencv,ours")
    parser.add_argument("--budget-ms", type=float, default=PHOTO_BUDGET_MS)
    parser.add_argument("--json", metavar="PATH", help="also write the per-decoder figures as JSON")
    args = parser.parse_args(argv)
    tallies, unlabelled, counted = run(args.folders, args.decoders.split(","), args.budget_ms)
    print(report(tallies, unlabelled, counted))
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"photos": counted, "unlabelled": [str(p) for p in unlabelled],
                       "decoders": {n: {"read": t.read, "missed": t.missed, "wrong": t.wrong,
                                        "no_code_left_alone": t.no_code_ok, "ms": t.ms,
                                        "read_paths": sorted(str(p) for p in t.read_paths)}
                                    for n, t in tallies.items()}}, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
