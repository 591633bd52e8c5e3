"""The file reader against a small fake chip with the quirks domain.md reports:
chunk limits, Le=00 refused, no reads past the end, offsets above 32767, DG3 6982,
DG11 6A82, no SFI addressing, extended length refused, and a card pulled mid-read."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from agent.errors import CardRemovedError, ParseError
from agent.icao import tlv
from agent.icao.file_reader import (
    FileAbsentError,
    FileAccessDeniedError,
    FileReader,
    FileReadError,
    ReadInterruptedError,
)
from agent.icao.lds.files import COM, DATA_GROUPS
from agent.readers.apdu import SW, Command, Ins, Response

DG1 = DATA_GROUPS[1]
DG2 = DATA_GROUPS[2]
DG3 = DATA_GROUPS[3]
DG11 = DATA_GROUPS[11]


def _file(tag: int, size: int) -> bytes:
    """A file whose TLV value is ``size`` bytes of a recognisable pattern."""
    return tlv.encode(tag, bytes(i % 251 for i in range(size)))


@dataclass
class FakeChip:
    """Channel-level fake: answers SELECT / READ BINARY (B0 with SFI or offset, B1)."""

    files: dict[int, bytes]
    extended: bool = False
    chip_takes_extended: bool = True
    max_le: int = 0x10000  # larger Le → 6700
    refuse_le00: bool = False  # Le=256 (00) → 6700
    refuse_overread: bool = False  # Le beyond the end → 6B00
    sfi: bool = True
    denied: tuple[int, ...] = ()
    remove_at: int = 0  # raise CardRemovedError on this APDU number
    log: list[Command] = field(default_factory=list)
    current: int | None = None

    @property
    def extended_length(self) -> bool:
        return self.extended

    def send(self, command: Command) -> Response:
        self.log.append(command)
        if self.remove_at and len(self.log) >= self.remove_at:
            raise CardRemovedError("gone")
        if command.ins == Ins.SELECT:
            return self._select(command)
        if command.ins == Ins.READ_BINARY:
            return self._read_even(command)
        if command.ins == Ins.READ_BINARY_ODD:
            offset = int.from_bytes(tlv.read_tlv(command.data).value, "big")
            resp = self._read(offset, command.le or 0, odd=True)
            return resp
        return Response(b"", SW.INS_NOT_SUPPORTED)

    def _select(self, command: Command) -> Response:
        if command.p1 == 0x04:
            return Response(b"", SW.OK)
        fid = int.from_bytes(command.data, "big")
        if fid not in self.files and fid not in self.denied:
            return Response(b"", SW.FILE_NOT_FOUND)
        self.current = fid
        return Response(b"", SW.OK)

    def _read_even(self, command: Command) -> Response:
        if command.p1 & 0x80:
            if not self.sfi:
                return Response(b"", SW.INCORRECT_P1P2)
            self.current = 0x0100 + (command.p1 & 0x1F) if command.p1 & 0x1F < 0x1C else 0x0100 | (command.p1 & 0x1F)
            offset = command.p2
        else:
            offset = (command.p1 << 8) | command.p2
        return self._read(offset, command.le or 0)

    def _read(self, offset: int, le: int, odd: bool = False) -> Response:
        if self.current in self.denied:
            return Response(b"", SW.SECURITY_STATUS_NOT_SATISFIED)
        if self.current not in self.files:
            return Response(b"", SW.FILE_NOT_FOUND)
        if le > 256 and not self.chip_takes_extended:
            return Response(b"", SW.WRONG_LENGTH)
        if le > self.max_le or (self.refuse_le00 and le == 256):
            return Response(b"", SW.WRONG_LENGTH)
        data = self.files[self.current]
        if offset >= len(data):
            return Response(b"", SW.WRONG_P1P2)
        if self.refuse_overread and offset + le > len(data) + (4 if odd else 0):
            return Response(b"", SW.WRONG_P1P2)
        if odd:
            room = le - 2 if le - 2 < 0x80 else le - 3 if le - 3 <= 0xFF else le - 4
            chunk = data[offset:offset + room]
            return Response(tlv.encode(0x53, chunk), SW.OK)
        chunk = data[offset:offset + le]
        return Response(chunk, SW.OK if len(chunk) == le else SW.WARNING_END_OF_FILE)


def _chip(**kwargs: object) -> FakeChip:
    files = {COM.fid: tlv.encode(0x60, b"\x5c\x02\x61\x75"), DG1.fid: _file(0x61, 90),
             DG2.fid: _file(0x75, 18_000)}
    files.update(kwargs.pop("files", {}))  # type: ignore[arg-type]
    return FakeChip(files=files, **kwargs)  # type: ignore[arg-type]


def test_reads_small_file_in_one_apdu_with_sfi() -> None:
    chip = _chip()
    reader = FileReader(chip)
    assert reader.read(DG1) == chip.files[DG1.fid]
    assert len(chip.log) == 1
    assert (chip.log[0].p1, chip.log[0].p2) == (0x81, 0x00)


def test_short_chunks_are_256_in_the_clear_and_progress_is_reported() -> None:
    chip = _chip()
    seen: list[tuple[str, int, int]] = []
    data = FileReader(chip, on_progress=lambda *a: seen.append(a)).read(DG2)
    assert data == chip.files[DG2.fid]
    assert max(c.le or 0 for c in chip.log) == 256
    assert seen[-1] == ("DG2", len(data), len(data))
    assert all(done <= total for _, done, total in seen)


def test_extended_length_reads_dg2_in_one_apdu() -> None:
    chip = _chip(extended=True)
    reader = FileReader(chip)
    assert reader.read(DG2) == chip.files[DG2.fid]
    assert len(chip.log) == 1 and reader.extended_in_use


def test_extended_refused_by_chip_falls_back_and_is_remembered() -> None:
    chip = _chip(extended=True, chip_takes_extended=False)
    reader = FileReader(chip)
    assert reader.read(DG2) == chip.files[DG2.fid]
    refused = [c for c in chip.log if (c.le or 0) > 256]
    assert len(refused) == 1
    chip.log.clear()
    reader.read(DG2)
    assert all((c.le or 0) <= 256 for c in chip.log)


def test_chip_rejecting_big_chunks_gets_smaller_ones() -> None:
    chip = _chip(max_le=160)
    reader = FileReader(chip)
    assert reader.read(DG2) == chip.files[DG2.fid]
    assert reader.chunk == 160
    assert reader.stats.shrinks >= 1


def test_chip_rejecting_le00() -> None:
    chip = _chip(refuse_le00=True)
    reader = FileReader(chip)
    assert reader.read(DG2) == chip.files[DG2.fid]
    assert reader.chunk == 224


def test_chip_refusing_reads_past_the_end_gets_header_probe() -> None:
    chip = _chip(refuse_overread=True)
    reader = FileReader(chip)
    assert reader.read(DG1) == chip.files[DG1.fid]
    assert [c.le for c in chip.log] == [256, 8, 92 - 8]


def test_offsets_above_32767_use_odd_ins() -> None:
    big = DATA_GROUPS[5]
    chip = _chip(files={big.fid: _file(0x65, 40_000)})
    assert FileReader(chip).read(big) == chip.files[big.fid]
    odd = [c for c in chip.log if c.ins == Ins.READ_BINARY_ODD]
    assert odd and all(c.le and c.le <= 256 for c in odd)
    first_odd = tlv.read_tlv(odd[0].data)
    assert first_odd.tag == 0x54 and int.from_bytes(first_odd.value, "big") > 0x7FFF


def test_no_sfi_falls_back_to_select() -> None:
    chip = _chip(sfi=False)
    reader = FileReader(chip)
    assert reader.read(DG1) == chip.files[DG1.fid]
    assert reader.read(COM) == chip.files[COM.fid]
    assert [c.ins for c in chip.log].count(Ins.SELECT) == 2


def test_dg3_needs_terminal_authentication() -> None:
    with pytest.raises(FileAccessDeniedError):
        FileReader(_chip(denied=(DG3.fid,))).read(DG3)


def test_absent_file() -> None:
    with pytest.raises(FileAbsentError):
        FileReader(_chip()).read(DG11)


def test_absurd_length_refused_before_reading() -> None:
    chip = _chip(files={DG2.fid: bytes.fromhex("7583FFFFFF") + bytes(300)})
    with pytest.raises(ParseError, match="more than") as info:
        FileReader(chip).read(DG2)
    assert info.value.source == "DG2" and info.value.offset == 0
    assert len(chip.log) == 1


def test_card_removed_mid_read_names_file_then_clean_reread() -> None:
    chip = _chip(remove_at=10)
    with pytest.raises(ReadInterruptedError, match="DG2") as info:
        FileReader(chip).read(DG2)
    assert info.value.file_name == "DG2"
    assert info.value.exit_code == 6
    assert isinstance(info.value, CardRemovedError)
    chip.remove_at = 0
    chip.log.clear()
    assert FileReader(chip).read(DG2) == chip.files[DG2.fid]


def test_chip_that_keeps_refusing_ends_with_an_error() -> None:
    chip = _chip(max_le=8)
    with pytest.raises(FileReadError, match="16-byte chunks"):
        FileReader(chip, chunk=16).read(DG2)


def test_fixed_chunk_from_config() -> None:
    chip = _chip()
    FileReader(chip, chunk=100).read(DG2)
    assert max(c.le or 0 for c in chip.log) == 100


def test_file_shorter_than_its_header_is_a_parse_error_not_a_smaller_chunk() -> None:
    data = _file(0x75, 1000)
    chip = _chip(files={DG2.fid: data[:600]})
    reader = FileReader(chip)
    with pytest.raises(ParseError, match="shorter than its header") as info:
        reader.read(DG2)
    assert info.value.source == "DG2" and info.value.offset == 600
    assert reader.chunk == 256 and reader.stats.shrinks == 0


def test_once_extended_works_whole_files_come_in_one_apdu() -> None:
    chip = _chip(extended=True)
    reader = FileReader(chip)
    reader.read(DG2)  # proves extended length
    chip.log.clear()
    assert reader.read(DG2) == chip.files[DG2.fid]
    assert len(chip.log) == 1


def test_long_first_read_refused_falls_back_to_short() -> None:
    chip = _chip(extended=True, max_le=1024)
    reader = FileReader(chip, extended="on")
    assert reader.read(DG1) == chip.files[DG1.fid]
    assert [c.le for c in chip.log][:2] == [0xFFFF, 256]
    assert reader.read(DG2) == chip.files[DG2.fid]
