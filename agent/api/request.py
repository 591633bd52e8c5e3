"""What the local API reads from a request and how it answers a refusal.

The JSON body (a JSON object or nothing), the access key a ``POST /read`` carries
(CAN, ID number, TD1 MRZ, or document number and dates), the errors a malformed
request raises (400) and the JSON error answer every route shares. Kept apart from
``agent.api.server`` (routes and life cycle) so the fuzz target reads bodies exactly
as the server does without starting one.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from aiohttp import web

from agent.errors import IdAgentError
from agent.eventhub import json_plain
from agent.icao.keys import AccessKey, CanKey, MrzKey, yymmdd
from agent.icao.mrz import MrzError, td1_access_key

#: the CAN printed on the Vietnamese card: 6 digits (domain.md)
CAN_RE = re.compile(r"^[0-9]{6}$")
ID12_RE = re.compile(r"^[0-9]{12}$")
MRZ_LINE_RE = re.compile(r"[0-9A-Z<]{30}")


class RequestError(IdAgentError):
    """A malformed request: 400 with the reason."""

    code = "bad_request"
    exit_code = 3
    http_status = 400
    hint = "Fix the request; GET /openapi.json describes every route."


class NoPhotoError(IdAgentError):
    """The identity on show has no displayable photo."""

    code = "no_photo"
    exit_code = 4
    http_status = 404
    hint = "The card's photo could not be shown; compare the person with the card itself."


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=json_plain)


def error_response(status: int, code: str, message: str, hint: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, "hint": hint}}, status=status,
                             dumps=dumps)


async def json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestError("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object")
    return body


def _yymmdd(value: Any, name: str) -> str:
    """YYMMDD from 'YYMMDD' or 'YYYY-MM-DD'."""
    if not isinstance(value, str):
        raise RequestError(f"{name} must be a string (YYMMDD or YYYY-MM-DD)")
    text = value.strip()
    if re.fullmatch(r"[0-9]{6}", text):
        return text
    try:
        return yymmdd(dt.date.fromisoformat(text))
    except ValueError:
        raise RequestError(f"{name} must be YYMMDD or YYYY-MM-DD") from None


def key_from_mrz(mrz: str) -> MrzKey:
    """Document number, birth and expiry dates from a TD1 MRZ (3 × 30, 9303-5 §4.2)."""
    lines = [line.strip().upper() for line in mrz.replace("\r", "").split("\n") if line.strip()]
    if len(lines) < 2 or len(lines[0]) != 30 or len(lines[1]) != 30:
        raise RequestError("mrz must be the card's MRZ: 3 lines of 30 characters (at least the first two)")
    if not all(MRZ_LINE_RE.fullmatch(line) for line in lines[:2]):
        # str.isdigit() accepts "²" and other non-ASCII digits that int() refuses
        raise RequestError("mrz: only 0-9, A-Z and < may appear in the first two lines")
    try:
        return td1_access_key(lines)
    except (MrzError, ValueError) as exc:
        raise RequestError(f"mrz: {exc}") from None


def key_from_body(body: dict[str, Any]) -> AccessKey:
    if "can" in body:
        can = body["can"]
        if not isinstance(can, str) or not CAN_RE.match(can.strip()):
            raise RequestError("can must be the 6 digits printed on the card (the last 6 of the ID number)")
        return CanKey(can.strip())
    if "id_number" in body:
        number = body["id_number"]
        if not isinstance(number, str) or not ID12_RE.match(number.strip()):
            raise RequestError("id_number must be the 12-digit ID number")
        return CanKey.of_id_number(number.strip())
    if "mrz" in body:
        if not isinstance(body["mrz"], str):
            raise RequestError("mrz must be a string")
        return key_from_mrz(body["mrz"])
    needed = ("document_number", "birth_date", "expiry_date")
    if all(name in body for name in needed):
        doc = body["document_number"]
        if not isinstance(doc, str) or not re.fullmatch(r"[A-Za-z0-9]{1,30}", doc.strip()):
            raise RequestError("document_number must be 1 to 30 letters or digits")
        return MrzKey(doc.strip().upper(), _yymmdd(body["birth_date"], "birth_date"),
                      _yymmdd(body["expiry_date"], "expiry_date"))
    raise RequestError("give one of: can, id_number, mrz, or document_number + birth_date + expiry_date")
