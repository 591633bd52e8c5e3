"""``idagent qr decode IMAGE…``, ``idagent qr parse TEXT|-``, ``idagent qr listen``.

Output is for the operator's terminal (the CAN and the fields are shown: that is the
point), but nothing here logs a payload. Payload text is data: control characters are
shown escaped (``payload.printable``); JSON output escapes by construction.

Exit codes: 0 all decoded / parsed as a CCCD QR · 8 a QR not decoded, not a CCCD QR,
or malformed · 3 usage/config · 4 a live source is missing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import cv2

from agent.config import Config
from agent.errors import ConfigError, IdAgentError
from agent.icao.keys import yymmdd
from agent.qr import access_keys
from agent.qr.decode import DecodeResult, Trace, decode_frame
from agent.qr.images import QrImageError, load_image
from agent.qr.payload import PayloadResult, looks_like_cccd, printable, read_payload

logger = logging.getLogger(__name__)

QR_NOT_DECODED = 8


class QrConfigError(ConfigError):
    exit_code = 3


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("qr", help="decode and parse the card's QR code")
    sub = parser.add_subparsers(dest="qr_command", metavar="ACTION")
    sub.required = True

    decode = sub.add_parser("decode", help="decode QR codes in image files")
    decode.add_argument("images", nargs="+", metavar="IMAGE")
    decode.add_argument("--budget-ms", type=float, default=250.0,
                        help="time budget per image for the enhancement ladder (default 250 for files)")
    decode.add_argument("--explain", action="store_true",
                        help="also write IMAGE.explain.png: the regions tried, their rank and each ladder step")
    decode.add_argument("--explain-dir", metavar="DIR",
                        help="write the --explain pictures here (default: next to each image)")
    decode.set_defaults(handler=run_decode)

    parse = sub.add_parser("parse", help="repair and parse QR text (e.g. from a scanner); '-' reads stdin")
    parse.add_argument("text", metavar="TEXT|-")
    parse.add_argument("--lenient", action="store_true",
                       help="report ID digits that disagree with birth date/sex as warnings, not errors")
    parse.set_defaults(handler=run_parse)

    listen = sub.add_parser("listen", help="print codes from the configured live sources ([qr] section)")
    listen.add_argument("--once", action="store_true", help="exit after the first CCCD QR")
    listen.add_argument("--timeout", type=float, default=0.0, help="stop after this many seconds (0: never)")
    listen.set_defaults(handler=run_listen)


# ---------------------------------------------------------------- decode


def run_decode(args: argparse.Namespace, config: Config) -> int:
    reports = []
    for path in args.images:
        reports.append(_decode_one(path, config, args.budget_ms,
                                   _explain_path(path, args.explain_dir) if args.explain else None))
    if args.json:
        print(json.dumps(reports if len(reports) > 1 else reports[0], ensure_ascii=False, indent=2))
    else:
        for report in reports:
            print(_format_decode(report))
    return 0 if all(_is_cccd(r) for r in reports) else QR_NOT_DECODED


def _is_cccd(report: dict[str, Any]) -> bool:
    """Decoded, and the card's QR: any other code (a URL, a BHYT card) exits 8 too."""
    payload = report.get("payload")
    return bool(report["decoded"]) and isinstance(payload, dict) and "fields" in payload and "error" not in payload


def _explain_path(image: str, folder: str | None) -> str:
    base = os.path.splitext(os.path.basename(image))[0] + ".explain.png"
    return os.path.join(folder if folder else os.path.dirname(os.path.abspath(image)), base)


def _decode_one(path: str, config: Config, budget_ms: float, explain_to: str | None = None) -> dict[str, Any]:
    report: dict[str, Any] = {"image": path, "decoded": False}
    try:
        grey = load_image(path, max_pixels=config.qr.max_image_pixels)
    except QrImageError as err:
        report.update(error=err.to_dict(), hint=err.hint)
        return report
    trace = Trace() if explain_to else None
    result = decode_frame(grey, budget_ms=budget_ms, prefer=_prefer_cccd, trace=trace)
    report.update(_result_dict(result))
    if explain_to and trace is not None:
        report["explain_image"] = _write_explain(explain_to, grey, result, trace)
    if result.payload is not None:
        report["payload"] = _payload_dict(read_payload(result.payload))
    return report


def _write_explain(path: str, grey: Any, result: DecodeResult, trace: Trace) -> str | None:
    """Write the debug picture; a folder we cannot write to is reported, not raised
    (the decode result still stands)."""
    from agent.qr.explain import render

    try:
        if not cv2.imwrite(path, render(grey, result, trace)):
            raise OSError("the image writer refused the path")
    except (OSError, cv2.error) as exc:
        logger.warning("could not write the explain picture %s: %s", path, exc)
        return None
    return path


def _prefer_cccd(payload: bytes) -> bool:
    return looks_like_cccd(payload.decode("utf-8", errors="replace"))


def _result_dict(result: DecodeResult) -> dict[str, Any]:
    out: dict[str, Any] = {"decoded": result.decoded, "stage": result.stage, "library": result.library,
                           "milliseconds": round(result.elapsed_ms, 1), "codes_in_image": len(result.payloads)}
    if result.payload is not None:
        out["bytes_hex"] = result.payload.hex()
    else:
        out.update(reason=result.reason, hint=result.hint,
                   measurements={k: round(v, 3) for k, v in result.measurements.items()})
    if result.region:
        out["region"] = list(result.region)
    return out


def _format_decode(report: dict[str, Any]) -> str:
    if "error" in report:
        return f"{report['image']}: {report['error']['message']}\n  hint: {report['hint']}"
    explain = f"\n  explain: {report['explain_image']}" if report.get("explain_image") else ""
    if not report["decoded"]:
        return f"{report['image']}: NOT decoded ({report['milliseconds']} ms)\n  hint: {report['hint']}{explain}"
    lines = [f"{report['image']}: decoded by {report['library']} at stage {report['stage']} "
             f"({report['milliseconds']} ms)"]
    if report["codes_in_image"] > 1:
        lines.append(f"  note: {report['codes_in_image']} different codes in the image; showing the card's")
    lines.append(f"  bytes: {report['bytes_hex']}")
    if explain:
        lines.append(explain.strip("\n"))
    lines += ["  " + line for line in _format_payload(report["payload"]).splitlines()]
    return "\n".join(lines)


# ---------------------------------------------------------------- parse


def run_parse(args: argparse.Namespace, config: Config) -> int:
    data: bytes | str = sys.stdin.buffer.read() if args.text == "-" else args.text
    result = read_payload(data, strict=not args.lenient)
    report = _payload_dict(result, no_expiry_year=config.card.no_expiry_year)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(_format_payload(report))
    return 0 if result.ok else QR_NOT_DECODED


def _payload_dict(result: PayloadResult, *, no_expiry_year: int | None = 2099) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": result.kind, "text": result.text}
    if result.repair is not None:
        out.update(result.repair.to_dict())
    if result.error is not None:
        out["error"] = {**result.error.to_dict(), "field": result.error.field_name}
    if result.card is not None:
        out["fields"] = result.card.to_dict()
        out["access"] = _access_dict(result, no_expiry_year)
    return out


def _access_dict(result: PayloadResult, no_expiry_year: int | None) -> dict[str, Any]:
    card = result.card
    assert card is not None
    out: dict[str, Any] = {"can": card.can, "document_number": card.document_number,
                           "date_of_birth": yymmdd(card.date_of_birth), "expiry_candidates": []}
    if card.date_of_issue is not None:
        out["expiry_candidates"] = [
            {"yymmdd": c.yymmdd, "date": c.date.isoformat() if isinstance(c.date, dt.date) else None,
             "reason": c.reason}
            for c in access_keys.expiry_candidates(card.date_of_birth, card.date_of_issue,
                                                   no_expiry_year=no_expiry_year)]
    return out


def _format_payload(report: dict[str, Any]) -> str:
    kinds = {"cccd": "CCCD QR", "not_cccd": "not a CCCD QR", "malformed": "malformed CCCD QR"}
    lines = [f"kind:  {kinds.get(report['kind'], report['kind'])}", f"text:  {printable(report['text'])}"]
    if report.get("repairs"):
        lines.append(f"repaired: {', '.join(report['repairs'])}")
    if report.get("flags"):
        lines.append(f"warning: {', '.join(report['flags'])}")
    if "error" in report:
        lines.append(f"error: {report['error']['message']}")
        lines.append(f"hint:  {report['error']['hint']}")
    fields = report.get("fields")
    if fields:
        for name in ("id_number", "old_id_number", "full_name", "date_of_birth", "sex_label",
                     "place_of_residence", "date_of_issue", "province_name", "variant"):
            value = fields.get(name)
            lines.append(f"{name + ':':20} {printable(str(value)) if value is not None else '-'}")
        for name, value in fields["extra"].items():
            lines.append(f"{name + ':':20} {printable(value)}")
        for warning in fields["warnings"]:
            lines.append(f"warning: {warning}")
        acc = report["access"]
        lines.append(f"{'CAN (PACE):':20} {acc['can']}")
        for cand in acc["expiry_candidates"]:
            lines.append(f"{'MRZ (BAC):':20} {acc['document_number']} / {acc['date_of_birth']} / "
                         f"{cand['yymmdd']}  ({cand['reason']})")
    return "\n".join(lines)


# ---------------------------------------------------------------- listen


def run_listen(args: argparse.Namespace, config: Config) -> int:
    inbox: queue.Queue[tuple[str, bytes | str] | IdAgentError] = queue.Queue()
    stop = threading.Event()
    threads = [threading.Thread(target=_pump, args=(name, make, inbox, stop), name=f"qr-{name}", daemon=True)
               for name, make in _sources(config)]
    if not threads:
        raise QrConfigError("no live QR source configured",
                          hint="Set qr.camera, qr.serial_port or qr.evdev_device in the config file.")
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + args.timeout if args.timeout else None
    status = 0
    try:
        while deadline is None or time.monotonic() < deadline:
            try:
                item = inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            if isinstance(item, IdAgentError):
                raise item
            source, data = item
            if isinstance(data, Hint):
                print(json.dumps({"source": source, "hint": str(data)}, ensure_ascii=False) if args.json
                      else f"[{source}] hint: {data}", flush=True)
                continue
            result = read_payload(data)
            report = {"source": source, **_payload_dict(result, no_expiry_year=config.card.no_expiry_year)}
            if args.json:
                print(json.dumps(report, ensure_ascii=False), flush=True)
            else:
                print(f"[{source}]\n{_format_payload(report)}\n", flush=True)
            if args.once and result.ok:
                break
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=2.0)
    return status


def _sources(config: Config) -> list[tuple[str, Any]]:
    qr = config.qr
    out: list[tuple[str, Any]] = []
    if qr.camera:
        def camera(stop: threading.Event, emit: Callable[[Any], None]) -> Any:
            from agent.readers.camera import FrameLoop, open_camera

            hints = _HintThrottle(emit)
            loop = FrameLoop(open_camera(qr.camera), decode_frame, on_result=hints.see)
            for scan in loop.scans(stop):
                yield scan.payload
        out.append(("camera", camera))
    if qr.serial_port:
        def serial_source(stop: threading.Event, emit: Callable[[Any], None]) -> Any:
            from agent.readers.serial_scanner import SerialScanner

            yield from SerialScanner(qr.serial_port, baud=qr.serial_baud,
                                     terminator=qr.serial_terminator).payloads(stop)
        out.append(("serial", serial_source))
    if qr.evdev_device:
        def wedge(stop: threading.Event, emit: Callable[[Any], None]) -> Any:
            from agent.readers.evdev_scanner import EvdevScanner

            for line in EvdevScanner(qr.evdev_device).lines(stop):
                yield line.text
        out.append(("keyboard", wedge))
    return out


class _HintThrottle:
    """Camera hints for the clerk ("move the card closer"), at most one every few
    seconds and only when a code is seen but not read."""

    def __init__(self, emit: Callable[[Any], None], every: float = 3.0) -> None:
        self.emit = emit
        self.every = every
        self.last = 0.0

    def see(self, result: Any) -> None:
        now = time.monotonic()
        if result.payloads or not result.hint or result.reason == "no_code" or now - self.last < self.every:
            return
        self.last = now
        self.emit(Hint(result.hint))


class Hint(str):
    """A hint for the clerk travelling with the payloads (not a payload)."""


def _pump(name: str, make: Any, inbox: queue.Queue[Any], stop: threading.Event) -> None:
    try:
        for data in make(stop, lambda extra: inbox.put((name, extra))):
            inbox.put((name, data))
            if stop.is_set():
                return
    except IdAgentError as err:
        inbox.put(err)
