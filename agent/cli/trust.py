"""``idagent trust``: the CSCA trust store. ``import FILE`` adds a CSCA certificate, a
CRL or an ICAO master list (signature checked first); ``list`` shows what is trusted
and until when."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agent.config import Config
from agent.icao.trust import TrustStore, crl_summary, import_file


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("trust", help="the CSCA trust store: import, list")
    sub = parser.add_subparsers(dest="trust_command", metavar="ACTION")
    parser.set_defaults(handler=run_list, trust_dir=None)

    imp = sub.add_parser("import", help="import a CSCA certificate, CRL or ICAO master list (.ml)")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--trust", dest="trust_dir", metavar="DIR", help="trust folder (default: [trust] csca_dir)")
    imp.set_defaults(handler=run_import)

    listing = sub.add_parser("list", help="trusted CSCAs: subject, country, key, valid until, fingerprint")
    listing.add_argument("--trust", dest="trust_dir", metavar="DIR", help="trust folder (default: [trust] csca_dir)")
    listing.set_defaults(handler=run_list)

    last = sub.add_parser("last-read", help="the signer chain of the last chip read (no personal data)")
    last.set_defaults(handler=run_last_read)


def _directory(args: argparse.Namespace, config: Config) -> str:
    return args.trust_dir or config.trust.csca_dir


def run_import(args: argparse.Namespace, config: Config) -> int:
    directory = _directory(args, config)
    report = import_file(args.file, directory)
    if getattr(args, "json", False):
        print(json.dumps({"directory": directory, **report.to_dict()}, indent=2, ensure_ascii=False))
        return 0
    counts = f"{len(report.added)} added to {directory}, {report.already_present} already there"
    if report.total > 1:
        counts += f", {len(report.skipped)} refused, of {report.total} certificates in the file"
    print(f"{report.kind}: {counts}")
    if report.signer:
        print(f"signed by: {report.signer} (signature and signer chain verified)")
    for name in report.added:
        print(f"  + {name}")
    for reason in report.skipped:
        print(f"  refused {reason}")
    if report.skipped:
        print(f"warning: {len(report.skipped)} certificate(s) of {Path(args.file).name} were not imported "
              "(reasons above); the others were", file=sys.stderr)
    return 0


def run_list(args: argparse.Namespace, config: Config) -> int:
    directory = _directory(args, config)
    store = TrustStore.load(directory)
    anchors = store.summaries()
    crls = [crl_summary(c) for c in store.crls]
    if getattr(args, "json", False):
        print(json.dumps({"directory": directory, "anchors": anchors, "crls": crls, "problems": store.problems},
                         indent=2, ensure_ascii=False))
        return 0
    if not anchors:
        print(f"{directory}: no CSCA certificates: no chip can be verified (see {directory}/README)")
    for a in anchors:
        kind = "link" if a["link"] else "root"
        print(f"{a['country'] or '--':2}  {a['valid_until']}  {kind:4}  {a['key']:40}  {a['common_name']}")
        print(f"    sha256 {a['fingerprint']}")
    for c in crls:
        print(f"CRL {c['issuer']}: {c['revoked']} revoked, next update {c['next_update'] or '-'}")
    for problem in store.problems:
        print(f"skipped file: {problem}")
    return 0


def run_last_read(args: argparse.Namespace, config: Config) -> int:
    """Which Document Signer and CSCA signed the last card read here (recorded by
    ``idagent read`` and the daemon in [agent] state_dir; agent.icao.signer_record)."""
    from agent.icao import signer_record

    data = signer_record.load(config.agent.state_dir)
    if data is None:
        print(f"no chip read recorded in {config.agent.state_dir} yet: read a card first", file=sys.stderr)
        return 3
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    passive = data.get("passive", {})
    print(f"last read {data.get('recorded', '?')}: {data.get('status')} (issuing state "
          f"{data.get('issuing_state') or '?'})")
    print(f"passive authentication: {passive.get('status')}: {passive.get('reason')}")
    chain = passive.get("chain") or ([passive["document_signer"]] if passive.get("document_signer") else [])
    for depth, name in enumerate(chain):
        print(f"  {'  ' * depth}{'signer' if depth == 0 else 'issuer'}: {name}")
    chip = data.get("chip", {})
    print(f"chip authentication: {chip.get('status')}: {chip.get('reason')}")
    return 0
