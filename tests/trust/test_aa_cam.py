"""ISO/IEC 9796-2 scheme 1 in isolation, and PACE with Chip Authentication Mapping."""

from __future__ import annotations

import pytest
from trust_helpers import CAN, NOW, Card, counter_rng, make_card, rsa_key

from agent.icao import aa, pace
from agent.icao.certs import SignatureError
from agent.icao.checks import Status
from agent.icao.crypto import Cipher
from agent.icao.keys import CanKey
from agent.icao.securityinfo import Mapping, PaceInfo, encode_security_infos, pace_oid, parse_security_infos
from agent.icao.verify import verify
from agent.readers.apdu import ApduChannel
from agent.sim.chip import VirtualChip
from agent.sim.chip_auth import ChipAuthHandler, sign_challenge
from agent.sim.link import Link
from agent.sim.signing import derive_ec_key

CHALLENGE = bytes.fromhex("0123456789ABCDEF")


@pytest.mark.parametrize("hash_name", ["sha1", "sha224", "sha256", "sha384", "sha512"])
def test_9796_2_round_trip_and_trailer(hash_name):
    key = rsa_key(1024)
    signature = sign_challenge(key, CHALLENGE, rng=counter_rng(b"m1"), hash_name=hash_name)
    assert aa.verify_rsa_response(key.public_key(), CHALLENGE, signature) == hash_name
    with pytest.raises(SignatureError, match="does not cover our challenge"):
        aa.verify_rsa_response(key.public_key(), bytes(8), signature)


def test_9796_2_accepts_the_n_minus_s_form():
    # 9796-2 lets a signer send min(s, n - s)
    key = rsa_key(1024)
    n = key.public_key().public_numbers().n
    s = int.from_bytes(sign_challenge(key, CHALLENGE, rng=counter_rng(b"m1"), hash_name="sha1"), "big")
    alternative = (n - s).to_bytes(128, "big")
    assert aa.verify_rsa_response(key.public_key(), CHALLENGE, alternative) == "sha1"


def test_9796_2_rejects_bad_header_and_trailer():
    with pytest.raises(SignatureError, match="header 6A"):
        aa.iso9796_2_verify(b"\x4b" + bytes(30) + b"\xbc", CHALLENGE)
    with pytest.raises(SignatureError, match="trailer"):
        aa.iso9796_2_verify(b"\x6a" + bytes(40) + b"\x99\xcc", CHALLENGE)


def _cam_card(pki, clone_key=None) -> tuple[Card, object]:
    card = make_card(pki, clone_ca_key=clone_key, with_dg15=False)
    info = PaceInfo(pace_oid(Mapping.ECDH_CAM, Cipher.AES128), 2, 13)
    files = dict(card.chip.profile.files)
    files[0x011C] = encode_security_infos([info])
    card.chip.profile.files = files
    chip = VirtualChip(card.chip.profile, rng=counter_rng(b"chip"))
    chip.add_handler(ChipAuthHandler())
    chip.power_on()
    channel = ApduChannel(Link(chip, extended_length=True))
    pace_info = parse_security_infos(files[0x011C]).pace[0]
    result = pace.authenticate(channel, CanKey(CAN), pace_info, rng=counter_rng(b"terminal"))
    return Card(card.files, chip), result


def test_pace_cam_proves_the_chip(pki, store):
    card, result = _cam_card(pki)
    assert result.cam_ca_ic is not None
    verification = verify(result.sm, card.files, trust_store=store, rng=counter_rng(b"v"), pace_cam=result, now=NOW)
    assert verification.chip.status is Status.VALID, verification.chip.reason
    assert verification.chip.details["protocol"] == "PACE-CAM"
    assert verification.status == "verified"


def test_pace_cam_with_a_cloned_key_is_probable_clone(pki, store):
    card, result = _cam_card(pki, clone_key=derive_ec_key(b"forger", "brainpoolp256r1"))
    verification = verify(result.sm, card.files, trust_store=store, rng=counter_rng(b"v"), pace_cam=result, now=NOW)
    assert verification.chip.status is Status.INVALID
    assert verification.status == "probable_clone"
