from __future__ import annotations

import datetime as dt

from agent.identity import Identity
from agent.logs import mask


def _chip() -> Identity:
    return Identity(id_number="001099012345", full_name="Nguyễn Văn An", date_of_birth=dt.date(1999, 3, 15),
                    sex="M", sources={"id_number": "chip", "full_name": "chip", "date_of_birth": "chip"},
                    photo_jpeg=b"\xff\xd8jpeg")


def test_repr_masks_personal_data() -> None:
    text = repr(_chip())
    assert "001099012345" not in text and "Nguyễn" not in text and "jpeg" not in text
    assert mask("001099012345") == "00********45"


def test_merge_keeps_chip_values_and_flags_disagreements() -> None:
    qr = Identity(id_number="001099012345", full_name="NGUYỄN  VĂN AN", date_of_birth=dt.date(1999, 3, 16),
                  old_id_number="012345678", place_of_residence="Hà Nội", extra={"field_7": "x"})
    merged = _chip().merge(qr)
    assert merged.full_name == "Nguyễn Văn An"  # same after normalising case/spaces: no conflict
    assert merged.conflicts == [{"field": "date_of_birth", "chip": dt.date(1999, 3, 15),
                                 "qr": dt.date(1999, 3, 16)}]
    assert merged.old_id_number == "012345678" and merged.sources["old_id_number"] == "qr"
    assert merged.extra == {"field_7": "x"}


def test_to_dict_and_clear() -> None:
    identity = _chip()
    data = identity.to_dict(photo=True)
    assert data["date_of_birth"] == "1999-03-15" and data["photo_jpeg_base64"]
    assert "photo_jpeg_base64" not in identity.to_dict()
    identity.clear()
    assert identity.id_number is None and identity.photo_jpeg is None and identity.sources == {}
