"""From the chip's data groups to one ``Identity`` record.

DG13 (the Vietnamese personal data, with diacritics and full dates) wins over the
MRZ of DG1 where both hold a field: its 12-digit ID is the citizen's number, while the
MRZ document number is only its last 9 digits (domain.md). The document number comes
from DG1.
"""

from __future__ import annotations

from agent.icao.lds.dg1 import Dg1
from agent.icao.lds.dg2 import Dg2
from agent.icao.lds.dg13 import Dg13
from agent.identity import FIELDS, Identity

SOURCE_CHIP = "chip"

#: DG13 attributes copied as they are
DG13_FIELDS = ("id_number", "old_id_number", "full_name", "date_of_birth", "sex", "nationality",
               "ethnicity", "religion", "place_of_origin", "place_of_residence", "identifying_marks",
               "date_of_issue", "father_name", "mother_name", "spouse_name", "card_uuid")


def identity_from_chip(dg1: Dg1 | None, dg13: Dg13 | None, dg2: Dg2 | None) -> Identity:
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
