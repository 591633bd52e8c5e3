"""Logging set-up and the redaction filter.

Personal data must never reach a log line: ID numbers (9 or 12 digits, and any run of
6 or more digits, which covers the CAN and MRZ dates), MRZ lines, names, keys, photos.
Code is written not to log them (lazy ``%s`` arguments, headers instead of APDU
data); this filter is the second line of defence, on every handler, so it also covers
third-party libraries' log lines.

Names cannot be recognised by a pattern, so the parts of the agent that hold an
identity register its values with ``register_sensitive()`` while it is in memory (and
``forget_sensitive()`` when it is dropped); registered values are masked wherever
they appear, with or without diacritics.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import unicodedata
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # credentials in a query string (the BHYT gateway takes token, id_token and password
    # there; urllib3 logs the request line at DEBUG): the whole value, whatever its alphabet
    ("query_secret", re.compile(r"(?i)(?<=[?&;])((?:access_|id_|api_?)?token|password|apikey)=[^&\s\"']+")),
    # MRZ lines (TD1 30, TD2 36, TD3 44 characters of A-Z 0-9 <) and fragments of them
    ("mrz", re.compile(r"[A-Z0-9<]{8,}<[A-Z0-9<]*")),
    # PEM blocks (private keys must never be logged; certificates need not be either)
    ("pem", re.compile(r"-----BEGIN [A-Z ]+-----.*?-----END [A-Z ]+-----", re.S)),
    # long hex strings: keys, APDU payloads, hashes
    ("hex", re.compile(r"\b(?:[0-9A-Fa-f]{2}[ :]?){11,}[0-9A-Fa-f]{2}\b")),
    # base64 blobs (photos, DG dumps)
    ("b64", re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")),
    # ID numbers (12-digit CCCD, 9-digit CMND), CAN (6 digits), dates as digits
    ("digits", re.compile(r"(?<![0-9])[0-9]{6,}(?![0-9])")),
)

_sensitive: dict[str, int] = {}
_sensitive_lock = threading.Lock()
_sensitive_re: re.Pattern[str] | None = None


def _fold(text: str) -> str:
    """Casefold and strip diacritics (đ → d) so "Nguyễn" also catches "NGUYEN"."""
    decomposed = unicodedata.normalize("NFD", text.casefold().replace("đ", "d"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _rebuild() -> None:
    global _sensitive_re
    words = sorted(_sensitive, key=len, reverse=True)
    _sensitive_re = (re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)")
                     if words else None)


def _variants(value: str) -> set[str]:
    value = unicodedata.normalize("NFC", value.strip())
    out = set()
    for part in [value, *value.split()]:
        if len(part) >= 2:
            out.add(_fold(part))
    return out


def register_sensitive(values: Iterable[str | None]) -> None:
    """Mask these values (and each of their words of 2+ letters) in every log line
    until ``forget_sensitive`` is called with them."""
    with _sensitive_lock:
        for value in values:
            if not value:
                continue
            for v in _variants(value):
                _sensitive[v] = _sensitive.get(v, 0) + 1
        _rebuild()


def forget_sensitive(values: Iterable[str | None]) -> None:
    with _sensitive_lock:
        for value in values:
            if not value:
                continue
            for v in _variants(value):
                n = _sensitive.get(v, 0) - 1
                if n <= 0:
                    _sensitive.pop(v, None)
                else:
                    _sensitive[v] = n
        _rebuild()


def redact(text: str) -> str:
    """Mask everything in ``text`` that looks like or was registered as personal data."""
    for _name, pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    regex = _sensitive_re
    if regex is not None:
        folded = _fold(text)
        if len(folded) == len(text):
            # folding kept positions aligned: mask the original text at the same spans
            spans = [m.span() for m in regex.finditer(folded)]
            for start, end in reversed(spans):
                text = text[:start] + REDACTED + text[end:]
        elif regex.search(folded):
            text = regex.sub(REDACTED, folded)
    return text


def _safe_arg(arg: Any) -> Any:
    if isinstance(arg, (bytes, bytearray, memoryview)):
        return f"<{len(arg)} bytes>"
    return arg


class RedactingFilter(logging.Filter):
    """Renders the message, masks it, and freezes it into ``record.msg``."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if isinstance(record.args, tuple):
                record.args = tuple(_safe_arg(a) for a in record.args)
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"{record.msg!s} (unformattable arguments)"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # tracebacks may carry values in exception messages: render and mask them here
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "plain", stream: Any = None) -> logging.Handler:
    """Configure the root logger with one redacting handler (replacing any we set
    before). Returns the handler."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_idagent", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._idagent = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    return handler
