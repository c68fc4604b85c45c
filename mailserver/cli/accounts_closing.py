"""``mssante accounts close|reactivate|delete-archive|purge-due``: the phone line's agents and
the operator close a patient's space, reopen it, have its archive deleted, and purge the
archives closed ten years ago (see ``mailserver.directory.closing``)."""

from __future__ import annotations

import argparse
from datetime import date, datetime

from mailserver.app import Services
from mailserver.cli.accounts_lifecycle import _agent, _patient, describe_deletion
from mailserver.cli.common import (
    Subparsers,
    add_command,
    as_of_instant,
    command_group,
    with_services,
)
from mailserver.directory.closing import AccountClosing
from mailserver.lifecycle import State

__all__ = ["register"]


def _close(args: argparse.Namespace) -> int:
    async def run(s: Services) -> None:
        info = await _patient(s, args.ins)
        await s.closing.close(info.id, _agent(args.agent), args.reason or "by phone",
                              delete_archive=args.delete_archive)
        print(f"Space closed: {info.address} (archived; reactivation brings it back)")
        print("\n".join(describe_deletion(await s.closing.deletion_status(info.id))))

    with_services(args.data_dir, run)
    return 0


def _reactivate(args: argparse.Namespace) -> int:
    async def run(s: Services) -> None:
        info = await _patient(s, args.ins)
        emptied = State(info.status) is State.ARCHIVE_DELETED
        await s.closing.reactivate(info.id, _agent(args.agent), args.reason or "by phone")
        print(f"Space reopened: {info.address}" + (" (empty: its archive was deleted)"
                                                   if emptied else " (archived data back)"))
        if await s.directory.is_activated(info.id):
            print("The patient logs in with their usual identifier and password.")
        else:
            code = await s.directory.new_provisional_code(info.id)
            print(f"Provisional code for the first connection: {code}")

    with_services(args.data_dir, run)
    return 0


def _delete_archive(args: argparse.Namespace) -> int:
    async def run(s: Services) -> None:
        info = await _patient(s, args.ins)
        status = await s.closing.request_deletion(info.id, _agent(args.agent))
        print("\n".join(describe_deletion(status)))
        done = await s.closing.erase_due()
        if info.address in done:
            print(f"Archive deleted now: {info.address}")

    with_services(args.data_dir, run)
    return 0


async def _purge_pass(closing: AccountClosing, as_of: datetime | None, dry_run: bool) -> None:
    if dry_run:
        due = await closing.purge_candidates(as_of=as_of)
        for _account_id, address in due:
            print(f"would purge {address}")
        print(f"{len(due)} archive(s) due")
        return
    purged = await closing.purge_due(as_of=as_of)
    for address in purged:
        print(f"purged {address}")
    print(f"{len(purged)} archive(s) purged")


def _purge_due(args: argparse.Namespace) -> int:
    as_of = as_of_instant(args.as_of, dry_run=args.dry_run,
                          what="purges archives before their 10 years")

    async def run(s: Services) -> None:
        await _purge_pass(s.closing, as_of, args.dry_run)

    with_services(args.data_dir, run)
    return 0


def register(sub: Subparsers) -> None:
    acc = command_group(sub, "accounts", help="patient account lifecycle (agents, operator)")
    for name, func, text in (
            ("close", _close, "close an open space (its data is archived for 10 years)"),
            ("reactivate", _reactivate, "reopen a closed space (its archived data comes back)"),
            ("delete-archive", _delete_archive, "delete a closed space's archive (express "
                                                "request; after the configured delay)")):
        p = add_command(acc, name, func, help=text)
        p.add_argument("--ins", required=True)
        p.add_argument("--agent", required=True, help="the agent's identifier")
        if name != "delete-archive":
            p.add_argument("--reason", default="", help="a short note kept in the history")
        if name == "close":
            p.add_argument("--delete-archive", action="store_true",
                           help="also delete the archive (the patient's express request)")
    p = add_command(acc, "purge-due", _purge_due,
                    help="purge the archives closed 10 years ago (idempotent)")
    p.add_argument("--as-of", type=date.fromisoformat, metavar="YYYY-MM-DD",
                   help="judge the 10 years as on 00:00 Europe/Paris of this day")
    p.add_argument("--dry-run", action="store_true", help="list, do not purge")



