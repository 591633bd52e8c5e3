"""The whole verification of a read against a virtual chip: PA + CA + AA."""

from __future__ import annotations

import pytest
from trust_helpers import NOW, SIGNED_EXPIRED_DSC, counter_rng, make_card, open_session, rsa_key

from agent.icao.checks import Status
from agent.icao.crypto import Cipher
from agent.icao.sm import SecureMessaging
from agent.icao.verify import verify
from agent.readers.apdu import Command, Ins
from agent.sim.signing import derive_dh_key, derive_ec_key


def run(card, store, **kwargs):
    session = open_session(card)
    return verify(session, card.files, trust_store=store, rng=counter_rng(b"verify"), now=NOW, **kwargs)


def test_genuine_card_is_verified_and_channel_rekeyed(pki, store):
    card = make_card(pki)
    result = run(card, store)
    assert result.passive.status is Status.VALID, result.passive.reason
    assert result.chip.status is Status.VALID, result.chip.reason
    assert result.active.status is Status.VALID, result.active.reason
    assert result.status == "verified"
    # CA restarted SM with new keys: the returned channel still reads the chip
    assert isinstance(result.channel, SecureMessaging)
    again = result.channel.send(Command(0x00, Ins.SELECT, 0x02, 0x0C, b"\x01\x01"))
    assert again.ok
    data = result.to_dict()
    assert data["status"] == "verified" and data["chip"]["status"] == "valid"


@pytest.mark.parametrize("cipher", [Cipher.DES3, Cipher.AES128, Cipher.AES192, Cipher.AES256])
def test_chip_authentication_ecdh_every_cipher(pki, store, cipher):
    result = run(make_card(pki, cipher=cipher, with_dg15=False), store)
    assert result.chip.status is Status.VALID, result.chip.reason
    assert result.chip.details["cipher"] == cipher.label
    assert result.status == "verified"


def test_chip_authentication_explicit_parameters(pki, store):
    result = run(make_card(pki, explicit_ca=True, with_dg15=False), store)
    assert result.chip.status is Status.VALID, result.chip.reason


@pytest.mark.parametrize("cipher", [Cipher.DES3, Cipher.AES128])
def test_chip_authentication_dh(pki, store, cipher):
    result = run(make_card(pki, ca_key=derive_dh_key(b"chip dh", 2), cipher=cipher, with_dg15=False), store)
    assert result.chip.status is Status.VALID, result.chip.reason
    assert result.chip.details["agreement"] == "DH"


def test_cloned_chip_wrong_ca_key_is_probable_clone(pki, store):
    card = make_card(pki, clone_ca_key=derive_ec_key(b"forger", "brainpoolp256r1"))
    result = run(card, store)
    assert result.passive.status is Status.VALID
    assert result.chip.status is Status.INVALID
    assert "private key of DG14" in result.chip.reason
    assert result.status == "probable_clone"


def test_cloned_chip_wrong_aa_key_is_probable_clone(pki, store):
    card = make_card(pki, with_dg14=False, clone_aa_key=rsa_key(1024, slot=1))
    result = run(card, store)
    assert result.chip.status is Status.NOT_SUPPORTED
    assert result.active.status is Status.INVALID
    assert result.status == "probable_clone"


@pytest.mark.parametrize("hash_name", ["sha1", "sha224", "sha256", "sha384", "sha512"])
def test_active_authentication_rsa_9796_2_trailers(pki, store, hash_name):
    result = run(make_card(pki, with_dg14=False, aa_key=rsa_key(2048), aa_hash=hash_name), store)
    assert result.active.status is Status.VALID, result.active.reason
    assert result.active.details["hash"] == hash_name
    assert result.status == "verified"


@pytest.mark.parametrize("curve,hash_name", [("brainpoolp256r1", "sha256"), ("secp384r1", "sha384")])
def test_active_authentication_ecdsa(pki, store, curve, hash_name):
    card = make_card(pki, aa_key=derive_ec_key(b"aa", curve), aa_hash=hash_name)
    result = run(card, store)
    assert result.active.status is Status.VALID, result.active.reason
    assert result.status == "verified"


def test_altered_dg_is_not_verified_and_names_it(pki, store):
    card = make_card(pki)
    card.files["DG13"] = card.files["DG13"][:-1] + b"B"
    result = run(card, store)
    assert result.passive.status is Status.INVALID
    assert "DG13" in result.passive.reason
    assert result.status == "not_verified"


def test_unknown_csca_is_not_verified(pki, store):
    result = run(make_card(pki, dsc="dsc_unknown"), store)
    assert result.passive.status is Status.UNTRUSTED
    assert result.status == "not_verified"
    assert "TEST CSCA XX unknown" in result.to_dict()["reason"]


def test_revoked_dsc_is_not_verified(pki, store):
    result = run(make_card(pki, dsc="dsc_rsa_revoked"), store)
    assert result.passive.status is Status.INVALID
    assert "revoked" in result.passive.reason
    assert result.status == "not_verified"


def test_corrupt_sod_is_error_and_keeps_going(pki, store):
    card = make_card(pki)
    card.files["SOD"] = b"\x77\x03\x30\x01\x00"
    result = run(card, store)
    assert result.status == "error"
    assert result.passive.status is Status.ERROR
    assert "malformed" in result.passive.reason
    # the chip itself still proves its keys; the data are merely unverified
    assert result.chip.status is Status.VALID


def test_no_channel_means_not_checked(pki, store):
    card = make_card(pki)
    result = verify(None, card.files, trust_store=store, rng=counter_rng(b"x"), now=NOW)
    assert result.chip.status is Status.NOT_CHECKED
    assert result.status == "not_verified"
    relaxed = verify(None, card.files, trust_store=store, rng=counter_rng(b"x"), now=NOW, require_chip_auth=False)
    assert relaxed.status == "verified"


def test_no_trust_store_is_untrusted(pki):
    card = make_card(pki)
    result = verify(None, card.files, trust_store=None, rng=counter_rng(b"x"), now=NOW)
    assert result.passive.status is Status.UNTRUSTED
    assert any("no trust store" in n for n in result.notes)


def test_expired_dsc_valid_at_signing_is_verified_with_note(pki, store):
    from trust_helpers import files_for
    files = files_for(pki, "dsc_rsa_expired", signing_time=SIGNED_EXPIRED_DSC)
    result = verify(None, files, trust_store=store, rng=counter_rng(b"x"), now=NOW)
    assert result.passive.status is Status.VALID
    assert result.status == "verified"  # no DG14/DG15: passive alone
    assert any("expired" in n for n in result.passive.notes)


def test_chip_authentication_with_key_id(pki, store):
    from trust_helpers import make_card as make
    card = make(pki, with_dg15=False)
    from agent.icao.securityinfo import parse_security_infos
    from agent.sim.signing import build_dg14
    # rebuild DG14 with key id 7 (DO84 in MSE), re-sign the SOD over it
    key = derive_ec_key(b"test chip ca", "brainpoolp256r1")
    dg14 = build_dg14(key.public_key(), key_id=7)
    assert parse_security_infos(dg14, "DG14").chip_authentication[0].key_id == 7
    result = _run_with_dg14(pki, store, card, dg14)
    assert result.chip.status is Status.VALID, result.chip.reason


def test_dg14_with_only_a_public_key_info_means_3des(pki, store):
    from agent.icao.securityinfo import ID_PK_ECDH, ChipAuthenticationPublicKeyInfo, encode_security_infos
    from agent.sim.signing import spki_der, wrap
    card = make_card(pki, with_dg15=False)
    key = derive_ec_key(b"test chip ca", "brainpoolp256r1")
    dg14 = wrap(0x6E, encode_security_infos([ChipAuthenticationPublicKeyInfo(ID_PK_ECDH, spki_der(key.public_key()))]))
    result = _run_with_dg14(pki, store, card, dg14)
    assert result.chip.status is Status.VALID, result.chip.reason
    assert result.chip.details["cipher"] == "3DES"


def _run_with_dg14(pki, store, card, dg14):
    from trust_helpers import SIGNED

    from agent.sim.signing import build_sod
    groups = {int(k[2:]): v for k, v in card.files.items() if k.startswith("DG")}
    groups[14] = dg14
    signer = pki.dsc("dsc_rsa")
    sod = build_sod(groups, signer.cert, signer.key, signing_time=SIGNED)
    card.chip.profile.files[0x010E] = dg14
    card.chip.profile.files[0x011D] = sod
    from agent.sim.chip import VirtualChip
    from agent.sim.chip_auth import ChipAuthHandler
    chip = VirtualChip(card.chip.profile, rng=counter_rng(b"chip"))
    chip.add_handler(ChipAuthHandler())
    card.chip = chip
    card.files["DG14"] = dg14
    card.files["SOD"] = sod
    return run(card, store)


def test_dg14_dg15_signed_but_not_read_is_not_verified(pki, store):
    # A clone copies EF.SOD and the data groups of a genuine card but cannot copy its
    # CA/AA private keys; it hides DG14/DG15 (EF.COM is not signed, 9303-10 §4.6.1), so
    # the terminal reads neither. EF.SOD still lists their hashes: the chip is meant to
    # support CA/AA, so "no clone detection offered" must not pass as verified.
    card = make_card(pki, clone_ca_key=derive_ec_key(b"forger", "brainpoolp256r1"),
                     clone_aa_key=rsa_key(1024, slot=1))
    hidden = {k: v for k, v in card.files.items() if k not in ("DG14", "DG15")}
    result = verify(open_session(card), hidden, trust_store=store, rng=counter_rng(b"verify"), now=NOW)
    assert result.passive.status is Status.VALID, result.passive.reason
    assert result.chip.status is Status.NOT_CHECKED and "DG14" in result.chip.reason
    assert result.active.status is Status.NOT_CHECKED and "DG15" in result.active.reason
    assert result.status == "not_verified"
    # a card whose EF.SOD lists neither still passes on passive authentication alone
    plain = make_card(pki, with_dg14=False, with_dg15=False)
    assert verify(None, plain.files, trust_store=store, rng=counter_rng(b"x"), now=NOW).status == "verified"
