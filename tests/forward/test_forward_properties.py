"""Properties of the small pure functions the forwards rely on."""

from __future__ import annotations

import datetime as dt
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from agent.forward.bhyt_input import normalize_name, parse_dob
from agent.forward.fhir import split_vietnamese_name
from agent.forward.intake import sign, verify

VIET = "aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ"
names = st.lists(st.text(alphabet=VIET + VIET.upper(), min_size=1, max_size=8), min_size=1, max_size=5)
spaces = st.text(alphabet=" \t", min_size=1, max_size=3)


@given(names, spaces)
def test_name_normalization_is_idempotent_and_form_independent(words: list[str], gap: str) -> None:
    text = gap.join(words)
    once = normalize_name(text)
    assert normalize_name(once) == once
    assert normalize_name(unicodedata.normalize("NFD", text)) == once
    assert unicodedata.is_normalized("NFC", once) and "  " not in once and once == once.strip()


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_every_accepted_date_form_gives_the_same_gateway_values(date: dt.date) -> None:
    forms = [date, date.strftime("%d/%m/%Y"), date.isoformat(), date.strftime("%d%m%Y")]
    parsed = {parse_dob(f) for f in forms}
    assert len(parsed) == 1
    (dob,) = parsed
    assert dob.full == date.strftime("%d/%m/%Y") and dob.year == f"{date.year:04d}"


@given(st.binary(min_size=16, max_size=64), st.binary(max_size=2000), st.integers(0, 2**40))
def test_signature_round_trip_and_tamper(key: bytes, body: bytes, ts: int) -> None:
    signature = sign(key, str(ts), "k-1", body)
    assert verify(key, str(ts), "k-1", body, signature, now=ts)
    assert not verify(key, str(ts), "k-1", body + b"x", signature, now=ts)
    assert not verify(key, str(ts + 1), "k-1", body, signature, now=ts)
    assert not verify(key, str(ts), "k-2", body, signature, now=ts)


@given(names)
def test_fhir_name_split_keeps_every_word_in_order(words: list[str]) -> None:
    family, given_names = split_vietnamese_name(" ".join(words))
    assert [family, *given_names] == words
