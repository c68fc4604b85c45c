"""``mssante audit``: the operator's audit trail of mailbox actions (query, export), and the
row every mutating ``mssante`` command leaves in it (who ran it: ``--operator``, else
$SUDO_USER, else $USER)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
from datetime import UTC, date, datetime, timedelta

from mailserver.cli.common import Subparsers, add_command, load_config
from mailserver.migrations import ensure_schema
from mailserver.store.audit import Action, AuditEvent, AuditTrail, Channel, Origin
from mailserver.store.audit_queries import AuditQuery, AuditRecord, account_id_of, search
from mailserver.store.db import Database

__all__ = ["register", "record_command", "READ_ONLY", "operator_of"]

READ_ONLY = frozenset({
    "serve", "audit", "accounts show", "accounts inactive", "documents list", "documents audit",
    "dkim show", "queue list", "token list", "trust list"})
"""Commands that change nothing: no audit row (every other command leaves one)."""


def _moment(text: str, *, end: bool = False) -> datetime:
    """YYYY-MM-DD (00:00 UTC; with ``end``, the next day's) or an ISO 8601 date-time."""
    if len(text) == 10:
        day = date.fromisoformat(text) + (timedelta(days=1) if end else timedelta())
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _line(r: AuditRecord) -> str:
    details = json.dumps(r.details, separators=(",", ":"), sort_keys=True)
    return (f"{r.at:%Y-%m-%d %H:%M:%S}Z  {r.action:<17} {r.protocol:<10} "
            f"{r.address or '-':<32} {r.actor:<32} {r.client or '-':<15} {r.outcome:<11} "
            f"{details}")


def _audit(args: argparse.Namespace) -> int:
    if args.what == "export" and args.account is None and args.since is None:
        print("mssante: error: audit export needs --since (or --account)")
        return 2
    query = AuditQuery(address=args.account,
                       since=_moment(args.since) if args.since else None,
                       until=_moment(args.until, end=True) if args.until else None,
                       action=args.action)
    as_json = args.json or args.what == "export"
    config = load_config(args.data_dir)

    async def run() -> int:
        db = Database(config.database_url)
        try:
            await ensure_schema(config.database_url, migrate=False)
            count = 0
            if not as_json:
                print(f"{'time (UTC)':<21}{'action':<18}{'channel':<11}{'mailbox':<33}"
                      f"{'actor':<33}{'client':<16}{'outcome':<12}details")
            async for record in search(db, query):
                count += 1
                print(json.dumps(record.as_json(), ensure_ascii=False) if as_json
                      else _line(record))
            if not as_json:
                print(f"{count} event(s)")
            return 0
        finally:
            await db.close()

    return asyncio.run(run())


def operator_of(args: argparse.Namespace) -> str:
    """Who runs the command: ``--operator``, else the sudo caller, else the login name."""
    given = getattr(args, "operator", None)
    if given:
        return str(given)[:80]
    return os.environ.get("SUDO_USER") or os.environ.get("USER") or getpass.getuser()


def record_command(args: argparse.Namespace, outcome: str) -> None:
    """Leave the ``admin-command`` row of a mutating command (never fails the command)."""
    path = getattr(args, "command_path", "")
    data_dir = getattr(args, "data_dir", None)
    if not path or path in READ_ONLY or data_dir is None:
        return
    target = next((str(v).strip().lower() for k in ("email", "address")
                   if "@" in str(v := getattr(args, k, None) or "")), None)
    config = load_config(data_dir)

    async def run() -> None:
        db = Database(config.database_url)
        try:
            await ensure_schema(config.database_url, migrate=False)
            account = await account_id_of(db, target) if target else None
            await AuditTrail(db).append(AuditEvent(
                Action.ADMIN_COMMAND, Origin(Channel.CLI, actor=operator_of(args)), account,
                target, outcome, {"command": path}))
        finally:
            await db.close()

    asyncio.run(run())


def register(sub: Subparsers) -> None:
    p = add_command(sub, "audit", _audit,
                    help="the audit trail of mailbox actions (table, or JSON lines)")
    p.add_argument("what", nargs="?", choices=["export"],
                   help="export: JSON lines of every matching event (redirect to a file)")
    p.add_argument("--account", metavar="ADDR", help="the mailbox (or who acted)")
    p.add_argument("--since", metavar="DATE", help="YYYY-MM-DD or ISO 8601 (UTC)")
    p.add_argument("--until", metavar="DATE", help="up to the end of that day, or that instant")
    p.add_argument("--action", choices=[a.value for a in Action], metavar="KIND",
                   help="one kind: " + ", ".join(a.value for a in Action))
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
