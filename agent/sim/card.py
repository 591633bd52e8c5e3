"""Virtual cards: the card side of ISO/IEC 7816-4, in process.

``VirtualCard`` is what every card model implements (this module's small file-system
card, the ICAO chip in agent.sim.chip). A virtual card can sit in the in-process
``SimBackend`` or on the real PC/SC stack through ``VpcdClient``.
"""

from __future__ import annotations

import abc
import enum
import logging
from dataclasses import dataclass, field

from agent.icao import tlv as ber
from agent.readers.apdu import LE_MAX, SHORT_LE_MAX, SW, Command, Ins
from agent.readers.atr import build_atr, capabilities_historical

logger = logging.getLogger(__name__)


class VirtualCard(abc.ABC):
    """A card model: powered on/off/reset by the reader, answers command APDUs."""

    #: whether the card takes extended Lc/Le (and says so in its ATR)
    extended_length: bool = False

    @abc.abstractmethod
    def power_on(self) -> bytes:
        """Power the card up; return its ATR."""

    @abc.abstractmethod
    def power_off(self) -> None:
        """Power down: volatile state (selection, sessions) is lost."""

    def reset(self) -> bytes:
        """Warm reset: same as power cycling for our models."""
        self.power_off()
        return self.power_on()

    @abc.abstractmethod
    def process(self, apdu: bytes) -> bytes:
        """Answer one command APDU with response data + SW1 SW2 (at least 2 bytes)."""


class CommandFormatError(ValueError):
    """A command APDU whose length fields do not add up (the card answers 6700)."""


def parse_command(raw: bytes) -> tuple[Command, bool]:
    """Decode a command APDU (ISO/IEC 7816-3 §12.1, cases 1-4 short and extended).

    Returns the command and whether it was extended-length encoded."""
    if len(raw) < 4:
        raise CommandFormatError("command shorter than 4 bytes")
    cla, ins, p1, p2 = raw[:4]
    body = raw[4:]
    if not body:
        return Command(cla, ins, p1, p2), False
    if len(body) == 1:  # case 2S
        return Command(cla, ins, p1, p2, le=body[0] or SHORT_LE_MAX), False
    if body[0] != 0:  # case 3S / 4S
        lc = body[0]
        if len(body) == 1 + lc:
            return Command(cla, ins, p1, p2, bytes(body[1:])), False
        if len(body) == 2 + lc:
            return Command(cla, ins, p1, p2, bytes(body[1:-1]), body[-1] or SHORT_LE_MAX), False
        raise CommandFormatError("short Lc does not match the data length")
    return _parse_extended(cla, ins, p1, p2, body), True


def _parse_extended(cla: int, ins: int, p1: int, p2: int, body: bytes) -> Command:
    if len(body) == 3:  # case 2E: 00 Le1 Le2
        return Command(cla, ins, p1, p2, le=int.from_bytes(body[1:3], "big") or LE_MAX)
    if len(body) < 4:
        raise CommandFormatError("extended length field truncated")
    lc = int.from_bytes(body[1:3], "big")
    if lc == 0:
        raise CommandFormatError("extended Lc of 0")
    if len(body) == 3 + lc:  # case 3E
        return Command(cla, ins, p1, p2, bytes(body[3:]))
    if len(body) == 5 + lc:  # case 4E
        return Command(cla, ins, p1, p2, bytes(body[3:3 + lc]), int.from_bytes(body[-2:], "big") or LE_MAX)
    raise CommandFormatError("extended Lc does not match the data length")


def sw_bytes(sw: int) -> bytes:
    return sw.to_bytes(2, "big")


# --- a small ISO 7816-4 file system ---------------------------------------------------------------

MF_FID = 0x3F00
#: DO tags of READ BINARY with odd INS (7816-4 §7.2.3; ICAO 9303-10 §3.6.3 for offsets > 32767)
TAG_OFFSET = 0x54
TAG_DISCRETIONARY = 0x53
#: FCP template tags (7816-4 §5.3.3)
TAG_FCP, TAG_FCP_SIZE, TAG_FCP_DESCRIPTOR, TAG_FCP_FID, TAG_FCP_NAME = 0x62, 0x80, 0x82, 0x83, 0x84


@dataclass
class ElementaryFile:
    fid: int
    data: bytes
    sfi: int | None = None


@dataclass
class DedicatedFile:
    fid: int | None = None
    aid: bytes | None = None
    children: list[ElementaryFile | DedicatedFile] = field(default_factory=list)
    parent: DedicatedFile | None = field(default=None, repr=False, compare=False)

    def add(self, child: ElementaryFile | DedicatedFile) -> ElementaryFile | DedicatedFile:
        if isinstance(child, DedicatedFile):
            child.parent = self
        self.children.append(child)
        return child

    def child(self, fid: int) -> ElementaryFile | DedicatedFile | None:
        return next((c for c in self.children if c.fid == fid), None)

    def by_sfi(self, sfi: int) -> ElementaryFile | None:
        return next((c for c in self.children if isinstance(c, ElementaryFile) and c.sfi == sfi), None)

    def walk(self) -> list[DedicatedFile]:
        out = [self]
        for c in self.children:
            if isinstance(c, DedicatedFile):
                out += c.walk()
        return out


class Chaining(enum.Enum):
    """How the card hands out response data, for exercising ``ApduChannel``."""

    NONE = "none"  #: all data at once
    GET_RESPONSE = "61xx"  #: T=0 style: 61xx, the host fetches with GET RESPONSE
    WRONG_LE = "6Cxx"  #: a short Le that is not the exact length gets 6Cxx first


class FileSystemCard(VirtualCard):
    """MF/DF/EF tree with SELECT (FID, child DF, EF, AID, path) and READ BINARY
    (B0 with SFI or 15-bit offset, B1 with offset DO 54), short or extended Le."""

    def __init__(self, mf: DedicatedFile | None = None, *, extended_length: bool = False,
                 chaining: Chaining = Chaining.NONE, chunk: int = SHORT_LE_MAX, atr: bytes | None = None) -> None:
        self.mf = mf if mf is not None else DedicatedFile(MF_FID)
        if self.mf.fid is None:
            self.mf.fid = MF_FID
        self.extended_length = extended_length
        self.chaining = chaining
        #: largest piece of data per answer when chaining with 61xx
        self.chunk = chunk
        self._atr = atr if atr is not None else build_atr(capabilities_historical(extended_length))
        self.powered = False
        self.current_df: DedicatedFile = self.mf
        self.current_ef: ElementaryFile | None = None
        self._pending = b""
        #: every command received, for tests to count exchanges (synthetic data only)
        self.log: list[bytes] = []

    # -- power --
    def power_on(self) -> bytes:
        self.powered = True
        self._clear_state()
        return self._atr

    def power_off(self) -> None:
        self.powered = False
        self._clear_state()

    def _clear_state(self) -> None:
        self.current_df, self.current_ef, self._pending = self.mf, None, b""

    # -- dispatch --
    def process(self, apdu: bytes) -> bytes:
        self.log.append(bytes(apdu))
        command = self.decode(apdu)
        if command is None:
            return sw_bytes(SW.WRONG_LENGTH)
        if command.ins != Ins.GET_RESPONSE:
            self._pending = b""
        return self.dispatch(command)

    def decode(self, apdu: bytes) -> Command | None:
        """The command in ``apdu``; None (answered 6700) when it is malformed, or
        extended on a card without extended length."""
        try:
            command, extended = parse_command(apdu)
        except (CommandFormatError, ValueError):
            return None
        if extended and not self.extended_length:
            return None
        return command

    def dispatch(self, command: Command) -> bytes:
        """Answer a decoded command. Subclasses add instructions and fall back here."""
        if command.cla & 0x0C:
            return sw_bytes(SW.SM_NOT_SUPPORTED)
        if command.cla not in (0x00, 0x01, 0x02, 0x03):
            return sw_bytes(SW.CLA_NOT_SUPPORTED)
        handlers = {Ins.SELECT: self._select, Ins.READ_BINARY: self._read_binary,
                    Ins.READ_BINARY_ODD: self._read_binary_odd, Ins.GET_RESPONSE: self._get_response}
        handler = handlers.get(command.ins)  # type: ignore[call-overload]
        if handler is None:
            return sw_bytes(SW.INS_NOT_SUPPORTED)
        answer: bytes = handler(command)
        return answer

    # -- answering with data (where chaining switches apply) --
    def answer(self, data: bytes, le: int | None, short_read: bool = False) -> bytes:
        """Answer ``data`` honouring Le and the chaining mode. ``short_read`` marks a
        READ BINARY that hit the end of the file before Le bytes (6282)."""
        ok = SW.WARNING_END_OF_FILE if short_read else SW.OK
        if self.chaining is Chaining.WRONG_LE and le is not None and le <= SHORT_LE_MAX and data \
                and le != len(data) and len(data) < SHORT_LE_MAX:
            return bytes((0x6C, len(data)))
        if self.chaining is Chaining.GET_RESPONSE and len(data) > 0:
            self._pending = data
            return bytes((0x61, min(len(data), self.chunk) % SHORT_LE_MAX))
        return data + sw_bytes(ok)

    def _get_response(self, command: Command) -> bytes:
        if not self._pending:
            return sw_bytes(SW.CONDITIONS_NOT_SATISFIED)
        size = min(command.le or SHORT_LE_MAX, self.chunk)
        part, self._pending = self._pending[:size], self._pending[size:]
        if self._pending:
            return part + bytes((0x61, min(len(self._pending), self.chunk) % SHORT_LE_MAX))
        return part + sw_bytes(SW.OK)

    # -- SELECT (7816-4 §7.1.1) --
    def _select(self, command: Command) -> bytes:
        target = self._resolve(command.p1, command.data)
        if target is None:
            return sw_bytes(SW.FILE_NOT_FOUND)
        if isinstance(target, int):
            return sw_bytes(target)
        if isinstance(target, DedicatedFile):
            self.current_df, self.current_ef = target, None
        else:
            self.current_ef = target
        if command.p2 & 0x0C == 0x0C:  # no response data wanted
            return sw_bytes(SW.OK)
        return self.answer(self._fcp(target), command.le)

    def _resolve(self, p1: int, data: bytes) -> ElementaryFile | DedicatedFile | int | None:
        if p1 == 0x00:
            if not data or data == MF_FID.to_bytes(2, "big"):
                return self.mf
            return self._fid(data, self.current_df) if len(data) == 2 else int(SW.WRONG_LENGTH)
        if p1 in (0x01, 0x02):
            if len(data) != 2:
                return int(SW.WRONG_LENGTH)
            found = self._fid(data, self.current_df)
            want = DedicatedFile if p1 == 0x01 else ElementaryFile
            return found if isinstance(found, want) else None
        if p1 == 0x03:
            return self.current_df.parent or self.mf
        if p1 == 0x04:
            return next((df for df in self.mf.walk() if df.aid is not None and df.aid == data), None)
        if p1 == 0x08:
            return self._path(data)
        return int(SW.INCORRECT_P1P2)

    @staticmethod
    def _fid(data: bytes, df: DedicatedFile) -> ElementaryFile | DedicatedFile | None:
        return df.child(int.from_bytes(data, "big"))

    def _path(self, data: bytes) -> ElementaryFile | DedicatedFile | int | None:
        if not data or len(data) % 2:
            return int(SW.WRONG_LENGTH)
        node: ElementaryFile | DedicatedFile | None = self.mf
        for i in range(0, len(data), 2):
            if not isinstance(node, DedicatedFile):
                return None
            node = node.child(int.from_bytes(data[i:i + 2], "big"))
        return node

    @staticmethod
    def _fcp(target: ElementaryFile | DedicatedFile) -> bytes:
        body = b""
        if isinstance(target, ElementaryFile):
            body += bytes((TAG_FCP_SIZE, 2)) + len(target.data).to_bytes(2, "big")
            body += bytes((TAG_FCP_DESCRIPTOR, 1, 0x01))  # working EF, transparent
        else:
            body += bytes((TAG_FCP_DESCRIPTOR, 1, 0x38))  # DF
            if target.aid:
                body += bytes((TAG_FCP_NAME, len(target.aid))) + target.aid
        if target.fid is not None:
            body += bytes((TAG_FCP_FID, 2)) + target.fid.to_bytes(2, "big")
        return bytes((TAG_FCP, len(body))) + body

    # -- READ BINARY (7816-4 §7.2.3) --
    def _read_binary(self, command: Command) -> bytes:
        if command.p1 & 0x80:  # b8 set: b5-b1 of P1 are an SFI, P2 the offset
            ef = self.current_df.by_sfi(command.p1 & 0x1F)
            if ef is None:
                return sw_bytes(SW.FILE_NOT_FOUND)
            self.current_ef = ef
            offset = command.p2
        else:
            offset = (command.p1 << 8) | command.p2
        return self._read(offset, command.le)

    def _read_binary_odd(self, command: Command) -> bytes:
        p1p2 = (command.p1 << 8) | command.p2
        if p1p2:
            # first 11 bits zero: the last 5 are an SFI; otherwise a FID (7816-4 §7.2.2)
            ef = self.current_df.by_sfi(p1p2) if p1p2 < 0x20 else self._fid(p1p2.to_bytes(2, "big"), self.current_df)
            if not isinstance(ef, ElementaryFile):
                return sw_bytes(SW.FILE_NOT_FOUND)
            self.current_ef = ef
        data = command.data
        if len(data) < 3 or data[0] != TAG_OFFSET or data[1] != len(data) - 2 or data[1] > 3:
            return sw_bytes(SW.WRONG_DATA)
        return self._read(int.from_bytes(data[2:], "big"), command.le, odd=True)

    def _read(self, offset: int, le: int | None, odd: bool = False) -> bytes:
        if self.current_ef is None:
            return sw_bytes(SW.COMMAND_NOT_ALLOWED)
        content = self.current_ef.data
        if offset > len(content):
            return sw_bytes(SW.WRONG_P1P2)
        open_ended = le in (None, SHORT_LE_MAX, LE_MAX)
        want = le if le is not None else SHORT_LE_MAX
        if odd:
            want = max(want - 4, 1)  # room for the DO 53 tag and a BER length of up to 3 bytes
        chunk = content[offset:offset + want]
        short = len(chunk) < want and not open_ended
        if odd:
            chunk = ber.encode(TAG_DISCRETIONARY, chunk)
        return self.answer(chunk, le, short_read=short)
