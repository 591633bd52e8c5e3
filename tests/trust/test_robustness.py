"""A forged or damaged card is a result, never an exception (design.md)."""

from __future__ import annotations

import os

import pytest
from trust_helpers import NOW, counter_rng, files_for, make_card, open_session

from agent.icao.checks import Status
from agent.icao.keys import CanKey
from agent.icao.pa import passive_authentication
from agent.icao.read import read_chip
from agent.icao.verify import verify
from agent.identity.from_chip import identity_of
from agent.readers.apdu import ApduChannel
from agent.sim.profile import load_profile, load_spec, virtual_chip

ALLOWED = {Status.VALID, Status.INVALID, Status.UNTRUSTED, Status.ERROR}


@pytest.mark.parametrize("dsc", ["dsc_rsa", "dsc_ecdsa", "dsc_explicit"])
def test_every_flipped_sod_byte_gives_a_result(pki, store, dsc):
    files = files_for(pki, dsc)
    sod = files["SOD"]
    outcomes = {}
    for position in range(0, len(sod), 5):
        damaged = bytearray(sod)
        damaged[position] ^= 0x5A
        result = passive_authentication({**files, "SOD": bytes(damaged)}, store, now=NOW)
        assert result.check.status in ALLOWED
        assert result.check.reason
        outcomes[result.check.status] = outcomes.get(result.check.status, 0) + 1
    # nearly every flip must be caught: only unsigned, unused bytes (e.g. the
    # SignedData's own digestAlgorithms set) may leave the result valid
    assert outcomes.get(Status.VALID, 0) < 0.05 * sum(outcomes.values())


@pytest.mark.parametrize("junk", [b"", b"\x77", b"\x77\x00", b"\x30\x00", os.urandom(300), b"\x77\x82\xff\xff"])
def test_junk_sod_is_an_error(store, junk):
    result = passive_authentication({"SOD": junk, "DG1": b"\x61\x00"}, store, now=NOW)
    assert result.check.status is Status.ERROR


def test_junk_dg14_and_dg15_do_not_raise(pki, store):
    card = make_card(pki)
    session = open_session(card)
    files = {**card.files, "DG14": b"\x6e\x03\x31\x01\x00", "DG15": b"\x6f\x02\x30\x00"}
    result = verify(session, files, trust_store=store, rng=counter_rng(b"v"), now=NOW)
    assert result.passive.status is Status.INVALID  # the DGs no longer match EF.SOD
    assert result.chip.status is Status.ERROR
    assert result.active.status is Status.ERROR
    assert result.status == "not_verified"


def test_corrupt_sod_read_still_returns_the_data_unverified():
    name = "nguyen-van-an"
    profile = load_profile(name)
    sod = profile.files[0x011D]
    # keep the tag-77 header (the reader sizes the file from it), zero the content
    header = 4 if sod[1] == 0x82 else 3
    profile.files[0x011D] = sod[:header] + bytes(len(sod) - header)
    chip = virtual_chip(profile, rng=counter_rng(b"chip"))
    chip.power_on()

    class Wire:
        extended_length = chip.extended_length

        def transmit(self, apdu: bytes) -> bytes:
            return chip.process(apdu)

    from agent.icao.trust import TrustStore
    from agent.sim.signing import load_test_pki
    store = TrustStore.load(load_test_pki().store_dir)
    read = read_chip(ApduChannel(Wire()), CanKey(load_spec(name).person.can), rng=counter_rng(b"t"),
                     trust=store, now=NOW)
    assert identity_of(read) is not None  # the data are there ...
    assert read.verification.status == "error"  # ... marked unverified, with the reason
    assert "EF.SOD is malformed" in read.verification.passive.reason
    assert not read.verified
