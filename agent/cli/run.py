"""``idagent run``: the desk daemon (readers, QR sources, local API, counter page).

Runs in the foreground until SIGTERM or Ctrl-C; SIGHUP re-reads the config file.
Prints the counter page's address with the API token in the URL fragment (the
fragment is never sent over the network nor logged; the page moves it to the tab's
session storage) when stdout is a terminal, or in ``--json`` output (a program's pipe).
The token is also in ``[api] token_file`` for desk software.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.config import Config


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "run", help="run the desk agent (readers, QR, local API and counter page)",
        description="Watch every configured card reader and QR source; serve the local API and the "
                    "counter page. Stop with Ctrl-C or SIGTERM; SIGHUP reloads the config.")
    parser.add_argument("--port", type=int, default=None, help="API port (default: [api] port)")
    parser.add_argument("--no-url", action="store_true",
                        help="do not print the counter page URL (it carries the API token)")
    parser.set_defaults(handler=run)


def page_url(host: str, port: int, token: str) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}/#token={token}"


def run(args: argparse.Namespace, config: Config) -> int:
    from agent.config import load_config
    from agent.daemon import Daemon, run_until_signalled

    path = getattr(args, "config", None)
    daemon = Daemon.from_config(config, config_loader=lambda: load_config(path), port=args.port)

    def ready() -> None:
        token = daemon._api.token
        url = page_url(daemon.config.api.host, daemon.port, token)
        if args.json:
            out = {"status": "running", "port": daemon.port, "token_file": daemon.config.api.token_file}
            if not args.no_url:
                out["page_url"] = url
            print(json.dumps(out), flush=True)
        else:
            # only to a terminal: under systemd stdout is the journal, readable by more
            # users than the 0600 token file
            if not args.no_url and sys.stdout.isatty():
                print(f"Counter page: {url}", flush=True)
            print(f"Local API on http://{daemon.config.api.host}:{daemon.port}/ "
                  f"(token in {daemon.config.api.token_file}). Stop with Ctrl-C.", file=sys.stderr, flush=True)

    return run_until_signalled(daemon, on_ready=ready)
