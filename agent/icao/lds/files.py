"""The files of the eMRTD application: FIDs, short file identifiers and the tag each
file starts with (9303-10 §3.6 and Table 4 "LDS data groups"). Defined once here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LdsFile:
    """One elementary file of the LDS."""

    name: str  # "COM", "SOD", "DG1" … (loggable: carries no personal data)
    fid: int
    sfi: int
    tag: int  # the tag the file's one TLV starts with (0 for EF.CardAccess: a SET)
    dg: int = 0  # data-group number, 0 for COM/SOD/CardAccess

    @property
    def fid_bytes(self) -> bytes:
        return self.fid.to_bytes(2, "big")


#: EF.CardAccess sits in the MF, outside the application (9303-10 §3.11.2)
CARD_ACCESS = LdsFile("CardAccess", 0x011C, 0x1C, 0x31)
#: EF.CardSecurity, in the MF too, readable after PACE (BSI TR-03110-3 A.1.2): a CMS
#: ContentInfo (tag 30) publishing the PACE-CAM key
CARD_SECURITY = LdsFile("CardSecurity", 0x011D, 0x1D, 0x30)
COM = LdsFile("COM", 0x011E, 0x1E, 0x60)
SOD = LdsFile("SOD", 0x011D, 0x1D, 0x77)

#: data-group tags, 9303-10 §4.6 Table 35 (DG n → tag)
DG_TAGS: dict[int, int] = {
    1: 0x61, 2: 0x75, 3: 0x63, 4: 0x76, 5: 0x65, 6: 0x66, 7: 0x67, 8: 0x68,
    9: 0x69, 10: 0x6A, 11: 0x6B, 12: 0x6C, 13: 0x6D, 14: 0x6E, 15: 0x6F, 16: 0x70,
}
TAG_TO_DG: dict[int, int] = {tag: dg for dg, tag in DG_TAGS.items()}

#: DG n has FID 01 0n and SFI n (9303-10 §3.6.2)
DATA_GROUPS: dict[int, LdsFile] = {
    n: LdsFile(f"DG{n}", 0x0100 + n, n, tag, n) for n, tag in DG_TAGS.items()
}

BY_NAME: dict[str, LdsFile] = {f.name: f for f in (CARD_ACCESS, COM, SOD, *DATA_GROUPS.values())}
