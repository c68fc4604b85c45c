"""``mssante accounts inactive``: the professional mailboxes the inactivity rule concerns."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, time

from mailserver.app import Services, inactivity_sweep
from mailserver.cli.common import Subparsers, add_command, command_group, with_services
from mailserver.directory.inactivity import Planned, Step

__all__ = ["register", "describe"]

_NEXT = {Step.NOTICE: "notice due now", Step.MARK: "mark due now"}


def describe(plan: Planned) -> str:
    """One line of the preview."""
    a = plan.account
    last = f"last login {a.last_activity:%Y-%m-%d}" if a.logged_in \
        else f"never logged in (created {a.last_activity:%Y-%m-%d})"
    if a.marked_at is not None:
        state = f"marked {a.marked_at:%Y-%m-%d}, deletion date {plan.delete_on:%Y-%m-%d}"
    elif plan.step in _NEXT:
        state = f"{_NEXT[plan.step]}; marked from {plan.mark_on:%Y-%m-%d}"
    else:
        notice = f"notice sent {a.notice_at:%Y-%m-%d}; " if a.notice_at else ""
        state = f"{notice}marked from {plan.mark_on:%Y-%m-%d}"
    return f"{a.address}  {last}  {state}"


def _inactive(args: argparse.Namespace) -> int:
    day: date = args.as_of or datetime.now(UTC).date()
    as_of = datetime.combine(day, time(0, 0), UTC)

    async def run(s: Services) -> tuple[list[Planned], int]:
        return await inactivity_sweep(s).preview(as_of), s.config.inactivity.notice_days

    plans, days = with_services(args.data_dir, run)
    for plan in plans:
        print(describe(plan))
    print(f"{len(plans)} professional mailboxes unused for {days} days or more as of "
          f"{day:%Y-%m-%d} (patients excluded)")
    return 0


def register(sub: Subparsers) -> None:
    accounts = command_group(sub, "accounts", help="accounts")
    p = add_command(accounts, "inactive", _inactive,
                    help="preview the inactive professional mailboxes (notice, mark)")
    p.add_argument("--as-of", type=date.fromisoformat, metavar="YYYY-MM-DD",
                   help="judge as on 00:00 UTC of that day (default: today)")
