"""Keyboard-wedge typing bench: 1,000 synthetic Vietnamese QR texts (7 fields: ID, old ID,
name, birth date, sex, address, issue date; names and addresses drawn from Vietnamese
syllables with every tone mark) typed through the X11 backend (XTest, Unicode keysyms on
spare keycodes) into Chromium on Xvfb, into a field that records each text on Enter.

Each text is typed when the page has received the previous one (one card at a time, as
at the desk). Prints characters per second as sent (our key events only) and end to end
(first key until the page holds the last text: the application's own pace included), and
how many texts arrived exactly. ``--settle-ms`` is the pause around each keymap change
(``[wedge] settle_ms``); ``--per-text`` opens a fresh keyboard for each text, as the
agent does for one card (keymap restored after each), instead of one session.

Run: ``.venv/bin/python bench/bench_wedge.py [--texts 1000] [--settle-ms 100] [--per-text]``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from desk_browser import XServer, launch_chromium  # noqa: E402

from agent.wedge.x11 import X11Keyboard  # noqa: E402

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô",
          "Dương", "Lý"]
SYLLABLES = ["Thị", "Văn", "Ánh", "Tuyết", "Hữu", "Đức", "Ngọc", "Quỳnh", "Thuỷ", "Thủy", "Hường", "Trường",
             "Nguyệt", "Khuê", "Ưng", "Ỷ", "Ẩn", "Ờ", "Ợi", "Ễ", "Ỡ", "Ửu", "Ỵ", "Giang", "Phượng", "Xuân", "Hạnh",
             "Lộc", "Thắm", "Dũng", "Cường", "Quế", "Khải", "Ấn", "Ỳ", "Ỗ", "Ặc", "Ằng", "Ẳn", "Ẵng"]
PLACES = ["Phường Ba Đình", "Xã Đông Anh", "Phường Hồng Hà", "Xã Ứng Hòa", "Phường Thủ Đức", "Xã Ea Súp",
          "Phường Đồ Sơn", "Xã Kỳ Sơn", "Đặc khu Phú Quốc", "Xã Mường Nhé"]
PROVINCES = ["Thành phố Hà Nội", "Thành phố Hồ Chí Minh", "Tỉnh Đắk Lắk", "Tỉnh Nghệ An", "Tỉnh An Giang",
             "Tỉnh Điện Biên", "Thành phố Hải Phòng", "Tỉnh Quảng Trị"]
PAGE = ("<!DOCTYPE html><meta charset=utf-8><title>Tiếp nhận hồ sơ - bench</title>"
        "<input id=scan autocomplete=off><script>window.scans=[];const s=document.getElementById('scan');"
        "s.addEventListener('keydown',e=>{if(e.key==='Enter'){e.preventDefault();window.scans.push(s.value);"
        "s.value='';}});</script>")


def synthetic(rng: random.Random) -> str:
    name = " ".join([rng.choice(FAMILY)] + rng.sample(SYLLABLES, rng.randint(2, 3)))
    address = f"Số {rng.randint(1, 300)} Ngõ {rng.choice(SYLLABLES)} {rng.choice(SYLLABLES)}, " \
              f"{rng.choice(PLACES)}, {rng.choice(PROVINCES)}"
    dob = f"{rng.randint(1, 28):02d}{rng.randint(1, 12):02d}{rng.randint(1940, 2010)}"
    issued = f"{rng.randint(1, 28):02d}{rng.randint(1, 12):02d}{rng.randint(2021, 2025)}"
    old = f"{rng.randint(0, 999999999):09d}" if rng.random() < 0.5 else ""
    return "|".join([f"0{rng.randint(1, 96):02d}{rng.randint(0, 999999999):09d}", old, name, dob,
                     rng.choice(["Nam", "Nữ"]), address, issued])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--settle-ms", type=int, default=100)
    parser.add_argument("--per-text", action="store_true")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--show-errors", action="store_true", help="print where each wrong text differs")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    texts = [synthetic(rng) for _ in range(args.texts)]
    xserver = XServer()
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw, display=xserver.display)
            page = browser.new_page()
            page.set_content(PAGE)
            page.focus("#scan")
            settle = args.settle_ms / 1000
            kb = X11Keyboard(xserver.display, settle_s=settle)
            # Chromium maps and titles its window a moment after set_content returns
            title = re.compile("^Tiếp nhận hồ sơ - bench")
            deadline = time.monotonic() + 15
            while not (found := kb.find(title)) and time.monotonic() < deadline:
                time.sleep(0.05)
            if len(found) != 1:
                raise SystemExit(f"bench: expected one window titled like {title.pattern!r}, found {len(found)}")
            (target,) = found
            kb.activate(target)
            typing = 0.0
            first_key = time.perf_counter()
            for i, text in enumerate(texts):
                if args.per_text:
                    kb.close()
                    kb = X11Keyboard(xserver.display, settle_s=settle)
                started = time.perf_counter()
                kb.type_text(text + "\n", target)
                typing += time.perf_counter() - started
                # one card at a time, as at the desk: the next text when the page has this one
                deadline = time.monotonic() + 60
                while page.evaluate("window.scans.length") <= i and time.monotonic() < deadline:
                    time.sleep(0.005)
            end_to_end = time.perf_counter() - first_key
            kb.close()
            got = page.evaluate("window.scans")
            browser.close()
    finally:
        xserver.stop()
    chars = sum(len(t) + 1 for t in texts)
    exact = sum(1 for a, b in zip(texts, got, strict=False) if a == b)
    non_ascii = sum(1 for t in texts for c in t if ord(c) > 127)
    result = {"texts": len(texts), "characters": chars, "non_ascii_characters": non_ascii,
              "typing_seconds": round(typing, 1), "chars_per_second_sent": round(chars / typing),
              "seconds_until_all_received": round(end_to_end, 1),
              "chars_per_second_received": round(chars / end_to_end),
              "texts_received": len(got), "texts_exact": exact, "settle_ms": args.settle_ms,
              "per_text_keyboard": args.per_text}
    if args.show_errors:
        for a, b in zip(texts, got, strict=False):
            if a != b:
                at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
                print(f"expected {a[max(0, at - 10):at + 10]!r}\n     got {b[max(0, at - 10):at + 10]!r}")
    print(json.dumps(result) if args.json else "\n".join(f"{k:22} {v}" for k, v in result.items()))
    return 0 if exact == len(texts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
