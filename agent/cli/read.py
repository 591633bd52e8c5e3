"""``idagent read``: read one card once, print the identity, exit with what happened.

Exit codes (agent.cli): 0 read and verified · 2 read but NOT verified · 3 no
access data given · 4 no reader / no card / pcscd down · 5 wrong CAN or MRZ data ·
6 read failed (card removed, protocol error, a required file missing or malformed:
the read is incomplete).

The identity is printed to this terminal (it is the clerk's own screen) and never
logged.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from agent.errors import (
    ConfigError,
)
from agent.icao.keys import AccessKey, CanKey, MrzKey
from agent.identity import FIELDS

if TYPE_CHECKING:
    from agent.config import Config
    from agent.icao.chip_read import ChipRead
    from agent.readers.base import CardConnection

class UsageError(ConfigError):
    """Missing or contradictory options (exit code 3)."""

    code = "usage"
    exit_code = 3


EXIT_VERIFIED = 0
EXIT_NOT_VERIFIED = 2
EXIT_READ_FAILED = 6

#: labels of the identity fields, as the card prints them
LABELS: dict[str, str] = {
    "full_name": "Họ và tên", "id_number": "Số định danh cá nhân", "old_id_number": "Số CMND cũ",
    "document_number": "Số giấy tờ (MRZ)", "date_of_birth": "Ngày sinh", "sex": "Giới tính",
    "nationality": "Quốc tịch", "ethnicity": "Dân tộc", "religion": "Tôn giáo",
    "place_of_origin": "Quê quán", "place_of_residence": "Nơi thường trú",
    "identifying_marks": "Đặc điểm nhận dạng", "date_of_issue": "Ngày cấp",
    "date_of_expiry": "Có giá trị đến", "father_name": "Họ tên cha", "mother_name": "Họ tên mẹ",
    "spouse_name": "Họ tên vợ/chồng", "card_uuid": "Mã DG13 số 16",
}
NO_EXPIRY_LABEL = "Không thời hạn"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "read", help="read a chip ID card once and print the identity",
        description="Open the chip with the CAN, the MRZ data or the card's QR text, read and "
                    "verify it, and print the identity.",
        epilog=__doc__.split("\n\n")[1] if __doc__ else None)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--reader", metavar="NAME", help="reader name (idagent readers lists them)")
    source.add_argument("--replay", metavar="FIXTURE", help="replay a recorded exchange (fixtures/recordings)")
    source.add_argument("--sim", metavar="PROFILE",
                        help="read the in-process virtual chip built from a profile (never implied)")
    keys = parser.add_argument_group("access data (one of)")
    keys.add_argument("--can", metavar="N", help="Card Access Number: last 6 digits of the 12-digit ID "
                                                 "('-': read it from standard input)")
    keys.add_argument("--mrz", metavar="TEXT", help="the MRZ lines (newline-separated or run together; '-': stdin)")
    keys.add_argument("--qr", metavar="TEXT", help="the card's QR text (tries the CAN, then MRZ data; '-': stdin)")
    keys.add_argument("--document-number", metavar="D", help="MRZ document number (last 9 digits of the ID)")
    keys.add_argument("--birth-date", metavar="YYMMDD")
    keys.add_argument("--expiry-date", metavar="YYMMDD")
    parser.add_argument("--trust", metavar="DIR", help="trust anchors folder (default: trust.csca_dir)")
    parser.add_argument("--photo", metavar="FILE", help="write the face photo (JPEG) to FILE")
    parser.set_defaults(handler=run_read)


# -- access data ----------------------------------------------------------------------


def _from_stdin(args: argparse.Namespace, stdin: TextIO) -> None:
    """``--can -`` (or --mrz/--qr): read the value from standard input, so that it does
    not show in ``ps`` or the shell history (it is personal data)."""
    for name in ("can", "mrz", "qr"):
        if getattr(args, name, None) == "-":
            text = stdin.read()
            if not text.strip():
                raise UsageError(f"--{name} -: standard input was empty",
                                  hint=f"Pipe the value in, e.g. idagent read --{name} - < file")
            setattr(args, name, text.strip("\r\n") if name != "can" else text.strip())


def check_can(value: str) -> str:
    """The CAN as typed, refused here (exit 3) unless it is the card's 6 digits: a short or
    long number would only cost a PACE attempt and come back as "wrong CAN" (exit 5)."""
    can = value.strip()
    if len(can) != 6 or not (can.isascii() and can.isdigit()):
        shape = f"{len(can)} digits" if can.isascii() and can.isdigit() else f"{len(can)} characters"
        raise UsageError(f"--can must be the 6 digits printed on the card; got {shape}",
                          hint="The CAN is the last 6 digits of the 12-digit ID number on the card.")
    return can


def access_keys(args: argparse.Namespace, config: Config, fallback: list[AccessKey],
                stdin: TextIO | None = None) -> list[AccessKey]:
    """The keys to try, in order. ``fallback`` (a profile's or recording's own key)
    serves only when no access data is given."""
    _from_stdin(args, stdin or sys.stdin)
    given = [name for name in ("can", "mrz", "qr", "document_number") if getattr(args, name, None)]
    if len(given) > 1:
        raise UsageError(f"give one kind of access data, not {', '.join('--' + g.replace('_', '-') for g in given)}")
    try:
        if args.can:
            return [CanKey(check_can(args.can))]
        if args.mrz:
            from agent.icao.mrz import parse_mrz

            return [parse_mrz(args.mrz, no_expiry_year=config.card.no_expiry_year).access_key()]
        if args.document_number or args.birth_date or args.expiry_date:
            if not (args.document_number and args.birth_date and args.expiry_date):
                raise UsageError("--document-number needs --birth-date and --expiry-date (YYMMDD)")
            return [MrzKey(args.document_number.strip().upper(), args.birth_date, args.expiry_date)]
        if args.qr:
            from agent.qr.access_keys import access_keys_from_qr

            return list(access_keys_from_qr(args.qr, no_expiry_year=config.card.no_expiry_year))
    except ValueError as exc:
        raise UsageError(f"access data: {exc}",
                          hint="The CAN is 6 digits; MRZ dates are YYMMDD.") from None
    if fallback:
        return fallback
    raise UsageError("no access data: give --can, --mrz, --qr or --document-number/--birth-date/--expiry-date",
                      hint="The CAN is the last 6 digits of the 12-digit ID number on the card.")


# -- where the card is ----------------------------------------------------------------


@contextlib.contextmanager
def open_card(args: argparse.Namespace, config: Config
              ) -> Iterator[tuple[CardConnection, Callable[[int], bytes], list[AccessKey], dt.date | None]]:
    """(connection, rng, fallback keys, today) for --replay, --sim or a real reader."""
    if args.replay:
        from agent.readers.replay import ReplayConnection, ReplayRandom, load_fixture

        fixture = load_fixture(args.replay)
        meta = dict(fixture.meta)
        today = dt.date.fromisoformat(meta["today"]) if "today" in meta else None
        with ReplayConnection(fixture) as conn:
            yield conn, ReplayRandom(fixture.random), recording_keys(meta), today
        return
    if args.sim:
        from agent.readpath import make_backend
        from agent.sim.profile import ProfileError, load_profile, virtual_chip

        try:
            profile = load_profile(args.sim)
        except ProfileError as exc:
            raise UsageError(str(exc), hint="idagent sim --list shows the profiles.") from None
        backend = make_backend("sim", config, card=virtual_chip(profile))
        try:
            with backend.connect(backend.list_readers()[0].name) as conn:
                yield conn, os.urandom, profile_keys(profile), None
        finally:
            backend.close()
        return
    from agent.readers.registry import close_all, open_reader
    from agent.readpath import make_backend

    backends: list[Any] = []
    try:
        # no reader, no card, pcscd down: ReaderError subclasses, exit code 4
        backends = [make_backend(name, config) for name in config.readers.backends]
        with open_reader(backends, args.reader) as conn:
            yield conn, os.urandom, [], None
    finally:
        close_all(backends)


def profile_keys(profile: Any) -> list[AccessKey]:
    """A virtual chip's own keys: the CAN when it takes PACE, its MRZ data."""
    keys: list[AccessKey] = []
    if profile.pace_enabled and profile.can:
        keys.append(CanKey(profile.can))
    if profile.mrz_key is not None:
        keys.append(profile.mrz_key)
    return keys


def recording_keys(meta: dict[str, Any]) -> list[AccessKey]:
    """The access key a recording was made with (synthetic cards only)."""
    key = meta.get("key") or {}
    if "can" in key:
        return [CanKey(key["can"])]
    if "document_number" in key:
        return [MrzKey(key["document_number"], key["date_of_birth"], key["date_of_expiry"])]
    return []


# -- the read -------------------------------------------------------------------------


def exit_code(read: ChipRead) -> int:
    if not read.complete:
        return EXIT_READ_FAILED
    return EXIT_VERIFIED if read.verified else EXIT_NOT_VERIFIED


def run_read(args: argparse.Namespace, config: Config) -> int:
    # access data is checked before the card is touched
    _from_stdin(args, sys.stdin)
    if args.can:
        check_can(args.can)
    from agent.readpath import ChipReader

    # the daemon's read path, with every [card], [readers] and [trust] option of the config
    reader = ChipReader.from_config(config, csca_dir=args.trust)
    with open_card(args, config) as (conn, rng, fallback, today):
        keys = access_keys(args, config, fallback)
        read = reader.read_first(conn, keys, today=today, rng=rng)
    from agent.icao import signer_record

    signer_record.record(config.agent.state_dir, read.verification)  # for 'idagent trust last-read'
    from agent.identity.from_chip import identity_of, read_json

    identity = identity_of(read)
    photo_path = None
    if args.photo and identity.photo_jpeg:
        _write_private(Path(args.photo), identity.photo_jpeg)
        photo_path = args.photo
    if args.json:
        out = read_json(read, identity)
        out["photo_file"] = photo_path
        out["exit_code"] = exit_code(read)
        print(json.dumps(out, ensure_ascii=False, indent=1))
    else:
        print_human(read, photo_path)
    return exit_code(read)


# -- human output ---------------------------------------------------------------------


def _show(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    return str(value)


def _write_private(path: Path, data: bytes) -> None:
    """A face photo is personal data: owner-only (0600) whatever the umask, even when
    the file already existed with a wider mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(data)


def print_human(read: ChipRead, photo_path: str | None, out: Any = None) -> None:
    stream = out or sys.stdout
    from agent.identity.from_chip import identity_of, read_json

    ident = identity_of(read)
    data = read_json(read, ident)
    access = data["access"]
    print(f"Truy cập chip: {access.get('protocol', '?')}", file=stream)
    if data["identity"] is not None:
        for name in FIELDS:
            value = getattr(ident, name)
            if name == "sex":
                value = ident.sex_label or None
            if name == "date_of_expiry" and value is None and data["identity"].get("no_expiry"):
                value = NO_EXPIRY_LABEL
            if value is not None:
                print(f"  {LABELS.get(name, name)}: {_show(value)}", file=stream)
    if photo_path:
        print(f"  Ảnh chân dung: {photo_path}", file=stream)
    files = ", ".join(f"{name} {o['status']}" for name, o in data["files"].items())
    print(f"Tệp: {files}", file=stream)
    verification = read.verification
    print(f"Xác thực: {verification.status if verification is not None else 'not checked'}", file=stream)
    if verification is not None and verification.reason:
        print(f"  {verification.reason}", file=stream)
    if not read.complete:
        print("CẢNH BÁO: đọc chưa đủ dữ liệu (incomplete read)", file=stream)
    timing = data["timing"]
    print(f"{timing['apdus']} APDU, {timing['bytes_sent'] + timing['bytes_received']} byte, "
          f"{timing['seconds']:.2f} s", file=stream)
