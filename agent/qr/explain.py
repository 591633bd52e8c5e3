"""A debug picture of one decode: the regions tried, their rank and code-likeness, and
each ladder step, so a desk can send one image instead of a description (issue 12).

``render(grey, result, trace)`` returns a BGR image: the frame (scaled to at most
``MAX_WIDTH`` px wide) with every candidate region outlined (green: the code was read
there; orange: worth the ladder; grey: judged not code-like and skipped), its rank,
score and finder-pattern count, and a panel on the right listing the outcome and each
step (region rank, step, milliseconds, result). Text is ASCII (OpenCV's Hershey font);
the payload is never drawn (it holds personal data).
"""

from __future__ import annotations

import cv2
import numpy as np

from agent.qr.decode import DecodeResult, Trace
from agent.qr.enhance import to_grey

MAX_WIDTH = 1400
PANEL_WIDTH = 420
LINE_PX = 18
GREEN, ORANGE, GREY, WHITE, RED = (60, 200, 60), (0, 150, 255), (150, 150, 150), (255, 255, 255), (60, 60, 230)


def render(image: np.ndarray, result: DecodeResult, trace: Trace) -> np.ndarray:
    """The debug picture (BGR uint8)."""
    grey = to_grey(image)
    scale = min(1.0, MAX_WIDTH / max(grey.shape[1], 1))
    frame = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else grey
    canvas = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    decoded_box = result.region if result.decoded else None
    for rank, (scored, worth) in enumerate(trace.regions):
        r = scored.region
        colour = ORANGE if worth else GREY
        if decoded_box is not None and (r.x, r.y, r.w, r.h) == tuple(decoded_box):
            colour = GREEN
        p0 = (int(r.x * scale), int(r.y * scale))
        p1 = (int((r.x + r.w) * scale), int((r.y + r.h) * scale))
        cv2.rectangle(canvas, p0, p1, colour, 2)
        label = f"#{rank} {scored.score:.2f} f{scored.finders}" + ("" if worth else " skip")
        cv2.putText(canvas, label, (p0[0], max(p0[1] - 4, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1,
                    cv2.LINE_AA)
    if decoded_box is not None and not any(
            (s.region.x, s.region.y, s.region.w, s.region.h) == tuple(decoded_box) for s, _ in trace.regions):
        x, y, w, h = decoded_box
        cv2.rectangle(canvas, (int(x * scale), int(y * scale)), (int((x + w) * scale), int((y + h) * scale)), GREEN, 2)
    return np.hstack([canvas, _panel(canvas.shape[0], result, trace)])


def _panel(height: int, result: DecodeResult, trace: Trace) -> np.ndarray:
    lines: list[tuple[str, tuple[int, int, int]]] = []
    if result.decoded:
        lines.append((f"DECODED at {result.stage} ({result.library})", GREEN))
    else:
        lines.append((f"NOT decoded: {result.reason}", RED))
        lines += [(chunk, WHITE) for chunk in _wrap(result.hint, 52)]
    lines.append((f"{result.elapsed_ms:.1f} ms, {result.attempts} attempts, {len(trace.regions)} regions", WHITE))
    for key, value in sorted(result.measurements.items()):
        lines.append((f"  {key} = {value:.3g}", WHITE))
    lines.append(("rank  step              ms   result", WHITE))
    shown = trace.steps[-(max(height // LINE_PX - len(lines) - 1, 1)):]
    if len(shown) < len(trace.steps):
        lines.append((f"  ... {len(trace.steps) - len(shown)} earlier steps", GREY))
    for step in shown:
        where = "frame" if step.rank < 0 else f"#{step.rank}"
        lines.append((f"{where:5} {step.step:16} {step.ms:6.1f}  {'READ' if step.decoded else '-'}",
                      GREEN if step.decoded else GREY))
    panel = np.zeros((max(height, LINE_PX * (len(lines) + 1)), PANEL_WIDTH, 3), np.uint8)
    for i, (text, colour) in enumerate(lines):
        cv2.putText(panel, text, (8, LINE_PX * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.42, colour, 1, cv2.LINE_AA)
    return panel[:height] if panel.shape[0] > height else panel


def _wrap(text: str, width: int) -> list[str]:
    out: list[str] = []
    line = ""
    for word in text.encode("ascii", "replace").decode().split():
        if line and len(line) + 1 + len(word) > width:
            out.append("  " + line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        out.append("  " + line)
    return out
