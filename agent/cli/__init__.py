"""The ``idagent`` command line.

Each area registers its own subcommands (``agent.cli.<area>.register``); this module
builds the root parser, loads the config, sets up logging and turns errors into the
documented exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from agent import __version__
from agent.errors import IdAgentError

logger = logging.getLogger(__name__)

#: the area modules, in the order their subcommands appear in --help
AREAS = ("readers", "read", "verify", "qr", "trust", "bhyt", "intake", "outbox", "run", "sim", "doctor")

EXIT_CODES = """\
exit codes:
  0  success (for read: read and verified)
  1  unexpected error (a bug: please report it with the log)
  2  card read, but NOT verified (see the verification reasons)
  3  usage or configuration error
  4  no reader, no card, or pcscd not running
  5  access denied: wrong CAN or MRZ data
  6  read failed: card removed, protocol or secure-messaging error
  7  upstream service error (BHYT gateway, dossier intake)
  8  QR code not decoded, or not a CCCD QR code
  9  bhyt check: the gateway answered, and the card is not usable
     (not found, wrong name, wrong date of birth, expired ...: see "status")

environment: IDAGENT_CONFIG=file, IDAGENT_<SECTION>__<KEY>=value overrides a config key.
"""


def _add_json(parser: argparse.ArgumentParser) -> None:
    """Give every (sub)parser a --json flag that does not reset the root's value."""
    if not any("--json" in a.option_strings for a in parser._actions):
        parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                            help="print machine-readable JSON")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _add_json(sub)


class ArgumentParser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error; here 2 means "read but not verified", so a
    mistyped option exits 3 (usage or configuration error), as documented."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(3, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="idagent",
        description="Reads Vietnamese chip ID cards (CCCD) and their QR codes into a verified "
                    "identity for reception desks.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"idagent {__version__}")
    parser.add_argument("--config", metavar="PATH",
                        help="config file (TOML); default: $IDAGENT_CONFIG or built-in defaults")
    parser.add_argument("--json", action="store_true", default=False, help="print machine-readable JSON")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for area in AREAS:
        try:
            module = importlib.import_module(f"agent.cli.{area}")
        except ModuleNotFoundError as exc:
            # only a missing area module itself is tolerated (tests/test_cli.py asserts
            # that every area is present); a missing dependency inside one is a real error
            if exc.name != f"agent.cli.{area}":
                raise
            continue
        module.register(sub)
    _add_json(parser)
    return parser


def _print_error(err: IdAgentError, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"error": err.to_dict()}, ensure_ascii=False), file=sys.stdout)
    else:
        print(f"error: {err.message}", file=sys.stderr)
        print(f"hint: {err.hint}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 3
    from agent.config import load_config
    from agent.logs import setup_logging

    try:
        config = load_config(args.config)
    except IdAgentError as err:
        _print_error(err, args.json)
        return 3
    level = config.agent.log_level
    if args.verbose:
        level = "DEBUG" if args.verbose > 1 else "INFO"
    elif args.command not in ("run", "sim"):
        # one-shot commands print their result; the log only carries warnings
        level = "WARNING" if level in ("DEBUG", "INFO") else level
    setup_logging(level, config.agent.log_format)
    try:
        return int(args.handler(args, config))
    except IdAgentError as err:
        logger.debug("command failed: %s", err.code)
        _print_error(err, args.json)
        return int(getattr(err, "exit_code", 1))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader of our output went away (``idagent trust list | head``): no
        # traceback; point stdout at /dev/null so the exit-time flush stays quiet too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command killed by it


def run() -> None:
    sys.exit(main())
