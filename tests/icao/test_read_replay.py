"""Recorded full reads (fixtures/recordings, made by fixtures/make_fixtures.py) replay
byte for byte: the same commands go out, the same identity comes back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from agent.icao.keys import AccessKey, CanKey, MrzKey
from agent.icao.read import read_chip
from agent.icao.trust import TrustStore
from agent.identity.from_chip import identity_of
from agent.readers.apdu import ApduChannel
from agent.readers.replay import ReplayConnection, ReplayMismatchError, ReplayRandom, load_fixture

ROOT = Path(__file__).resolve().parents[2]
RECORDINGS = ROOT / "fixtures" / "recordings"
RECORDED_ON = dt.datetime(2025, 6, 2, 9, 0, tzinfo=dt.UTC)

EXPECTED = {
    "pace-nguyen-van-an.json": ("PACE", "001099012345", "Nguyễn Văn An", dt.date(2039, 3, 15), False),
    "bac-le-hoang-duc.json": ("BAC", "048060007788", "Lê Hoàng Đức", None, False),
    "pace-tran-thi-bich-ngoc-extended.json": ("PACE", "079185004321", "Trần Thị Bích Ngọc",
                                              dt.date(2045, 7, 4), True),
    "pace-pham-minh-chau-ecdsa-aa.json": ("PACE", "031303005566", "Phạm Minh Châu", dt.date(2028, 8, 9), False),
}


def _key(meta: dict[str, object]) -> AccessKey:
    key = meta["key"]
    assert isinstance(key, dict)
    if "can" in key:
        return CanKey(key["can"])
    return MrzKey(key["document_number"], key["date_of_birth"], key["date_of_expiry"])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_replay_gives_the_same_identity(name: str) -> None:
    fixture = load_fixture(RECORDINGS / name)
    connection = ReplayConnection(fixture)
    read = read_chip(ApduChannel(connection), _key(dict(fixture.meta)), rng=ReplayRandom(fixture.random),
                     trust=TrustStore.load(ROOT / "fixtures" / "pki" / "store"),
                     today=dt.date.fromisoformat(str(fixture.meta["today"])), now=RECORDED_ON)
    connection.assert_finished()
    protocol, id_number, full_name, expiry, extended = EXPECTED[name]
    assert read.access.protocol == protocol
    assert identity_of(read) is not None
    assert (identity_of(read).id_number, identity_of(read).full_name) == (id_number, full_name)
    assert identity_of(read).date_of_expiry == expiry
    assert read.extended_length == extended
    assert read.complete and read.verified
    assert read.timing.apdus == len(fixture.exchanges)


def test_replay_with_another_key_diverges() -> None:
    fixture = load_fixture(RECORDINGS / "pace-nguyen-van-an.json")
    with pytest.raises(ReplayMismatchError):
        read_chip(ApduChannel(ReplayConnection(fixture)), CanKey("999999"),
                  rng=ReplayRandom(fixture.random), verify=False)


def test_recordings_rebuild_byte_identically(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("make_fixtures", ROOT / "fixtures" / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_fixtures", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0


def test_ecdsa_active_authentication_replays() -> None:
    """The ECDSA-AA chip (pham-minh-chau) signs with an RFC 6979 nonce, so its recorded
    INTERNAL AUTHENTICATE answer is the one a replay checks again."""
    fixture = load_fixture(RECORDINGS / "pace-pham-minh-chau-ecdsa-aa.json")
    connection = ReplayConnection(fixture)
    read = read_chip(ApduChannel(connection), _key(dict(fixture.meta)), rng=ReplayRandom(fixture.random),
                     trust=TrustStore.load(ROOT / "fixtures" / "pki" / "store"),
                     today=dt.date.fromisoformat(str(fixture.meta["today"])), now=RECORDED_ON)
    connection.assert_finished()
    active = read.verification.active
    assert active.status.value == "valid"
    assert "ECDSA" in active.reason or "ecdsa" in str(active.details).lower()
    assert read.verification.chip.status.value == "valid"
