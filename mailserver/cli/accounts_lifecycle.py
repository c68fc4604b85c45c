"""``mssante accounts show|oppose|activate|reissue-code|open-due``: the phone line's agents
and the operator act on a patient account's lifecycle (see ``mailserver.lifecycle``)."""

from __future__ import annotations

import argparse
from datetime import date, datetime

from mailserver.app import Services
from mailserver.cli.common import (
    Subparsers,
    add_command,
    as_of_instant,
    command_group,
    with_services,
)
from mailserver.directory.closing import DeletionStatus
from mailserver.directory.opening import JOB_NAME, OpeningJob
from mailserver.directory.service import AccountInfo, AccountLifecycle
from mailserver.errors import NotFound, ValidationError
from mailserver.identifiers import validate_ins
from mailserver.lifecycle import PARIS, Actor, Event

__all__ = ["register", "describe", "describe_deletion"]


def _when(moment: datetime) -> str:
    return moment.astimezone(PARIS).strftime("%Y-%m-%d %H:%M %Z")


def describe(info: AccountInfo, life: AccountLifecycle) -> list[str]:
    """The lines ``accounts show`` prints: state, deadline if pending, history."""
    lines = [f"Account: {info.address}",
             f"State: {life.state.value} (since {_when(life.since)})"]
    if life.deadline is not None and life.opens_at is not None:
        lines.append(f"Deadline to oppose: {life.deadline.isoformat()} (opens automatically "
                     f"on {_when(life.opens_at)})")
    lines.append("History:" if life.history else "History: none")
    for r in life.history:
        reason = f"  ({r.reason})" if r.reason else ""
        lines.append(f"  {_when(r.at)}  {r.event}: {r.from_state} -> {r.to_state}  "
                     f"by {r.actor}{reason}")
    return lines


def describe_deletion(status: DeletionStatus | None) -> list[str]:
    """The lines about a deletion request (``accounts show``, ``close``, ``delete-archive``)."""
    if status is None:
        return []
    lines = [f"Deletion requested: {_when(status.requested_at)}"]
    if status.done and status.effective_at is not None:
        lines.append(f"Archive deleted: {_when(status.effective_at)}")
    elif status.effective_at is not None:
        lines.append(f"Archive deletion effective: {_when(status.effective_at)}")
    else:
        lines.append("Archive deletion effective: when the space is closed")
    return lines


async def _patient(s: Services, ins: str) -> AccountInfo:
    info = await s.directory.by_ins(validate_ins(ins))
    if info is None or not info.is_patient:
        raise NotFound("no patient account with this INS")
    return info


def _agent(agent_id: str) -> Actor:
    try:
        return Actor.agent(agent_id)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


def _show(args: argparse.Namespace) -> int:
    async def run(s: Services) -> None:
        info = await _patient(s, args.ins)
        lines = describe(info, await s.directory.lifecycle(info.id))
        lines += describe_deletion(await s.closing.deletion_status(info.id))
        print("\n".join(lines))

    with_services(args.data_dir, run)
    return 0


def _oppose(args: argparse.Namespace) -> int:
    async def run(s: Services) -> None:
        info = await _patient(s, args.ins)
        await s.directory.transition(info.id, Event.OPPOSE, _agent(args.agent),
                                     args.reason or "by phone")
        print(f"Opposition recorded: {info.address} is opposed (no mail is accepted for it).")

    with_services(args.data_dir, run)
    return 0


def _activate(args: argparse.Namespace) -> int:
    async def run(s: Services) -> None:
        info = await _patient(s, args.ins)
        _state, code = await s.directory.transition(
            info.id, Event.ACTIVATE, _agent(args.agent), args.reason or "by phone",
            reissue_code=True)
        print(f"Account opened: {info.address}")
        print(f"Provisional code: {code}")

    with_services(args.data_dir, run)
    return 0


def _reissue(args: argparse.Namespace) -> int:
    async def run(s: Services) -> None:
        info = await _patient(s, args.ins)
        code = await s.directory.new_provisional_code(info.id)
        print(f"New provisional code for {info.address}: {code} (the previous one no longer "
              "works)")

    with_services(args.data_dir, run)
    return 0


def _open_due(args: argparse.Namespace) -> int:
    as_of = as_of_instant(args.as_of, dry_run=args.dry_run,
                          what="opens accounts before their deadline")

    async def run(s: Services) -> None:
        if args.dry_run:
            due = await s.directory.due_for_opening(as_of=as_of)
            for address in due:
                print(f"would open {address}")
            print(f"{len(due)} account(s) due")
            return
        opened = await OpeningJob(s.directory).run_once(as_of)
        for address in opened:
            print(f"opened {address}")
        print(f"{len(opened)} account(s) opened by {JOB_NAME}")

    with_services(args.data_dir, run)
    return 0


def register(sub: Subparsers) -> None:
    acc = command_group(sub, "accounts", help="patient account lifecycle (agents, operator)")
    p = add_command(acc, "show", _show, help="print an account's state, deadline and history")
    p.add_argument("--ins", required=True)
    for name, func, text in (
            ("oppose", _oppose, "record a patient's opposition (pending accounts)"),
            ("activate", _activate, "open a pending or opposed account and print a new "
                                    "provisional code for the first connection")):
        p = add_command(acc, name, func, help=text)
        p.add_argument("--ins", required=True)
        p.add_argument("--agent", required=True, help="the agent's identifier")
        p.add_argument("--reason", default="", help="a short note kept in the history")
    p = add_command(acc, "reissue-code", _reissue,
                    help="print a new provisional code (the previous one stops working)")
    p.add_argument("--ins", required=True)
    p = add_command(acc, "open-due", _open_due,
                    help="open the pending accounts whose deadline passed (idempotent)")
    p.add_argument("--as-of", type=date.fromisoformat, metavar="YYYY-MM-DD",
                   help="judge deadlines as on 00:00 Europe/Paris of this day")
    p.add_argument("--dry-run", action="store_true", help="list, do not open")
