"""PACE-CAM is checked with the key EF.CardSecurity publishes for the PACE parameter id
(BSI TR-03110-3 A.1.1.2), not DG14's Chip Authentication key (issue 11 item 1).

The chip offers the real German passport's EF.CardAccess (GM + CAM on parameter 13,
fixtures/real_emrtd/cardaccess); its CAM key differs from its DG14 key, as on German
passports, and is published in EF.CardSecurity with standardized domain parameters."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from trust_helpers import NOW

from agent.icao.checks import Status
from agent.icao.keys import CanKey
from agent.icao.read import read_chip
from agent.readers.apdu import ApduChannel
from agent.sim.chip import FID_CARD_ACCESS, VirtualChip
from agent.sim.chip_auth import ChipAuthHandler
from agent.sim.link import Link
from agent.sim.profile import load_profile, load_spec
from agent.sim.signing import build_card_security, derive_ec_key

ROOT = Path(__file__).resolve().parents[2]
DE_CARD_ACCESS = (ROOT / "fixtures" / "real_emrtd" / "cardaccess" / "DE_passport_gmrtd_GM_CAM.bin").read_bytes()
CAM_KEY = derive_ec_key(b"pace-cam key of the chip", "brainpoolp256r1")
SIGNED = dt.datetime(2025, 1, 15, tzinfo=dt.UTC)


def _read(pki, store, *, published=CAM_KEY, chip_key=CAM_KEY, signer="dsc_ecdsa", card_security=True):
    profile = load_profile("nguyen-van-an")
    dsc = pki.dsc(signer)
    files = dict(profile.files)
    files[FID_CARD_ACCESS] = DE_CARD_ACCESS
    profile = dataclasses.replace(
        profile, files=files, cam_private_key=chip_key,
        card_security=build_card_security(published.public_key(), 13, dsc.cert, dsc.key, signing_time=SIGNED)
        if card_security else None)
    chip = VirtualChip(profile)
    chip.add_handler(ChipAuthHandler())
    chip.power_on()
    can = CanKey(load_spec("nguyen-van-an").person.can)
    channel = ApduChannel(Link(chip, extended_length=True))
    return read_chip(channel, can, trust=store, now=NOW, today=dt.date(2026, 1, 15))


def test_genuine_cam_chip_is_verified_with_the_card_security_key(pki, store):
    read = _read(pki, store)
    assert read.access.mapping == "ECDH-CAM" and read.access.parameter_id == 13
    assert "CardSecurity" in read.files
    check = read.verification.chip
    assert check.status is Status.VALID, check.reason
    assert "EF.CardSecurity" in check.reason
    assert read.verification.status == "verified", read.verification.reason


def test_cam_chip_with_another_key_than_published_is_a_probable_clone(pki, store):
    read = _read(pki, store, chip_key=derive_ec_key(b"forger", "brainpoolp256r1"))
    assert read.verification.chip.status is Status.INVALID
    assert read.verification.status == "probable_clone"


def test_card_security_signed_by_an_untrusted_signer_proves_nothing(pki, store):
    read = _read(pki, store, signer="dsc_unknown")
    assert read.verification.chip.status is Status.UNTRUSTED, read.verification.chip.reason
    assert "not proven" in read.verification.chip.reason
    # no clone verdict; this chip also offers Active Authentication, which proves it
    assert read.verification.active.status is Status.VALID
    assert read.verification.status == "verified"


def test_cam_chip_without_card_security_falls_back_to_chip_authentication(pki, store):
    # the chip's CAM key is not DG14's, and EF.CardSecurity is absent: no clone verdict
    # from the mismatch; Chip Authentication with DG14's key decides instead
    read = _read(pki, store, card_security=False)
    assert "CardSecurity" not in read.files
    assert read.verification.chip.status is Status.VALID, read.verification.chip.reason
    assert read.verification.chip.details.get("protocol") != "PACE-CAM"
    assert read.verification.status == "verified"


def test_dg14_key_given_by_standardized_domain_parameters_is_usable():
    from agent.icao import ca
    from agent.icao.crypto import Cipher
    from agent.icao.securityinfo import (
        ID_PK_ECDH,
        ChipAuthenticationInfo,
        ChipAuthenticationPublicKeyInfo,
        ca_oid,
        encode_security_infos,
        parse_security_infos,
    )
    from agent.sim.signing import standardized_spki_der, wrap

    spki = standardized_spki_der(CAM_KEY.public_key(), 13)
    dg14 = wrap(0x6E, encode_security_infos([ChipAuthenticationInfo(ca_oid(True, Cipher.AES128), 1, 13),
                                             ChipAuthenticationPublicKeyInfo(ID_PK_ECDH, spki, 13)]))
    chosen = ca.select_parameters(parse_security_infos(dg14, source="DG14"))
    assert chosen is not None and chosen.group.id == 13
    numbers = CAM_KEY.public_key().public_numbers()
    assert chosen.chip_public == (numbers.x, numbers.y)
