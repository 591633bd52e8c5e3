"""Face records in ISO/IEC 39794-5 (the DER encoding that succeeds ISO/IEC 19794-5 in
DG2, 9303-10 §4.7.2; ICAO's "LDS 2" transition).

The biometric data block (DG2's 7F2E, or a standalone record) holds a
``FaceImageDataBlock ::= [APPLICATION 5] SEQUENCE`` — here reached through its outer
context wrapper (A1) — with a version block [0] and representation blocks [1], each a
SEQUENCE whose 2D image representation carries the image as an OCTET STRING (JPEG or
JPEG 2000). Only what the desk needs is read: every representation's image; size and
format come from the image itself. Fields we do not use (capture device, quality,
landmarks …) are skipped, whatever their content.
"""

from __future__ import annotations

from agent.icao import tlv

TAG_FACE_IMAGE_DATA_BLOCK = 0x65   # [APPLICATION 5] constructed
TAG_REPRESENTATION_BLOCKS = 0xA1   # [1] constructed, inside the FaceImageDataBlock
TAG_REPRESENTATION = 0x30          # SEQUENCE
#: the image magic numbers (JPEG, JP2 box, J2K codestream)
IMAGE_STARTS = (b"\xff\xd8", b"\x00\x00\x00\x0cjP  ", b"\xff\x4f\xff\x51")
MAX_DEPTH = 8


def looks_like_39794(block: bytes) -> bool:
    """A 39794-5 block starts with the [1] wrapper or the [APPLICATION 5] block."""
    return bool(block) and block[0] in (TAG_REPRESENTATION_BLOCKS, TAG_FACE_IMAGE_DATA_BLOCK)


def _data_block(block: bytes, source: str, base: int) -> tlv.Tlv:
    outer = tlv.read_tlv(block, 0, source=source, base=base)
    if outer.tag == TAG_FACE_IMAGE_DATA_BLOCK:
        return outer
    found = outer.find(TAG_FACE_IMAGE_DATA_BLOCK)
    if found is None:
        raise outer.error("ISO/IEC 39794-5 record without a FaceImageDataBlock ([APPLICATION 5])")
    return found


def images(block: bytes, *, source: str, base: int = 0) -> list[tuple[bytes, int]]:
    """The images of a 39794-5 face record, each with its offset in the file."""
    data_block = _data_block(block, source, base)
    blocks = data_block.find(TAG_REPRESENTATION_BLOCKS)
    if blocks is None:
        raise data_block.error("ISO/IEC 39794-5 FaceImageDataBlock without representation blocks [1]")
    found: list[tuple[bytes, int]] = []
    for representation in blocks.children():
        if representation.tag != TAG_REPRESENTATION:
            continue
        image = _first_image(representation, 0)
        if image is None:
            raise representation.error("ISO/IEC 39794-5 representation without a JPEG or JPEG 2000 image")
        found.append(image)
    if not found:
        raise blocks.error("ISO/IEC 39794-5 record with no representation")
    return found


def _first_image(node: tlv.Tlv, depth: int) -> tuple[bytes, int] | None:
    """Depth-first: the first primitive value that is an image (the 2D representation
    data, [0] of the image representation block)."""
    if depth > MAX_DEPTH:
        raise node.error("ISO/IEC 39794-5 record nested too deep")
    for child in node.children():
        if child.constructed:
            found = _first_image(child, depth + 1)
            if found is not None:
                return found
        elif child.value.startswith(IMAGE_STARTS):
            return child.value, child.value_offset
    return None

