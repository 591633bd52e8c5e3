"""Answer-to-reset parsing: just enough to find the historical bytes and the card
capabilities in them (ISO/IEC 7816-3 §8.2, ISO/IEC 7816-4 §8.1.1).

Used by the backends to decide ``extended_length="auto"`` and by the virtual cards to
build a consistent ATR. Pure functions, no device library.
"""

from __future__ import annotations

from agent.errors import ConfigError, ParseError

#: TS byte for direct convention (7816-3 §8.1)
TS_DIRECT = 0x3B
#: compact-TLV tag (high nibble) of "card capabilities" (7816-4 §8.1.1.2.7)
TAG_CARD_CAPABILITIES = 0x7
#: category indicator: compact-TLV objects follow (7816-4 §8.1.1.1)
CATEGORY_COMPACT_TLV = 0x80
#: category indicator: compact-TLV objects, then a 3-byte status indicator at the end
CATEGORY_COMPACT_TLV_STATUS = 0x00
#: third software function table, b7: "extended Lc and Le fields" (7816-4 §8.1.1.2.7, table 87)
CAP3_EXTENDED_LENGTH = 0x40
#: third software function table, b8: "command chaining"
CAP3_COMMAND_CHAINING = 0x80


def historical_bytes(atr: bytes) -> bytes:
    """Return the historical bytes of an ATR (7816-3 §8.2.2: T0's low nibble gives
    their number; each TDi's high nibble says which interface bytes follow)."""
    if len(atr) < 2:
        raise ParseError("ATR shorter than 2 bytes", source="ATR")
    count = atr[1] & 0x0F
    pos = 1
    indicator = atr[1] >> 4
    while True:
        # TAi, TBi, TCi, TDi are present when bits 5..8 of the indicator are set
        present = [bool(indicator & bit) for bit in (0x1, 0x2, 0x4, 0x8)]
        pos += sum(present)
        if pos >= len(atr):
            raise ParseError("ATR ends inside its interface bytes", source="ATR", offset=pos)
        if not present[3]:
            break
        indicator = atr[pos] >> 4
    start = pos + 1
    if start + count > len(atr):
        raise ParseError(f"ATR announces {count} historical bytes but has fewer", source="ATR", offset=start)
    return bytes(atr[start:start + count])


def compact_tlv(data: bytes) -> dict[int, bytes]:
    """Split compact-TLV objects (tag in the high nibble, length in the low nibble)."""
    objects: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        tag, length = data[pos] >> 4, data[pos] & 0x0F
        if pos + 1 + length > len(data):
            raise ParseError("compact-TLV object runs past the end", source="ATR historical bytes", offset=pos)
        objects.setdefault(tag, bytes(data[pos + 1:pos + 1 + length]))
        pos += 1 + length
    return objects


def card_capabilities(atr: bytes) -> bytes | None:
    """The card-capabilities data object (up to three software function tables), or
    None when the ATR carries none."""
    hist = historical_bytes(atr)
    if not hist:
        return None
    if hist[0] == CATEGORY_COMPACT_TLV:
        body = hist[1:]
    elif hist[0] == CATEGORY_COMPACT_TLV_STATUS and len(hist) >= 4:
        body = hist[1:-3]
    else:
        return None  # proprietary or DIR-reference historical bytes: nothing we can read
    return compact_tlv(body).get(TAG_CARD_CAPABILITIES)


def atr_says_extended_length(atr: bytes) -> bool:
    """True when the ATR's card capabilities announce extended Lc/Le fields.

    Only the third software function table carries that bit; a card with no such table
    (or a malformed ATR) is taken as short-length only: sending an extended APDU to a
    card that cannot take it fails, while short APDUs always work."""
    try:
        caps = card_capabilities(atr)
    except ParseError:
        return False
    return bool(caps and len(caps) >= 3 and caps[2] & CAP3_EXTENDED_LENGTH)


def build_atr(historical: bytes) -> bytes:
    """An ATR offering T=1 only (TD1 = 01) with these historical bytes and the TCK that
    T=1 requires (7816-3 §8.2.5: XOR of T0 up to the last historical byte is 00)."""
    if len(historical) > 15:
        raise ValueError("at most 15 historical bytes")
    body = bytes((0x80 | len(historical), 0x01)) + historical
    tck = 0
    for byte in body:
        tck ^= byte
    return bytes((TS_DIRECT,)) + body + bytes((tck,))


def capabilities_historical(extended_length: bool, command_chaining: bool = False) -> bytes:
    """Historical bytes holding only a card-capabilities object with three tables:
    selection by full DF name, path, FID and SFI (table 1), default data coding
    (table 2), and the extended-length / chaining bits (table 3)."""
    table1 = 0x80 | 0x20 | 0x10 | 0x04
    table2 = 0x01
    table3 = (CAP3_EXTENDED_LENGTH if extended_length else 0) | (CAP3_COMMAND_CHAINING if command_chaining else 0)
    return bytes((CATEGORY_COMPACT_TLV, (TAG_CARD_CAPABILITIES << 4) | 3, table1, table2, table3))


#: the values of ``[readers] extended_length``
EXTENDED_LENGTH_OPTIONS = ("auto", "on", "off")


def resolve_extended_length(option: str, atr: bytes) -> bool:
    """``extended_length`` config: "on"/"off" force it, "auto" reads the ATR's card
    capabilities (:func:`atr_says_extended_length`)."""
    if option not in EXTENDED_LENGTH_OPTIONS:
        raise ConfigError(f"readers.extended_length must be 'auto', 'on' or 'off', not {option!r}")
    if option == "on":
        return True
    if option == "off":
        return False
    return atr_says_extended_length(atr)
