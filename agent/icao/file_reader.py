"""Reading the elementary files of the eMRTD application (9303-10 §3.6, ISO/IEC 7816-4
§11.2.3) over any ``Channel``: in the clear, or through secure messaging.

How a file is read:

1. The first READ BINARY addresses the file by its short file identifier (P1 = 80|SFI,
   9303-10 §3.6.2), which saves a SELECT; chips refusing SFI addressing get
   ``SELECT EF`` + plain READ BINARY instead (remembered for the session).
2. That first read asks for one short chunk (or, with extended length, the largest
   extended chunk: a whole file then takes one APDU); its first bytes are the file's
   TLV header, which gives the file's exact size. A size above ``max_file_size`` is
   refused before anything is allocated. A chip that refuses to read past the end of
   a small file gets an 8-byte header probe instead (remembered).
3. The remainder is read in the largest chunk secure messaging allows
   (``agent.icao.sm.max_read_chunk``), with extended length only when the connection
   says both reader and chip take it; if the chip then refuses it, extended length is
   switched off for the rest of the session. A chip answering 6700/6282/6B00 to a
   chunk gets smaller chunks (224, 160, 128, ...; domain.md: "adapt, don't guess"),
   6Cxx gets exactly xx.
4. Offsets above 32767 do not fit P1-P2: READ BINARY with odd INS B1 and an offset
   data object (ISO/IEC 7816-4 §11.2.3, tags 54/53).

Errors: 6A82 → ``FileAbsentError`` (an unprotected 6A82 to READ BINARY under secure
messaging only when a SELECT of the file says 6A82 too; else it is a
``SecureMessagingError``, issue 14); 6982 → ``FileAccessDeniedError`` (DG3 needs
terminal authentication, domain.md); the card leaving the field → ``ReadInterruptedError``
naming the file (and never its content).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from agent.errors import CardRemovedError, IdAgentError, ParseError, ProtocolError
from agent.icao import tlv
from agent.icao.lds.files import LdsFile
from agent.icao.select import SelectBy, select_application, select_command
from agent.icao.sm import SecureMessagingError
from agent.readers.apdu import SHORT_LE_MAX, SW, Channel, Command, Ins, Response

logger = logging.getLogger(__name__)

#: the largest file we accept. A CCCD's DG2 is ~18 KB; ICAO allows several, larger
#: portraits (JPEG 2000 at high resolution), so the bound is generous, but a header
#: claiming 16 MB is refused before allocation.
MAX_FILE_SIZE = 1 << 20
#: a header probe: tag (≤ 3 bytes in the LDS) + length (≤ 5 bytes)
HEADER_PROBE = 8
#: chunk sizes to fall back to when the chip refuses a chunk (dmrtd's ladder, domain.md)
SHRINK_LADDER = (224, 160, 128, 96, 64, 32, 16)
#: offsets up to this fit the 15 bits of P1-P2 (b8 of P1 must be 0 to mean "offset")
MAX_EVEN_OFFSET = 0x7FFF
#: READ BINARY P1 b8: P1 b5-b1 is a short file identifier (ISO/IEC 7816-4 §11.2.3)
P1_SFI = 0x80
#: odd-INS READ BINARY data objects: offset in, discretionary data out
TAG_OFFSET = 0x54
TAG_DISCRETIONARY = 0x53
#: answers meaning "this chunk size (or Le) is not acceptable"
SHRINK_SW = frozenset({SW.WRONG_LENGTH, SW.WARNING_END_OF_FILE, SW.WRONG_P1P2})
#: answers meaning "nothing there": end of file reached, or an offset past the end
EOF_SW = frozenset({SW.WARNING_END_OF_FILE, SW.WRONG_P1P2})
#: answers meaning "I do not do SFI addressing"
NO_SFI_SW = frozenset({SW.INCORRECT_P1P2, SW.FUNCTION_NOT_SUPPORTED, SW.INS_NOT_SUPPORTED,
                       SW.NO_PRECISE_DIAGNOSIS})
#: answers meaning "extended length is not accepted"
NO_EXTENDED_SW = frozenset({SW.WRONG_LENGTH, SW.WRONG_P1P2, SW.INS_NOT_SUPPORTED,
                            SW.CLA_NOT_SUPPORTED, SW.NO_PRECISE_DIAGNOSIS})

ProgressCallback = Callable[[str, int, int], None]


class FileAbsentError(IdAgentError):
    """The chip has no such file (6A82)."""

    code = "file_absent"
    exit_code = 6
    hint = "The card does not hold this file."


class FileAccessDeniedError(IdAgentError):
    """The chip refuses the file (6982): for DG3/DG4 this needs terminal authentication."""

    code = "needs_terminal_authentication"
    exit_code = 6
    hint = "This file needs terminal authentication (an inspection-system certificate); it is skipped."


class FileReadError(ProtocolError):
    """READ BINARY failed in a way adapting the chunk size did not fix."""

    code = "read_failed"
    exit_code = 6


class ReadInterruptedError(CardRemovedError):
    """The card left the field while a file was being read."""

    code = "read_interrupted"
    exit_code = 6
    hint = ("The card left the reader during the read. Lay it flat on the reader, keep it still, "
            "and read again: the next read starts from the beginning.")

    def __init__(self, file_name: str, done: int = 0, total: int | None = None, *,
                 stage: str | None = None) -> None:
        if stage is not None:
            message = f"the card left the reader during {stage}"
        else:
            size = f"{done} of {total} bytes" if total else f"{done} bytes"
            message = f"the card left the reader while {file_name} was being read ({size} read)"
        super().__init__(message)
        self.file_name = file_name
        self.stage = stage


@dataclass
class ReadStats:
    files: int = 0
    apdus: int = 0
    shrinks: int = 0
    bytes_read: int = 0


class FileReader:
    """Reads whole LDS files through ``channel`` (see the module docstring)."""

    def __init__(self, channel: Channel, *, extended: str = "auto", chunk: int = 0,
                 max_file_size: int = MAX_FILE_SIZE, on_progress: ProgressCallback | None = None,
                 use_sfi: bool = True) -> None:
        if extended not in ("auto", "on", "off"):
            raise ValueError("extended must be auto, on or off")
        self.channel = channel
        self.max_file_size = max_file_size
        self.on_progress = on_progress
        self.stats = ReadStats()
        self._use_sfi = use_sfi
        # extended length: None = not tried yet, then what the chip showed
        self._extended: bool | None = None if extended == "auto" else extended == "on"
        if not channel.extended_length:
            self._extended = False
        self._short_chunk = self._limit(False) if chunk <= 0 else min(chunk, self._limit(False))
        self._long_chunk = self._limit(True) if chunk <= 0 else min(chunk, self._limit(True))
        self._overread_ok = True
        self._long_first = True
        #: the chip refused an extended APDU the connection claimed to support; under
        #: secure messaging that may have cost the session (see agent.icao.read)
        self.extended_refused = False

    def rekey(self, channel: Channel) -> None:
        """Go on reading over another session with the same chip (re-keyed by Chip
        Authentication, or access opened again): what the chip showed (SFI addressing,
        extended length, chunk sizes) still holds; the chunk limits follow the new
        cipher's block size."""
        self.channel = channel
        self._short_chunk = min(self._short_chunk, self._limit(False))
        self._long_chunk = min(self._long_chunk, self._limit(True))

    # -- limits ---------------------------------------------------------------------

    def _limit(self, extended: bool) -> int:
        """Largest Le: what secure messaging leaves room for, or the raw APDU limit."""
        block = getattr(getattr(self.channel, "cipher", None), "block", None)
        if block:
            from agent.icao.sm import max_read_chunk

            return max_read_chunk(extended, block)
        return 0xFFFF if extended else SHORT_LE_MAX

    @property
    def extended_in_use(self) -> bool:
        return bool(self._extended)

    @property
    def chunk(self) -> int:
        return self._long_chunk if self._extended else self._short_chunk

    # -- commands -------------------------------------------------------------------

    def _send(self, command: Command) -> Response:
        self.stats.apdus += 1
        return self.channel.send(command)

    def select_application(self) -> None:
        """SELECT the eMRTD application (after PACE, under secure messaging)."""
        self.stats.apdus += 1
        response = select_application(self.channel)
        if response.sw != SW.OK:
            raise FileReadError(f"SELECT of the eMRTD application: card answered {response.sw:04X}")

    def _select(self, ef: LdsFile) -> None:
        response = self._send(select_command(SelectBy.EF, ef.fid_bytes))
        self._raise_for(ef, response, "SELECT")

    def _raise_for_absent(self, ef: LdsFile, response: Response) -> None:
        if response.sw in (SW.FILE_NOT_FOUND, SW.SECURITY_STATUS_NOT_SATISFIED):
            self._raise_for(ef, response, "READ BINARY")

    def _raise_for(self, ef: LdsFile, response: Response, what: str) -> None:
        if response.sw in (SW.OK, SW.WARNING_END_OF_FILE):
            return
        if response.sw == SW.FILE_NOT_FOUND and what == "READ BINARY" and getattr(self.channel, "last_unprotected",
                                                                                  False):
            self._confirm_absent(ef)
        if response.sw == SW.FILE_NOT_FOUND:
            raise FileAbsentError(f"{ef.name} is not on the card")
        if response.sw == SW.SECURITY_STATUS_NOT_SATISFIED:
            raise FileAccessDeniedError(f"{ef.name} needs terminal authentication")
        raise FileReadError(f"{what} of {ef.name}: card answered {response.sw:04X}")

    def _confirm_absent(self, ef: LdsFile) -> None:
        """An unprotected 6A82 to a READ BINARY under secure messaging: the chip's SM
        layer did not say it, so it is no verdict about the file (issue 14; a relay or a
        glitch can produce it). A protected SELECT of the file asks the file system:
        6A82 again (chips that answer errors without SM, domain.md) means absent; a
        file that is there makes the first answer an SM failure, and the session is
        given up (the read's recovery opens a fresh one)."""
        response = self._send(select_command(SelectBy.EF, ef.fid_bytes))
        if response.sw == SW.FILE_NOT_FOUND:
            return
        close = getattr(self.channel, "close", None)
        if callable(close):
            close()
        raise SecureMessagingError(f"READ BINARY of {ef.name} answered 6A82 outside secure messaging, "
                                   f"but the file is there (SELECT answered {response.sw:04X}): "
                                   "a secure-messaging failure, not an absent file")

    def _read_command(self, ef: LdsFile, offset: int, le: int, sfi: bool) -> Command:
        if sfi:
            return Command(0x00, Ins.READ_BINARY, P1_SFI | ef.sfi, offset, le=le)
        if offset <= MAX_EVEN_OFFSET:
            return Command(0x00, Ins.READ_BINARY, offset >> 8, offset & 0xFF, le=le)
        size = max(2, (offset.bit_length() + 7) // 8)
        return Command(0x00, Ins.READ_BINARY_ODD, 0x00, 0x00,
                       tlv.encode(TAG_OFFSET, offset.to_bytes(size, "big")), le=le)

    def _odd_payload(self, ef: LdsFile, offset: int, data: bytes) -> bytes:
        """The content of a B1 answer: 53 L data (ISO/IEC 7816-4 §11.2.3)."""
        if not data:
            return b""
        item = tlv.read_tlv(data, source=ef.name, base=offset)
        if item.tag != TAG_DISCRETIONARY:
            raise ParseError(f"READ BINARY (B1) answered tag {item.tag:X}, expected 53", source=ef.name,
                             offset=offset)
        return item.value

    # -- reading --------------------------------------------------------------------

    def read(self, ef: LdsFile) -> bytes:
        """The whole file. Raises FileAbsentError, FileAccessDeniedError,
        ReadInterruptedError, FileReadError or ParseError (absurd length)."""
        state = {"done": 0, "total": None}
        try:
            data = self._read(ef, state)
        except CardRemovedError as exc:
            if isinstance(exc, ReadInterruptedError):
                raise
            raise ReadInterruptedError(ef.name, state["done"] or 0, state["total"]) from exc
        self.stats.files += 1
        self.stats.bytes_read += len(data)
        return data

    def _read(self, ef: LdsFile, state: dict[str, int | None]) -> bytes:
        first, sfi = self._read_first(ef)
        header = tlv.read_header(first, source=ef.name, check_bounds=False)
        total = header.total_len
        if total > self.max_file_size:
            raise ParseError(f"file claims {header.length} bytes, more than the {self.max_file_size} accepted",
                             source=ef.name, offset=header.offset)
        state["total"] = total
        buffer = bytearray(first[:total])
        self._progress(ef, len(buffer), total, state)
        while len(buffer) < total:
            buffer += self._read_chunk(ef, len(buffer), total - len(buffer), sfi=False)
            self._progress(ef, len(buffer), total, state)
        logger.debug("read %s: %d bytes", ef.name, total)
        return bytes(buffer)

    def _progress(self, ef: LdsFile, done: int, total: int, state: dict[str, int | None]) -> None:
        state["done"] = done
        if self.on_progress is not None:
            self.on_progress(ef.name, done, total)

    def _read_first(self, ef: LdsFile) -> tuple[bytes, bool]:
        """The first chunk (holding the TLV header). Returns (data, still_using_sfi)."""
        sfi = self._use_sfi
        if not sfi:
            self._select(ef)
        if self._extended is not False and self._long_first:
            # extended length announced (or proven): ask for the whole file at once
            # (the chip stops at its end with 6282/9000); a refusal falls back to the
            # short first read
            response = self._send(self._read_command(ef, 0, self._long_chunk, sfi))
            if response.sw in (SW.OK, SW.WARNING_END_OF_FILE) and response.data:
                if self._extended is None:
                    logger.info("extended length accepted by the chip")
                    self._extended = True
                return response.data, sfi
            self._raise_for_absent(ef, response)
            logger.info("chip refuses a long first read (%04X): short first reads", response.sw)
            self._long_first = False
            if self._extended is None and response.sw in NO_EXTENDED_SW:
                self._extended = False
                self.extended_refused = True
        le = min(self._short_chunk, SHORT_LE_MAX) if self._overread_ok else HEADER_PROBE
        response = self._send(self._read_command(ef, 0, le, sfi))
        if sfi and response.sw in NO_SFI_SW:
            logger.info("chip refuses SFI addressing (%04X): selecting files instead", response.sw)
            self._use_sfi = sfi = False
            self._select(ef)
            response = self._send(self._read_command(ef, 0, le, sfi))
        if response.sw in SHRINK_SW and not response.data and le != HEADER_PROBE:
            # the chip will not read past the end of a small file: probe the header
            logger.info("chip refuses a %d-byte first read (%04X): probing headers", le, response.sw)
            self._overread_ok = False
            response = self._send(self._read_command(ef, 0, HEADER_PROBE, sfi))
        self._raise_for(ef, response, "READ BINARY")
        if not response.data:
            raise FileReadError(f"READ BINARY of {ef.name} returned no data")
        # after an SFI read the file is the current EF: later reads use plain offsets
        return response.data, sfi

    def _read_chunk(self, ef: LdsFile, offset: int, remaining: int, *, sfi: bool) -> bytes:
        while True:
            extended = bool(self._extended) or (self._extended is None and remaining > self._short_chunk)
            chunk = self._long_chunk if extended else self._short_chunk
            odd = offset > MAX_EVEN_OFFSET
            want = min(chunk - (4 if odd else 0), remaining)
            le = want + (1 + len(tlv.encode_length(want)) if odd else 0)
            response = self._send(self._read_command(ef, offset, le, sfi))
            data = self._odd_payload(ef, offset, response.data) if odd else response.data
            if response.sw in (SW.OK, SW.WARNING_END_OF_FILE) and data:
                if extended and self._extended is None:
                    logger.info("extended length accepted by the chip")
                    self._extended = True
                return data[:remaining]
            if extended and response.sw in NO_EXTENDED_SW:
                logger.info("chip refuses extended length (%04X): short APDUs from now on", response.sw)
                self._extended = False
                self.extended_refused = True
                continue
            if response.sw == SW.FILE_NOT_FOUND or response.sw == SW.SECURITY_STATUS_NOT_SATISFIED:
                self._raise_for(ef, response, "READ BINARY")
            if response.sw in EOF_SW and not data and self._at_end(ef, offset, sfi):
                raise ParseError(f"file ends after {offset} bytes, shorter than its header claims",
                                 source=ef.name, offset=offset)
            self._shrink(ef, response, extended)

    def _at_end(self, ef: LdsFile, offset: int, sfi: bool) -> bool:
        """Does the file end at ``offset``? A 1-byte read tells "no more data" from
        "chunk too large" (some chips answer both with 6282/6B00)."""
        odd = offset > MAX_EVEN_OFFSET
        response = self._send(self._read_command(ef, offset, 3 if odd else 1, sfi))
        return response.sw in EOF_SW and not (self._odd_payload(ef, offset, response.data) if odd else response.data)

    def _shrink(self, ef: LdsFile, response: Response, extended: bool) -> None:
        current = self._long_chunk if extended else self._short_chunk
        if response.sw1 == 0x6C and 0 < response.sw2 < current:
            smaller = response.sw2
        elif response.sw in SHRINK_SW:
            smaller = next((size for size in SHRINK_LADDER if size < current), 0)
        else:
            smaller = 0
        if not smaller:
            raise FileReadError(f"READ BINARY of {ef.name}: card answered {response.sw:04X} "
                                f"even to {current}-byte chunks")
        logger.info("chip refused a %d-byte chunk (%04X): trying %d", current, response.sw, smaller)
        self.stats.shrinks += 1
        if extended:
            self._long_chunk = smaller
        self._short_chunk = min(self._short_chunk, smaller)
        if extended:
            self._extended = False
