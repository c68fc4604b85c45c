"""``mssante queue list | show ID | retry ID | drop ID | flush``: the outbound queue."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from mailserver.app import Services
from mailserver.cli.common import Subparsers, add_command, command_group, with_services
from mailserver.outbound.queue import OutboundQueue, QueueEntry

__all__ = ["register"]


def _queue(s: Services) -> OutboundQueue:
    q = s.queue
    assert isinstance(q, OutboundQueue)
    return q


def _when(value: datetime) -> str:
    delta = (value - datetime.now(UTC)).total_seconds()
    stamp = value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{stamp} (now)" if delta <= 0 else f"{stamp} (in {int(delta)}s)"


def _as_dict(e: QueueEntry) -> dict[str, object]:
    return {
        "id": e.id, "state": e.state, "from": e.mail_from or "<>", "size": e.size,
        "domains": list(e.domains), "attempts": e.attempts, "last_error": e.last_error,
        "created": e.created_at.isoformat(), "next_attempt": e.next_attempt.isoformat(),
        "envid": e.envid, "ret": e.ret, "delay_warned": e.delay_warned,
        "recipients": [{"address": r.address, "state": r.state, "attempts": r.attempts,
                        "notify": r.notify, "orcpt": r.orcpt, "last_error": r.last_error,
                        "remote_mta": r.remote_mta} for r in e.recipients],
    }


def _list(args: argparse.Namespace) -> int:
    async def run(s: Services) -> list[QueueEntry]:
        return await _queue(s).list(include_done=args.all)

    entries = with_services(args.data_dir, run)
    if args.json:
        print(json.dumps([_as_dict(e) for e in entries], indent=2))
        return 0
    if not entries:
        print("Queue is empty")
        return 0
    print(f"{'ID':>6}  {'SIZE':>9}  {'TRIES':>5}  {'NEXT ATTEMPT':<32}  DOMAINS / LAST ERROR")
    for e in entries:
        pending = sum(1 for r in e.recipients if r.state == "pending")
        print(f"{e.id:>6}  {e.size:>9}  {e.attempts:>5}  {_when(e.next_attempt):<32}  "
              f"{','.join(e.domains)} ({pending} pending)")
        if e.last_error:
            print(f"{'':>60}{e.last_error[:120]}")
    print(f"{len(entries)} message(s)")
    return 0


def _show(args: argparse.Namespace) -> int:
    async def run(s: Services) -> QueueEntry | None:
        return await _queue(s).get(args.id)

    e = with_services(args.data_dir, run)
    if e is None:
        print(f"no queued message {args.id}")
        return 1
    if args.json:
        print(json.dumps(_as_dict(e), indent=2))
        return 0
    print(f"Message {e.id} [{e.state}] from <{e.mail_from}>, {e.size} bytes")
    print(f"  queued {e.created_at.isoformat()}, {e.attempts} attempt(s), next "
          f"{_when(e.next_attempt)}")
    if e.envid or e.ret:
        print(f"  ENVID={e.envid or '-'} RET={e.ret or '-'}")
    if e.last_error:
        print(f"  last error: {e.last_error}")
    for r in e.recipients:
        print(f"  {r.address}: {r.state}, {r.attempts} attempt(s)"
              + (f", NOTIFY={r.notify}" if r.notify else "")
              + (f", via {r.remote_mta}" if r.remote_mta else "")
              + (f"\n      {r.last_error}" if r.last_error else ""))
    return 0


def _retry(args: argparse.Namespace) -> int:
    async def run(s: Services) -> bool:
        return await _queue(s).retry_now(args.id)

    if not with_services(args.data_dir, run):
        print(f"no active queued message {args.id}")
        return 1
    print(f"Message {args.id} will be retried now")
    return 0


def _drop(args: argparse.Namespace) -> int:
    async def run(s: Services) -> bool:
        return await _queue(s).drop(args.id)

    if not with_services(args.data_dir, run):
        print(f"no queued message {args.id}")
        return 1
    print(f"Message {args.id} dropped (no report is sent)")
    return 0


def register(sub: Subparsers) -> None:
    qs = command_group(sub, "queue", help="the outbound queue")
    p = add_command(qs, "list", _list, help="queued messages")
    p.add_argument("--all", action="store_true", help="include finished messages")
    p.add_argument("--json", action="store_true")
    for name, func, text in (("show", _show, "one message with its recipients"),
                             ("retry", _retry, "attempt a message now"),
                             ("drop", _drop, "delete a message without notice")):
        p = add_command(qs, name, func, help=text)
        p.add_argument("id", type=int)
        if name == "show":
            p.add_argument("--json", action="store_true")
