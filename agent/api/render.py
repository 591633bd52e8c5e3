"""The desk's typed records written as the API's JSON: the one place where the identity
on show, its verdict and its BHYT lookup become the bytes a client receives.

* ``frame``: an event as a WebSocket frame, native or compat shape; the event hub calls
  it (``EventHub.bind``) when a typed event is published and, for plain events, when
  the loop fans them out;
* ``identity_body``: ``GET /identity``, and the ``identity_ready`` event's body;
* ``verdict_body``: a read's ``verification`` (in both, and the ``verification`` event);
* ``access_body``: how the chip was opened (the identity's ``access``);
* ``lookup_body``: a BHYT lookup (``POST /bhyt/lookup``, the ``lookup`` of the identity,
  the ``lookup_result`` event; ``idagent --json bhyt check`` prints it too).

The compat shape of a card (the reader kits' field names) is ``agent.compat.kit``'s one
mapping (``card_fields``, ``card_data``).
"""

from __future__ import annotations

from typing import Any

from agent.compat.kit import card_data, card_fields
from agent.desk.events import IdentityShown, LookupDone, VerdictReached
from agent.desk.session import Current
from agent.eventhub import Event, Shape, to_frame
from agent.forward.bhyt_input import MissingInputError
from agent.forward.bhyt_result import Lookup, LookupFailure
from agent.icao.access import AccessInfo
from agent.icao.verify import VerificationStatus
from agent.pipeline import KeyUsed, Verdict


def verdict_body(verdict: Verdict) -> dict[str, Any]:
    """A read's ``verification``: the checks' JSON, the clerk's sentence, whether complete."""
    out: dict[str, Any] = verdict.checks.to_dict() if verdict.checks is not None else \
        {"status": VerificationStatus.ERROR, "reason": "not verified"}
    out["plain"] = verdict.plain
    out["complete"] = verdict.complete
    return out


def access_body(access: AccessInfo | KeyUsed | None) -> dict[str, str]:
    """How the chip was opened: the chip read's record (``AccessInfo.to_dict``, the
    ``read --json`` one) with its values as text and the absent ones left out; only
    ``{"key": "can"}`` or ``"mrz"`` when the pipeline did not say (``KeyUsed``)."""
    if access is None:
        return {}
    if isinstance(access, KeyUsed):
        return {"key": access.kind}
    return {k: str(v) for k, v in access.to_dict().items() if isinstance(v, (str, int, bool))}


def lookup_body(lookup: Lookup) -> dict[str, Any]:
    """A BHYT lookup: the gateway's result in our words, or ``{"status": "error", "error":
    {code, message, hint}}`` when there is none."""
    if isinstance(lookup, LookupFailure):
        out: dict[str, Any] = {"status": "error"}
        if isinstance(lookup.error, MissingInputError):
            # missing input has always said "usable": false and the other failures never
            # did (issue 15 kept the bytes: tests/api/test_lookup_wire.py)
            out["usable"] = False
        out["error"] = lookup.error.to_dict()
        return out
    return {
        "status": lookup.status.value, "code": lookup.code, "usable": lookup.usable,
        "message_vi": lookup.message_vi, "message_en": lookup.message_en,
        "dob_sent": list(lookup.dob_sent), "dob_matched": lookup.dob_matched,
        "card_code": lookup.card_code, "card_valid_from": lookup.card_valid_from,
        "card_valid_to": lookup.card_valid_to, "facility_code": lookup.facility_code,
        "insurance_office": lookup.insurance_office, "full_name": lookup.full_name,
        "insurance_dob": lookup.insurance_dob, "gender": lookup.gender, "address": lookup.address,
        "area_code": lookup.area_code, "five_years_from": lookup.five_years_from,
        "social_insurance_number": lookup.social_insurance_number,
        "new_card": dict(lookup.new_card) if lookup.new_card else None,
        "old_card_code": lookup.old_card_code, "gateway_note": lookup.gateway_note,
        "elapsed_ms": round(lookup.elapsed * 1000, 1), "attempts": lookup.attempts,
    }


def identity_body(current: Current, *, photo: bool = False, compat: bool = False) -> dict[str, Any]:
    """The identity on show with what happened to it since (``GET /identity``)."""
    out: dict[str, Any] = {
        "read_id": current.read_id, "reader": current.reader,
        "identity": current.identity.to_dict(photo=photo),
        "has_photo": current.identity.photo_jpeg is not None,
        "photo_url": "/identity/photo.jpg" if current.identity.photo_jpeg else None,
        "verification": verdict_body(current.verification),
        "lookup": lookup_body(current.lookup) if current.lookup is not None else None, "intake": current.intake,
        "access": access_body(current.access),
    }
    if compat:
        out["compat"] = card_fields(current.identity)
    return out


def _native_data(event: Event) -> dict[str, Any]:
    data = event.data
    if isinstance(data, IdentityShown):
        body = identity_body(data.current)
        body["timings"] = data.current.timings
        body["lookup_pending"] = data.lookup_pending
        return body
    if isinstance(data, VerdictReached):
        return {"reader": data.reader, "read_id": data.read_id, **verdict_body(data.verdict)}
    if isinstance(data, LookupDone):
        return {"read_id": data.read_id, "kind": data.kind, **lookup_body(data.result)}
    return event.native_data()


def _compat_data(event: Event) -> dict[str, Any]:
    data = event.data
    if event.compat is not None:
        return event.compat
    if isinstance(data, IdentityShown):
        return card_data(data.current.identity)
    if isinstance(data, LookupDone):
        return lookup_body(data.result)
    return _native_data(event)


def native(event: Event) -> dict[str, Any]:
    """The native shape: ``{"type": …, "seq": …, "ts": …, …}``."""
    return event.native(_native_data(event))


def compat(event: Event) -> dict[str, Any] | None:
    """The compat shape ``{"event": kit name, "data": …}``; None for events the kits have no name for."""
    return event.compat_shape(_compat_data(event))


def frame(event: Event, shape: Shape) -> str | None:
    """The event's WebSocket frame in ``shape`` (None: nothing to send in that shape)."""
    if event.plain:
        return event.encode(shape)
    return to_frame(native(event) if shape is Shape.NATIVE else compat(event))
