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

import base64
import json
import logging
import re
import sys
import threading
import unicodedata
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"
#: the patterns that keep their first group (the header name) and mask only the value
_KEEP_PREFIX = r"\1"

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # the value of an Authorization header wherever it is quoted (aiohttp's "Error handling
    # request" repeats a malformed header line, "Authorization : Bearer <token>"), and any
    # "Bearer <credential>"; RFC 9110 §11.6.2 / RFC 6750 §2.1
    ("authorization", re.compile(
        r"(?i)((?:proxy-)?authorization['\"]?\s*[:=]\s*['\"]?)(?:(?:bearer|basic|digest|token)\s+)?[^\s'\",}]+")),
    ("bearer", re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")),
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


def mask(value: str | None, keep: int = 2) -> str:
    """``"001099012345"`` → ``"00********45"``; for reprs and logs."""
    if not value:
        return ""
    if len(value) <= 2 * keep:
        return "*" * len(value)
    return value[:keep] + "*" * (len(value) - 2 * keep) + value[-keep:]


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


_secrets: set[str] = set()
_secrets_re: re.Pattern[str] | None = None


def register_secret(value: str | bytes | None) -> None:
    """Mask this credential (API token, gateway password or token, HMAC or outbox key)
    in every log line for as long as the process runs. Bytes are also masked in their hex
    and base64 spellings. Values shorter than 8 characters are not registered (they would
    mask ordinary words); secrets that short are refused elsewhere."""
    global _secrets_re
    if not value:
        return
    forms = set()
    if isinstance(value, bytes):
        forms |= {value.hex(), value.hex().upper(), base64.b64encode(value).decode("ascii"),
                  base64.urlsafe_b64encode(value).decode("ascii").rstrip("=")}
        try:
            forms.add(value.decode("utf-8"))
        except UnicodeDecodeError:
            pass
    else:
        forms.add(value)
    forms = {f.strip() for f in forms if len(f.strip()) >= 8}
    with _sensitive_lock:
        if forms <= _secrets:
            return
        _secrets.update(forms)
        words = sorted(_secrets, key=len, reverse=True)
        _secrets_re = re.compile("|".join(re.escape(w) for w in words))


def redact(text: str) -> str:
    """Mask everything in ``text`` that looks like or was registered as personal data."""
    secrets_re = _secrets_re
    if secrets_re is not None:
        text = secrets_re.sub(REDACTED, text)
    for name, pattern in _PATTERNS:
        text = pattern.sub(_KEEP_PREFIX + REDACTED if name in ("authorization", "bearer") else REDACTED, text)
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


class RepeatFilter(logging.Filter):
    """Bounds a burst of the same warning or error (same logger, level and message template):
    the first ``burst`` lines of a ``window`` pass, the rest are counted, and one summary
    line says how many were suppressed (written by ``flush``, which the API's housekeeping
    calls every second, or with the next line of the same kind). A flood of refused or
    malformed requests, or a failing accept loop, writes a few lines instead of megabytes."""

    MAX_KEYS = 1024

    def __init__(self, handler: logging.Handler, *, burst: int = 5, window: float = 10.0,
                 clock: Any = None) -> None:
        super().__init__()
        import time

        self.handler, self.burst, self.window = handler, burst, window
        #: debug traces (APDU headers, one line per command) and INFO lines are not bounded:
        #: the floods to bound are warnings and errors (refusals, tracebacks)
        self.min_level = logging.WARNING
        self.clock = clock or time.monotonic
        self._state: dict[tuple[str, int, str], list[float]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_idagent_summary", False) or record.levelno < self.min_level:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        with self._lock:
            state = self._state.get(key)
            if state is None or now - state[0] >= self.window:
                summary = self._summary(key, state) if state else None
                if len(self._state) >= self.MAX_KEYS:
                    self._expire(now)
                self._state[key] = [now, 1.0, 0.0]
            else:
                summary = None
                state[1] += 1
                if state[1] > self.burst:
                    state[2] += 1
                    return False
        if summary is not None:
            self.handler.handle(summary)
        return True

    def flush(self) -> None:
        """Write the summary of every burst whose window is over."""
        now = self.clock()
        with self._lock:
            done = [k for k, s in self._state.items() if now - s[0] >= self.window]
            summaries = [self._summary(k, self._state.pop(k)) for k in done]
        for summary in summaries:
            if summary is not None:
                self.handler.handle(summary)

    def _expire(self, now: float) -> None:
        for key in [k for k, s in self._state.items() if now - s[0] >= self.window or not s[2]]:
            self._state.pop(key, None)

    def _summary(self, key: tuple[str, int, str], state: list[float]) -> logging.LogRecord | None:
        suppressed = int(state[2])
        if not suppressed:
            return None
        name, level, template = key
        record = logging.LogRecord(name, level, __file__, 0, "%d more lines like %r suppressed in %.0f s",
                                   (suppressed, template[:120], self.window), None)
        record._idagent_summary = True
        return record


_repeat_filters: list[RepeatFilter] = []


def flush_repeats() -> None:
    """Write pending burst summaries (called periodically by the API's housekeeping)."""
    for repeat in list(_repeat_filters):
        repeat.flush()


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
    # bound bursts first (on the message template), then mask what is written
    repeat = RepeatFilter(handler)
    _repeat_filters[:] = [repeat]
    handler.addFilter(repeat)
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    return handler
