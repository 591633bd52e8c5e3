"""Recorded APDU exchanges: record any connection to a fixture file, play one back.

Fixture format (JSON, UTF-8)::

    {"format": "idagent-apdu/1",
     "meta": {"profile": "...", "access": "PACE", "date": "...", "tool": "idagent 0.1", ...},
     "random": ["hex", ...],            # what the terminal's rng returned, in order
     "exchanges": [{"command": "hex", "response": "hex"}, ...],
     "extended_length": false,
     "atr": "hex"}                      # optional

A recording replays byte for byte only because the terminal's randomness is injected
(``rng(n) -> bytes``) and recorded too: ``RecordingRandom`` / ``ReplayRandom``.
Fixtures hold synthetic cards only; never record a real person's card into the repo.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import NoCardError, NoReaderError, ParseError, ProtocolError
from agent.readers.base import CardConnection, ReaderBackend, ReaderEvent, ReaderInfo, WrappedConnection
from agent.readers.slots import SlotState, diff_states
from agent.rng import Rng

FORMAT = "idagent-apdu/1"



class ReplayMismatchError(ProtocolError):
    """The code under test did something other than what the recording holds."""

    code = "replay_mismatch"
    exit_code = 6
    hint = "The code no longer sends what was recorded: re-record the fixture or fix the change."

    def __init__(self, message: str, *, index: int, expected: bytes | None, got: bytes | None) -> None:
        # fixtures are synthetic (design.md), so showing the bytes is safe and useful here
        exp = expected.hex().upper() if expected is not None else "(nothing: the recording ended)"
        gotx = got.hex().upper() if got is not None else "-"
        super().__init__(f"{message} at index {index}: expected {exp}, got {gotx}")
        self.index = index
        self.expected = expected
        self.got = got


@dataclass(frozen=True)
class ApduFixture:
    exchanges: tuple[tuple[bytes, bytes], ...]
    random: tuple[bytes, ...] = ()
    extended_length: bool = False
    atr: bytes = b""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "meta": dict(self.meta),
            "random": [r.hex() for r in self.random],
            "exchanges": [{"command": c.hex(), "response": r.hex()} for c, r in self.exchanges],
            "extended_length": self.extended_length,
        }
        if self.atr:
            out["atr"] = self.atr.hex()
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        tmp.replace(target)


# --- loading --------------------------------------------------------------------------------------

def load_fixture(path: str | os.PathLike[str]) -> ApduFixture:
    """Read and validate a fixture file; ``ParseError`` names the file and the problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ParseError(f"cannot read fixture: {exc}", source=source) from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"not JSON ({exc.msg})", source=source, offset=exc.pos) from exc
    return parse_fixture(doc, source)


def parse_fixture(doc: object, source: str = "fixture") -> ApduFixture:
    if not isinstance(doc, dict):
        raise ParseError("top level must be a JSON object", source=source)
    if doc.get("format") != FORMAT:
        raise ParseError(f"'format' is {doc.get('format')!r}, expected {FORMAT!r}", source=source)
    meta = doc.get("meta", {})
    if not isinstance(meta, dict):
        raise ParseError("'meta' must be an object", source=source)
    extended = doc.get("extended_length", False)
    if not isinstance(extended, bool):
        raise ParseError("'extended_length' must be true or false", source=source)
    raw_exchanges = doc.get("exchanges")
    if not isinstance(raw_exchanges, list):
        raise ParseError("'exchanges' must be a list", source=source)
    exchanges = tuple(_exchange(item, i, source) for i, item in enumerate(raw_exchanges))
    raw_random = doc.get("random", [])
    if not isinstance(raw_random, list):
        raise ParseError("'random' must be a list of hex strings", source=source)
    random = tuple(_hex(v, f"random[{i}]", source) for i, v in enumerate(raw_random))
    atr = _hex(doc["atr"], "atr", source) if "atr" in doc else b""
    return ApduFixture(exchanges, random, extended, atr, meta)


def _exchange(item: object, index: int, source: str) -> tuple[bytes, bytes]:
    where = f"exchanges[{index}]"
    if not isinstance(item, dict) or "command" not in item or "response" not in item:
        raise ParseError(f"{where} must be an object with 'command' and 'response'", source=source)
    command = _hex(item["command"], f"{where}.command", source)
    response = _hex(item["response"], f"{where}.response", source)
    if len(command) < 4:
        raise ParseError(f"{where}.command is shorter than the 4-byte header", source=source)
    if len(response) < 2:
        raise ParseError(f"{where}.response is shorter than the 2-byte status word", source=source)
    return command, response


def _hex(value: object, where: str, source: str) -> bytes:
    if not isinstance(value, str):
        raise ParseError(f"{where} must be a hex string", source=source)
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ParseError(f"{where} is not valid hex", source=source) from None


# --- playback -------------------------------------------------------------------------------------

class ReplayConnection(CardConnection):
    """Answers each command with the recorded response, if it is the recorded command."""
    can_stall = False  # answers come from a file

    def __init__(self, fixture: ApduFixture | str | os.PathLike[str], reader: str = "replay") -> None:
        self.fixture = fixture if isinstance(fixture, ApduFixture) else load_fixture(fixture)
        self.reader = reader
        self.position = 0

    @property
    def extended_length(self) -> bool:
        return self.fixture.extended_length

    @property
    def atr(self) -> bytes:
        return self.fixture.atr

    @property
    def finished(self) -> bool:
        return self.position == len(self.fixture.exchanges)

    def transmit(self, apdu: bytes) -> bytes:
        index = self.position
        if index >= len(self.fixture.exchanges):
            raise ReplayMismatchError(f"command beyond the end of the recording ({index} exchanges)",
                                      index=index, expected=None, got=bytes(apdu))
        expected, response = self.fixture.exchanges[index]
        if bytes(apdu) != expected:
            raise ReplayMismatchError("command differs from the recording", index=index, expected=expected,
                                      got=bytes(apdu))
        self.position += 1
        return response

    def assert_finished(self) -> None:
        """Fail when the code under test stopped before the recording did."""
        if not self.finished:
            expected = self.fixture.exchanges[self.position][0]
            raise ReplayMismatchError("recording has exchanges left over", index=self.position,
                                      expected=expected, got=None)


class ReplayRandom:
    """``rng(n)`` that hands out the recorded random values in order."""

    def __init__(self, values: Sequence[bytes]) -> None:
        self.values = list(values)
        self.position = 0

    def __call__(self, n: int) -> bytes:
        index = self.position
        if index >= len(self.values):
            raise ReplayMismatchError(f"random request for {n} bytes beyond the {len(self.values)} recorded",
                                      index=index, expected=None, got=None)
        value = self.values[index]
        if len(value) != n:
            raise ReplayMismatchError(f"random request for {n} bytes, recording has {len(value)}",
                                      index=index, expected=value, got=None)
        self.position += 1
        return value


# --- recording ------------------------------------------------------------------------------------

class RecordingConnection(WrappedConnection):
    """Wraps any connection and keeps every successful exchange."""

    def __init__(self, inner: CardConnection) -> None:
        super().__init__(inner)
        self.exchanges: list[tuple[bytes, bytes]] = []

    def transmit(self, apdu: bytes) -> bytes:
        response = self.inner.transmit(apdu)
        self.exchanges.append((bytes(apdu), bytes(response)))
        return response

    def fixture(self, meta: Mapping[str, Any], rng: RecordingRandom | None = None,
                now: Callable[[], _dt.datetime] | None = None) -> ApduFixture:
        from agent import __version__

        full = {"date": (now or _utcnow)().isoformat(timespec="seconds"), "tool": f"idagent {__version__}",
                **dict(meta)}
        return ApduFixture(tuple(self.exchanges), tuple(rng.values) if rng else (), self.extended_length,
                           self.atr, full)

    def save(self, path: str | os.PathLike[str], meta: Mapping[str, Any], rng: RecordingRandom | None = None) -> None:
        self.fixture(meta, rng).save(path)


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


class RecordingRandom:
    """Wraps an rng and keeps what it returned."""

    def __init__(self, rng: Rng = os.urandom) -> None:
        self.rng = rng
        self.values: list[bytes] = []

    def __call__(self, n: int) -> bytes:
        value = bytes(self.rng(n))
        self.values.append(value)
        return value


def save(path: str | os.PathLike[str], meta: Mapping[str, Any], connection: RecordingConnection,
         rng: RecordingRandom | None = None) -> None:
    connection.save(path, meta, rng)


# --- a backend reading from a fixture file -------------------------------------------------------

class ReplayBackend(ReaderBackend):
    """One reader, "replay:<file name>", with the recording's card always present."""

    name = "replay"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.fixture = load_fixture(self.path)
        self.reader = f"replay:{self.path.name}"
        self._reported = False
        self._closed = threading.Event()

    def random(self) -> ReplayRandom:
        return ReplayRandom(self.fixture.random)

    def list_readers(self) -> list[ReaderInfo]:
        return [ReaderInfo(self.reader, True, self.fixture.atr, self.name, {"fixture": str(self.path)})]

    def connect(self, reader: str) -> ReplayConnection:
        if reader != self.reader:
            raise NoReaderError(f"no reader named {reader!r}; readers: {self.reader}")
        if self._closed.is_set():
            raise NoCardError(f"replay backend for {self.path} is closed")
        return ReplayConnection(self.fixture, self.reader)

    def wait_for_events(self, timeout: float) -> list[ReaderEvent]:
        if not self._reported:
            self._reported = True
            return diff_states({}, {self.reader: SlotState(True, self.fixture.atr, 1)})
        self._closed.wait(timeout)  # nothing ever changes in a recording
        return []

    def close(self) -> None:
        self._closed.set()

