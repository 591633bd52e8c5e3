"""The reader kits' wire format (the "HN212" family sold for CCCD cards; domain.md,
"Intake and desk-software conventions"): pure functions from our records to the
payloads their Socket.IO service emits, and from their client events to our keys.

This is the one mapping from an ``Identity`` to the kits' field names: the Socket.IO
service (``agent.compat.socketio_server``) and the native API's ``?compat=1`` /
``[api] compat_events`` shape (``agent.api.render``) both use ``card_fields``.

Event ids (the kits' integration documents): 1 new card, 2 text fields, 3 failure,
4 raw files and face image, 5 security (CA, AA, PA), 7 answer to ``/get_aa``. Our
additions, beyond the kits: ``verified`` and ``verification`` in ids 2 and 5.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

from agent.errors import IdAgentError
from agent.icao.checks import Status
from agent.icao.keys import AccessKey, CanKey, MrzKey, document_number_of
from agent.identity import Identity
from agent.pipeline import Verdict

#: our identity field → the kits' field name (id 2)
KIT_NAMES: dict[str, str] = {
    "id_number": "idCode", "old_id_number": "oldIdCode", "full_name": "personName",
    "date_of_birth": "dateOfBirth", "sex": "gender", "nationality": "nationality",
    "ethnicity": "race", "religion": "religion", "place_of_origin": "originPlace",
    "place_of_residence": "residencePlace", "identifying_marks": "personalIdentification",
    "date_of_issue": "issueDate", "date_of_expiry": "expiryDate", "father_name": "fatherName",
    "mother_name": "motherName", "spouse_name": "wifeName",
}
#: what the card prints for a card without expiry date, sent as ``expiryDate`` (the
#: kits' own value is not documented publicly: unconfirmed, see the README)
NO_EXPIRY_TEXT = "Không thời hạn"
#: the data groups a kit sends in id 4 and hashes in id 5
KIT_FILES = ("DG1", "DG2", "DG13", "DG14", "DG15")

MESSAGE_READ_OK = "read card successfully!"
MESSAGE_NEW_CARD = "new card!"

#: failure messages (id 3), Vietnamese for the clerk; keyed by our error codes
FAILURE_MESSAGES: dict[str, str] = {
    "need_access": "Chưa mở được chip: cần số CCCD, ngày sinh và ngày hết hạn của thẻ (hoặc quét mã QR trên thẻ).",
    "access_denied": "Thông tin nhập vào không mở được chip: kiểm tra lại số CCCD, ngày sinh và ngày hết hạn.",
    "can_not_accepted": "Thông tin nhập vào không mở được chip: kiểm tra lại số CCCD.",
    "pace_interrupted": "Thẻ bị dịch chuyển khi đang mở chip: đặt thẻ lại và giữ yên.",
    "card_removed": "Thẻ đã được nhấc ra khi đang đọc: đặt thẻ lại và giữ yên đến khi đọc xong.",
    "read_interrupted": "Thẻ đã được nhấc ra khi đang đọc: đặt thẻ lại và giữ yên đến khi đọc xong.",
    "read_incomplete": "Chưa đọc đủ dữ liệu của thẻ: đặt thẻ lại và giữ yên đến khi đọc xong.",
    "secure_messaging": "Kết nối với chip bị gián đoạn: đặt thẻ lại và giữ yên.",
    "not_cccd": "Thẻ này không phải thẻ căn cước có chip.",
    "no_reader": "Không thấy đầu đọc thẻ: kiểm tra dây cắm.",
    "reader_gone": "Đầu đọc thẻ vừa bị rút ra: cắm lại.",
    "pcscd_down": "Dịch vụ đầu đọc thẻ trên máy không chạy: báo bộ phận IT.",
    "no_card": "Không có thẻ trên đầu đọc: đặt thẻ lên đầu đọc.",
    "unverified": "Thẻ không xác thực được (có thể là thẻ giả hoặc dữ liệu đã bị sửa): dữ liệu không được gửi.",
    "bad_request": "Yêu cầu không hợp lệ.",
}
FAILURE_DEFAULT = "Đọc thẻ không thành công: đặt thẻ lại; nếu lặp lại, báo bộ phận IT."


class KitRequestError(IdAgentError):
    """A client event (``/get_aa``, ``/input_data``) with missing or malformed fields."""

    code = "bad_request"
    exit_code = 2
    hint = "Send the fields the reader-kit protocol names, in its formats (README, 'Switching from a reader kit')."


def kit_date(value: dt.date | None) -> str | None:
    """``ddMMyyyy``, as the kits send dates."""
    return value.strftime("%d%m%Y") if value is not None else None


def card_fields(identity: Identity) -> dict[str, Any]:
    """The id-2 ``data`` object: the kits' field names, dates ``ddMMyyyy``, gender
    ``Nam``/``Nữ``, ``qr`` the card's QR text when one was scanned. A field the card
    does not have is ``""``, never null, as the kits send it (clients call string
    methods on every field)."""
    out: dict[str, Any] = {}
    for name, kit_name in KIT_NAMES.items():
        value = getattr(identity, name)
        if name == "sex":
            value = identity.sex_label or None
        elif name == "date_of_expiry" and value is None and identity.sources.get("id_number") == "chip":
            value = NO_EXPIRY_TEXT  # read from the chip: None means the card does not expire
        elif isinstance(value, dt.date):
            value = kit_date(value)
        out[kit_name] = "" if value is None else value
    out["qr"] = identity.qr_text or ""
    return out


def card_data(identity: Identity) -> dict[str, Any]:
    """The native API's compat shape of ``identity_ready`` (``card_data``): the id-2
    fields and ``faceImage``, the face as base64 JPEG (null without one)."""
    return {**card_fields(identity), "faceImage": _b64(identity.photo_jpeg) or None}


def verdict(verification: Verdict) -> dict[str, Any]:
    """Our addition to ids 2 and 5: ``verified`` (true only for a verified chip) and
    ``verification`` (status, the clerk's sentence, the technical reason)."""
    return {"verified": verification.verified,
            "verification": {"status": verification.status.value, "message": verification.plain,
                             "reason": verification.reason}}


def event(event_id: int, *, message: str | None = None, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": event_id}
    if message is not None:
        out["message"] = message
    if data is not None:
        out["data"] = dict(data)
    return out


def new_card() -> dict[str, Any]:
    return event(1, message=MESSAGE_NEW_CARD)


def card_read(identity: Identity, verification: Verdict) -> dict[str, Any]:
    return event(2, message=MESSAGE_READ_OK, data={**card_fields(identity), **verdict(verification)})


def failure(code: str) -> dict[str, Any]:
    return event(3, message=FAILURE_MESSAGES.get(code, FAILURE_DEFAULT))


def _b64(data: bytes | None) -> str:
    return base64.b64encode(data).decode("ascii") if data else ""


def raw_files(files: Mapping[str, bytes], photo_jpeg: bytes | None, *, send_raw: bool,
              send_photo: bool) -> dict[str, Any]:
    """Id 4: the face as JPEG (``img_data``) and the raw files, base64, as configured."""
    data: dict[str, Any] = {"img_data": _b64(photo_jpeg) if send_photo else ""}
    for name in (*KIT_FILES, "SOD"):
        data[name.lower()] = _b64(files.get(name)) if send_raw else ""
    return event(4, data=data)


def security(files: Mapping[str, bytes], verification: Verdict) -> dict[str, Any]:
    """Id 5: CA "1"/"0", the AA signature of the read, PA (the hashes EF.SOD signs, the
    document signer certificate, EF.SOD), plus our verdict."""
    checks = verification.checks
    chip_valid = checks is not None and checks.chip.status is Status.VALID
    signature = str(checks.active.details.get("signature", "")) if checks is not None else ""
    pa: dict[str, Any] = {f"hash_{n.lower()}": "" for n in KIT_FILES}
    pa.update(cert="", sod=_b64(files.get("SOD")))
    sod = files.get("SOD")
    if sod:
        pa.update(_signed_hashes(sod))
    data = {"CA": "1" if chip_valid else "0",
            "AA": {"aa_signature": _b64(bytes.fromhex(signature)) if signature else ""},
            "PA": pa, **verdict(verification)}
    return event(5, data=data)


def _signed_hashes(sod_raw: bytes) -> dict[str, str]:
    from agent.errors import ParseError
    from agent.icao.asn1 import ASN1_ERRORS
    from agent.icao.sod import parse_sod

    try:
        sod = parse_sod(sod_raw)
        cert = sod.certificates[0].dump() if sod.certificates else b""
    except (ParseError, *ASN1_ERRORS):
        return {}  # a damaged EF.SOD: the verdict already says so
    out = {f"hash_dg{n}": _b64(digest) for n, digest in sod.dg_hashes.items() if f"DG{n}" in KIT_FILES}
    out["cert"] = _b64(cert)
    return out


def aa_answer(signature: bytes, challenge: bytes) -> dict[str, Any]:
    """Id 7, the answer to ``/get_aa`` (``aa_challege``: the kits' spelling)."""
    return event(7, data={"aa_signature": _b64(signature), "aa_challege": _b64(challenge)})


def info(version: str, serial_nfc: str, serial_device: str, now: dt.datetime) -> dict[str, Any]:
    """``/info`` on connect; ``date`` ISO 8601 in UTC with milliseconds and ``Z``, as the
    kits send it (``2026-05-12T02:39:59.852Z``)."""
    utc = now.astimezone(dt.UTC)
    return {"version": version, "serial_nfc": serial_nfc, "serial_device": serial_device,
            "date": utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"}


def reader_serial(reader: str, atr: bytes = b"") -> str:
    """A stable id for a reader (its name and ATR), never personal data."""
    return hashlib.sha256(reader.encode("utf-8") + b"\x00" + atr).hexdigest()[:16].upper()


def challenge_from(payload: Any) -> bytes:
    """``/get_aa``: ``challenge`` is 8 bytes, base64 (9303-11 §6.1)."""
    text = payload.get("challenge") if isinstance(payload, Mapping) else None
    if not isinstance(text, str):
        raise KitRequestError("/get_aa: 'challenge' is missing (8 bytes, base64)")
    try:
        challenge = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KitRequestError("/get_aa: 'challenge' is not base64") from exc
    if len(challenge) != 8:
        raise KitRequestError(f"/get_aa: 'challenge' is {len(challenge)} bytes; Active Authentication takes 8")
    return challenge


def _kit_day(payload: Mapping[str, Any], name: str) -> tuple[int, int, int]:
    text = payload.get(name)
    if not isinstance(text, str) or len(text) != 8 or not text.isdigit():
        raise KitRequestError(f"/input_data: '{name}' must be ddMMyyyy (8 digits)")
    day, month, year = int(text[:2]), int(text[2:4]), int(text[4:])
    if not (1 <= day <= 31 and 1 <= month <= 12):
        raise KitRequestError(f"/input_data: '{name}' {text[:2]}/{text[2:4]}/{text[4:]} is not a date")
    return day, month, year


def keys_from_input(payload: Any) -> list[AccessKey]:
    """``/input_data`` ``{idCode, dateOfBirth, expiryDate}`` → the keys to try: the CAN
    (last 6 digits of the ID number) for PACE, then the MRZ data for BAC (document
    number = the last 9 digits of the ID; ``ddMM2099`` = no expiry)."""
    if not isinstance(payload, Mapping):
        raise KitRequestError("/input_data: expected an object {idCode, dateOfBirth, expiryDate}")
    id_code = payload.get("idCode")
    if not isinstance(id_code, str) or len(id_code) != 12 or not id_code.isdigit():
        raise KitRequestError("/input_data: 'idCode' must be the 12-digit ID number")
    # the expiry is not checked as a calendar date: "no expiry" is ddMM of the birthday
    # with year 2099 (domain.md), which for a 29 February birthday is no real date
    birth, expiry = (_kit_day(payload, name) for name in ("dateOfBirth", "expiryDate"))
    try:
        dt.date(birth[2], birth[1], birth[0])
    except ValueError:
        raise KitRequestError("/input_data: 'dateOfBirth' is not a date") from None
    yymmdd = [f"{year % 100:02d}{month:02d}{day:02d}" for day, month, year in (birth, expiry)]
    return [CanKey.of_id_number(id_code), MrzKey(document_number_of(id_code), yymmdd[0], yymmdd[1])]
