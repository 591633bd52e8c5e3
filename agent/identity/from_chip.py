"""From the chip's data groups to one ``Identity`` record.

DG13 (the Vietnamese personal data, with diacritics and full dates) wins over the
MRZ of DG1 where both hold a field: its 12-digit ID is the citizen's number, while the
MRZ document number is only its last 9 digits (domain.md). The document number comes
from DG1.

DG11 (additional personal details, 9303-10 §4.7.11) and DG12 (additional document
details, §4.7.12), when the chip has them, fill what DG13 leaves empty: they come
between DG1 and DG13 (a DG11 name or full birth date is better than the MRZ's
transliterated name and two-digit year, DG13 is better than both). Fields without an
``Identity`` attribute (place of birth, telephone, profession, issuing authority ...)
go to ``Identity.extra`` under ``dg11_<name>`` / ``dg12_<name>``, unless DG13 or
another source already set that key.
"""

from __future__ import annotations

from typing import Any

from agent.icao.chip_read import ChipRead
from agent.icao.lds.dg1 import Dg1
from agent.icao.lds.dg2 import Dg2
from agent.icao.lds.dg11 import Dg11
from agent.icao.lds.dg12 import Dg12
from agent.icao.lds.dg13 import Dg13
from agent.identity import FIELDS, Identity

SOURCE_CHIP = "chip"

#: DG13 attributes copied as they are
DG13_FIELDS = ("id_number", "old_id_number", "full_name", "date_of_birth", "sex", "nationality",
               "ethnicity", "religion", "place_of_origin", "place_of_residence", "identifying_marks",
               "date_of_issue", "father_name", "mother_name", "spouse_name", "card_uuid")


#: DG11 attribute → Identity attribute (9303-10 §4.7.11: 5F0E name, 5F10 personal
#: number, 5F2B full date of birth, 5F42 address)
DG11_FIELDS = {"full_name": "full_name", "personal_number": "id_number", "date_of_birth": "date_of_birth",
               "address": "place_of_residence"}
#: DG12 attribute → Identity attribute (§4.7.12: 5F26 date of issue)
DG12_FIELDS = {"date_of_issue": "date_of_issue"}
#: text details without an Identity attribute, kept in ``extra``
DG11_EXTRA = ("place_of_birth", "telephone", "profession", "title", "personal_summary", "other_td_numbers",
              "custody_information")
DG12_EXTRA = ("issuing_authority", "endorsements", "tax_exit_requirements")


def identity_from_chip(dg1: Dg1 | None, dg13: Dg13 | None, dg2: Dg2 | None, *, dg11: Dg11 | None = None,
                       dg12: Dg12 | None = None) -> Identity:
    ident = Identity()
    if dg1 is not None:
        mrz = dg1.mrz
        ident.document_number = mrz.document_number
        ident.id_number = mrz.id_number
        ident.full_name = mrz.full_name or None
        ident.date_of_birth = mrz.date_of_birth
        ident.sex = mrz.sex
        ident.nationality = mrz.nationality or None
        ident.date_of_expiry = mrz.date_of_expiry
    _additional(ident, dg11, dg12)
    if dg13 is not None:
        for name in DG13_FIELDS:
            value = getattr(dg13, name)
            if value is not None:
                setattr(ident, name, value)
        if dg13.no_expiry:
            ident.date_of_expiry = None
        elif dg13.date_of_expiry is not None:
            ident.date_of_expiry = dg13.date_of_expiry
    if dg2 is not None:
        ident.photo_jpeg = dg2.photo_jpeg
    ident.sources = {name: SOURCE_CHIP for name in FIELDS if getattr(ident, name) is not None}
    return ident


def _additional(ident: Identity, dg11: Dg11 | None, dg12: Dg12 | None) -> None:
    """DG11/DG12 over DG1 (DG13, applied after, wins over both); see the docstring."""
    for record, mapping, extra, prefix in ((dg11, DG11_FIELDS, DG11_EXTRA, "dg11"),
                                           (dg12, DG12_FIELDS, DG12_EXTRA, "dg12")):
        if record is None:
            continue
        for source, target in mapping.items():
            value = getattr(record, source)
            if value is not None and value != "":
                setattr(ident, target, value)
        for name in extra:
            value = getattr(record, name)
            if value:
                ident.extra.setdefault(f"{prefix}_{name}", value)
    if dg11 is not None and dg11.other_names:
        ident.extra.setdefault("dg11_other_names", "; ".join(dg11.other_names))
    if dg12 is not None and dg12.other_persons:
        ident.extra.setdefault("dg12_other_persons", "; ".join(dg12.other_persons))


def identity_of(read: ChipRead) -> Identity:
    """The identity a chip read holds (empty fields for the groups not read)."""
    records = read.records
    return identity_from_chip(records.get("DG1"), records.get("DG13"), records.get("DG2"),
                              dg11=records.get("DG11"), dg12=records.get("DG12"))


def read_json(read: ChipRead, identity: Identity | None = None, *, photo: bool = False) -> dict[str, Any]:
    """The ``idagent read --json`` contract: ``ChipRead.to_dict`` with the identity
    (``identity``, or the one the read holds) after ``access``."""
    out = read.to_dict()
    head = {key: out.pop(key) for key in ("complete", "access")}
    if identity is None:
        identity = identity_of(read)
    return {**head, "identity": identity_json(read, identity, photo=photo), **out}


def identity_json(read: ChipRead, identity: Identity | None, *, photo: bool) -> dict[str, Any] | None:
    """The identity as ``read --json`` shows it, with what the chip says of expiry,
    unknown DG13 fields and the photo."""
    if identity is None:
        return None
    out = identity.to_dict(photo=photo)
    dg1 = read.records.get("DG1")
    dg13 = read.records.get("DG13")
    dg2 = read.records.get("DG2")
    out["no_expiry"] = bool((dg13 is not None and dg13.no_expiry) or
                            (dg13 is None and dg1 is not None and dg1.mrz.expiry_unconfirmed))
    out["expiry_unconfirmed"] = bool(dg13 is None and dg1 is not None and dg1.mrz.expiry_unconfirmed)
    if dg13 is not None and dg13.unknown_fields:
        out["dg13_unknown"] = {str(n): (v.hex() if isinstance(v, bytes) else v)
                               for n, v in dg13.unknown_fields.items()}
    if dg2 is not None and dg2.faces:
        face = dg2.faces[0]
        out["photo"] = {"format": face.image_format, "width": face.width, "height": face.height,
                        "jpeg_bytes": len(face.jpeg)}
    return out
