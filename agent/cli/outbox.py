"""``idagent outbox``: see, retry, purge and run the outbox. Shows no personal data:
only ids, kinds, idempotency keys, attempts, times, the last error (or a note on a
delivered item) and the receiver's receipt (e.g. the OpenCPS dossier number)."""

from __future__ import annotations

import argparse
import json
import signal
import threading

from agent.config import Config
from agent.forward.outbox import Outbox, State


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("outbox", help="the forwarding outbox: list, retry, purge, run")
    sub = parser.add_subparsers(dest="outbox_command", metavar="ACTION")
    parser.set_defaults(handler=run_list, all_states=False)

    listing = sub.add_parser("list", help="pending and failed items (no personal data)")
    listing.add_argument("--all", dest="all_states", action="store_true", help="include delivered items")
    listing.set_defaults(handler=run_list)

    retry = sub.add_parser("retry", help="make a failed or waiting item due now")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("item_id", nargs="?", type=int, metavar="ID")
    which.add_argument("--all", dest="retry_all", action="store_true", help="every pending and failed item")
    retry.set_defaults(handler=run_retry)

    purge = sub.add_parser("purge", help="delete items (default: delivered ones)")
    purge.add_argument("--delivered", action="store_true")
    purge.add_argument("--failed", action="store_true")
    purge.add_argument("--all", dest="purge_all", action="store_true",
                       help="everything, pending items too (they will never be delivered)")
    purge.set_defaults(handler=run_purge)

    run = sub.add_parser("run", help="deliver in the foreground (when the daemon is not running)")
    run.add_argument("--until-empty", action="store_true", help="exit when nothing is pending")
    run.add_argument("--concurrency", type=int, default=4)
    run.set_defaults(handler=run_worker)


def run_list(args: argparse.Namespace, config: Config) -> int:
    states = [s.value for s in State] if args.all_states else [State.PENDING.value, State.FAILED.value]
    with Outbox.from_config(config) as outbox:
        items = outbox.list_items(states)
        counts = outbox.counts()
    if args.json:
        print(json.dumps({"counts": counts, "items": [i.to_dict() for i in items]}, indent=2))
        return 0
    print(f"pending {counts['pending']}, failed {counts['failed']}, delivered {counts['delivered']}")
    if items:
        print(f"{'ID':>6}  {'KIND':8} {'STATE':9} {'TRIES':>5}  {'NEXT TRY (UTC)':25}  RECEIPT / LAST ERROR")
    for i in items:
        d = i.to_dict()
        status = " ".join(x for x in (i.receipt or "", i.last_error or "") if x)
        print(f"{i.id:>6}  {i.kind:8} {i.state:9} {i.attempts:>5}  {d['next_try_at'] or '-':25}  {status}")
    return 0


def run_retry(args: argparse.Namespace, config: Config) -> int:
    with Outbox.from_config(config) as outbox:
        n = outbox.retry(None if args.retry_all else args.item_id)
    if args.json:
        print(json.dumps({"retried": n}))
    else:
        print(f"{n} item(s) due now")
    return 0


def run_purge(args: argparse.Namespace, config: Config) -> int:
    everything = args.purge_all
    delivered = everything or args.delivered or not (args.failed or everything)
    with Outbox.from_config(config) as outbox:
        n = outbox.purge(delivered=delivered, failed=everything or args.failed, pending=everything)
    if args.json:
        print(json.dumps({"purged": n}))
    else:
        print(f"{n} item(s) deleted")
    return 0


def run_worker(args: argparse.Namespace, config: Config) -> int:
    from agent.forward.worker import build_worker

    worker = build_worker(config, concurrency=args.concurrency)
    if threading.current_thread() is threading.main_thread():
        # SIGTERM finishes the deliveries in flight, then stops (a service manager's stop)
        signal.signal(signal.SIGTERM, lambda *_: worker.request_stop())
    try:
        worker.acquire()
        worker.run(until_empty=args.until_empty)
    except KeyboardInterrupt:
        pass
    finally:
        worker.close()
    if args.json:
        print(json.dumps({"delivered": worker.delivered, "failed_attempts": worker.failed_attempts}))
    else:
        print(f"delivered {worker.delivered}, failed attempts {worker.failed_attempts}")
    return 0
