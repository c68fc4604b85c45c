"""The account lifecycle's rows: one per transition (time, event, states, actor, reason),
written in the same transaction as the status it changes, and the queries of the lifecycle
(an account's history, the pending accounts whose opening is due).

Theory of operation (several processes): a transition updates ``accounts.status`` only where
it still has the value that was read (``UPDATE ... WHERE status = <from>``) and writes its
history row only if that update changed the row, so two processes applying the same event
record it once. The opening job reads due accounts with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so concurrent jobs share the work instead of waiting on each other; SQLite has a
single writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import DateTime, ForeignKey, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mailserver.store.models import ID, Account, Base

__all__ = ["AccountTransition", "TransitionRow", "record_transition", "history",
           "due_for_opening", "lock_account"]


class AccountTransition(Base):
    """One transition of an account's lifecycle."""

    __tablename__ = "account_transitions"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event: Mapped[str] = mapped_column(String(20))
    from_state: Mapped[str] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(80))  # "patient", "agent:<id>", "system:<job>"
    reason: Mapped[str] = mapped_column(String(300), default="")


@dataclass(frozen=True)
class TransitionRow:
    at: datetime
    event: str
    from_state: str
    to_state: str
    actor: str
    reason: str


async def lock_account(s: AsyncSession, account_id: int, *, sqlite: bool) -> Account | None:
    """The account, row-locked until the end of the transaction (PostgreSQL)."""
    q = select(Account).where(Account.id == account_id)
    if not sqlite:
        q = q.with_for_update()
    return (await s.execute(q)).scalars().first()


async def record_transition(s: AsyncSession, account_id: int, *, from_state: str,
                            to_state: str, event: str, actor: str, reason: str, at: datetime,
                            values: dict[str, object] | None = None) -> bool:
    """Move the account from ``from_state`` to ``to_state`` (with other column ``values``)
    and write its history row. False, and nothing written, when its status is no longer
    ``from_state``."""
    result = await s.execute(
        update(Account).where(Account.id == account_id, Account.status == from_state)
        .values(status=to_state, **(values or {}))
        .execution_options(synchronize_session=False))
    if getattr(result, "rowcount", 0) != 1:
        return False
    s.add(AccountTransition(account_id=account_id, at=at, event=event, from_state=from_state,
                            to_state=to_state, actor=actor[:80], reason=reason[:300]))
    await s.flush()
    return True


async def history(s: AsyncSession, account_id: int) -> list[TransitionRow]:
    rows = (await s.execute(select(AccountTransition).where(
        AccountTransition.account_id == account_id).order_by(
        AccountTransition.at, AccountTransition.id))).scalars().all()
    return [TransitionRow(r.at, r.event, r.from_state, r.to_state, r.actor, r.reason)
            for r in rows]


async def due_for_opening(s: AsyncSession, *, last_deadline: date, limit: int | None,
                          lock: bool) -> Sequence[Account]:
    """Pending patients whose deadline is ``last_deadline`` or earlier; with ``lock``
    (PostgreSQL), locked, skipping rows another transaction holds."""
    q = (select(Account).where(Account.kind == "patient", Account.status == "pending",
                               Account.open_deadline.is_not(None),
                               Account.open_deadline <= last_deadline)
         .order_by(Account.open_deadline, Account.id).limit(limit))
    if lock:
        q = q.with_for_update(skip_locked=True)
    return (await s.execute(q)).scalars().all()
