"""``idagent readers``: list the card readers of the configured backends, or watch
their events with ``--wait``."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import TYPE_CHECKING, Any

from agent.errors import ReaderError
from agent.readers.base import ReaderBackend, ReaderEvent
from agent.readers.registry import close_all, list_all
from agent.readpath import make_backend

if TYPE_CHECKING:
    from agent.config import Config


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "readers", help="list card readers and whether a card is present",
        description="Lists the readers of the configured backends (readers.backends) with card presence "
                    "and ATR. With --wait, prints reader and card events as they happen.")
    parser.add_argument("--backend", action="append", metavar="NAME",
                        help="use this backend instead of the config's (repeatable): pcsc, nfc, sim, "
                             "replay:<fixture.json>")
    parser.add_argument("--wait", nargs="?", type=float, const=math.inf, default=None, metavar="SECONDS",
                        help="after listing, print events for SECONDS (default: until Ctrl-C)")
    parser.set_defaults(handler=handle)


def _backends(args: argparse.Namespace, config: Config) -> list[ReaderBackend]:
    names = args.backend or list(config.readers.backends)
    return [make_backend(name, config) for name in names]


def handle(args: argparse.Namespace, config: Config) -> int:
    backends = _backends(args, config)
    try:
        found, errors = list_all(backends)
        if not found and errors and len(errors) == len(backends):
            raise errors[0]
        _print_list(args, found, errors)
        if args.wait is not None:
            _watch(args, backends, args.wait, config.readers.poll_interval)
    finally:
        close_all(backends)
    return 0


def _print_list(args: argparse.Namespace, found: list[Any], errors: list[Any]) -> None:
    if args.json:
        doc = {"readers": [info.to_dict() for _b, info in found],
               "errors": [err.to_dict() for err in errors]}
        print(json.dumps(doc, ensure_ascii=False), flush=True)
        return
    if not found:
        print("no card reader found")
    for _backend, info in found:
        card = f"card present, ATR {info.atr.hex().upper()}" if info.card_present else "no card"
        print(f"{info.name} [{info.backend}]: {card}")
    for err in errors:
        print(f"warning: {err.message} (hint: {err.hint})", file=sys.stderr)
    sys.stdout.flush()


def _watch(args: argparse.Namespace, backends: list[ReaderBackend], seconds: float, interval: float) -> None:
    """Round-robin over the backends; the first call of each reports what is present
    (already listed above), so it is swallowed."""
    failing: set[str] = set()
    for backend in backends:
        try:
            backend.wait_for_events(0)
        except ReaderError:
            failing.add(backend.name)  # already reported with the list; retried in the loop
    deadline = time.monotonic() + seconds
    slice_ = max(0.05, min(interval, 1.0) / max(1, len(backends)))
    while time.monotonic() < deadline:
        for backend in backends:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                events = backend.wait_for_events(min(slice_, remaining))
            except ReaderError as err:  # e.g. pcscd stopped: say so once, keep watching
                if backend.name not in failing:
                    print(f"warning: {backend.name}: {err.message} (hint: {err.hint})", file=sys.stderr, flush=True)
                    failing.add(backend.name)
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
                continue
            if backend.name in failing:
                failing.discard(backend.name)
                print(f"{backend.name}: back", file=sys.stderr, flush=True)
            for event in events:
                _print_event(args, backend, event)


def _print_event(args: argparse.Namespace, backend: ReaderBackend, event: ReaderEvent) -> None:
    if args.json:
        print(json.dumps({"event": event.kind.value, "reader": event.reader, "backend": backend.name,
                          "atr": event.atr.hex().upper()}), flush=True)
    else:
        atr = f" ATR {event.atr.hex().upper()}" if event.atr else ""
        print(f"{time.strftime('%H:%M:%S')} {event.kind.value}: {event.reader}{atr}", flush=True)
