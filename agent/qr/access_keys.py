"""The QR opens the chip: access keys derived from the card's QR payload.

* PACE with the CAN: the last 6 digits of the 12-digit ID (domain.md). Tried first.
* BAC (or PACE with MRZ data) for chips or stacks where PACE with the CAN fails:
  document number = the last 9 digits of the ID, date of birth from the QR, and the
  date of expiry, which the QR does not carry: it is computed from the birth and issue
  dates by the card's validity rules.

The validity rules are law, held as data (``VALIDITY_RULES``), and some edge cases are
unconfirmed (domain.md "Validity rule (law)"):

* 2014 law (Luật Căn cước công dân 2014, art. 21): renewal at 25, 40, 60;
* 2023 law (Luật Căn cước 2023, art. 21; cards issued from 2024-07-01): renewal at
  14, 25, 40, 60;
* both: a card issued within 2 years before a renewal age runs to the next one; a
  card issued at 58 or later does not expire;
* the expiry's day and month are the birthday (MRZ samples; domain.md);
* a card with no expiry may carry year ``no_expiry_year`` (2099 per one vendor
  document; unconfirmed, config ``card.no_expiry_year``);
* unconfirmed: whether "within 2 years" is counted to the day (we try both sides of
  the boundary when the issue date is within a month of it), which law applies near
  2024-07-01 (both tried), and what a 29 February birthday becomes in a common year.

Where the rule is ambiguous, the few candidates are returned, most likely first; the
caller tries them in order (each failed BAC costs one EXTERNAL AUTHENTICATE).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from agent.icao.keys import AccessKey, CanKey, MrzKey, yymmdd
from agent.qr.payload import CccdQr, read_payload

#: how close (days) to a rule's boundary the other side is also tried
BOUNDARY_DAYS = 31


@dataclass(frozen=True)
class ValidityRule:
    """One law's validity rule for the chip ID card."""

    name: str
    #: cards issued on or after this date (None: since the start)
    issued_from: dt.date | None
    #: cards issued before this date (None: until further notice)
    issued_before: dt.date | None
    #: ages at which the card must be renewed
    renewal_ages: tuple[int, ...]
    #: a card issued this many years or less before a renewal age runs to the next
    grace_years: int = 2

    def applies(self, issued: dt.date) -> bool:
        return ((self.issued_from is None or issued >= self.issued_from)
                and (self.issued_before is None or issued < self.issued_before))


LAW_2023_FROM = dt.date(2024, 7, 1)

VALIDITY_RULES: tuple[ValidityRule, ...] = (
    ValidityRule("Luật Căn cước công dân 2014, art. 21", None, LAW_2023_FROM, (25, 40, 60)),
    ValidityRule("Luật Căn cước 2023, art. 21", LAW_2023_FROM, None, (14, 25, 40, 60)),
)


@dataclass(frozen=True)
class Expiry:
    """One candidate date of expiry as the MRZ prints it (YYMMDD) and why."""

    yymmdd: str
    reason: str
    #: None when the card does not expire (the MRZ then carries a convention)
    date: dt.date | None


def _birthday_in(birth: dt.date, year: int) -> list[tuple[str, dt.date | None]]:
    """The birthday in ``year`` as (YYMMDD, date). 29 February in a common year is
    unconfirmed: the literal 29 Feb (the card may print it), then 28 Feb, then 1 March."""
    try:
        day = birth.replace(year=year)
        return [(yymmdd(day), day)]
    except ValueError:
        literal = f"{year % 100:02d}0229"
        return [(literal, None), (yymmdd(dt.date(year, 2, 28)), dt.date(year, 2, 28)),
                (yymmdd(dt.date(year, 3, 1)), dt.date(year, 3, 1))]


def _milestone(birth: dt.date, age: int) -> dt.date:
    try:
        return birth.replace(year=birth.year + age)
    except ValueError:  # 29 February
        return dt.date(birth.year + age, 3, 1)


def _rule_outcomes(rule: ValidityRule, birth: dt.date, issued: dt.date) -> list[tuple[int | None, str]]:
    """Renewal ages (None = no expiry) this rule gives, literal outcome first, then the
    outcome on the other side of a nearby grace boundary."""
    outcomes: list[tuple[int | None, str]] = []
    for index, age in enumerate(rule.renewal_ages):
        milestone = _milestone(birth, age)
        grace_start = _milestone(birth, age - rule.grace_years)
        nxt = rule.renewal_ages[index + 1] if index + 1 < len(rule.renewal_ages) else None
        if issued < grace_start:
            outcomes.append((age, f"{rule.name}: renew at {age}"))
            if (grace_start - issued).days <= BOUNDARY_DAYS:
                outcomes.append((nxt, f"{rule.name}: issued near {age - rule.grace_years}, next age"))
            return outcomes
        if issued < milestone:
            outcomes.append((nxt, f"{rule.name}: issued within {rule.grace_years} years before {age}"))
            if (issued - grace_start).days <= BOUNDARY_DAYS:
                outcomes.append((age, f"{rule.name}: issued near {age - rule.grace_years}, this age"))
            return outcomes
    return [(None, f"{rule.name}: issued after the last renewal age")]


def expiry_candidates(birth: dt.date, issued: dt.date, *, no_expiry_year: int | None = 2099) -> list[Expiry]:
    """Candidate MRZ expiry dates, most likely first, without duplicates."""
    rules = [r for r in VALIDITY_RULES if r.applies(issued)]
    near_switch = abs((issued - LAW_2023_FROM).days) <= BOUNDARY_DAYS
    rules += [r for r in VALIDITY_RULES if near_switch and r not in rules]
    out: list[Expiry] = []
    for rule in rules:
        for age, reason in _rule_outcomes(rule, birth, issued):
            if age is None:
                if no_expiry_year is not None:
                    for yymmdd, _ in _birthday_in(birth, no_expiry_year):
                        out.append(Expiry(yymmdd, f"{reason}; no expiry, year {no_expiry_year} (unconfirmed)", None))
                continue
            for yymmdd, day in _birthday_in(birth, birth.year + age):
                out.append(Expiry(yymmdd, reason, day))
    seen: set[str] = set()
    unique = []
    for candidate in out:
        if candidate.yymmdd not in seen:
            seen.add(candidate.yymmdd)
            unique.append(candidate)
    return unique


def access_keys_from_qr(payload: CccdQr | str | bytes, *, no_expiry_year: int | None = 2099) -> list[AccessKey]:
    """``[CanKey, MrzKey, MrzKey…]``: the CAN first (PACE), then BAC candidates.

    ``payload`` is a parsed :class:`CccdQr` or the QR's text/bytes (repaired and parsed
    here; raises :class:`QrPayloadError` when it is not a valid CCCD QR). Without an
    issue date in the QR only the CAN is returned."""
    card = payload if isinstance(payload, CccdQr) else _parse(payload)
    keys: list[AccessKey] = [CanKey.of_id_number(card.id_number)]
    if card.date_of_issue is None:
        return keys
    birth = yymmdd(card.date_of_birth)
    for candidate in expiry_candidates(card.date_of_birth, card.date_of_issue, no_expiry_year=no_expiry_year):
        keys.append(MrzKey(card.document_number, birth, candidate.yymmdd))
    return keys


def _parse(payload: str | bytes) -> CccdQr:
    """The one QR-text → card path (``read_payload``: repair, classify, parse)."""
    result = read_payload(payload)
    if result.card is None:
        assert result.error is not None
        raise result.error
    return result.card
