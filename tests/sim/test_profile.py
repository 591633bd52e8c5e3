"""Card profiles (fixtures/profiles) build consistent cards: IDs follow domain.md's
rule, the CAN is the last 6 digits, DG1/DG13 agree with the person, the face is a
realistic-size JPEG, and variants change only what they claim to."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from agent.icao.lds import parse_com, parse_dg1, parse_dg2, parse_dg13
from agent.icao.lds.files import COM, DATA_GROUPS, SOD
from agent.icao.sod import parse_sod
from agent.sim.face import synthetic_face
from agent.sim.profile import (
    ProfileError,
    list_profiles,
    load_profile,
    load_spec,
    parse_spec,
    split_name,
)

NAMES = ["le-hoang-duc", "nguyen-van-an", "pham-minh-chau", "tran-thi-bich-ngoc"]
TODAY = dt.date(2026, 1, 15)


def test_profiles_listed() -> None:
    assert list_profiles() == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_profile_is_consistent(name: str) -> None:
    spec = load_spec(name)
    person = spec.person
    profile = load_profile(name)
    assert profile.can == person.id_number[-6:]
    files = profile.files
    com = parse_com(files[COM.fid])
    assert com.data_groups == (1, 2, 3, 13, 14, 15)
    mrz = parse_dg1(files[DATA_GROUPS[1].fid], today=TODAY).mrz
    assert mrz.id_number == person.id_number
    assert mrz.document_number == person.id_number[3:]
    assert profile.mrz_key is not None
    assert mrz.access_key().document_number == profile.mrz_key.document_number
    assert (mrz.birth_raw, mrz.expiry_raw) == (profile.mrz_key.date_of_birth, profile.mrz_key.date_of_expiry)
    dg13 = parse_dg13(files[DATA_GROUPS[13].fid])
    assert (dg13.id_number, dg13.full_name, dg13.date_of_birth) == (
        person.id_number, person.full_name, person.date_of_birth)
    assert dg13.date_of_expiry == person.date_of_expiry
    assert dg13.no_expiry == (person.date_of_expiry is None)
    dg2 = parse_dg2(files[DATA_GROUPS[2].fid])
    assert 10_000 <= len(files[DATA_GROUPS[2].fid]) <= 21_000
    assert dg2.faces[0].gender == person.sex
    sod = parse_sod(files[SOD.fid])
    assert set(sod.dg_hashes) == {1, 2, 13, 14, 15}
    assert sod.dg_hashes[13] == hashlib.new(sod.hash_algorithm, files[DATA_GROUPS[13].fid]).digest()
    assert profile.pace_enabled == (spec.card.access == "pace")
    assert (0x011C in files) == profile.pace_enabled


def test_no_expiry_card_carries_2099_in_the_mrz() -> None:
    profile = load_profile("le-hoang-duc")
    assert profile.mrz_key is not None and profile.mrz_key.date_of_expiry == "991120"
    mrz = parse_dg1(profile.files[DATA_GROUPS[1].fid], today=TODAY, no_expiry_year=2099).mrz
    assert mrz.date_of_expiry is None and mrz.expiry_unconfirmed


@pytest.mark.parametrize("variant, changed", [("tampered-dg1", 1), ("tampered-dg2", 2), ("tampered-dg13", 13)])
def test_tampered_variant_changes_one_group_keeps_sod(variant: str, changed: int) -> None:
    genuine = load_profile("nguyen-van-an").files
    forged = load_profile(f"nguyen-van-an+{variant}").files
    differ = {fid for fid in genuine if genuine[fid] != forged[fid]}
    assert differ == {DATA_GROUPS[changed].fid}


def test_dsc_variant_changes_only_sod() -> None:
    genuine = load_profile("nguyen-van-an").files
    rogue = load_profile("nguyen-van-an+rogue-dsc").files
    assert {fid for fid in genuine if genuine[fid] != rogue[fid]} == {SOD.fid}


def test_cloned_variant_same_files_other_keys() -> None:
    genuine = load_profile("nguyen-van-an")
    clone = load_profile("nguyen-van-an+cloned")
    assert genuine.files == clone.files
    assert genuine.ca_private_key.private_numbers() != clone.ca_private_key.private_numbers()  # type: ignore[attr-defined]


def test_unknown_variant_and_profile() -> None:
    with pytest.raises(ProfileError, match="unknown variant"):
        split_name("nguyen-van-an+nope")
    with pytest.raises(ProfileError, match="no profile"):
        load_profile("nobody")


def test_inconsistent_id_number_refused() -> None:
    doc = {"person": {"id_number": "001199012345", "full_name": "X", "mrz_primary": "X", "mrz_secondary": "Y",
                      "date_of_birth": "1999-03-15", "sex": "M", "date_of_issue": "2024-01-01",
                      "date_of_expiry": None}}
    with pytest.raises(ProfileError, match="digit 4"):
        parse_spec(doc, "bad")


def test_face_is_deterministic_and_seeded() -> None:
    assert synthetic_face(5).jpeg == synthetic_face(5).jpeg
    assert synthetic_face(5).jpeg != synthetic_face(6).jpeg
    assert 15_000 <= len(synthetic_face(5).jpeg) <= 20_000


def test_card_access_like_the_cccd() -> None:
    from agent.icao.securityinfo import parse_security_infos

    infos = parse_security_infos(load_profile("nguyen-van-an").files[0x011C])
    assert [(p.protocol, p.version, p.parameter_id) for p in infos.pace] == [("0.4.0.127.0.7.2.2.4.2.2", 2, 13)]
    assert [c.protocol for c in infos.chip_authentication] == ["0.4.0.127.0.7.2.2.3.2.2"]
    assert len(infos.terminal_authentication) == 1


def test_built_card_repr_shows_no_personal_data() -> None:
    # style.md: the repr of anything holding personal data is masked; a BuiltCard holds
    # DG1 (the MRZ) and DG13 (name, ID number) as bytes
    from agent.sim.profile import build_card

    card = build_card("nguyen-van-an")
    person = load_spec("nguyen-van-an").person
    text = repr(card)
    assert person.id_number not in text and person.document_number not in text
    assert "NGUYEN" not in text and "\\x" not in text
