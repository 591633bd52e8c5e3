"""``idagent bhyt check`` (a card check against the configured gateway) and
``idagent bhyt serve`` (the local test gateway).

Exit codes: 0 when the gateway says the card is usable, 9 when it answered that the card
is not (not found, wrong name, wrong date of birth, expired ...: read ``status``), 7 when
there is no usable answer (gateway down, login refused, request rejected), 3 on bad input
or config.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from agent.api.render import lookup_body
from agent.config import Config
from agent.forward.bhyt import BhytClient, BhytSettings
from agent.forward.bhyt_result import BhytResult

UPSTREAM_EXIT = 7
#: the gateway answered about the card, and the card cannot be used (idagent --help)
NOT_USABLE_EXIT = 9


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("bhyt", help="BHYT health-insurance card check")
    sub = parser.add_subparsers(dest="bhyt_command", metavar="ACTION")
    sub.required = True

    check = sub.add_parser("check", help="check a card against the configured gateway ([bhyt] section)")
    who = check.add_mutually_exclusive_group(required=True)
    who.add_argument("--id", dest="card", metavar="N", help="12-digit ID number (CCCD)")
    who.add_argument("--card", dest="card", metavar="CODE", help="15-character BHYT card code")
    check.add_argument("--name", required=True, metavar="TEXT", help="full name as on the ID card")
    check.add_argument("--dob", required=True, metavar="DATE", help="date of birth: dd/MM/yyyy, yyyy-MM-dd or yyyy")
    check.set_defaults(handler=run_check)

    serve = sub.add_parser("serve", help="run the local BHYT test gateway (synthetic register)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8766)
    serve.add_argument("--register", default=None, help="register JSON (default: fixtures/bhyt/register.json)")
    serve.add_argument("--variant", default="", help="register variant, e.g. year_only")
    serve.set_defaults(handler=run_serve)


def run_check(args: argparse.Namespace, config: Config) -> int:
    settings = BhytSettings.from_config(config)
    result = BhytClient(settings).check(args.card, args.name, args.dob)
    if args.json:
        print(json.dumps(lookup_body(result), ensure_ascii=False, indent=2))
    else:
        print(format_result(result))
    if result.upstream_failure:
        return UPSTREAM_EXIT
    return 0 if result.usable else NOT_USABLE_EXIT


def format_result(result: BhytResult) -> str:
    lines = [f"status:    {result.status.value}" + (f" (code {result.code})" if result.code else ""),
             f"message:   {result.message_vi}", f"           {result.message_en}"]
    if result.card_code:
        lines.append(f"card:      {result.card_code}")
    if result.card_valid_from or result.card_valid_to:
        lines.append(f"valid:     {result.card_valid_from or '?'} to {result.card_valid_to or '?'}")
    if result.dob_sent:
        lines.append(f"DOB sent:  {' then '.join(result.dob_sent)}")
        matched = {"full": "the full date", "year": "the year only"}.get(result.dob_matched or "", "neither")
        lines.append(f"DOB match: {matched}" + (f" (insurance record: {result.insurance_dob})"
                                                 if result.insurance_dob else ""))
    if result.facility_code:
        lines.append(f"facility:  {result.facility_code}")
    if result.new_card:
        new: dict[str, Any] = dict(result.new_card)
        lines.append(f"new card:  {new.get('card_code')} valid {new.get('valid_from') or '?'} to "
                     f"{new.get('valid_to') or '?'} at {new.get('facility_code') or '?'}")
    return "\n".join(lines)


def run_serve(args: argparse.Namespace, config: Config) -> int:
    from agent.sim.services import bhyt as bhyt_service

    argv = ["--host", args.host, "--port", str(args.port), "--variant", args.variant]
    if args.register:
        argv += ["--register", args.register]
    return bhyt_service.main(argv)
