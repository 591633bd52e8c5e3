"""DG2: the face (9303-10 §4.7.2), a CBEFF biometric information group template
(7F61) holding one or more biometric information templates (7F60), each with its
header (A1) and a biometric data block (5F2E, or 7F2E) in ISO/IEC 19794-5:2005
format: facial record header, facial information, feature points, image information
and the image (JPEG or JPEG 2000).

The parser returns the image as stored and a displayable JPEG: JPEG 2000 is
converted with Pillow (decoding only, no I/O).
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

from agent.errors import ParseError
from agent.icao import tlv
from agent.icao.lds import face39794
from agent.icao.lds.files import DATA_GROUPS

SOURCE = DATA_GROUPS[2].name
TAG_GROUP = 0x7F61
TAG_INSTANCES = 0x02
TAG_TEMPLATE = 0x7F60
TAG_HEADER = 0xA1
TAG_DATA_BLOCK = 0x5F2E
TAG_DATA_BLOCK_CONSTRUCTED = 0x7F2E

#: ISO/IEC 19794-5:2005 §5.4: "FAC\0", version "010\0"
FORMAT_ID = b"FAC\x00"
FACIAL_RECORD_HEADER_LEN = 14
FACIAL_INFO_LEN = 20
FEATURE_POINT_LEN = 8
IMAGE_INFO_LEN = 12
#: image data type (19794-5 §5.7.3)
IMAGE_TYPE_JPEG = 0
IMAGE_TYPE_JPEG2000 = 1
JPEG_MAGIC = b"\xff\xd8"
JP2_MAGIC = b"\x00\x00\x00\x0cjP  "
J2K_MAGIC = b"\xff\x4f\xff\x51"
#: refuse to decode images beyond this (a decompression bomb is not a face)
MAX_PIXELS = 4096 * 4096
JPEG_QUALITY = 90
GENDER = {1: "M", 2: "F"}


@dataclass(frozen=True, repr=False)
class FaceImage:
    width: int
    height: int
    image_format: str  # "JPEG" or "JPEG2000" (as found in the data, not only as labelled)
    image: bytes  # as stored on the chip
    jpeg: bytes  # displayable
    gender: str | None
    feature_points: int
    source_type: int
    quality: int

    def __repr__(self) -> str:
        return f"FaceImage({self.image_format}, {self.width}x{self.height}, {len(self.image)} bytes)"


@dataclass(frozen=True, repr=False)
class Dg2:
    faces: tuple[FaceImage, ...]

    @property
    def photo_jpeg(self) -> bytes | None:
        return self.faces[0].jpeg if self.faces else None

    def __repr__(self) -> str:
        return f"Dg2(faces={list(self.faces)!r})"


def _u(data: bytes, at: int, size: int) -> int:
    return int.from_bytes(data[at:at + size], "big")


def _image_format(image: bytes, labelled: int, offset: int) -> str:
    if image.startswith(JPEG_MAGIC):
        return "JPEG"
    if image.startswith(JP2_MAGIC) or image.startswith(J2K_MAGIC):
        return "JPEG2000"
    raise ParseError(f"face image is neither JPEG nor JPEG 2000 (labelled type {labelled})",
                     source=SOURCE, offset=offset)


def to_jpeg(image: bytes, image_format: str, *, offset: int = 0) -> bytes:
    """A displayable JPEG: JPEG passes through, JPEG 2000 is decoded and re-encoded."""
    from PIL import Image

    if image_format == "JPEG":
        # shown as stored; its header must still read (a damaged face image is a
        # malformed DG2 with a reason, not a blank photo on the counter page)
        try:
            with Image.open(io.BytesIO(image)) as img:
                if img.format != "JPEG":
                    raise ParseError(f"face image labelled JPEG reads as {img.format}", source=SOURCE, offset=offset)
        except (OSError, ValueError, SyntaxError, EOFError, struct.error) as exc:
            raise ParseError(f"JPEG face image does not decode ({type(exc).__name__})",
                             source=SOURCE, offset=offset) from None
        return image

    # Pillow reports a broken file in several ways (OSError for decoder failures,
    # SyntaxError/EOFError/struct.error from its parsers, DecompressionBombError for
    # absurd sizes); each is a malformed DG2, nothing else
    broken = (OSError, ValueError, SyntaxError, EOFError, struct.error, Image.DecompressionBombError,
              Image.DecompressionBombWarning)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(image)) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise ParseError(f"face image of {img.width}x{img.height} pixels is too large",
                                     source=SOURCE, offset=offset)
                out = io.BytesIO()
                img.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY)
                return out.getvalue()
    except broken as exc:
        raise ParseError(f"JPEG 2000 face image does not decode ({type(exc).__name__})",
                         source=SOURCE, offset=offset) from None


def parse_face_block(block: bytes, base: int = 0) -> list[FaceImage]:
    """ISO/IEC 19794-5:2005 §5.4-5.7; ``base`` is the block's offset in the file."""

    def need(at: int, size: int, what: str) -> None:
        if at + size > len(block):
            raise ParseError(f"truncated {what}", source=SOURCE, offset=base + at)

    need(0, FACIAL_RECORD_HEADER_LEN, "facial record header")
    if block[:4] != FORMAT_ID:
        raise ParseError("facial record does not start with 'FAC\\0'", source=SOURCE, offset=base)
    count = _u(block, 12, 2)
    pos = FACIAL_RECORD_HEADER_LEN
    faces = []
    for _ in range(count):
        need(pos, FACIAL_INFO_LEN, "facial information")
        record_len = _u(block, pos, 4)
        points = _u(block, pos + 4, 2)
        gender = GENDER.get(block[pos + 6])
        if record_len < FACIAL_INFO_LEN + points * FEATURE_POINT_LEN + IMAGE_INFO_LEN:
            raise ParseError(f"facial record length {record_len} too short", source=SOURCE, offset=base + pos)
        need(pos, record_len, "facial record")
        info = pos + FACIAL_INFO_LEN + points * FEATURE_POINT_LEN
        labelled = block[info + 1]
        width, height = _u(block, info + 2, 2), _u(block, info + 4, 2)
        image_at = info + IMAGE_INFO_LEN
        image = bytes(block[image_at:pos + record_len])
        fmt = _image_format(image, labelled, base + image_at)
        faces.append(FaceImage(width, height, fmt, image, to_jpeg(image, fmt, offset=base + image_at),
                               gender, points, block[info + 7], _u(block, info + 10, 2)))
        pos += record_len
    return faces


def parse_any_face_record(block: bytes, base: int = 0) -> list[FaceImage]:
    """A face record in ISO/IEC 19794-5 ("FAC\\0" …) or ISO/IEC 39794-5 (DER), told
    apart by their first bytes (``agent.icao.lds.face39794``)."""
    if face39794.looks_like_39794(block):
        return [_face_from_image(image, offset) for image, offset in face39794.images(block, source=SOURCE,
                                                                                        base=base)]
    return parse_face_block(block, base)


def _face_from_image(image: bytes, offset: int) -> FaceImage:
    """A FaceImage from the image alone (39794-5: its size and format are the image's)."""
    fmt = _image_format(image, -1, offset)
    jpeg = to_jpeg(image, fmt, offset=offset)
    width, height = _jpeg_size(jpeg, offset)
    return FaceImage(width, height, fmt, image, jpeg, None, 0, 0, 0)


def _jpeg_size(jpeg: bytes, offset: int) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(jpeg)) as img:
            return img.width, img.height
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as exc:
        raise ParseError(f"face image does not decode ({type(exc).__name__})", source=SOURCE,
                         offset=offset) from None


def parse_dg2(data: bytes) -> Dg2:
    root = tlv.parse_file(data, DATA_GROUPS[2].tag, source=SOURCE)
    group = root.child(TAG_GROUP)
    faces: list[FaceImage] = []
    for template in group.children():
        if template.tag != TAG_TEMPLATE:
            continue  # 02 (instance count) and anything unknown
        block = template.find(TAG_DATA_BLOCK) or template.find(TAG_DATA_BLOCK_CONSTRUCTED)
        if block is None:
            raise template.error("biometric template without a data block (5F2E/7F2E)")
        faces.extend(parse_any_face_record(block.value, block.value_offset))
    if not faces:
        raise root.error("no face image in DG2")
    return Dg2(tuple(faces))


# -- building (virtual chip profiles, tests) ---------------------------------------


def build_face_block(image: bytes, width: int, height: int, *, jpeg2000: bool = False,
                     gender: str | None = None) -> bytes:
    """One facial record (19794-5:2005) around ``image``, no feature points."""
    info = bytearray()
    info += (FACIAL_INFO_LEN + IMAGE_INFO_LEN + len(image)).to_bytes(4, "big")
    info += (0).to_bytes(2, "big")  # feature points
    info += bytes((({"M": 1, "F": 2}.get(gender or "", 0)), 0, 0))  # gender, eyes, hair
    info += bytes(3) + bytes(2) + bytes(3) + bytes(3)  # mask, expression, pose, uncertainty
    image_info = bytes((1,  # face image type: full frontal
                        IMAGE_TYPE_JPEG2000 if jpeg2000 else IMAGE_TYPE_JPEG))
    image_info += width.to_bytes(2, "big") + height.to_bytes(2, "big")
    image_info += bytes((1, 2)) + bytes(2) + bytes(2)  # sRGB, digital still; device; quality
    record = bytes(info) + image_info + image
    header = FORMAT_ID + b"010\x00" + (FACIAL_RECORD_HEADER_LEN + len(record)).to_bytes(4, "big")
    header += (1).to_bytes(2, "big")
    return header + record


def build_dg2(image: bytes, width: int, height: int, *, jpeg2000: bool = False,
              gender: str | None = None) -> bytes:
    """DG2 with one face, with the biometric header template of 9303-10 §4.7.2.1."""
    bht = tlv.encode_many((0x80, b"\x01\x01"),  # ICAO header version 1.1
                          (0x81, b"\x02"),  # biometric type: facial features
                          (0x87, b"\x01\x01"),  # format owner: ISO/IEC JTC1/SC37
                          (0x88, b"\x00\x08"))  # format type: face image
    template = tlv.encode(TAG_TEMPLATE, tlv.encode(TAG_HEADER, bht) +
                          tlv.encode(TAG_DATA_BLOCK, build_face_block(image, width, height,
                                                                      jpeg2000=jpeg2000, gender=gender)))
    group = tlv.encode(TAG_GROUP, tlv.encode(TAG_INSTANCES, b"\x01") + template)
    return tlv.encode(DATA_GROUPS[2].tag, group)
