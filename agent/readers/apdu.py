"""Command and response APDUs (ISO/IEC 7816-4), and the one place where they are
encoded, sent and chained.

Backends move raw bytes (``CardConnection.transmit``); everything above talks in
``Command``/``Response`` through a ``Channel``. ``ApduChannel`` is the bottom channel:
it encodes short or extended APDUs, follows 61xx with GET RESPONSE and re-issues on
6Cxx. Secure messaging (agent.icao.sm) is another ``Channel`` wrapping this one.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from agent.errors import IdAgentError, ProtocolError

logger = logging.getLogger(__name__)

#: Le meaning "as many as you have" (encoded 00 short, 0000 extended)
LE_MAX = 0x10000
SHORT_LC_MAX = 0xFF
SHORT_LE_MAX = 0x100
EXTENDED_LC_MAX = 0xFFFF


class SW(enum.IntEnum):
    """Status words we act on (ISO/IEC 7816-4 §5.6, ICAO 9303-11)."""

    OK = 0x9000
    WARNING_END_OF_FILE = 0x6282
    WARNING_AUTH_FAILED = 0x6300  # BAC/PACE with a wrong key
    MEMORY_FAILURE = 0x6581
    WRONG_LENGTH = 0x6700
    LOGICAL_CHANNEL_NOT_SUPPORTED = 0x6881
    SM_NOT_SUPPORTED = 0x6882
    LAST_COMMAND_EXPECTED = 0x6883
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    AUTH_METHOD_BLOCKED = 0x6983
    REFERENCE_DATA_NOT_USABLE = 0x6984
    CONDITIONS_NOT_SATISFIED = 0x6985
    COMMAND_NOT_ALLOWED = 0x6986
    SM_DATA_OBJECTS_MISSING = 0x6987
    SM_DATA_OBJECTS_INCORRECT = 0x6988
    WRONG_DATA = 0x6A80
    FUNCTION_NOT_SUPPORTED = 0x6A81
    FILE_NOT_FOUND = 0x6A82
    RECORD_NOT_FOUND = 0x6A83
    INCORRECT_P1P2 = 0x6A86
    REFERENCED_DATA_NOT_FOUND = 0x6A88
    WRONG_P1P2 = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_PRECISE_DIAGNOSIS = 0x6F00


class Ins(enum.IntEnum):
    SELECT = 0xA4
    READ_BINARY = 0xB0
    READ_BINARY_ODD = 0xB1
    GET_CHALLENGE = 0x84
    EXTERNAL_AUTHENTICATE = 0x82  # also MUTUAL AUTHENTICATE in BAC
    INTERNAL_AUTHENTICATE = 0x88
    MSE = 0x22
    GENERAL_AUTHENTICATE = 0x86
    GET_RESPONSE = 0xC0


@dataclass(frozen=True)
class Command:
    """A command APDU. ``le`` is None for no Le field, 1..65536 otherwise
    (256 and 65536 encode as 00 / 0000)."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise ValueError(f"APDU {name} out of range: {value}")
        if len(self.data) > EXTENDED_LC_MAX:
            raise ValueError(f"APDU data too long: {len(self.data)} bytes")
        if self.le is not None and not 1 <= self.le <= LE_MAX:
            raise ValueError(f"APDU Le out of range: {self.le}")

    @property
    def needs_extended(self) -> bool:
        return len(self.data) > SHORT_LC_MAX or (self.le is not None and self.le > SHORT_LE_MAX)

    def encode(self, extended: bool | None = None) -> bytes:
        """Encode per ISO/IEC 7816-3 §12.1 (cases 1-4, short or extended).

        ``extended=None`` picks extended only when the lengths need it."""
        ext = self.needs_extended if extended is None else extended
        if not ext and self.needs_extended:
            raise ValueError("APDU needs extended length")
        out = bytearray((self.cla, self.ins, self.p1, self.p2))
        if ext:
            if self.data:
                out += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
            if self.le is not None:
                le = self.le % LE_MAX
                out += (b"" if self.data else b"\x00") + le.to_bytes(2, "big")
        else:
            if self.data:
                out += bytes((len(self.data),)) + self.data
            if self.le is not None:
                out += bytes((self.le % SHORT_LE_MAX,))
        return bytes(out)

    def with_le(self, le: int | None) -> Command:
        return Command(self.cla, self.ins, self.p1, self.p2, self.data, le)

    def header(self) -> str:
        """A loggable summary: the header only, never the data."""
        return f"{self.cla:02X} {self.ins:02X} {self.p1:02X} {self.p2:02X} Lc={len(self.data)} Le={self.le}"


@dataclass(frozen=True)
class Response:
    data: bytes
    sw: int

    @classmethod
    def from_bytes(cls, raw: bytes) -> Response:
        if len(raw) < 2:
            raise ProtocolError(
                f"card response too short ({len(raw)} byte(s)); a response ends with a 2-byte status word"
            )
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))

    def to_bytes(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @property
    def ok(self) -> bool:
        return self.sw == SW.OK

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF


class ApduError(IdAgentError):
    """The card answered a status word other than 9000 where success was needed."""

    code = "apdu"

    def __init__(self, what: str, sw: int, data: bytes = b"") -> None:
        try:
            name = SW(sw).name
        except ValueError:
            name = "unknown"
        super().__init__(f"{what}: card answered {sw:04X} ({name})")
        self.sw = sw
        self.data = data


def check(response: Response, what: str) -> bytes:
    """Return the data of a 9000 response, raise ``ApduError`` otherwise.

    Compares the whole status word: a check written as ``sw1 != 90 and sw2 != 00``
    lets 6300 (wrong key) through (domain.md, reported pitfalls)."""
    if response.sw != SW.OK:
        raise ApduError(what, response.sw, response.data)
    return response.data


@runtime_checkable
class Channel(Protocol):
    """Anything that takes a ``Command`` and returns a ``Response``: the plain APDU
    channel, or secure messaging wrapped around one."""

    @property
    def extended_length(self) -> bool: ...

    def send(self, command: Command) -> Response: ...


@runtime_checkable
class Transmitter(Protocol):
    """The byte-level verb of a card connection (see agent.readers.base)."""

    @property
    def extended_length(self) -> bool: ...

    def transmit(self, apdu: bytes) -> bytes: ...


class ApduChannel:
    """The bottom ``Channel``: encodes commands for a byte-level connection and
    handles T=0 style chaining (61xx → GET RESPONSE, 6Cxx → re-issue with Le=xx)."""

    #: a card that keeps answering 61xx forever must not hang us
    MAX_GET_RESPONSE = 256

    def __init__(self, connection: Transmitter) -> None:
        self.connection = connection
        self.apdu_count = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    @property
    def extended_length(self) -> bool:
        return bool(self.connection.extended_length)

    def _exchange(self, raw: bytes) -> Response:
        self.apdu_count += 1
        self.bytes_sent += len(raw)
        answer = self.connection.transmit(raw)
        self.bytes_received += len(answer)
        return Response.from_bytes(answer)

    def send(self, command: Command) -> Response:
        if command.needs_extended and not self.extended_length:
            raise ProtocolError(
                f"command {command.header()} needs extended length, which this reader does not support",
                hint="Use a reader that supports extended APDUs, or read in smaller chunks.",
            )
        logger.debug("> %s", command.header())
        response = self._exchange(command.encode())
        if response.sw1 == 0x6C:
            response = self._exchange(command.with_le(response.sw2 or SHORT_LE_MAX).encode())
        data = bytearray(response.data)
        rounds = 0
        while response.sw1 == 0x61:
            rounds += 1
            if rounds > self.MAX_GET_RESPONSE:
                raise ProtocolError("card kept answering 61xx: response chaining never ended")
            get = Command(command.cla & 0x03, Ins.GET_RESPONSE, 0, 0, le=response.sw2 or SHORT_LE_MAX)
            response = self._exchange(get.encode())
            data += response.data
        logger.debug("< SW=%04X len=%d", response.sw, len(data))
        return Response(bytes(data), response.sw)
