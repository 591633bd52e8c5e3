"""Shared helpers: the committed test PKI (fixtures/pki, made by make_pki.py) and
synthetic data groups (made-up content; PA only hashes them)."""

from __future__ import annotations

import datetime as dt

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
