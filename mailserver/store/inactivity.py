"""Last logins and the inactive professional mailboxes (``accounts.last_login_at``,
``inactive_notice_at``, ``inactive_marked_at``).

A login is written at most once an hour per account (the caller compares with the value it
already read), so mail clients reconnecting all day cost one small UPDATE an hour, never one
per IMAP command. A login clears the notice and the mark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.store.db import Database
from mailserver.store.models import Account
from mailserver.store.records import utc

__all__ = ["InactiveAccount", "login_is_stale", "record_login", "inactive_professionals",
           "set_notice", "set_marked", "LOGIN_RESOLUTION"]

LOGIN_RESOLUTION = timedelta(hours=1)


@dataclass(frozen=True)
class InactiveAccount:
    id: int
    address: str
    last_activity: datetime
    """Last login, or the creation of the mailbox when it never logged in."""
    logged_in: bool
    notice_at: datetime | None
    marked_at: datetime | None


def login_is_stale(last_login: datetime | None, notice: datetime | None,
                   marked: datetime | None, now: datetime) -> bool:
    """Whether a login at ``now`` must be written (see the module docstring)."""
    return (last_login is None or notice is not None or marked is not None
            or now - utc(last_login) >= LOGIN_RESOLUTION)


async def record_login(db: Database, account_id: int, now: datetime) -> None:
    async def op(s: AsyncSession) -> None:
        await s.execute(update(Account).where(Account.id == account_id).values(
            last_login_at=now, inactive_notice_at=None, inactive_marked_at=None))

    await db.write(op)


async def inactive_professionals(db: Database, before: datetime, *, limit: int = 1000
                                 ) -> list[InactiveAccount]:
    """Open professional mailboxes with no login (else no creation) since ``before``, the
    longest unused first."""
    activity = func.coalesce(Account.last_login_at, Account.created_at)
    query = (select(Account.id, Account.address, Account.last_login_at, Account.created_at,
                    Account.inactive_notice_at, Account.inactive_marked_at)
             .where(Account.kind == "pro", Account.status == "open", activity < before)
             .order_by(activity).limit(limit))
    async with db.session() as s:
        rows = (await s.execute(query)).all()
    return [InactiveAccount(r[0], r[1], utc(r[2] or r[3]), r[2] is not None,
                            utc(r[4]) if r[4] else None, utc(r[5]) if r[5] else None)
            for r in rows]


async def _stamp(db: Database, ids: Sequence[int], **values: datetime) -> None:
    async def op(s: AsyncSession) -> None:
        await s.execute(update(Account).where(Account.id.in_(list(ids))).values(**values))

    if ids:
        await db.write(op)


async def set_notice(db: Database, ids: Sequence[int], now: datetime) -> None:
    await _stamp(db, ids, inactive_notice_at=now)


async def set_marked(db: Database, ids: Sequence[int], now: datetime) -> None:
    await _stamp(db, ids, inactive_marked_at=now)
