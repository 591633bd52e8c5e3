"""``idagent verify``: passive authentication (and the issuer check) of files read
elsewhere, e.g. the raw EF.SOD and data groups that reader kits hand out (binary or
base64). No chip is involved, so chip and active authentication are not run.

    idagent verify --trust DIR --sod FILE [--dg1 FILE … --dg16 FILE] [--card-security FILE] [--json]

Exit 0 when verified, 2 when not. With ``--sod`` alone the SOD's signature and chain
are checked and the result says that no data group was compared: that is how an
operator sees which Document Signer and CSCA signed a real card (no personal data).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
from pathlib import Path
from typing import Any

from agent.config import Config
from agent.errors import ConfigError
from agent.icao import cardsecurity
from agent.icao.checks import CheckResult
from agent.icao.trust import TrustStore
from agent.icao.verify import Verification, verify

_BASE64 = re.compile(rb"^[A-Za-z0-9+/=\s]+$")
#: the first byte of each file as the chip stores it (9303-10 §4.6: EF.SOD 77, DG1 61 …)
FIRST_BYTES = {"SOD": 0x77, "CardSecurity": 0x30, **{f"DG{n}": tag for n, tag in (
    (1, 0x61), (2, 0x75), (3, 0x63), (4, 0x76), (5, 0x65), (6, 0x66), (7, 0x67), (8, 0x68), (9, 0x69),
    (10, 0x6A), (11, 0x6B), (12, 0x6C), (13, 0x6D), (14, 0x6E), (15, 0x6F), (16, 0x70))}}


class VerifyInputError(ConfigError):
    code = "verify_input"
    hint = "Give the files as dumped from the chip (binary) or their base64 text."


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("verify", help="passive authentication of EF.SOD and data-group files")
    parser.add_argument("--trust", dest="trust_dir", metavar="DIR", help="trust folder (default: [trust] csca_dir)")
    parser.add_argument("--sod", required=True, metavar="FILE", help="EF.SOD (binary or base64)")
    for number in range(1, 17):
        parser.add_argument(f"--dg{number}", metavar="FILE", help=argparse.SUPPRESS if number > 2 else
                            f"DG{number} (binary or base64); --dg3 … --dg16 likewise")
    parser.add_argument("--card-security", metavar="FILE", help="EF.CardSecurity (signature and chain checked)")
    parser.set_defaults(handler=run_verify)


def read_input(path: str, name: str) -> bytes:
    """A file's bytes; base64 text is decoded when the raw bytes do not start with the
    file's tag. Errors name the file and what was wrong."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise VerifyInputError(f"{name}: cannot read {path}: {exc.strerror}") from exc
    if not raw:
        raise VerifyInputError(f"{name}: {path} is empty")
    if raw[0] == FIRST_BYTES[name] or not _BASE64.match(raw):
        return raw
    try:
        decoded = base64.b64decode(b"".join(raw.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VerifyInputError(f"{name}: {path} is neither the binary file nor valid base64 ({exc})") from exc
    if not decoded:
        raise VerifyInputError(f"{name}: {path} decodes to nothing")
    return decoded


def collect(args: argparse.Namespace) -> dict[str, bytes]:
    files = {"SOD": read_input(args.sod, "SOD")}
    for number in range(1, 17):
        path = getattr(args, f"dg{number}")
        if path:
            files[f"DG{number}"] = read_input(path, f"DG{number}")
    if args.card_security:
        files["CardSecurity"] = read_input(args.card_security, "CardSecurity")
    return files


def run_verify(args: argparse.Namespace, config: Config) -> int:
    files = collect(args)
    store = TrustStore.load(args.trust_dir or config.trust.csca_dir)
    result = verify(None, files, trust_store=store, check_crl=config.trust.check_crl, require_chip_auth=False,
                    accepted_issuers=config.trust.accepted_issuers)
    out = report(result, files, store, config)
    if getattr(args, "json", False):
        print(json.dumps({"verification": out}, indent=2, ensure_ascii=False))
    else:
        print_text(out)
    return 0 if result.verified else 2


def _passive(check: CheckResult) -> dict[str, Any]:
    out = check.to_dict()
    out["signer"] = check.details.get("document_signer", "")
    out["chain"] = list(check.details.get("chain", []))
    return out


def report(result: Verification, files: dict[str, bytes], store: TrustStore, config: Config) -> dict[str, Any]:
    out = result.to_dict()
    out["passive"] = _passive(result.passive)
    out["files"] = sorted(files)
    out["trust_anchors"] = len(store)
    if store.problems:
        out["trust_problems"] = list(store.problems)
    if "CardSecurity" in files:
        out["card_security"] = _card_security(files["CardSecurity"], store, config)
    return out


def _card_security(raw: bytes, store: TrustStore, config: Config) -> dict[str, Any]:
    from agent.errors import ParseError
    from agent.icao.pa import check_signed_object

    try:
        parsed = cardsecurity.parse_card_security(raw)
    except ParseError as exc:
        return {"status": "error", "reason": f"EF.CardSecurity is malformed: {exc.message}"}
    return _passive(check_signed_object(parsed, store, name=cardsecurity.NAME, check_crl=config.trust.check_crl))


def print_text(out: dict[str, Any]) -> None:
    print(f"{out['status']}: {out['reason']}")
    passive = out["passive"]
    print(f"passive authentication: {passive['status']}: {passive['reason']}")
    for depth, name in enumerate(passive["chain"] or [passive["signer"]] if passive["signer"] else []):
        print(f"  {'  ' * depth}{'signer' if depth == 0 else 'issuer'}: {name}")
    for note in passive.get("notes", []):
        print(f"  note: {note}")
    issuer = out.get("issuer", {})
    if issuer:
        print(f"issuer: {issuer['status']}: {issuer['reason']}")
    if "card_security" in out:
        print(f"EF.CardSecurity: {out['card_security']['status']}: {out['card_security']['reason']}")
    print(f"files: {', '.join(out['files'])}; {out['trust_anchors']} trusted CSCA certificate(s)")
