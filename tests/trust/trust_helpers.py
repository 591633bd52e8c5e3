"""Shared helpers: the committed test PKI (fixtures/pki, made by make_pki.py) and
synthetic data groups (made-up content; PA only hashes them)."""

from __future__ import annotations

import datetime as dt

from agent.sim.link import Link  # noqa: E402
from agent.sim.signing import TestPki, build_sod

UTC = dt.UTC
#: "now" of the tests: after dsc_rsa_expired's end (2021) and inside everything else
NOW = dt.datetime(2026, 6, 1, tzinfo=UTC)
SIGNED = dt.datetime(2025, 1, 15, tzinfo=UTC)
SIGNED_EXPIRED_DSC = dt.datetime(2020, 6, 1, tzinfo=UTC)

#: synthetic DG1 (TD1 MRZ of the made-up citizen in domain.md), DG2/DG13 filler
DGS: dict[int, bytes] = {
    1: b"\x61\x5d\x5f\x1f\x5a" + b"IDVNM0990123459001099012345<<0" + b"9903159M3903157VNM<<<<<<<<<<<0"
       + b"NGUYEN<<VAN<AN<<<<<<<<<<<<<<<<",
    2: b"\x75\x10" + bytes(range(16)),
    13: b"\x6d\x08\x30\x06\x02\x01\x01\x0c\x01\x41",
}


def files_for(pki: TestPki, dsc: str = "dsc_rsa", *, dgs: dict[int, bytes] | None = None,
              signing_time: dt.datetime | None = SIGNED, **kwargs: object) -> dict[str, bytes]:
    """A read's file map: DGs plus an EF.SOD signed by ``dsc``."""
    groups = dict(dgs or DGS)
    signer = pki.dsc(dsc)
    sod = build_sod(groups, signer.cert, signer.key, signing_time=signing_time, **kwargs)  # type: ignore[arg-type]
    out = {f"DG{n}": v for n, v in groups.items()}
    out["SOD"] = sod
    return out


# -- a virtual chip with CA/AA, opened with PACE -----------------------------------------

import hashlib  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402

from agent.icao import pace  # noqa: E402
from agent.icao.crypto import Cipher  # noqa: E402
from agent.icao.keys import CanKey  # noqa: E402
from agent.icao.securityinfo import parse_security_infos  # noqa: E402
from agent.icao.select import select_application  # noqa: E402
from agent.readers.apdu import ApduChannel  # noqa: E402
from agent.sim.chip import ChipProfile, VirtualChip, default_card_access  # noqa: E402
from agent.sim.chip_auth import ChipAuthHandler  # noqa: E402
from agent.sim.signing import build_dg14, build_dg15, derive_ec_key  # noqa: E402

CAN = "012345"
_RSA_CACHE: dict[int, rsa.RSAPrivateKey] = {}


def counter_rng(seed: bytes) -> Any:
    """Deterministic test randomness (the injected rng of terminal and chip)."""
    state = {"n": 0}

    def read(n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(seed + state["n"].to_bytes(4, "big")).digest()
            state["n"] += 1
        return out[:n]

    return read


def rsa_key(bits: int = 1024, slot: int = 0) -> rsa.RSAPrivateKey:
    if (bits + slot) not in _RSA_CACHE:
        _RSA_CACHE[bits + slot] = rsa.generate_private_key(65537, bits)
    return _RSA_CACHE[bits + slot]


@dataclass
class Card:
    files: dict[str, bytes]
    chip: VirtualChip


def make_card(pki: TestPki, *, dsc: str = "dsc_rsa", ca_key: Any = "default", aa_key: Any = "default",
              cipher: Cipher = Cipher.AES128, aa_hash: str = "sha1", explicit_ca: bool = False,
              clone_ca_key: Any = None, clone_aa_key: Any = None, with_dg14: bool = True,
              with_dg15: bool = True) -> Card:
    """A synthetic card: DGs + DG14 (CA key) + DG15 (AA key) + EF.SOD signed by ``dsc``.
    ``clone_*_key``: the chip holds these keys instead of the ones its DG14/DG15 name."""
    if ca_key == "default":
        ca_key = derive_ec_key(b"test chip ca", "brainpoolp256r1")
    if aa_key == "default":
        aa_key = rsa_key()
    groups = dict(DGS)
    aa_oid = None
    if isinstance(aa_key, ec.EllipticCurvePrivateKey):
        from agent.icao.aa import AA_SIGNATURE_HASHES
        aa_oid = next(o for o, h in AA_SIGNATURE_HASHES.items() if h == aa_hash and o.startswith("0.4.0"))
    if with_dg14:
        groups[14] = build_dg14(ca_key.public_key(), cipher=cipher, explicit=explicit_ca,
                                aa_signature_algorithm=aa_oid)
    if with_dg15:
        groups[15] = build_dg15(aa_key.public_key())
    signer = pki.dsc(dsc)
    sod = build_sod(groups, signer.cert, signer.key, signing_time=SIGNED)
    fids = {0x0100 + n: v for n, v in groups.items()}
    fids[0x011D] = sod
    fids[0x011E] = b"\x60\x05\x5f\x01\x02\x30\x31"
    profile = ChipProfile(files=fids, can=CAN, ca_private_key=clone_ca_key or ca_key,
                          aa_private_key=clone_aa_key or aa_key)
    chip = VirtualChip(profile, rng=counter_rng(b"chip"))
    chip.add_handler(ChipAuthHandler(aa_hash=aa_hash))
    files = {f"DG{n}": v for n, v in groups.items()}
    files["SOD"] = sod
    return Card(files, chip)


def open_session(card: Card, rng: Any = None) -> Any:
    """Power the chip, run PACE with the CAN, select the eMRTD application."""
    rng = rng or counter_rng(b"terminal")
    card.chip.power_on()
    channel = ApduChannel(Link(card.chip, extended_length=True))
    info = parse_security_infos(default_card_access()).pace[0]
    session = pace.authenticate(channel, CanKey(CAN), info, rng=rng).sm
    response = select_application(session)
    assert response.ok
    return session
