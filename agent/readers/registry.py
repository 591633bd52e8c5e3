"""Backends by name, and picking the reader to read from.

Names: "pcsc", "nfc" (or "nfc:<nfcpy path>", e.g. "nfc:usb:054c:06c1"), "sim",
"replay:<fixture path>". The "sim" backend is only ever made when a name or the config
asks for it (design.md: never picked silently in production). Options come as keyword
arguments; ``agent.readpath.make_backend`` takes them from the config (and turns
``readers.sim_profile`` into a card): this layer knows neither.
"""

from __future__ import annotations

import logging
from typing import Any

from agent.errors import ConfigError, IdAgentError, NoCardError, NoReaderError, ReaderError
from agent.readers.base import CardConnection, ReaderBackend, ReaderInfo

logger = logging.getLogger(__name__)

BACKEND_NAMES = ("pcsc", "nfc", "sim", "replay:<path>")


def make_backend(name: str, **opts: Any) -> ReaderBackend:
    """Build the backend called ``name``; each backend takes the options that apply to it
    (extended_length, include, exclude, poll_interval; "sim": readers, card;
    "nfc": path, frontend_factory)."""
    extended = opts.get("extended_length", "auto")
    if name == "pcsc":
        from agent.readers.pcsc import PcscBackend

        return PcscBackend(extended_length=extended, include=opts.get("include", ()), exclude=opts.get("exclude", ()))
    if name == "nfc" or name.startswith("nfc:"):
        from agent.readers.nfc import NfcBackend

        path = name[4:] if name.startswith("nfc:") else opts.get("path", "usb")
        kwargs = {"frontend_factory": opts["frontend_factory"]} if "frontend_factory" in opts else {}
        return NfcBackend(path, extended_length=extended, poll_interval=opts.get("poll_interval", 0.5), **kwargs)
    if name == "sim":
        from agent.readers.sim import DEFAULT_READER, SimBackend

        readers = tuple(opts.get("readers", (DEFAULT_READER,)))
        backend = SimBackend(readers, extended_length=extended)
        card = opts.get("card")
        if card is not None:
            backend.insert(readers[0], card)
        return backend
    if name.startswith("replay:"):
        from agent.readers.replay import ReplayBackend

        path = name[len("replay:"):]
        if not path:
            raise ConfigError("backend 'replay:' needs a fixture path, e.g. replay:fixtures/apdu/card.json")
        return ReplayBackend(path)
    raise ConfigError(f"unknown reader backend {name!r}; known: {', '.join(BACKEND_NAMES)}")


def list_all(backends: list[ReaderBackend]) -> tuple[list[tuple[ReaderBackend, ReaderInfo]], list[ReaderError]]:
    """Every reader of every backend; a failing backend is reported, not fatal."""
    found: list[tuple[ReaderBackend, ReaderInfo]] = []
    errors: list[ReaderError] = []
    for backend in backends:
        try:
            found += [(backend, info) for info in backend.list_readers()]
        except ReaderError as err:
            logger.info("reader backend %s: %s", backend.name, err.message)
            errors.append(err)
    return found, errors


def open_reader(backends: list[ReaderBackend], name: str | None = None) -> CardConnection:
    """Connect to the reader called ``name`` (exact), or, without a name, to the only
    reader holding a card. Errors list the candidates."""
    found, errors = list_all(backends)
    if not found and errors:
        raise errors[0]
    names = [info.name for _b, info in found]
    if name is not None:
        for backend, info in found:
            if info.name == name:
                return backend.connect(name)
        raise NoReaderError(f"no reader named {name!r}; readers: {', '.join(names) or 'none'}")
    if not found:
        raise NoReaderError("no card reader attached")
    with_card = [(b, i) for b, i in found if i.card_present]
    if not with_card:
        raise NoCardError(f"no card on any reader (readers: {', '.join(names)})")
    if len(with_card) > 1:
        raise NoReaderError(
            f"cards on several readers: {', '.join(i.name for _b, i in with_card)}",
            hint="Name the reader to use with --reader (or readers.include in the config).")
    backend, info = with_card[0]
    return backend.connect(info.name)


def close_all(backends: list[ReaderBackend]) -> None:
    for backend in backends:
        try:
            backend.close()
        except IdAgentError as err:
            logger.debug("closing backend %s: %s", backend.name, err.message)
