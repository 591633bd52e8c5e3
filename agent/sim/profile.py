"""Card profiles of the virtual CCCD chip: made-up citizens in fixtures/profiles/*.json,
built into the files a real card serves.

A profile file describes a person (name with diacritics, 12-digit ID following
domain.md: province code + century/sex digit + two birth-year digits + 6 digits) and
the card (PACE or BAC only, data groups, DSC of the test PKI, quirks, face seed). The
files are built at load time, deterministically:

* EF.COM, DG1 (TD1 Vietnamese MRZ), DG2 (synthetic face JPEG, agent.sim.face),
  DG13 (Vietnamese layout), DG14 (Chip Authentication key + infos), DG15 (Active
  Authentication key), EF.SOD signed by a test DSC (agent.sim.signing), EF.CardAccess
  (PACE ECDH-GM AES-128 on brainpoolP256r1, param 13, plus CA and TA infos, like
  the real card);
* variants for tests, named ``<profile>+<variant>``: ``tampered-dg1``,
  ``tampered-dg2``, ``tampered-dg13`` (a data group changed after signing),
  ``rogue-dsc`` (signed by a DSC of an untrusted CSCA), ``expired-dsc``,
  ``revoked-dsc``, ``pss-dsc``, ``ecdsa-dsc``, and ``cloned`` (the genuine files on a
  chip holding other keys: passive authentication passes, chip and active
  authentication fail).

Test keys only: the chip keys are derived from the profile's seed; the DSCs are in
fixtures/pki.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.icao.keys import CanKey, MrzKey, document_number_of, yymmdd
from agent.icao.lds.com import build_com
from agent.icao.lds.dg1 import build_dg1
from agent.icao.lds.dg2 import build_dg2
from agent.icao.lds.dg13 import build_dg13
from agent.icao.lds.files import CARD_ACCESS, COM, DATA_GROUPS, SOD
from agent.icao.mrz import build_td1_vn
from agent.logs import mask
from agent.sim.chip import ChipProfile, ChipQuirks, VirtualChip
from agent.sim.face import synthetic_face

PROFILE_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "profiles"
#: the DG13 date format (domain.md)
DG13_DATE = "%d/%m/%Y"
NO_EXPIRY_TEXT = "Không thời hạn"
#: MRZ expiry year of a card without expiry (domain.md, unconfirmed; config card.no_expiry_year)
NO_EXPIRY_YEAR = 2099
#: the DSCs variants sign with (fixtures/pki)
VARIANT_DSC = {"rogue-dsc": "dsc_rogue", "expired-dsc": "dsc_rsa_expired", "revoked-dsc": "dsc_rsa_revoked",
               "pss-dsc": "dsc_rsa_pss", "ecdsa-dsc": "dsc_ecdsa"}
TAMPER_VARIANTS = ("tampered-dg1", "tampered-dg2", "tampered-dg13")
#: same files, other chip keys: a copy of a genuine card's data (fails CA and AA)
CLONE_VARIANT = "cloned"
VARIANTS = (*TAMPER_VARIANTS, *VARIANT_DSC, CLONE_VARIANT)


class ProfileError(ValueError):
    """A profile file that does not describe a consistent card."""


@dataclass(frozen=True, repr=False)
class Person:
    id_number: str
    full_name: str
    mrz_primary: str  # transliterated A-Z, as the MRZ prints it
    mrz_secondary: str
    date_of_birth: dt.date
    sex: str  # "M" / "F"
    date_of_issue: dt.date
    date_of_expiry: dt.date | None  # None: no expiry
    nationality: str = "Việt Nam"
    ethnicity: str = "Kinh"
    religion: str = "Không"
    place_of_origin: str = ""
    place_of_residence: str = ""
    identifying_marks: str = ""
    father_name: str = ""
    mother_name: str = ""
    spouse_name: str = ""
    old_id_number: str = ""
    card_uuid: str = ""

    @property
    def document_number(self) -> str:
        """The MRZ document number: the last 9 digits of the ID (domain.md)."""
        return document_number_of(self.id_number)

    @property
    def can(self) -> str:
        """The CAN: the last 6 digits of the ID (domain.md)."""
        return CanKey.of_id_number(self.id_number).can

    @property
    def expiry_yymmdd(self) -> str:
        if self.date_of_expiry is None:
            # day and month are the birthday (MRZ samples, domain.md)
            return f"{NO_EXPIRY_YEAR % 100:02d}" + self.date_of_birth.strftime("%m%d")
        return yymmdd(self.date_of_expiry)

    def mrz_key(self) -> MrzKey:
        return MrzKey(self.document_number, yymmdd(self.date_of_birth), self.expiry_yymmdd)

    def __repr__(self) -> str:
        return f"Person(id_number={mask(self.id_number)!r})"


@dataclass(frozen=True)
class CardSpec:
    access: str = "pace"  # "pace" (PACE and BAC) or "bac" (BAC only, no EF.CardAccess)
    data_groups: tuple[int, ...] = (1, 2, 3, 13, 14, 15)
    dsc: str = "dsc_rsa"
    hash: str = "sha256"
    signing_time: str = "2021-07-01T08:00:00+00:00"
    extended_length: bool = False
    aa: str = "secp256r1"  # AA key: "rsa1024", "rsa2048" or an EC curve (ECDSA AA)
    face_seed: int = 1
    jpeg2000: bool = False
    quirks: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, repr=False)
class ProfileSpec:
    name: str
    description: str
    seed: str
    person: Person
    card: CardSpec

    def __repr__(self) -> str:
        return f"ProfileSpec({self.name!r})"


# -- reading the profile files ----------------------------------------------------------


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def check_id_number(person: Person) -> None:
    """domain.md: 3-digit province + century/sex digit + 2 birth-year digits + 6 digits."""
    number = person.id_number
    if len(number) != 12 or not number.isdigit():
        raise ProfileError("id_number must be 12 digits")
    century = (person.date_of_birth.year - 1900) // 100
    expected = century * 2 + (1 if person.sex == "F" else 0)
    if int(number[3]) != expected:
        raise ProfileError(f"id_number digit 4 must be {expected} for this century and sex")
    if number[4:6] != f"{person.date_of_birth.year % 100:02d}":
        raise ProfileError("id_number digits 5-6 must be the birth year")


def parse_spec(doc: dict[str, Any], name: str) -> ProfileSpec:
    try:
        raw = dict(doc["person"])
        person = Person(**{**raw, "date_of_birth": _date(raw["date_of_birth"]),
                           "date_of_issue": _date(raw["date_of_issue"]),
                           "date_of_expiry": _date(raw.get("date_of_expiry"))})
        card_raw = dict(doc.get("card", {}))
        if "data_groups" in card_raw:
            card_raw["data_groups"] = tuple(card_raw["data_groups"])
        card = CardSpec(**card_raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProfileError(f"profile {name}: {exc}") from None
    check_id_number(person)
    return ProfileSpec(name, doc.get("description", ""), str(doc.get("seed", name)), person, card)


def profile_path(name: str, directory: Path | None = None) -> Path:
    return (directory or PROFILE_DIR) / f"{name}.json"


def list_profiles(directory: Path | None = None) -> list[str]:
    return sorted(p.stem for p in (directory or PROFILE_DIR).glob("*.json"))


def load_spec(name: str, directory: Path | None = None) -> ProfileSpec:
    path = profile_path(name, directory)
    if not path.is_file():
        known = ", ".join(list_profiles(directory)) or "none"
        raise ProfileError(f"no profile {name!r} (known: {known})")
    return parse_spec(json.loads(path.read_text(encoding="utf-8")), name)


# -- building the files -------------------------------------------------------------------


def _dg13_fields(person: Person) -> dict[int, str | list[str]]:
    fields: dict[int, str | list[str]] = {
        1: person.id_number, 2: person.full_name, 3: person.date_of_birth.strftime(DG13_DATE),
        4: "Nam" if person.sex == "M" else "Nữ", 5: person.nationality, 6: person.ethnicity,
        7: person.religion, 8: person.place_of_origin, 9: person.place_of_residence,
        10: person.identifying_marks, 11: person.date_of_issue.strftime(DG13_DATE),
        12: person.date_of_expiry.strftime(DG13_DATE) if person.date_of_expiry else NO_EXPIRY_TEXT,
        13: [person.father_name, person.mother_name],
    }
    if person.spouse_name:
        fields[14] = [person.spouse_name]
    if person.old_id_number:
        fields[15] = person.old_id_number
    if person.card_uuid:
        fields[16] = person.card_uuid
    return fields


def build_dg1_for(person: Person) -> bytes:
    lines = build_td1_vn(person.id_number, yymmdd(person.date_of_birth), person.sex,
                         person.expiry_yymmdd, person.mrz_primary, person.mrz_secondary)
    return build_dg1(lines)


def build_dg2_for(person: Person, card: CardSpec, seed_offset: int = 0) -> bytes:
    face = synthetic_face(card.face_seed + seed_offset)
    image = face.jpeg
    if card.jpeg2000:
        import io

        from PIL import Image

        out = io.BytesIO()
        Image.open(io.BytesIO(face.jpeg)).save(out, "JPEG2000", quality_mode="rates", quality_layers=[30])
        image = out.getvalue()
    return build_dg2(image, face.width, face.height, jpeg2000=card.jpeg2000, gender=person.sex)


@dataclass(frozen=True, repr=False)
class BuiltCard:
    """The files (by FID) and the chip's keys of a profile."""

    files: dict[int, bytes]
    ca_private_key: Any
    aa_private_key: Any

    def __repr__(self) -> str:
        # the files hold DG1/DG13 (MRZ, name, ID number): show only which files there are
        return f"BuiltCard(files={[f'{fid:04X}' for fid in sorted(self.files)]})"


def _signing_time(card: CardSpec) -> dt.datetime:
    return dt.datetime.fromisoformat(card.signing_time)


def _tampered(spec: ProfileSpec, variant: str, groups: dict[int, bytes]) -> dict[int, bytes]:
    """Data groups changed after EF.SOD was signed (a forged card)."""
    person = spec.person
    out = dict(groups)
    if variant == "tampered-dg13":
        out[13] = build_dg13({**_dg13_fields(person), 2: person.full_name[::-1]})
    elif variant == "tampered-dg1":
        out[1] = build_dg1_for(dataclasses.replace(person, mrz_secondary=person.mrz_secondary[::-1]))
    elif variant == "tampered-dg2":
        out[2] = build_dg2_for(person, spec.card, seed_offset=1000)
    return out


@functools.lru_cache(maxsize=32)
def build_card(name: str, variant: str = "", directory: Path | None = None) -> BuiltCard:
    """Build (and cache: faces and keys take tens of ms) the files of a profile."""
    from agent.sim.signing import build_dg14, build_dg15, build_sod, derive_chip_keys, load_test_pki

    spec = load_spec(name, directory)
    person, card = spec.person, spec.card
    keys = derive_chip_keys(spec.seed.encode(), aa=card.aa)
    groups: dict[int, bytes] = {}
    builders: dict[int, Callable[[], bytes]] = {
        1: lambda: build_dg1_for(person), 2: lambda: build_dg2_for(person, card),
        13: lambda: build_dg13(_dg13_fields(person)),
        14: lambda: build_dg14(keys.ca_key.public_key(), **_aa_info(card)),
        15: lambda: build_dg15(keys.aa_key.public_key()),
    }
    for number in card.data_groups:
        if number in builders:
            groups[number] = builders[number]()
        elif number == 3:
            # fingerprints: the chip answers 6982 without terminal authentication;
            # the content is never served, a placeholder template keeps the FID present
            groups[3] = bytes.fromhex("6300")
    pki = load_test_pki()
    dsc = pki.dsc(VARIANT_DSC.get(variant, card.dsc))
    signed = {n: v for n, v in groups.items() if n != 3}
    sod = build_sod(signed, dsc.cert, dsc.key, hash_name=card.hash, signing_time=_signing_time(card),
                    pss=variant == "pss-dsc")
    if variant in TAMPER_VARIANTS:
        groups = _tampered(spec, variant, groups)
    if variant == CLONE_VARIANT:
        keys = derive_chip_keys(b"clone|" + spec.seed.encode(), aa=card.aa)
    files = {DATA_GROUPS[n].fid: data for n, data in groups.items()}
    files[COM.fid] = build_com(card.data_groups)
    files[SOD.fid] = sod
    if card.access == "pace":
        files[CARD_ACCESS.fid] = cccd_card_access()
    return BuiltCard(files, keys.ca_key, keys.aa_key)


def cccd_card_access() -> bytes:
    """EF.CardAccess as domain.md reports the CCCD's: PACE ECDH-GM AES-128 (version 2)
    on brainpoolP256r1 (parameter 13), ChipAuthenticationInfo (ECDH, AES-128) and
    TerminalAuthenticationInfo."""
    from agent.icao.crypto import Cipher
    from agent.icao.securityinfo import (
        ID_TA,
        ChipAuthenticationInfo,
        Mapping,
        PaceInfo,
        TerminalAuthenticationInfo,
        ca_oid,
        encode_security_infos,
        pace_oid,
    )

    return encode_security_infos([
        PaceInfo(pace_oid(Mapping.ECDH_GM, Cipher.AES128), 2, 13),
        ChipAuthenticationInfo(ca_oid(True, Cipher.AES128), 1),
        TerminalAuthenticationInfo(ID_TA, 1),
    ])


def _aa_info(card: CardSpec) -> dict[str, Any]:
    """An ECDSA AA key needs ActiveAuthenticationInfo in DG14 (9303-11 §6.1)."""
    if card.aa.startswith("rsa"):
        return {}
    from agent.icao.aa import ECDSA_PLAIN_SHA256

    return {"aa_signature_algorithm": ECDSA_PLAIN_SHA256}


def split_name(name: str) -> tuple[str, str]:
    base, _, variant = name.partition("+")
    if variant and variant not in VARIANTS:
        raise ProfileError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
    return base, variant


def load_profile(name: str, directory: Path | None = None) -> ChipProfile:
    """The ``ChipProfile`` (agent.sim.chip) of ``name`` or ``name+variant``: a fresh
    object each time (tests may change its files)."""
    base, variant = split_name(name)
    spec = load_spec(base, directory)
    built = build_card(base, variant, directory)
    quirks = ChipQuirks(**spec.card.quirks)
    return ChipProfile(files=dict(built.files), mrz_key=spec.person.mrz_key(), can=spec.person.can,
                       pace_enabled=spec.card.access == "pace", bac_enabled=True,
                       extended_length=spec.card.extended_length, quirks=quirks,
                       ca_private_key=built.ca_private_key, aa_private_key=built.aa_private_key)


def virtual_chip(profile: ChipProfile, *, rng: Callable[[int], bytes] = os.urandom) -> VirtualChip:
    """A virtual chip serving ``profile``, answering Chip and Active Authentication
    (agent.sim.chip_auth) with the profile's keys."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from agent.sim.chip_auth import ChipAuthHandler

    chip = VirtualChip(profile, rng=rng)
    # RSA AA signs with the ISO/IEC 9796-2 SHA-1 trailer; ECDSA AA with the hash DG14's
    # ActiveAuthenticationInfo names (SHA-256 here, see _aa_info)
    aa_hash = "sha1" if isinstance(profile.aa_private_key, rsa.RSAPrivateKey) else "sha256"
    chip.add_handler(ChipAuthHandler(aa_hash=aa_hash))
    return chip


def ascii_fold(text: str) -> str:
    """"Nguyễn Văn An" → "NGUYEN VAN AN" (for MRZ names of new profiles)."""
    decomposed = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()
