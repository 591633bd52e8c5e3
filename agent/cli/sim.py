"""``idagent sim``: put a virtual CCCD chip on the real PC/SC stack (pcscd + the vpcd
driver of Debian's vsmartcard-vpcd) until Ctrl-C, so that ``idagent read`` (or any
PC/SC application) reads it through pyscard and pcscd exactly like a card on a reader.

Profiles are the synthetic citizens of fixtures/profiles (``--list``); a variant is
named ``<profile>+<variant>`` (e.g. ``nguyen-van-an+tampered-dg13``).
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

from agent.errors import ConfigError, ReaderError

if TYPE_CHECKING:
    from agent.config import Config

DEFAULT_PROFILE = "nguyen-van-an"
#: how long to wait for pcscd's vpcd driver to accept the card
CONNECT_TIMEOUT = 10.0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "sim", help="serve a virtual chip ID card on the PC/SC stack (vpcd) until Ctrl-C",
        description=__doc__)
    parser.add_argument("--profile", metavar="NAME",
                        help=f"card profile (default: readers.sim_profile or {DEFAULT_PROFILE})")
    parser.add_argument("--port", type=int, default=None, metavar="PORT",
                        help="vpcd port: 35963 = 'Virtual PCD 00 00', 35964 = '... 00 01'")
    parser.add_argument("--list", action="store_true", help="list the profiles and exit")
    parser.set_defaults(handler=run_sim)


def profile_summaries() -> list[dict[str, Any]]:
    from agent.sim.profile import VARIANTS, list_profiles, load_spec

    out = []
    for name in list_profiles():
        spec = load_spec(name)
        out.append({"name": name, "access": spec.card.access.upper(), "can": spec.person.can,
                    "description": spec.description, "variants": list(VARIANTS)})
    return out


def how_to_read(reader: str, profile: Any) -> str:
    if profile.pace_enabled and profile.can:
        key = f"--can {profile.can}"
    else:
        mrz = profile.mrz_key
        key = (f"--document-number {mrz.document_number} --birth-date {mrz.date_of_birth} "
               f"--expiry-date {mrz.date_of_expiry}")
    return f"idagent read --reader '{reader}' {key} --trust fixtures/pki/store"


def run_sim(args: argparse.Namespace, config: Config) -> int:
    if args.list:
        summaries = profile_summaries()
        if args.json:
            print(json.dumps(summaries, ensure_ascii=False, indent=1))
        else:
            for item in summaries:
                print(f"{item['name']:<22} {item['access']:<5} CAN {item['can']}  {item['description']}")
        return 0
    from agent.sim.pcscd import ensure_pcscd, missing_prerequisites
    from agent.sim.profile import ProfileError, load_profile, virtual_chip
    from agent.sim.vpcd import VPCD_PORT, VpcdClient

    name = args.profile or config.readers.sim_profile or DEFAULT_PROFILE
    try:
        profile = load_profile(name)
    except ProfileError as exc:
        raise ConfigError(str(exc), hint="idagent sim --list shows the profiles.") from None
    missing = missing_prerequisites()
    if missing:
        raise ReaderError(f"cannot run the virtual reader: missing {', '.join(missing)}",
                          hint="Run scripts/setup.sh, or install the named Debian packages.")
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        with ensure_pcscd(), VpcdClient(virtual_chip(profile), port=args.port or VPCD_PORT) as client:
            if not client.wait_connected(CONNECT_TIMEOUT):
                raise ReaderError("vpcd did not accept the virtual card",
                                  hint="Check that pcscd loads /etc/reader.conf.d/vpcd (idagent doctor).")
            from agent.readers.pcsc import wait_for_card

            # pcscd notices the card at vpcd's next presence poll (~0.4 s): say "serving"
            # only once a reader client would see it
            if not wait_for_card(client.reader, True, CONNECT_TIMEOUT):
                raise ReaderError(f"pcscd did not report the virtual card in '{client.reader}'",
                                  hint="Restart pcscd (sudo systemctl restart pcscd) and try again.")
            message = {"status": "serving", "profile": name, "reader": client.reader,
                       "read_with": how_to_read(client.reader, profile)}
            if args.json:
                print(json.dumps(message, ensure_ascii=False), flush=True)
            else:
                print(f"Virtual card '{name}' is on reader '{client.reader}'. Read it with:", flush=True)
                print(f"  {message['read_with']}", flush=True)
                print("Ctrl-C stops.", flush=True)
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
