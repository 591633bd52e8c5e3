"""Full reads against the in-process virtual chip (agent.sim): PACE with the CAN, BAC
with MRZ data, the quirky chip, extended length, forged variants, a malformed data
group, a card pulled mid-read, a wrong key."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from agent.icao import tlv
from agent.icao.chip_read import ChipRead
from agent.icao.keys import AccessKey, CanKey
from agent.icao.lds.dg13 import build_dg13
from agent.icao.lds.files import DATA_GROUPS
from agent.icao.read import read_chip
from agent.icao.trust import TrustStore
from agent.identity.from_chip import identity_of, read_json
from agent.readers.apdu import ApduChannel
from agent.readers.sim import DEFAULT_READER, SimBackend
from agent.sim.chip import ChipProfile
from agent.sim.faults import Case, FaultyConnection
from agent.sim.profile import load_profile, virtual_chip

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 1, 15)


def _read(backend: SimBackend, profile: ChipProfile, key: AccessKey | None, store: TrustStore | None,
          **kwargs: object) -> ChipRead:
    backend.insert(DEFAULT_READER, virtual_chip(profile))
    channel = ApduChannel(backend.connect(DEFAULT_READER))
    chosen = key or (CanKey(profile.can) if profile.pace_enabled and profile.can else profile.mrz_key)
    assert chosen is not None
    return read_chip(channel, chosen, trust=store, today=TODAY, **kwargs)  # type: ignore[arg-type]


def test_pace_with_can_reads_and_verifies(backend: SimBackend, store: TrustStore) -> None:
    read = _read(backend, load_profile("nguyen-van-an"), None, store)
    assert read.access.protocol == "PACE" and read.access.key_type == "CAN"
    assert read.complete and read.verified
    ident = identity_of(read)
    assert ident is not None
    assert (ident.id_number, ident.document_number) == ("001099012345", "099012345")
    assert ident.full_name == "Nguyễn Văn An"
    assert ident.date_of_birth == dt.date(1999, 3, 15)
    assert ident.date_of_expiry == dt.date(2039, 3, 15)
    assert ident.photo_jpeg is not None and ident.photo_jpeg.startswith(b"\xff\xd8")
    assert read.outcomes["DG3"].status == "skipped"
    assert read.outcomes["DG3"].reason == "needs terminal authentication"
    assert read.timing.apdus > 20 and read.timing.bytes_received > 18_000
    assert not read.extended_length


def test_bac_with_mrz_and_card_without_expiry(backend: SimBackend, store: TrustStore) -> None:
    profile = load_profile("le-hoang-duc")
    read = _read(backend, profile, profile.mrz_key, store)
    assert read.access.protocol == "BAC"
    assert read.complete and read.verified
    assert identity_of(read).date_of_expiry is None
    out = read_json(read)
    assert out["identity"]["no_expiry"] is True
    assert out["identity"]["spouse_name"] == "Võ Thị Hạnh"


def test_quirky_chip_adapts(backend: SimBackend, store: TrustStore) -> None:
    # domain.md: MF select 6D00, big chunks refused, Le=00 refused, plain error SWs
    read = _read(backend, load_profile("pham-minh-chau"), None, store)
    assert read.complete and read.verified
    assert identity_of(read).full_name == "Phạm Minh Châu"


def test_extended_length_reads_dg2_in_few_apdus(store: TrustStore) -> None:
    sim = SimBackend(extended_length="on")
    read = _read(sim, load_profile("tran-thi-bich-ngoc"), None, store)
    assert read.extended_length and read.complete and read.verified
    assert read.timing.apdus < 30
    assert read_json(read)["identity"]["photo"]["format"] == "JPEG2000"


def test_dg3_read_when_not_skipped_is_reported(backend: SimBackend) -> None:
    read = _read(backend, load_profile("nguyen-van-an"), None, None, skip=(), verify=False)
    assert read.outcomes["DG3"].status == "skipped"
    assert read.outcomes["DG3"].reason == "needs terminal authentication"


def test_tampered_dg13_is_read_but_not_verified(backend: SimBackend, store: TrustStore) -> None:
    read = _read(backend, load_profile("nguyen-van-an+tampered-dg13"), None, store)
    assert read.complete and not read.verified
    assert "DG13" in read.to_dict()["verification"]["reason"]


def test_cloned_chip_is_a_probable_clone(backend: SimBackend, store: TrustStore) -> None:
    read = _read(backend, load_profile("nguyen-van-an+cloned"), None, store)
    assert read.to_dict()["verification"]["status"] == "probable_clone"


def _with_dg13(profile: ChipProfile, data: bytes) -> ChipProfile:
    return dataclasses.replace(profile, files={**profile.files, DATA_GROUPS[13].fid: data})


def _assert_dg13_failed_others_read(read: ChipRead) -> None:
    outcome = read.outcomes["DG13"]
    assert outcome.status == "failed"
    assert outcome.error is not None and outcome.error.code == "parse"
    assert "DG13" in outcome.error.message
    assert "DG1" in read.records and "DG2" in read.records and "DG15" in read.files
    assert not read.complete
    out = read_json(read)
    assert out["complete"] is False
    assert out["files"]["DG13"]["error"]["code"] == "parse"


def test_dg13_shorter_than_its_header_recorded_others_still_read(backend: SimBackend, store: TrustStore) -> None:
    profile = load_profile("nguyen-van-an")
    value = tlv.read_tlv(profile.files[DATA_GROUPS[13].fid]).value
    # the header claims 40 bytes more than the chip holds (a truncated file)
    truncated = b"\x6d\x82" + (len(value) + 40).to_bytes(2, "big") + value
    read = _read(backend, _with_dg13(profile, truncated), None, store)
    _assert_dg13_failed_others_read(read)
    assert read.outcomes["DG13"].error.offset == len(truncated)  # type: ignore[union-attr]


def test_malformed_dg13_content_recorded_others_still_read(backend: SimBackend, store: TrustStore) -> None:
    profile = load_profile("nguyen-van-an")
    bad = build_dg13({1: "001099012345", 3: "1999-03-15"})
    read = _read(backend, _with_dg13(profile, bad), None, store)
    _assert_dg13_failed_others_read(read)
    assert "dd/MM/yyyy" in read.outcomes["DG13"].error.message  # type: ignore[union-attr]


def test_wrong_can_is_access_denied(backend: SimBackend) -> None:
    from agent.icao.sm import AccessDeniedError

    with pytest.raises(AccessDeniedError) as info:
        _read(backend, load_profile("nguyen-van-an"), CanKey("000000"), None)
    assert info.value.exit_code == 5


def test_without_trust_store_not_verified(backend: SimBackend) -> None:
    read = _read(backend, load_profile("nguyen-van-an"), None, None)
    assert read.complete and not read.verified
    assert read.to_dict()["verification"]["status"] == "not_verified"


def test_json_contract(backend: SimBackend, store: TrustStore) -> None:
    out = read_json(_read(backend, load_profile("tran-thi-bich-ngoc"), None, store))
    assert set(out) >= {"complete", "access", "identity", "files", "verification", "timing"}
    assert out["access"]["protocol"] == "PACE"
    ident = out["identity"]
    for name in ("document_number", "id_number", "full_name", "date_of_birth", "date_of_expiry", "sex",
                 "nationality", "ethnicity", "religion", "place_of_origin", "place_of_residence",
                 "identifying_marks", "date_of_issue", "father_name", "mother_name", "spouse_name",
                 "old_id_number"):
        assert ident[name], name
    assert ident["date_of_birth"] == "1985-07-04" and ident["date_of_expiry"] == "2045-07-04"
    assert "photo_jpeg_base64" not in ident
    assert out["files"]["DG2"]["status"] == "read" and out["files"]["DG2"]["size"] > 10_000
    assert set(out["timing"]) >= {"apdus", "bytes_sent", "bytes_received", "seconds"}
    assert out["verification"]["status"] == "verified"


def test_repr_masks_personal_data(backend: SimBackend) -> None:
    read = _read(backend, load_profile("nguyen-van-an"), None, None, verify=False)
    assert "001099012345" not in repr(read) and "Nguyễn" not in repr(read)


def test_chip_refusing_extended_length_the_reader_announced(store: TrustStore) -> None:
    # the connection claims extended length, the chip answers 6700 to it: under SM
    # that desynchronises the counters, so the read starts again with short APDUs,
    # and the chip's ATR is remembered: its next read goes short from the start
    from agent.icao.extended_length import ExtendedLengthMemory

    memory = ExtendedLengthMemory()
    profile = dataclasses.replace(load_profile("nguyen-van-an"), extended_length=False)
    apdus = []
    for _ in range(2):
        sim = SimBackend(extended_length="on")
        read = _read(sim, profile, None, store, memory=memory)
        assert read.complete and read.verified and not read.extended_length
        apdus.append(read.timing.apdus)
        sim.close()
    assert apdus[1] < apdus[0]


def _pulled_read(profile: ChipProfile, at: int, store: TrustStore) -> tuple[ChipRead, int]:
    sim = SimBackend(extended_length="on")
    chip = virtual_chip(profile)
    sim.insert(DEFAULT_READER, chip)
    conn = FaultyConnection(sim.connect(DEFAULT_READER), Case("PACE", "remove", at), chip, sim)
    read = read_chip(ApduChannel(conn), CanKey("004321"), trust=store, today=TODAY)  # type: ignore[arg-type]
    return read, conn.count


def test_card_pulled_at_any_apdu_ends_in_a_specific_error(store: TrustStore) -> None:
    from agent.errors import IdAgentError

    profile = load_profile("tran-thi-bich-ngoc")
    clean, total = _pulled_read(profile, 10_000, store)
    assert clean.verified and total > 15
    outcomes = set()
    for at in range(1, total + 1):
        try:
            read, _ = _pulled_read(profile, at, store)
        except IdAgentError as err:
            assert err.exit_code == 6, (at, err)  # type: ignore[attr-defined]
            outcomes.add(type(err).__name__)
        else:
            # pulled during Active Authentication (the last exchange): the data are
            # complete and CA, run before the data groups, already proved the chip
            # (9303-11 takes CA or AA)
            assert read.complete, at
            outcomes.add("verified" if read.verified else "not verified")
    # Chip Authentication runs mid-read (after DG14): a pull during it, like one during
    # a file read, ends the read with ReadInterruptedError; a pull during AA does not
    # undo CA
    assert outcomes == {"ReadInterruptedError", "verified"}


def test_garbage_data_group_is_a_recorded_parse_error(backend: SimBackend, store: TrustStore) -> None:
    profile = load_profile("nguyen-van-an")
    garbage = bytes((i * 37 + 11) % 256 for i in range(300))
    profile = dataclasses.replace(profile, files={**profile.files, DATA_GROUPS[1].fid: garbage})
    read = _read(backend, profile, None, store)
    assert read.outcomes["DG1"].status == "failed"
    assert read.outcomes["DG1"].error is not None and read.outcomes["DG1"].error.code == "parse"
    assert not read.complete
    assert identity_of(read).document_number is None


def test_offsets_above_32767_under_secure_messaging(backend: SimBackend) -> None:
    from agent.icao.lds.dg2 import build_dg2
    from agent.sim.face import synthetic_face

    face = synthetic_face(9, width=720, height=960, target_bytes=45_000)
    big = build_dg2(face.jpeg, face.width, face.height)
    assert len(big) > 40_000
    profile = load_profile("nguyen-van-an")
    profile = dataclasses.replace(profile, files={**profile.files, DATA_GROUPS[2].fid: big})
    read = _read(backend, profile, None, None, verify=False)
    assert read.files["DG2"] == big
    assert identity_of(read).photo_jpeg == face.jpeg


def test_without_ef_com_the_usual_groups_are_read(backend: SimBackend, store: TrustStore) -> None:
    from agent.icao.lds.files import COM

    profile = load_profile("nguyen-van-an")
    profile = dataclasses.replace(profile, files={**profile.files, COM.fid: b"\x60\x03\x5f\x01"})
    read = _read(backend, profile, None, store)
    assert read.outcomes["COM"].status == "failed"
    assert {"DG1", "DG2", "DG13", "DG14", "DG15"} <= set(read.records) | set(read.files)
    assert read.complete


class _Garbage:
    """A connection whose chip answers one byte: not even a status word."""

    extended_length = False

    def transmit(self, apdu: bytes) -> bytes:
        return b"\x90"


def test_chip_answering_garbage_is_a_protocol_error() -> None:
    from agent.errors import ProtocolError

    with pytest.raises(ProtocolError) as info:
        read_chip(ApduChannel(_Garbage()), CanKey("012345"))
    assert info.value.exit_code == 6


def test_debug_log_of_a_full_read_holds_no_personal_data(backend: SimBackend, store: TrustStore,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    import logging

    profile = load_profile("le-hoang-duc")
    with caplog.at_level(logging.DEBUG):
        read = _read(backend, profile, profile.mrz_key, store)
    assert read.complete
    text = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert caplog.records
    for secret in ("048060007788", "060007788", "Lê Hoàng Đức", "LE<<HOANG", "201234567", "601120", "991120"):
        assert secret not in text, secret


def test_groups_ef_sod_lists_are_read_even_when_ef_com_omits_them(backend: SimBackend, store: TrustStore) -> None:
    # EF.COM is not signed (9303-10 §4.6.1): a chip listing only DG1 there must not end
    # in a "complete, verified" read without the photo (DG2), DG13 or CA/AA (DG14/DG15)
    # that its signed EF.SOD lists. The terminal reads what EF.SOD lists as well.
    from agent.icao.lds.com import build_com
    from agent.icao.lds.files import COM

    profile = load_profile("nguyen-van-an")
    hiding = dataclasses.replace(profile, files={**profile.files, COM.fid: build_com([1])})
    read = _read(backend, hiding, None, store)
    assert {"DG1", "DG2", "DG13", "DG14", "DG15"} <= set(read.records) | set(read.files)
    assert read.chip_authentication is not None and read.chip_authentication.status.value == "valid"
    assert read.complete and read.verified
