"""Text repair of mis-decoded Vietnamese payloads (domain.md: ZBar's charset guess,
keyboard-wedge scanners). Synthetic names and addresses."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.qr.payload import read_payload
from agent.qr.repair import Flag, Repair, repair_bytes, repair_text

PAYLOADS = [
    "001099012345|123456789|Nguyễn Văn An|15031999|Nam|Số 12 Ngõ 34, Phường Láng Hạ, Quận Đống Đa, Hà Nội|20042021",
    "034185001234||Đặng Thị Hằng|02091985|Nữ|Xóm Bến Đò, Xã Đông Hưng, Huyện Đông Hưng, Thái Bình|11112021",
    "079303009876|025123456|Huỳnh Ngọc Diệp|30122003|Nữ|Ấp Phước Lộc, Xã Hòa Phước, TP. Hồ Chí Minh|07072024",
    "048072000111||Võ Đình Nghĩa|01011972|Nam|Tổ 5, Phường Thạch Thang, Quận Hải Châu, Đà Nẵng|15032022",
]


@pytest.mark.parametrize("text", PAYLOADS)
def test_clean_utf8_untouched(text: str) -> None:
    fixed = repair_bytes(text.encode())
    assert fixed.text == text and not fixed.repairs and not fixed.flags


@pytest.mark.parametrize("text", PAYLOADS)
@pytest.mark.parametrize("codec", ["cp1252", "latin-1"])
def test_utf8_read_as_cp1252_or_latin1(text: str, codec: str) -> None:
    # cp1252 cannot decode 0x81/0x8D/0x8F/0x90/0x9D; such decoders keep them as C1 controls
    garbled = "".join(bytes([b]).decode(codec, errors="ignore") or chr(b) for b in text.encode())
    assert garbled != text
    fixed = repair_text(garbled)
    assert fixed.text == text
    assert Repair.LATIN1 in fixed.repairs and not fixed.flags


def test_double_mojibake() -> None:
    text = PAYLOADS[0]
    twice = text.encode().decode("latin-1").encode().decode("latin-1")
    assert repair_text(twice).text == text


# names and addresses whose UTF-8 bytes happen to be valid Shift-JIS: ZBar (without
# its binary mode) returns them as kanji/kana
SJIS_VALID = ["Võ Đình Nghĩa", "Phạm Văn Nam", "Bùi Đức Long", "Phường Láng Hạ",
              "001099012345||Phạm Văn Nam|15031999|Nam|Phường Láng Hạ|20042021"]


@pytest.mark.parametrize("text", SJIS_VALID)
def test_utf8_read_as_shift_jis_when_zbar_guessed(text: str) -> None:
    garbled = text.encode().decode("shift_jis")
    assert garbled != text
    fixed = repair_text(garbled)
    assert fixed.text == text
    assert Repair.SHIFT_JIS in fixed.repairs


def test_short_shift_jis_valid_words() -> None:
    # domain.md: short strings such as "Nữ" and "Đình" are valid Shift-JIS
    for word in ("Nữ", "Đình", "Nữ|Đình"):
        garbled = word.encode().decode("shift_jis")
        assert garbled != word
        assert repair_text(garbled).text == word


def test_nfd_input_normalised() -> None:
    nfd = unicodedata.normalize("NFD", PAYLOADS[1])
    fixed = repair_text(nfd)
    assert fixed.text == PAYLOADS[1] and Repair.NFC in fixed.repairs


def test_keyboard_wedge_dropped_letters_flagged_sex_restored() -> None:
    # a US-layout HID scanner drops every non-ASCII letter
    typed = "".join(ch for ch in PAYLOADS[1] if ch.isascii())
    fixed = repair_text(typed)
    assert Repair.SEX_FIELD in fixed.repairs
    assert Flag.LOST_CHARACTERS in fixed.flags
    result = read_payload(typed)
    assert result.kind == "cccd" and result.card is not None and result.card.sex == "F"
    assert any("characters_lost" in w for w in result.card.warnings)


def test_keyboard_wedge_question_marks_flagged() -> None:
    typed = "".join(ch if ch.isascii() else "?" for ch in PAYLOADS[0])
    fixed = repair_text(typed)
    assert Flag.LOST_CHARACTERS in fixed.flags
    assert "?" in fixed.text  # not guessed


def test_keyboard_wedge_ascii_transliteration_flagged_not_invented() -> None:
    typed = "001099012345|123456789|Nguyen Van An|15031999|Nam|So 12 Ngo 34, Ha Noi|20042021"
    fixed = repair_text(typed)
    assert fixed.text == typed
    assert Flag.ASCII_ONLY in fixed.flags


def test_separator_from_other_layout_restored() -> None:
    typed = PAYLOADS[0].replace("|", "\\")
    fixed = repair_text(typed)
    assert fixed.text == PAYLOADS[0] and Repair.SEPARATOR in fixed.repairs


def test_ambiguous_mojibake_flagged_not_repaired() -> None:
    # "Ã" + "©" is a UTF-8 lead/continuation look-alike, but "Ã©Ã" is truncated
    text = "001099012345||Tên Ã©Ã|15031999|Nam|Hà Nội|20042021"
    fixed = repair_text(text)
    assert Flag.MOJIBAKE_LEFT in fixed.flags
    assert "Ã" in fixed.text


def test_invalid_utf8_bytes_flagged() -> None:
    raw = PAYLOADS[0].encode()[:40] + b"\xff\xfe" + PAYLOADS[0].encode()[40:]
    fixed = repair_bytes(raw)
    assert Flag.INVALID_UTF8 in fixed.flags


def test_mojibake_whose_nbsp_became_a_space() -> None:
    # "à" is C3 A0 and "Ạ" E1 BA A0: read as CP1252 the A0 is a no-break space, which
    # copy/paste (or a terminal) turns into a plain space
    text = "001099012345||Lê Thị Ạnh|15031999|Nữ|Số 7 Nguyễn Trãi, Hà Nội|20042021"
    garbled = text.encode().decode("cp1252", errors="ignore").replace("\u00a0", " ")
    fixed = repair_text(garbled)
    assert fixed.text == text and Repair.LATIN1 in fixed.repairs


# every letter of the Vietnamese alphabet with its tones (NFC), plus what addresses use
_VIET = ("aàáảãạăằắẳẵặâầấẩẫậbcdđeèéẻẽẹêềếểễệghiìíỉĩịklmnoòóỏõọôồốổỗộơờớởỡợpqrstuùúủũụưừứửữựvxyỳýỷỹỵ")
_ALPHABET = _VIET + _VIET.upper() + "0123456789 ,./-()"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_ALPHABET, min_size=1, max_size=60))
def test_clean_vietnamese_is_never_repaired(text: str) -> None:
    """No false repair: genuine Vietnamese text (letters with tones, digits,
    punctuation) comes back unchanged and unflagged as mojibake/CJK."""
    text = unicodedata.normalize("NFC", text)
    fixed = repair_text(text)
    assert fixed.text == text
    assert Repair.LATIN1 not in fixed.repairs and Repair.SHIFT_JIS not in fixed.repairs
    assert Flag.MOJIBAKE_LEFT not in fixed.flags


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_ALPHABET, min_size=1, max_size=60))
def test_cp1252_mojibake_always_reverses(text: str) -> None:
    text = unicodedata.normalize("NFC", text)
    garbled = "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in text.encode())
    assert repair_text(garbled).text == text


@pytest.mark.parametrize("text", [
    "001099012345||Lê Thị Ý|15031999|Nữ|Thôn “ĐÔ” xã Yên Mỹ, Hưng Yên|20042021",
    "001099012345||Trần Văn Tú|15031999|Nam|Số 5 phố TRẦN HƯNG ĐẠO, NGÕ Ý…, Hà Nội|20042021",
    "001099012345||Ngô Thị Hà|15031999|Nữ|Tổ 3 – xóm ‘ĐÊ’, Hà Nam|20042021",
])
def test_clean_text_with_typographic_marks_is_not_repaired(text: str) -> None:
    """An uppercase letter of the Latin-1 range ("Ô", "À", "Ý") followed by a curly
    quote, an ellipsis or a dash looks like one UTF-8 sequence read as CP1252
    ("Ô”" = D4 94), but a text that also holds letters CP1252 cannot produce ("ư",
    "đ", "ộ") was decoded right: it must come back as it was."""
    fixed = repair_text(text)
    assert fixed.text == text
    assert Repair.LATIN1 not in fixed.repairs


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_ALPHABET + "“”‘’…–—°", min_size=1, max_size=60))
def test_clean_vietnamese_with_typographic_marks_is_never_rewritten(text: str) -> None:
    text = unicodedata.normalize("NFC", "Đặng " + text)  # "Đ", "ặ": beyond CP1252
    assert repair_text(text).text == text
