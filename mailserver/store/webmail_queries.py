"""Read queries on the core mail tables that the patient webmail needs.

The webmail writes no SQL: what it reads from the accounts, folders and messages tables beyond
the mail store's and the directory's own services is asked here (a repository of the store
package, like :mod:`mailserver.store.conversations`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from mailserver.store.db import Database
from mailserver.store.models import Account, Folder, Message
from mailserver.store.records import utc

__all__ = ["ConversationMessage", "WebmailQueries"]


@dataclass(frozen=True)
class ConversationMessage:
    """One stored copy of a conversation's message in the patient's mailbox."""

    conversation_id: int
    id: int
    folder: str
    folder_id: int
    uid: int
    flags: frozenset[str]
    internaldate: datetime


class WebmailQueries:
    """What the webmail reads from the core tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def conversation_messages(self, account_id: int, folders: Sequence[str],
                                    conversation_id: int | None = None
                                    ) -> list[ConversationMessage]:
        """The account's copies (in ``folders``) of its conversations' messages, oldest first;
        only those of ``conversation_id`` when given."""
        q = (select(Message.conversation_id, Message.id, Folder.name, Message.folder_id,
                    Message.uid, Message.flags, Message.internaldate)
             .join(Folder, Folder.id == Message.folder_id)
             .where(Message.account_id == account_id, Folder.name.in_(folders),
                    Message.conversation_id.is_not(None)))
        if conversation_id is not None:
            q = q.where(Message.conversation_id == conversation_id)
        async with self.db.session() as session:
            rows = (await session.execute(q.order_by(Message.internaldate, Message.id))).all()
        return [ConversationMessage(int(r[0] or 0), r[1], r[2], r[3], r[4],
                                    frozenset((r[5] or "").split()), utc(r[6])) for r in rows]

    async def login_id(self, account_id: int) -> str | None:
        """The login identifier the patient chose (None before the first connection)."""
        async with self.db.session() as s:
            value = (await s.execute(select(Account.login_id).where(
                Account.id == account_id))).scalar()
        return str(value) if value else None

    async def provisional_code_pending(self, account_id: int) -> bool:
        """True while the account's letter code has not been used."""
        async with self.db.session() as s:
            value = (await s.execute(select(Account.provisional_code_hash).where(
                Account.id == account_id))).scalar()
        return bool(value)
