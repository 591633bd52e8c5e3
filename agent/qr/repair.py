"""Repair of Vietnamese text that was mis-decoded on its way from the QR code.

The card's payload is UTF-8. What arrives is sometimes not:

* **UTF-8 read as Latin-1 / CP1252** ("Nguyá»…n"): a decoder or a scanner's
  "Alt+code" keyboard output turned each UTF-8 byte into one character. Reversed by
  encoding each run of such characters back to bytes and decoding UTF-8; only in a
  text that holds nothing a CP1252 misreading cannot produce (one "ư" or "đ" shows
  the text was decoded right, and its "Ô”" is a letter and a quote, not mojibake).
* **UTF-8 read as Shift-JIS** (kanji/kana where Vietnamese letters were): ZBar's
  charset guess (domain.md, "ZBar mangles 2.7-30 % of such payloads"). Reversed by
  encoding the whole text back to Shift-JIS (or Big5, its next guess) and decoding
  UTF-8.
* **Keyboard-wedge scanners** (USB HID in US layout) cannot type non-ASCII: letters
  with diacritics are dropped or become "?". That is *not* recoverable in general and
  is flagged. Two things are: the sex field ("Nữ" can only have become "N"/"N?"/"Nu",
  "Nam" survives), and a field separator that another keyboard layout turned into a
  different character.

A repair is applied only when it is unambiguous: the reverse encoding succeeds
strictly and gives valid UTF-8 that contains no characters of the corruption's
signature. Otherwise the text is kept and a flag says why. The result is NFC.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


class Repair:
    """Names of repairs applied (in ``Repaired.repairs``)."""

    LATIN1 = "utf8_read_as_cp1252"
    SHIFT_JIS = "utf8_read_as_shift_jis"
    BIG5 = "utf8_read_as_big5"
    NFC = "normalized_nfc"
    SEPARATOR = "separator_restored"
    SEX_FIELD = "sex_field_restored"
    TERMINATOR = "line_ending_removed"


class Flag:
    """Problems seen but not repaired (in ``Repaired.flags``)."""

    INVALID_UTF8 = "invalid_utf8"
    MOJIBAKE_LEFT = "mojibake_not_repairable"
    CJK_LEFT = "cjk_characters_not_repairable"
    LOST_CHARACTERS = "characters_lost"
    ASCII_ONLY = "ascii_only_diacritics_may_be_missing"


@dataclass(frozen=True, repr=False)
class Repaired:
    text: str
    repairs: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.repairs)

    def to_dict(self) -> dict[str, list[str]]:
        return {"repairs": list(self.repairs), "flags": list(self.flags)}

    def __repr__(self) -> str:
        return f"Repaired(chars={len(self.text)}, repairs={self.repairs!r}, flags={self.flags!r})"


#: characters CP1252 maps 0x80-0x9F to (plus the Latin-1 C1 controls a plain Latin-1
#: decoder gives for the bytes CP1252 leaves undefined)
_CP1252_HIGH = "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ"
_MOJIBAKE_CHARS = "[\u0080-\u00ff" + re.escape(_CP1252_HIGH) + "]"
#: a run of such characters; a plain space right after a lead byte (or lead +
#: continuation) joins the run: copy/paste turns the NBSP of "à" (C3 A0 → "Ã\u00a0")
#: or "Ạ" (E1 BA A0) into a space
_MOJIBAKE_RUN = re.compile("(?:" + _MOJIBAKE_CHARS + "|(?<=[\u00c2-\u00f4]) |(?<=[\u00e0-\u00f4]"
                           + _MOJIBAKE_CHARS + ") )+")
#: a UTF-8 lead byte read as Latin-1 (Â-ô) followed by a continuation byte's character
_MOJIBAKE_SIGN = re.compile("[\u00c2-\u00f4][\u0080-\u00bf" + re.escape(_CP1252_HIGH) + "]")
#: a character no CP1252/Latin-1 misreading can produce ("ư", "đ", "ộ" …): its presence
#: means the text was decoded right, and a mojibake look-alike in it is genuine text
_BEYOND_CP1252 = re.compile("[^\u0000-\u00ff" + re.escape(_CP1252_HIGH) + "]")
_CJK = re.compile("[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


def repair_bytes(data: bytes) -> Repaired:
    """Raw payload bytes (from a decoder or a USB-CDC scanner) → repaired text."""
    repairs: list[str] = []
    if data.endswith((b"\r\n", b"\n", b"\r")):
        data = data.rstrip(b"\r\n")
        repairs.append(Repair.TERMINATOR)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # not UTF-8: keep what is readable, say so (never guess a legacy charset)
        text = data.decode("utf-8", errors="replace")
        fixed = repair_text(text)
        return Repaired(fixed.text, tuple(repairs) + fixed.repairs, (Flag.INVALID_UTF8,) + fixed.flags)
    fixed = repair_text(text)
    return Repaired(fixed.text, tuple(repairs) + fixed.repairs, fixed.flags)


def repair_text(text: str) -> Repaired:
    """Text from a scanner, a library, or typed in → repaired NFC text."""
    repairs: list[str] = []
    flags: list[str] = []
    if text.endswith(("\r", "\n")):
        text = text.rstrip("\r\n")
        repairs.append(Repair.TERMINATOR)
    for _ in range(2):  # double mojibake (decoded wrongly twice) happens
        if not _MOJIBAKE_SIGN.search(text) or _BEYOND_CP1252.search(text):
            break
        fixed = _undo_cp1252(text)
        if fixed == text:
            break
        text = fixed
        repairs.append(Repair.LATIN1)
    if _MOJIBAKE_SIGN.search(text):
        flags.append(Flag.MOJIBAKE_LEFT)
    if _CJK.search(text):
        fixed_cjk, how = _undo_cjk(text)
        if how:
            text = fixed_cjk
            repairs.append(how)
        else:
            flags.append(Flag.CJK_LEFT)
    text, wedge_repairs, wedge_flags = _wedge(text)
    repairs += wedge_repairs
    flags += wedge_flags
    normal = unicodedata.normalize("NFC", text)
    if normal != text:
        repairs.append(Repair.NFC)
    return Repaired(normal, tuple(repairs), tuple(flags))


def _undo_cp1252(text: str) -> str:
    """Reverse UTF-8-read-as-CP1252 run by run; a run that does not reverse cleanly
    is left as it was (and will be flagged)."""

    def fix(match: re.Match[str]) -> str:
        run = match.group(0)
        candidates = [run, run.replace(" ", "\u00a0")] if " " in run else [run]
        for candidate in candidates:
            decoded = _cp1252_bytes(candidate).decode("utf-8", errors="strict") if _valid(candidate) else None
            if decoded is not None:
                return decoded
        return run

    return _MOJIBAKE_RUN.sub(fix, text)


def _cp1252_bytes(text: str) -> bytes:
    raw = bytearray()
    for ch in text:
        try:
            raw += ch.encode("cp1252")
        except UnicodeEncodeError:
            raw.append(ord(ch))  # the C1 controls a Latin-1 decoder produces
    return bytes(raw)


def _valid(text: str) -> bool:
    try:
        _cp1252_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _undo_cjk(text: str) -> tuple[str, str]:
    """Reverse UTF-8-read-as-Shift-JIS (then Big5) on the whole text: a two-byte
    character can swallow the ASCII byte after a UTF-8 sequence, so runs are not
    enough. ZBar's iconv maps 0x5C/0x7E to YEN SIGN/OVERLINE: undone first."""
    candidate = text.replace("\u00a5", "\\").replace("\u203e", "~")
    for codec, name in (("shift_jis", Repair.SHIFT_JIS), ("cp932", Repair.SHIFT_JIS),
                        ("shift_jisx0213", Repair.SHIFT_JIS), ("big5", Repair.BIG5)):
        try:
            decoded = candidate.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if not _CJK.search(decoded):
            return decoded, name
    return text, ""


_SEX_LOST = {"n", "n?", "nu", "n\ufffd", "n\ufffd\ufffd", "n\ufffd\ufffd\ufffd"}
_SEPARATOR_CANDIDATES = "\\¦#~^;`"


def _wedge(text: str) -> tuple[str, list[str], list[str]]:
    """What a keyboard-wedge scanner does to a CCCD payload: a changed separator
    (another layout), lost letters in the sex field, "?" or nothing where letters with
    diacritics were."""
    repairs: list[str] = []
    flags: list[str] = []
    lead = re.match(r"\s*\d{12}(\D)", text) if "|" not in text else None
    if lead is not None:
        # the character the regex saw (text.strip()[12] fails when it is trailing blank)
        sep = lead.group(1)
        if sep in _SEPARATOR_CANDIDATES and text.count(sep) >= 6:
            text = text.replace(sep, "|")
            repairs.append(Repair.SEPARATOR)
    parts = text.split("|")
    if len(parts) >= 7 and re.fullmatch(r"\d{12}", parts[0].strip()):
        sex = parts[4].strip().casefold()
        if sex in _SEX_LOST:
            parts[4] = "Nữ"
            text = "|".join(parts)
            repairs.append(Repair.SEX_FIELD)
            flags.append(Flag.LOST_CHARACTERS)
        words = "|".join(parts[2:3] + parts[5:6])
        if "?" in words or "\ufffd" in words:
            if Flag.LOST_CHARACTERS not in flags:
                flags.append(Flag.LOST_CHARACTERS)
        elif words.isascii() and re.search(r"[A-Za-z]", words):
            flags.append(Flag.ASCII_ONLY)
    return text, repairs, flags
