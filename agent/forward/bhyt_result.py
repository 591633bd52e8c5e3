"""The result of a BHYT check: what the gateway said about the card, in our words.

Built from a gateway answer (:func:`result_from_answer`: its ``maKetQua`` looked up in
:mod:`agent.forward.bhyt_codes`, the card's fields with the gateway's dates as ISO) or
locally when no answer came (:func:`local_result`: gateway down, login refused, too
many lookups waiting).

A desk's lookup ends in a :data:`Lookup`: that result, or a :class:`LookupFailure` when
no check could be made (the error says why, by its class). Both stay typed up to the
edge: their JSON is written by the local API (``agent.api.render.lookup_body``), which
``idagent --json bhyt check`` prints too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.errors import IdAgentError
from agent.forward.bhyt_codes import LOCAL, UPSTREAM_FAILURES, BhytStatus, CodeInfo
from agent.logs import mask


def gateway_date_to_iso(value: Any) -> str | None:
    """dd/MM/yyyy (or yyyy) from the gateway → ISO; unknown shapes are kept as they came."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return dt.datetime.strptime(text, "%d/%m/%Y").date().isoformat()
    except ValueError:
        return text


@dataclass(frozen=True)
class BhytResult:
    status: BhytStatus
    code: str
    message_vi: str
    message_en: str
    usable: bool
    dob_sent: tuple[str, ...] = ()
    #: "full", "year", or None when the gateway did not identify the person
    dob_matched: str | None = None
    card_code: str | None = None
    card_valid_from: str | None = None
    card_valid_to: str | None = None
    facility_code: str | None = None
    insurance_office: str | None = None
    full_name: str | None = None
    insurance_dob: str | None = None
    gender: str | None = None
    address: str | None = None
    area_code: str | None = None
    five_years_from: str | None = None
    social_insurance_number: str | None = None
    new_card: Mapping[str, str | None] | None = None
    old_card_code: str | None = None
    gateway_note: str | None = None
    #: seconds spent, gateway time included
    elapsed: float = 0.0
    attempts: int = 0

    @property
    def upstream_failure(self) -> bool:
        return self.status in UPSTREAM_FAILURES

    def __repr__(self) -> str:
        return (f"BhytResult(status={self.status.value!r}, code={self.code!r}, "
                f"card={mask(self.card_code)!r}, dob_matched={self.dob_matched!r})")


def local_result(status: BhytStatus, *, dob_sent: tuple[str, ...] = (), elapsed: float = 0.0,
                  attempts: int = 0, detail: str = "") -> BhytResult:
    info = LOCAL[status]
    en = f"{info.message_en} ({detail})" if detail else info.message_en
    return BhytResult(status, info.code, info.message_vi, en, False, dob_sent=dob_sent,
                      elapsed=elapsed, attempts=attempts)


def result_from_answer(answer: Mapping[str, Any], info: CodeInfo, dob_sent: tuple[str, ...],
                        dob_matched: str | None) -> BhytResult:
    def text(key: str) -> str | None:
        value = answer.get(key)
        return str(value) if value not in (None, "") else None

    new_card = None
    if text("maTheMoi"):
        new_card = {"card_code": text("maTheMoi"),
                    "valid_from": gateway_date_to_iso(answer.get("gtTheTuMoi")),
                    "valid_to": gateway_date_to_iso(answer.get("gtTheDenMoi")),
                    "facility_code": text("maDKBDMoi"), "facility_name": text("tenDKBDMoi")}
    return BhytResult(
        info.status, info.code, info.message_vi, info.message_en, info.usable,
        dob_sent=dob_sent, dob_matched=dob_matched, card_code=text("maThe"),
        card_valid_from=gateway_date_to_iso(answer.get("gtTheTu")),
        card_valid_to=gateway_date_to_iso(answer.get("gtTheDen")),
        facility_code=text("maDKBD"), insurance_office=text("cqBHXH"), full_name=text("hoTen"),
        insurance_dob=text("ngaySinh"), gender=text("gioiTinh"), address=text("diaChi"),
        area_code=text("maKV"), five_years_from=gateway_date_to_iso(answer.get("ngayDu5Nam")),
        social_insurance_number=text("maSoBHXH"), new_card=new_card,
        old_card_code=text("maTheCu"), gateway_note=text("ghiChu"))


def refused_result() -> BhytResult:
    """What a lookup refused by :class:`agent.forward.bhyt_lookups.BhytLookups` (too many waiting) answers."""
    return local_result(BhytStatus.GATEWAY_UNAVAILABLE, detail="too many lookups waiting")


@dataclass(frozen=True)
class LookupFailure:
    """A desk lookup that has no answer about the card: its input was unusable
    (``agent.forward.bhyt_input.BhytInputError``), the forwards raised (a gateway failure
    they report as an error), or they crashed (``agent.desk.errors.InternalError``).
    Callers route on the error's class, never on its code."""

    error: IdAgentError

    def __repr__(self) -> str:
        return f"LookupFailure({type(self.error).__name__}, code={self.error.code!r})"


#: what a desk's BHYT lookup ends in (``agent.desk.forwarding``)
Lookup = BhytResult | LookupFailure
