"""``idagent intake test``: check the configured intake target without filing anything.

For ``[intake] target = "opencps"``: logs in to the portal and lists the procedures the
account may file at the counter (a read-only GET), then checks serviceCode,
govAgencyCode and dossierTemplateNo against that list. For the generic target it says
whether the receiver's URL answers. ``idagent intake serve-opencps`` runs the local
OpenCPS stand-in portal (synthetic site) for set-up trials.

Exit codes: 0 all checks pass, 7 the portal refused or lacks the procedure, 3 config.
"""

from __future__ import annotations

import argparse
import json

from agent.config import Config

UPSTREAM_EXIT = 7


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("intake", help="dossier intake: check the target (OpenCPS portal)")
    sub = parser.add_subparsers(dest="intake_command", metavar="ACTION")
    sub.required = True
    test = sub.add_parser("test", help="check credentials and procedure codes, filing nothing")
    test.set_defaults(handler=run_test)
    serve = sub.add_parser("serve-opencps", help="run the local OpenCPS stand-in portal (synthetic site)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8768)
    serve.set_defaults(handler=run_serve)


def run_test(args: argparse.Namespace, config: Config) -> int:
    if config.intake.target != "opencps":
        from agent.cli.doctor import check_intake

        check = check_intake(config)
        ok, lines = check.status != "fail", [f"{check.name}: {check.status} ({check.detail})"]
    else:
        from agent.forward.opencps import OpenCpsSettings, check_portal

        result = check_portal(OpenCpsSettings.from_config(config))
        ok, lines = result.ok, result.lines
    if args.json:
        print(json.dumps({"ok": ok, "target": config.intake.target, "checks": lines}, ensure_ascii=False))
    else:
        for line in lines:
            print(line)
        print("intake test: ok" if ok else "intake test: FAILED (nothing was filed)")
    return 0 if ok else UPSTREAM_EXIT


def run_serve(args: argparse.Namespace, config: Config) -> int:
    from agent.sim.services.opencps import main

    return main(["--host", args.host, "--port", str(args.port)])
