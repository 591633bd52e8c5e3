"""The one BER-TLV reader (9303-10 §4.4, X.690 §8.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.errors import ParseError
from agent.icao import tlv


def test_multi_byte_tag_and_long_length() -> None:
    value = bytes(300)
    data = tlv.encode(0x5F2E, value)
    assert data[:5] == bytes.fromhex("5F2E82012C")
    item = tlv.read_tlv(data)
    assert (item.tag, len(item.value), item.header_len) == (0x5F2E, 300, 5)


def test_constructed_children_have_absolute_offsets() -> None:
    inner = tlv.encode(0x5F01, b"0107") + tlv.encode(0x5C, b"\x61\x75")
    data = tlv.encode(0x60, inner)
    root = tlv.parse_file(data, 0x60, source="COM")
    children = root.children()
    assert [c.tag for c in children] == [0x5F01, 0x5C]
    assert children[1].offset == 2 + 7
    assert root.child(0x5C).value == b"\x61\x75"


def test_encode_length_forms() -> None:
    assert tlv.encode_length(0x7F) == b"\x7f"
    assert tlv.encode_length(0x80) == b"\x81\x80"
    assert tlv.encode_length(0x1234) == b"\x82\x12\x34"
    assert tlv.encode_length(0x123456) == b"\x83\x12\x34\x56"


def test_truncated_value_names_source_and_offset() -> None:
    data = tlv.encode(0x61, b"A" * 20)[:-5]
    with pytest.raises(ParseError) as info:
        tlv.read_tlv(data, source="DG1")
    assert info.value.source == "DG1"
    assert info.value.offset == 1
    assert "DG1 at offset 1" in str(info.value)


def test_absurd_length_is_refused_without_allocating() -> None:
    # a DG claiming 16 MB in a 10-byte buffer (issue 3, "Bad input")
    data = bytes.fromhex("75 83 FF FF FF") + bytes(5)
    with pytest.raises(ParseError, match="claims 16777215 bytes"):
        tlv.read_tlv(data, source="DG2")


def test_indefinite_length_refused() -> None:
    with pytest.raises(ParseError, match="indefinite") as info:
        tlv.read_tlv(bytes.fromhex("7F61 80 0000"), source="DG2")
    assert info.value.offset == 2


def test_five_length_bytes_refused() -> None:
    with pytest.raises(ParseError, match="length field of 5 bytes"):
        tlv.read_tlv(bytes.fromhex("61 85 0000000001 00"))


def test_truncated_multi_byte_tag() -> None:
    with pytest.raises(ParseError, match="multi-byte tag"):
        tlv.read_tlv(bytes.fromhex("5F"), source="DG11")


def test_header_without_bounds_for_file_reader() -> None:
    header = tlv.read_header(bytes.fromhex("77 82 07 D0"), check_bounds=False)
    assert (header.tag, header.length, header.header_len, header.total_len) == (0x77, 2000, 4, 2004)


def test_wrong_root_tag() -> None:
    with pytest.raises(ParseError, match="expected tag 61, found 75"):
        tlv.parse_file(tlv.encode(0x75, b""), 0x61, source="DG1")


def test_primitive_has_no_children() -> None:
    with pytest.raises(ParseError, match="primitive"):
        tlv.read_tlv(tlv.encode(0x5F1F, b"abc")).children()


@given(st.lists(st.tuples(st.sampled_from([0x02, 0x5F1F, 0x7F61, 0x5F2E, 0x9F8101]),
                          st.binary(max_size=300)), max_size=5))
def test_round_trip(items: list[tuple[int, bytes]]) -> None:
    data = tlv.encode_many(*items)
    assert [(t.tag, t.value) for t in tlv.iter_tlvs(data)] == items


@given(st.binary(max_size=64))
def test_garbage_raises_only_parse_error(data: bytes) -> None:
    try:
        list(tlv.iter_tlvs(data, source="X"))
    except ParseError:
        pass
