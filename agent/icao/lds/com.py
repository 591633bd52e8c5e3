"""EF.COM (9303-10 §4.6.1): LDS version, Unicode version and the list of data groups
present, as tags."""

from __future__ import annotations

from dataclasses import dataclass

from agent.errors import ParseError
from agent.icao import tlv
from agent.icao.lds.files import COM, TAG_TO_DG

TAG_LDS_VERSION = 0x5F01
TAG_UNICODE_VERSION = 0x5F36
TAG_LIST = 0x5C
SOURCE = COM.name


@dataclass(frozen=True)
class EfCom:
    lds_version: str  # "0107" → "1.7"
    unicode_version: str  # "040000" → "4.0.0"
    data_groups: tuple[int, ...]
    #: tags in the list that name no data group (kept, not guessed)
    unknown_tags: tuple[int, ...] = ()


def _version(raw: bytes, parts: int, item: tlv.Tlv) -> str:
    """"0107" → "1.7", "040000" → "4.0.0" (two ASCII digits per part)."""
    text = raw.decode("ascii", errors="replace")
    if len(text) != 2 * parts or not text.isdigit():
        raise item.error(f"version {text!r} is not {2 * parts} digits")
    return ".".join(str(int(text[i:i + 2])) for i in range(0, len(text), 2))


def parse_com(data: bytes) -> EfCom:
    root = tlv.parse_file(data, COM.tag, source=SOURCE)
    lds = root.child(TAG_LDS_VERSION)
    uni = root.child(TAG_UNICODE_VERSION)
    tags = root.child(TAG_LIST)
    dgs: list[int] = []
    unknown: list[int] = []
    for index, tag in enumerate(tags.value):
        if tag in TAG_TO_DG:
            dgs.append(TAG_TO_DG[tag])
        elif tag:
            unknown.append(tag)
        else:
            raise ParseError("tag 00 in the data-group list", source=SOURCE,
                             offset=tags.value_offset + index)
    return EfCom(_version(lds.value, 2, lds), _version(uni.value, 3, uni), tuple(dgs), tuple(unknown))


def build_com(data_groups: tuple[int, ...] | list[int], lds_version: str = "0107",
              unicode_version: str = "040000") -> bytes:
    from agent.icao.lds.files import DG_TAGS

    tags = bytes(DG_TAGS[n] for n in data_groups)
    return tlv.encode(COM.tag, tlv.encode_many(
        (TAG_LDS_VERSION, lds_version.encode("ascii")),
        (TAG_UNICODE_VERSION, unicode_version.encode("ascii")),
        (TAG_LIST, tags)))
