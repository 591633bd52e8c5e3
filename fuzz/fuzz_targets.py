"""The fuzz targets of issue 8: every parser of bytes that come from outside, as one
table shared by the atheris scripts (fuzz/fuzz_<name>.py, fuzz/run.py) and the
hypothesis harness (tests/robustness/test_robust_parsers.py).

A target is ``check(data: bytes) -> None``: it feeds ``data`` to the parser and lets
through only the documented outcome, i.e. a returned value or an ``IdAgentError``
(``ParseError`` and friends, each with a hint). Anything else escaping is a crash.
``seeds()`` gives well-formed inputs (the virtual chip's files of a synthetic person,
9303 worked examples) so mutation starts from the shapes a card really sends.

No device library and no network here; the config target writes one temp file per input.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from agent.errors import IdAgentError  # noqa: E402

TODAY = dt.date(2026, 11, 26)
#: the person every seed is built from (fixtures/profiles, synthetic)
SEED_PROFILE = "nguyen-van-an"


@dataclass(frozen=True)
class Target:
    name: str
    check: Callable[[bytes], None]
    seeds: Callable[[], list[bytes]]
    what: str


def _typed(call: Callable[[], object]) -> None:
    """Run ``call``; the only exceptions allowed out are IdAgentError subclasses that
    carry a hint (agent/errors.py). Those are swallowed: they are the documented answer."""
    try:
        call()
    except IdAgentError as err:
        if not isinstance(err.hint, str) or not err.hint:
            raise AssertionError(f"{type(err).__name__} without a hint") from err


# -- seeds ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _card_files() -> dict[str, bytes]:
    from agent.icao.lds.files import CARD_ACCESS, COM, DATA_GROUPS, SOD
    from agent.sim.profile import build_card

    files = build_card(SEED_PROFILE).files
    out = {f"DG{n}": files[DATA_GROUPS[n].fid] for n in (1, 2, 13, 14, 15) if DATA_GROUPS[n].fid in files}
    out.update(COM=files[COM.fid], SOD=files[SOD.fid], CardAccess=files[CARD_ACCESS.fid])
    return out


def _small_dg2() -> bytes:
    from agent.icao.lds.dg2 import build_dg2
    from agent.sim.face import synthetic_face

    face = synthetic_face(21, width=48, height=64, target_bytes=1_500)
    return build_dg2(face.jpeg, face.width, face.height)


def _dg11_seed() -> bytes:
    from agent.icao import tlv

    body = tlv.encode_many(
        (0x5C, bytes.fromhex("5F0E5F2B5F11")), (0x5F0E, "TRẦN<<THỊ<BÍCH NGỌC".encode()),
        (0x5F2B, b"19850704"), (0x5F11, "Hà Nội".encode()), (0x5F60, b"\x01"))
    return tlv.encode(0x6B, body)


def _dg12_seed() -> bytes:
    from agent.icao import tlv

    body = tlv.encode_many((0x5F19, "Cục Cảnh sát QLHC về TTXH".encode()), (0x5F26, b"20210701"),
                           (0xA0, tlv.encode(0x02, b"\x01") + tlv.encode(0x5F1A, b"A<<B")))
    return tlv.encode(0x6C, body)


#: 9303-11 Appendix G.1 EF.CardAccess (domain.md)
CARD_ACCESS_9303 = bytes.fromhex("31143012060A04007F0007020204020202010202010D")
#: 9303-11 Appendix D.4 EF.COM start (domain.md)
COM_9303 = bytes.fromhex("60145F0104303130365F36063034303030305C026175")
#: domain.md's synthetic TD1 MRZ
MRZ_TD1 = ("IDVNM0990123459001099012345<<0\n9903159M3903157VNM<<<<<<<<<<<0\n"
           "NGUYEN<<VAN<AN<<<<<<<<<<<<<<<<")
QR_2021 = "001099012345|012345678|Nguyễn Văn An|15031999|Nam|Số 1 Tràng Tiền, Hoàn Kiếm, Hà Nội|01072021"
QR_2024 = QR_2021 + "|Nguyễn Văn Bình|Trần Thị Cúc|x"


# -- parsers ----------------------------------------------------------------------------


def _walk_tlv(data: bytes) -> None:
    from agent.icao import tlv

    def walk(item: tlv.Tlv, depth: int) -> None:
        if depth > 64:
            return
        if item.constructed:
            for child in item.children():
                walk(child, depth + 1)

    for item in tlv.iter_tlvs(data, source="fuzz"):
        walk(item, 0)


def _lds(name: str) -> Callable[[bytes], object]:
    from agent.icao.aa import parse_dg15
    from agent.icao.lds import parse_com, parse_dg1, parse_dg2, parse_dg11, parse_dg12, parse_dg13
    from agent.icao.securityinfo import parse_security_infos
    from agent.icao.sod import parse_sod

    table: dict[str, Callable[[bytes], object]] = {
        "COM": parse_com, "DG1": lambda d: parse_dg1(d, today=TODAY), "DG2": parse_dg2,
        "DG11": parse_dg11, "DG12": parse_dg12, "DG13": parse_dg13,
        "DG14": lambda d: parse_security_infos(d, source="DG14"), "DG15": parse_dg15,
        "SOD": parse_sod, "CardAccess": lambda d: parse_security_infos(d, source="EF.CardAccess"),
    }
    return table[name]


def _lds_target(name: str, seeds: Callable[[], list[bytes]], what: str) -> Target:
    def check(data: bytes) -> None:
        parse = _lds(name)
        _typed(lambda: parse(data))

    return Target(name.lower(), check, seeds, what)


def _mrz(data: bytes) -> None:
    from agent.icao.mrz import parse_mrz

    text = data.decode("latin-1")
    _typed(lambda: parse_mrz(text, today=TODAY))


if TYPE_CHECKING:
    from agent.icao.sm import SessionKeys
    from agent.readers.apdu import Command, Response


@functools.lru_cache(maxsize=2)
def _sm_keys(aes: bool) -> SessionKeys:
    from agent.icao.crypto import Cipher
    from agent.icao.sm import SessionKeys

    cipher = Cipher.AES128 if aes else Cipher.DES3
    return SessionKeys(bytes(range(1, 17)), bytes(range(17, 33)), cipher)


def _sm(data: bytes) -> None:
    """Secure-messaging response unwrapping (9303-11 §9.8.5.2). Byte 0: mode (mod 3)
    and cipher (bit 7: AES-128, else 3DES); bytes 1-2: the outer status word; then
    0 = the bytes as the chip's whole answer (the MAC almost never verifies);
    1 = the bytes are data objects, we append a MAC that verifies over them (so the
        parsing after the MAC check is reached);
    2 = the bytes are the plaintext, encrypted without padding into DO87 with a good
        MAC (the unpadding of decrypted data is reached)."""
    from agent.icao import crypto
    from agent.icao import sm as sm_mod
    from agent.icao import tlv as ber
    from agent.readers.apdu import Command, Response

    if len(data) < 3:
        return
    mode, aes, sw, body = data[0] % 3, bool(data[0] & 0x80), int.from_bytes(data[1:3], "big"), data[3:]
    keys = _sm_keys(aes)
    chip = _Fixed()
    session = sm_mod.SecureMessaging(chip, keys.ks_enc, keys.ks_mac, keys.cipher, 0)
    ssc = 2  # protect() counts 1, a response 2
    if mode == 0:
        answer = body
    elif mode == 1:
        try:
            objects = ber.pairs(body, source="fuzz")
        except IdAgentError:
            objects = []
        mac_input = b"".join(ber.encode(t, v) for t, v in objects if t in (0x85, 0x87, 0x99))
        answer = body + ber.encode(0x8E, keys.mac(ssc, mac_input))
    else:
        plain = body[: len(body) - len(body) % keys.block] or bytes(keys.block)
        iv = crypto.sm_iv(keys.cipher, keys.ks_enc, keys.ssc_bytes(ssc))
        cryptogram = crypto.encrypt(keys.cipher, keys.ks_enc, plain, iv)
        objects_bytes = ber.encode(0x87, b"\x01" + cryptogram) + ber.encode(0x99, b"\x90\x00")
        answer = objects_bytes + ber.encode(0x8E, keys.mac(ssc, objects_bytes))
    chip.answer = Response(answer, sw)
    _typed(lambda: session.send(Command(0x00, 0xB0, 0, 0, le=0xDF)))


def _sm_seeds() -> list[bytes]:
    """Mode 1 (MACed objects) and mode 2 (a padded plaintext '6014' as EF.COM starts),
    3DES and AES: all unwrap cleanly."""
    ok_sw, padded = bytes.fromhex("99029000"), bytes.fromhex("601480")
    return [b"\x01\x90\x00" + ok_sw, b"\x02\x90\x00" + padded + bytes(5),
            b"\x82\x90\x00" + ok_sw, b"\x83\x90\x00" + padded + bytes(13)]


class _Fixed:
    """The chip side of the SM target: answers whatever the fuzzer chose."""

    extended_length = False

    def __init__(self) -> None:
        from agent.readers.apdu import Response

        self.answer = Response(b"", 0x9000)

    def send(self, command: Command) -> Response:
        return self.answer


def _qr_payload(data: bytes) -> None:
    from agent.qr.access_keys import access_keys_from_qr
    from agent.qr.payload import parse_cccd, read_payload

    # read_payload is documented never to raise for bad input
    result = read_payload(data)
    repr(result)
    card = result.card
    if card is not None:
        # the payload's ID and dates become the chip's access keys (CAN, BAC seeds)
        _typed(lambda: access_keys_from_qr(card))
    text = data.decode("utf-8", "replace")
    _typed(lambda: parse_cccd(text, strict=False))
    _typed(lambda: parse_cccd(text, strict=True))


def _qr_repair(data: bytes) -> None:
    from agent.qr.repair import repair_bytes, repair_text

    repair_bytes(data)
    repair_text(data.decode("utf-8", "surrogateescape"))
    repair_text(data.decode("latin-1"))


_CONFIG_DIR = tempfile.mkdtemp(prefix="idagent-fuzz-config-")


#: environment overrides of every value type (agent.config: IDAGENT_<SECTION>__<KEY>)
_ENV_VARS = ("IDAGENT_API__PORT", "IDAGENT_API__IDENTITY_TTL", "IDAGENT_CARD__SKIP_FILES",
             "IDAGENT_TRUST__CHECK_CRL", "IDAGENT_READERS__BACKENDS", "IDAGENT_AGENT__LOG_LEVEL",
             "IDAGENT_READERS__EXTENDED_LENGTH", "IDAGENT_OUTBOX__RETENTION_DAYS")


def _config(data: bytes) -> None:
    """The config file's text; or, after an "ENV:" prefix, NUL-separated values of
    environment overrides (over the default file)."""
    from agent.config import load_config

    path = os.path.join(_CONFIG_DIR, "fuzz.toml")
    env: dict[str, str] = {}
    if data.startswith(b"ENV:"):
        values = data[4:].split(b"\x00")
        env = {var: value.decode("utf-8", "replace") for var, value in zip(_ENV_VARS, values, strict=False)}
        data = b""
    with open(path, "wb") as fh:
        fh.write(data)
    _typed(lambda: load_config(path, env=env))


def _dg14_keys(data: bytes) -> None:
    """DG14 as verification uses it: SecurityInfos → the Chip Authentication key
    (asn1crypto SubjectPublicKeyInfo, EC or DH group) → the PACE-CAM check. Verification
    reports a forged or damaged card as a result: nothing may escape here, not even a
    typed error."""
    from agent.icao import ca

    result = ca.verify_pace_cam(bytes(range(1, 33)), b"\x04" + bytes(range(64)), data)
    assert result.status is not None


@functools.lru_cache(maxsize=1)
def _trust_store() -> object:
    from agent.icao.trust import TrustStore

    return TrustStore.load(ROOT / "fixtures" / "pki" / "store")


def _passive(data: bytes) -> None:
    """EF.SOD through the whole passive authentication (agent.icao.verify, offline:
    no channel) with the test PKI's trust store and the card's real data groups: a
    forged or damaged EF.SOD is a verification result, never an exception."""
    import datetime

    from agent.icao.verify import verify

    files = {name: content for name, content in _card_files().items() if name.startswith("DG")}
    files["SOD"] = data
    result = verify(None, files, trust_store=_trust_store(),  # type: ignore[arg-type]
                    now=datetime.datetime(2026, 1, 15, tzinfo=datetime.UTC), check_crl=True)
    assert result.status in ("verified", "not_verified", "probable_clone", "error"), result.status


def _api_body(data: bytes) -> None:
    """A POST /read body as agent.api.request reads it (JSON object → access key); the
    HTTP layer itself is exercised by tests/robustness/test_robust_api.py."""
    import json

    from agent.api.request import RequestError, key_from_body

    try:
        body = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return  # json_body answers 400 for these
    if not isinstance(body, dict):
        return
    try:
        key_from_body(body)
    except RequestError as err:
        assert err.hint


def _api_seeds() -> list[bytes]:
    mrz = MRZ_TD1.replace("\n", "\\n")
    return [b'{"can": "012345"}', b'{"id_number": "001099012345"}', f'{{"mrz": "{mrz}"}}'.encode(),
            b'{"document_number": "099012345", "birth_date": "1999-03-15", "expiry_date": "390315"}']


def _config_seeds() -> list[bytes]:
    text = (ROOT / "config" / "idagent.toml").read_bytes()
    return [text, b"[agent]\nlog_level = \"DEBUG\"\n", b"[readers]\nbackends = [\"sim\"]\nread_chunk = 5\n",
            b"[api]\nport = 70000\n", b"[outbox]\nretention_days = -1\n",
            b"ENV:8765\x00120.5\x003,4\x00yes\x00pcsc,sim\x00DEBUG\x00auto\x007"]


def _seeds_of(name: str) -> Callable[[], list[bytes]]:
    return lambda: [_card_files()[name]]


TARGETS: dict[str, Target] = {t.name: t for t in [
    Target("tlv", lambda d: _typed(lambda: _walk_tlv(d)),
           lambda: [_card_files()["DG13"], _card_files()["DG14"], COM_9303], "BER-TLV reader (agent/icao/tlv.py)"),
    _lds_target("COM", lambda: [_card_files()["COM"], COM_9303], "EF.COM (lds/com.py)"),
    _lds_target("DG1", _seeds_of("DG1"), "DG1 MRZ (lds/dg1.py)"),
    _lds_target("DG2", lambda: [_small_dg2()], "DG2 face (lds/dg2.py)"),
    _lds_target("DG11", lambda: [_dg11_seed()], "DG11 (lds/dg11.py)"),
    _lds_target("DG12", lambda: [_dg12_seed()], "DG12 (lds/dg12.py)"),
    _lds_target("DG13", _seeds_of("DG13"), "DG13 Vietnamese fields (lds/dg13.py)"),
    _lds_target("DG14", _seeds_of("DG14"), "DG14 SecurityInfos (securityinfo.py)"),
    _lds_target("DG15", _seeds_of("DG15"), "DG15 AA public key (aa.py)"),
    _lds_target("SOD", _seeds_of("SOD"), "EF.SOD CMS SignedData (sod.py)"),
    _lds_target("CardAccess", lambda: [_card_files()["CardAccess"], CARD_ACCESS_9303],
                "EF.CardAccess SecurityInfos (securityinfo.py)"),
    Target("mrz", _mrz, lambda: [MRZ_TD1.encode()], "MRZ text (mrz.py)"),
    Target("sm", _sm, lambda: _sm_seeds(), "secure-messaging response unwrapping (sm.py)"),
    Target("qr_payload", _qr_payload, lambda: [QR_2021.encode(), QR_2024.encode()],
           "CCCD QR payload (qr/payload.py)"),
    Target("qr_repair", _qr_repair,
           lambda: [QR_2021.encode(), QR_2021.encode().decode("cp1252", "replace").encode()],
           "QR text repair (qr/repair.py)"),
    Target("config", _config, _config_seeds, "config TOML (config.py load_config)"),
    Target("dg14_keys", _dg14_keys, _seeds_of("DG14"), "DG14 CA key → PACE-CAM check, never raises (ca.py)"),
    Target("passive", _passive, _seeds_of("SOD"), "EF.SOD through passive authentication, never raises (pa.py)"),
    Target("api_body", _api_body, _api_seeds, "local API POST /read body → access key (api/server.py)"),
]}


def long_texts(length: int) -> list[tuple[str, str]]:
    """Long texts of about ``length`` characters for the text targets, (target name,
    text): the shapes that would make a regular expression or a repair loop work
    super-linearly. tests/robustness/test_robust_parsers.py bounds their work;
    bench/bench_long_inputs.py prints their times."""
    return [
        ("qr_payload", ("0" * 12 + "|") * (length // 13)),
        ("qr_payload", "001099012345|" + "Nguyễn " * (length // 8)),
        ("qr_payload", "|" * length),
        ("qr_repair", "Ã¡»" * (length // 3)),
        ("qr_repair", "Nguyá»…n " * (length // 10)),
        ("qr_repair", "\u0300" * length),
        ("mrz", "<" * length),
        ("mrz", ("A" * 30 + "\n") * (length // 31)),
        ("config", "[agent]\n" + "# x\n" * (length // 4)),
        ("config", "a = [" * 2000),
    ]
