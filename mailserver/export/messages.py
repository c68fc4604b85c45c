"""The export's message reader over the mail store (the ``MessageReader`` protocol of
:mod:`mailserver.export.archive`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mailserver.store.conversations import Conversations
from mailserver.store.export_queries import ExportQueries, StoredMessage
from mailserver.store.mailstore import MailStore

__all__ = ["StoreMessages"]


class StoreMessages:
    """An account's messages: the list, the conversations' subjects, the exact stored bytes
    (what IMAP ``BODY[]`` serves)."""

    def __init__(self, queries: ExportQueries, store: MailStore,
                 conversations: Conversations) -> None:
        self.queries = queries
        self.store = store
        self.conversations = conversations

    async def messages(self, account_id: int) -> Sequence[StoredMessage]:
        return await self.queries.messages_of(account_id)

    async def subjects(self, account_id: int) -> Mapping[int, str]:
        return {e.id: e.subject or "" for e in await self.conversations.index_all(account_id)}

    async def raw(self, message_id: int) -> bytes:
        return await self.store.read_raw(message_id)
