"""Read queries for the export of a patient's space (``mailserver.export``): which messages
the account holds, without their content (read one at a time by ``MailStore.read_raw``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from mailserver.store.db import Database
from mailserver.store.models import Message
from mailserver.store.records import utc

__all__ = ["StoredMessage", "ExportQueries"]


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message of an account (no content)."""

    id: int
    conversation_id: int | None
    internaldate: datetime
    size: int


class ExportQueries:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def messages_of(self, account_id: int) -> list[StoredMessage]:
        """Every message of the account, in every folder, once: a message copied to another
        folder (same storage key, same bytes) is listed once. Ordered by conversation (none
        last), then date."""
        q = (select(Message.id, Message.conversation_id, Message.internaldate, Message.size,
                    Message.blob_key)
             .where(Message.account_id == account_id)
             .order_by(Message.internaldate, Message.id))
        async with self.db.session() as s:
            rows = (await s.execute(q)).all()
        seen: set[str] = set()
        out = []
        for mid, conversation_id, when, size, storage_key in rows:
            if storage_key in seen:
                continue
            seen.add(storage_key)
            out.append(StoredMessage(mid, conversation_id, utc(when), size))
        out.sort(key=lambda m: (m.conversation_id is None, m.conversation_id or 0,
                                m.internaldate, m.id))
        return out
