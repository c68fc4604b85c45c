"""The one "sent once" record of the messages the system itself sends.

One row per (kind, account, subject): a read receipt (``RECEIPT``, subject = the stored message
the reader opened) is sent at most once; the new-message notice to a patient's personal address
(``NOTICE``, subject 0: one row per patient) records when it was last mailed and the newest
message it announced, so notices are grouped (at most one per interval while an announced
message is unread). Claims are written *before* sending: two workers or two open pages never
send twice; a notice whose mailing failed is released (its job is retried).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, ForeignKey, String, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mailserver.errors import StoreError
from mailserver.store.db import Database
from mailserver.store.models import ID, Base, Folder, Message

__all__ = ["SentRecord", "SentRecords", "Previous", "RECEIPT", "NOTICE"]

RECEIPT = "receipt"
NOTICE = "notice"


class SentRecord(Base):
    """A system message sent (or being sent): read receipt or patient notice."""

    __tablename__ = "system_sent"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    subject_id: Mapped[int] = mapped_column(ID, primary_key=True)
    """The stored message a receipt answers; 0 for the (one per patient) notice."""
    message_id: Mapped[int] = mapped_column(ID, default=0)
    """The newest stored message announced (notices)."""
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Previous:
    """The notice record before a claim, restored if mailing fails (None: there was none)."""

    sent_at: datetime
    message_id: int


def _lost_race(exc: StoreError) -> bool:
    """A write refused because another writer inserted the same record first (the group
    commit hands the database's IntegrityError over as the StoreError's cause)."""
    return isinstance(exc.__cause__, IntegrityError)


def _utc(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class SentRecords:
    """Repository of :class:`SentRecord`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def claim_once(self, kind: str, account_id: int, subject_id: int) -> bool:
        """Record that ``kind`` is sent for (account, subject); False if it already was."""
        async def op(s: AsyncSession) -> bool:
            if await s.get(SentRecord, (kind, account_id, subject_id)) is not None:
                return False
            s.add(SentRecord(kind=kind, account_id=account_id, subject_id=subject_id,
                             message_id=subject_id, sent_at=datetime.now(UTC)))
            await s.flush()
            return True

        try:
            return await self.db.write(op)
        except StoreError as exc:
            if _lost_race(exc):  # claimed by another writer at this very moment
                return False
            raise

    async def claim_notice(self, account_id: int, message_id: int, interval: timedelta
                           ) -> tuple[bool, Previous | None]:
        """(send it?, the previous record to restore if mailing fails).

        Not sent while a message the last notice announced (INBOX, id <= its newest) is still
        unread and the last notice is younger than ``interval``.
        """
        now = datetime.now(UTC)

        async def op(s: AsyncSession) -> tuple[bool, Previous | None]:
            row = await s.get(SentRecord, (NOTICE, account_id, 0),
                              with_for_update=not self.db.is_sqlite)
            if row is None:
                s.add(SentRecord(kind=NOTICE, account_id=account_id, subject_id=0,
                                 sent_at=now, message_id=message_id))
                return True, None
            previous = Previous(_utc(row.sent_at), row.message_id)
            if now - previous.sent_at < interval \
                    and await _announced_unread(s, account_id, row.message_id):
                return False, previous
            row.sent_at, row.message_id = now, max(message_id, row.message_id)
            return True, previous

        try:
            return await self.db.write(op)
        except StoreError as exc:
            if _lost_race(exc):  # another worker sent the first notice at this very moment
                return False, None
            raise

    async def release_notice(self, account_id: int, previous: Previous | None) -> None:
        """Undo :meth:`claim_notice` (mailing failed)."""
        async def op(s: AsyncSession) -> None:
            row = await s.get(SentRecord, (NOTICE, account_id, 0))
            if row is None:
                return
            if previous is None:
                await s.delete(row)
            else:
                row.sent_at, row.message_id = previous.sent_at, previous.message_id

        await self.db.write(op)

    async def last_notice(self, account_id: int) -> Previous | None:
        """The last notice mailed to a patient (None: never)."""
        async with self.db.session() as s:
            row = await s.get(SentRecord, (NOTICE, account_id, 0))
            return None if row is None else Previous(_utc(row.sent_at), row.message_id)

    async def set_notice_time(self, account_id: int, sent_at: datetime) -> None:
        """Move the last notice's time (operators' tools and tests)."""
        async def op(s: AsyncSession) -> None:
            row = await s.get(SentRecord, (NOTICE, account_id, 0))
            if row is not None:
                row.sent_at = sent_at

        await self.db.write(op)


async def _announced_unread(s: AsyncSession, account_id: int, up_to_message: int) -> bool:
    """Is a message the last notice announced (INBOX, id <= its newest) still unread?"""
    q = (select(Message.id).join(Folder, Folder.id == Message.folder_id)
         .where(Message.account_id == account_id, Folder.name == "INBOX",
                Message.id <= up_to_message,
                or_(Message.flags.is_(None),
                    ~Message.flags.contains("\\Seen", autoescape=True)))
         .limit(1))
    return (await s.execute(q)).first() is not None
