"""The one BER-TLV reader and writer for the ICAO LDS files (9303-10 §4.4 and
ISO/IEC 7816-4 §5.2 / ITU-T X.690 §8.1).

Every offset reported is absolute in the source buffer (pass ``base`` when parsing a
slice), so a ``ParseError`` names the file and the byte where it went wrong. Lengths
are checked against the buffer before anything is sliced: a header claiming 16 MB in
a 100-byte buffer is refused, never allocated.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from agent.errors import ParseError

#: bit 6 of the first tag byte: the value holds further TLVs (X.690 §8.1.2.5)
CONSTRUCTED_BIT = 0x20
#: low 5 bits all set: the tag number continues in following bytes (X.690 §8.1.2.4)
MULTI_BYTE_TAG_MASK = 0x1F
#: bit 8 of a subsequent tag byte: another tag byte follows
TAG_MORE_BIT = 0x80
#: first length byte 0x80: indefinite length, not allowed in DER or the LDS
INDEFINITE_LENGTH = 0x80
#: the LDS never needs more than 4 length bytes (a 4 GiB value)
MAX_LENGTH_BYTES = 4
#: the LDS tags are at most 3 bytes (e.g. 5F2E, 7F61); 4 leaves room for oddities
MAX_TAG_BYTES = 4
#: the longest header: 4 tag bytes + 1 + 4 length bytes
MAX_HEADER_LEN = MAX_TAG_BYTES + 1 + MAX_LENGTH_BYTES


@dataclass(frozen=True)
class Header:
    """A decoded tag and length, and where they sit."""

    tag: int
    length: int
    offset: int  # absolute offset of the first tag byte
    header_len: int

    @property
    def value_offset(self) -> int:
        return self.offset + self.header_len

    @property
    def end(self) -> int:
        return self.value_offset + self.length

    @property
    def total_len(self) -> int:
        return self.header_len + self.length


@dataclass(frozen=True)
class Tlv:
    """One decoded TLV. ``offset`` is absolute in the source (for error messages)."""

    tag: int
    value: bytes
    offset: int = 0
    header_len: int = 0
    source: str = ""

    @property
    def constructed(self) -> bool:
        return is_constructed(self.tag)

    @property
    def value_offset(self) -> int:
        return self.offset + self.header_len

    def children(self) -> list[Tlv]:
        """The TLVs inside a constructed value."""
        if not self.constructed:
            raise ParseError(f"tag {self.tag:X} is primitive, it holds no TLVs",
                             source=self.source, offset=self.offset)
        return list(iter_tlvs(self.value, source=self.source, base=self.value_offset))

    def child(self, tag: int) -> Tlv:
        """The first child with ``tag``; ParseError when absent."""
        found = self.find(tag)
        if found is None:
            raise ParseError(f"tag {tag:X} missing inside tag {self.tag:X}",
                             source=self.source, offset=self.offset)
        return found

    def find(self, tag: int) -> Tlv | None:
        for item in self.children():
            if item.tag == tag:
                return item
        return None

    def error(self, message: str) -> ParseError:
        """A ParseError pointing at this TLV."""
        return ParseError(message, source=self.source, offset=self.offset)

    def __repr__(self) -> str:
        # values may hold personal data: show only the shape
        return f"Tlv(tag={self.tag:X}, len={len(self.value)}, offset={self.offset})"


def is_constructed(tag: int) -> bool:
    first = tag
    while first > 0xFF:
        first >>= 8
    return bool(first & CONSTRUCTED_BIT)


def read_header(data: bytes, offset: int = 0, *, source: str = "", base: int = 0,
                check_bounds: bool = True) -> Header:
    """Decode the tag and length at ``data[offset]``.

    ``check_bounds=False`` lets the file reader decode a header from the first bytes
    of a file before the rest is read; the length is still returned as claimed and
    the caller must bound it."""
    pos = offset

    def fail(message: str, at: int) -> ParseError:
        return ParseError(message, source=source, offset=base + at)

    if pos >= len(data):
        raise fail("truncated: expected a tag, found the end of the data", pos)
    first = data[pos]
    tag = first
    pos += 1
    if first & MULTI_BYTE_TAG_MASK == MULTI_BYTE_TAG_MASK:
        while True:
            if pos >= len(data):
                raise fail("truncated inside a multi-byte tag", pos)
            if pos - offset >= MAX_TAG_BYTES:
                raise fail(f"tag longer than {MAX_TAG_BYTES} bytes", offset)
            byte = data[pos]
            tag = (tag << 8) | byte
            pos += 1
            if not byte & TAG_MORE_BIT:
                break
    if pos >= len(data):
        raise fail("truncated: expected a length, found the end of the data", pos)
    length_at = pos
    first_len = data[pos]
    pos += 1
    if first_len == INDEFINITE_LENGTH:
        raise fail("indefinite length is not allowed here", length_at)
    if first_len < 0x80:
        length = first_len
    else:
        count = first_len & 0x7F
        if count > MAX_LENGTH_BYTES:
            raise fail(f"length field of {count} bytes (at most {MAX_LENGTH_BYTES} allowed)", length_at)
        if pos + count > len(data):
            raise fail("truncated inside a length field", pos)
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    header = Header(tag=tag, length=length, offset=base + offset, header_len=pos - offset)
    if check_bounds and pos + length > len(data):
        raise fail(f"tag {tag:X} claims {length} bytes but only {len(data) - pos} remain", length_at)
    return header


def read_tlv(data: bytes, offset: int = 0, *, source: str = "", base: int = 0) -> Tlv:
    """Decode the one TLV at ``data[offset]``."""
    header = read_header(data, offset, source=source, base=base)
    start = offset + header.header_len
    return Tlv(header.tag, bytes(data[start:start + header.length]), base + offset,
               header.header_len, source)


def iter_tlvs(data: bytes, *, source: str = "", base: int = 0) -> Iterator[Tlv]:
    """Decode consecutive TLVs filling ``data``."""
    pos = 0
    while pos < len(data):
        item = read_tlv(data, pos, source=source, base=base)
        yield item
        pos += item.header_len + len(item.value)


def pairs(data: bytes, *, source: str = "") -> list[tuple[int, bytes]]:
    """Consecutive TLVs as (tag, value): the secure-messaging, MSE and General
    Authenticate data objects (ISO/IEC 7816-4 §10, 9303-11 §9.8, §4.4)."""
    return [(item.tag, item.value) for item in iter_tlvs(data, source=source)]


def parse_file(data: bytes, expected_tag: int, *, source: str) -> Tlv:
    """Decode a whole LDS file: one TLV with ``expected_tag``.

    Bytes after the TLV are ignored: files on chips are often allocated larger than
    their content and padded (seen as 00 or FF fill)."""
    item = read_tlv(data, 0, source=source)
    if item.tag != expected_tag:
        raise ParseError(f"expected tag {expected_tag:X}, found {item.tag:X}", source=source, offset=0)
    return item


# -- encoding ---------------------------------------------------------------------


def encode_tag(tag: int) -> bytes:
    if tag < 0:
        raise ValueError("tag must be non-negative")
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def encode_length(length: int) -> bytes:
    """DER length (X.690 §8.1.3): short form below 128, else 81/82/83/84 + bytes."""
    if length < 0:
        raise ValueError("length must be non-negative")
    if length < 0x80:
        return bytes((length,))
    size = (length.bit_length() + 7) // 8
    if size > MAX_LENGTH_BYTES:
        raise ValueError("length too large for the LDS")
    return bytes((0x80 | size,)) + length.to_bytes(size, "big")


def encode(tag: int, value: bytes) -> bytes:
    return encode_tag(tag) + encode_length(len(value)) + bytes(value)


def encode_many(*items: tuple[int, bytes]) -> bytes:
    return b"".join(encode(tag, value) for tag, value in items)
