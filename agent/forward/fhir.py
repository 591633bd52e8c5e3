"""An identity as an HL7 FHIR R4 ``Patient`` resource, for hospital systems that speak FHIR.

Choices:
- The CCCD number is an ``identifier`` typed ``NI`` ("National unique individual
  identifier", HL7 v2 table 0203, http://terminology.hl7.org/CodeSystem/v2-0203). Its
  ``system`` must be a URI the receiver recognises. No FHIR naming system for the
  Vietnamese citizen ID is published that we could cite, so the default is our own URN
  ``urn:idagent:vn:cccd``; a site sets the URI its hospital system expects
  (``fhir_identifier_system`` argument, wired from config). The old 9-digit ID (CMND)
  gets ``urn:idagent:vn:cmnd`` the same way.
- Vietnamese names are written family name first: family = the first word, given =
  the remaining words in order (FHIR ``given`` holds given and middle names); ``text``
  keeps the whole name as written.
- ``gender``: male/female from the card's "Nam"/"Nữ"; unknown otherwise.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from agent.identity import Identity

DEFAULT_CCCD_SYSTEM = "urn:idagent:vn:cccd"
DEFAULT_CMND_SYSTEM = "urn:idagent:vn:cmnd"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
FHIR_CONTENT_TYPE = "application/fhir+json"

_GENDER = {"M": "male", "F": "female"}


def split_vietnamese_name(full_name: str) -> tuple[str, list[str]]:
    words = full_name.split()
    if not words:
        return "", []
    return words[0], words[1:]


def _date(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def identity_to_patient(identity: Identity, *, fields: frozenset[str] | None = None,
                        cccd_system: str = DEFAULT_CCCD_SYSTEM, cmnd_system: str = DEFAULT_CMND_SYSTEM,
                        photo: bool = False) -> dict[str, Any]:
    """The Patient resource; ``fields`` limits which identity fields are used (None: all)."""

    def wanted(name: str) -> Any:
        if fields is not None and name not in fields:
            return None
        return getattr(identity, name)

    patient: dict[str, Any] = {"resourceType": "Patient"}
    identifiers = []
    if wanted("id_number"):
        identifiers.append({"use": "official",
                            "type": {"coding": [{"system": V2_0203, "code": "NI",
                                                 "display": "National unique individual identifier"}],
                                     "text": "CCCD"},
                            "system": cccd_system, "value": identity.id_number})
    if wanted("old_id_number"):
        identifiers.append({"use": "old", "system": cmnd_system, "value": identity.old_id_number})
    if identifiers:
        patient["identifier"] = identifiers
    name = wanted("full_name")
    if name:
        family, given = split_vietnamese_name(name)
        entry: dict[str, Any] = {"use": "official", "text": " ".join(name.split()), "family": family}
        if given:
            entry["given"] = given
        patient["name"] = [entry]
    if fields is None or "sex" in fields:
        patient["gender"] = _GENDER.get(identity.sex or "", "unknown")
    if wanted("date_of_birth"):
        patient["birthDate"] = _date(identity.date_of_birth)
    if wanted("place_of_residence"):
        patient["address"] = [{"use": "home", "type": "physical", "text": identity.place_of_residence,
                               "country": "VN"}]
    if photo and identity.photo_jpeg:
        import base64

        patient["photo"] = [{"contentType": "image/jpeg",
                             "data": base64.b64encode(identity.photo_jpeg).decode("ascii")}]
    return patient
