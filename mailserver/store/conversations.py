"""Conversations between a patient and professionals (who may the patient answer?).

Theory of operation (the inbox index): each conversation row also carries what a list page
shows: last activity (``updated_at``), the number of messages and of unread ones in the
patient's INBOX and Sent folders (:data:`CONVERSATION_FOLDERS`), and the title and
correspondent's name sealed with the patient's data key (associated data binds them to the
account and the conversation). Every write that changes them updates them in the same
transaction: :meth:`Conversations.create_in` (delivery), ``MailStore.append_in``,
``store_flags``, ``expunge`` and ``copy``. A list page is then one indexed query
(``patient_account_id, updated_at``) and two unseals per row shown, whatever the size of the
mailbox; its number of pages comes from the patient's ``accounts.conversation_count`` (kept by
:meth:`Conversations.create_in` and the erasure of the space), not from counting the rows.
Databases from before the index have NULL counts: :meth:`Conversations.unindexed` finds them
and :meth:`Conversations.set_index` fills them in (at start-up).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.errors import KeyDestroyed, NotFound
from mailserver.store.crypto import seal, unseal
from mailserver.store.db import Database
from mailserver.store.keys import KeyManager
from mailserver.store.models import Account, Conversation, ConversationParty, Folder, Message
from mailserver.store.records import SEEN, utc

__all__ = ["ConversationInfo", "Conversations", "IndexEntry", "CONVERSATION_FOLDERS"]

CONVERSATION_FOLDERS = ("INBOX", "Sent")
"""The folders whose messages make up a conversation as the patient sees it."""


def _aad(kind: str, account_id: int, conversation_id: int) -> bytes:
    return f"conv-{kind}:{account_id}:{conversation_id}".encode()


@dataclass(frozen=True)
class IndexEntry:
    """One conversation as a list page shows it (display fields unsealed)."""

    id: int
    started_by: str
    subject: str | None
    correspondent: str | None
    unread: int
    total: int
    updated_at: datetime
    closed: bool


_INDEX_COLUMNS = (Conversation.id, Conversation.started_by, Conversation.subject_enc,
                  Conversation.correspondent_enc, Conversation.unread_count,
                  Conversation.message_count, Conversation.updated_at, Conversation.closed)


@dataclass(frozen=True)
class ConversationInfo:
    id: int
    patient_account_id: int
    started_by: str
    closed: bool
    parties: frozenset[str]
    created_at: datetime
    updated_at: datetime


class Conversations:
    def __init__(self, db: Database, keys: KeyManager | None = None) -> None:
        self.db = db
        self.keys = keys

    async def get(self, conversation_id: int,
                  session: AsyncSession | None = None) -> ConversationInfo | None:
        if session is None:
            async with self.db.session() as s:
                return await self._get(s, conversation_id)
        return await self._get(session, conversation_id)

    @staticmethod
    async def _get(s: AsyncSession, conversation_id: int) -> ConversationInfo | None:
        c = await s.get(Conversation, conversation_id)
        if c is None:
            return None
        parties = (await s.execute(select(ConversationParty.address).where(
            ConversationParty.conversation_id == c.id))).scalars().all()
        return ConversationInfo(c.id, c.patient_account_id, c.started_by, c.closed,
                                frozenset(parties), c.created_at, c.updated_at)

    async def list_for_patient(self, patient_account_id: int) -> list[ConversationInfo]:
        async with self.db.session() as s:
            ids = (await s.execute(select(Conversation.id).where(
                Conversation.patient_account_id == patient_account_id
            ).order_by(Conversation.updated_at.desc()))).scalars().all()
            out = []
            for cid in ids:
                info = await self._get(s, cid)
                if info:
                    out.append(info)
        return out

    @staticmethod
    async def create_in(s: AsyncSession, patient_account_id: int, started_by: str, *,
                        key: bytes | None = None, subject: str = "",
                        correspondent: str = "") -> int:
        """A new conversation, indexed (no message yet); ``key`` is the patient's data key,
        which seals the title and the correspondent's name."""
        now = datetime.now(UTC)
        c = Conversation(patient_account_id=patient_account_id, started_by=started_by,
                         closed=False, created_at=now, updated_at=now, message_count=0,
                         unread_count=0)
        s.add(c)
        await s.flush()
        await s.execute(update(Account).where(Account.id == patient_account_id).values(
            conversation_count=Account.conversation_count + 1))
        if key is not None:
            c.subject_enc = seal(key, subject.encode(), _aad("subj", patient_account_id, c.id))
            c.correspondent_enc = seal(key, correspondent.encode(),
                                       _aad("name", patient_account_id, c.id))
            await s.flush()
        return c.id

    # -- the inbox index --------------------------------------------------------------------

    async def _entries(self, patient_account_id: int, rows: Sequence[tuple[object, ...]]
                       ) -> list[IndexEntry]:
        key = await self.keys.get(patient_account_id) if self.keys is not None else None
        out = []
        for cid, started_by, subj, name, unread, total, updated_at, closed in rows:
            assert isinstance(cid, int) and isinstance(started_by, str)
            assert isinstance(updated_at, datetime)

            def clear(blob: object, kind: str, cid: int = cid) -> str | None:
                if key is None or not isinstance(blob, bytes):
                    return None
                return unseal(key, blob, _aad(kind, patient_account_id, cid)).decode()

            out.append(IndexEntry(cid, started_by, clear(subj, "subj"), clear(name, "name"),
                                  int(unread or 0), int(total or 0),  # type: ignore[call-overload]
                                  utc(updated_at), bool(closed)))
        return out

    async def count_for_patient(self, patient_account_id: int) -> int:
        """How many conversations the patient has: kept on the account row (one indexed read
        whatever the size of the mailbox), 0 for an unknown account."""
        async with self.db.session() as s:
            return int((await s.execute(select(Account.conversation_count).where(
                Account.id == patient_account_id))).scalar() or 0)

    async def index_page(self, patient_account_id: int, offset: int = 0,
                         limit: int | None = None) -> list[IndexEntry]:
        """One page of the patient's index (all of it without ``limit``), newest activity
        first."""
        q = (select(*_INDEX_COLUMNS)
             .where(Conversation.patient_account_id == patient_account_id)
             .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
             .offset(offset).limit(limit))
        async with self.db.session() as s:
            rows = (await s.execute(q)).all()
        return await self._entries(patient_account_id, [tuple(r) for r in rows])

    async def index_all(self, patient_account_id: int) -> list[IndexEntry]:
        """The patient's whole index, newest activity first (for search)."""
        return await self.index_page(patient_account_id)

    async def index_entry(self, conversation_id: int) -> IndexEntry | None:
        async with self.db.session() as s:
            row = (await s.execute(select(Conversation.patient_account_id, *_INDEX_COLUMNS)
                                   .where(Conversation.id == conversation_id))).first()
        if row is None:
            return None
        entries = await self._entries(row[0], [tuple(row[1:])])
        return entries[0]

    @staticmethod
    async def count_in(s: AsyncSession, conversation_id: int, *, total: int, unread: int
                       ) -> None:
        """Add to the counts of a conversation (a message appended or removed)."""
        await s.execute(update(Conversation).where(Conversation.id == conversation_id).values(
            message_count=Conversation.message_count + total,
            unread_count=Conversation.unread_count + unread))

    @staticmethod
    async def recount_in(s: AsyncSession, conversation_ids: Iterable[int]) -> None:
        """Recompute the counts of conversations from their messages."""
        unseen = and_(Folder.name == "INBOX", ~Message.flags.contains(SEEN, autoescape=True))
        for cid in sorted(set(conversation_ids)):
            total, unread = (await s.execute(
                select(func.count(Message.id),
                       func.coalesce(func.sum(case((unseen, 1), else_=0)), 0))
                .join(Folder, Folder.id == Message.folder_id)
                .where(Message.conversation_id == cid,
                       Folder.name.in_(CONVERSATION_FOLDERS)))).one()
            await s.execute(update(Conversation).where(Conversation.id == cid).values(
                message_count=int(total), unread_count=int(unread)))

    async def unindexed(self, limit: int = 500) -> list[tuple[int, int, str, int | None]]:
        """(conversation id, patient account id, started_by, id of its first message) of
        conversations not indexed yet."""
        first = (select(Message.id).join(Folder, Folder.id == Message.folder_id)
                 .where(Message.conversation_id == Conversation.id,
                        Folder.name.in_(CONVERSATION_FOLDERS))
                 .order_by(Message.internaldate, Message.id).limit(1)
                 .correlate(Conversation).scalar_subquery())
        async with self.db.session() as s:
            rows = (await s.execute(
                select(Conversation.id, Conversation.patient_account_id,
                       Conversation.started_by, first)
                .where(Conversation.message_count.is_(None))
                .order_by(Conversation.id).limit(limit))).all()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def set_index(self, entries: Sequence[tuple[int, int, str, str]]) -> None:
        """Index conversations: (id, patient account id, title, correspondent's name); the
        counts are computed from the messages in the same transaction."""
        assert self.keys is not None
        sealed: list[tuple[int, bytes | None, bytes | None]] = []
        for cid, account_id, subject, name in entries:
            try:
                key = await self.keys.get(account_id)
            except (KeyDestroyed, NotFound):  # a shredded mailbox: counts only
                sealed.append((cid, None, None))
                continue
            sealed.append((cid, seal(key, subject.encode(), _aad("subj", account_id, cid)),
                           seal(key, name.encode(), _aad("name", account_id, cid))))

        async def op(s: AsyncSession) -> None:
            for cid, subj, name in sealed:
                await s.execute(update(Conversation).where(Conversation.id == cid).values(
                    subject_enc=subj, correspondent_enc=name))
            await self.recount_in(s, [cid for cid, _, _ in sealed])

        await self.db.write(op)

    @staticmethod
    async def add_parties_in(s: AsyncSession, conversation_id: int, addresses: list[str],
                             professional: str) -> None:
        existing = set((await s.execute(select(ConversationParty.address).where(
            ConversationParty.conversation_id == conversation_id))).scalars().all())
        for addr in addresses:
            if addr not in existing:
                s.add(ConversationParty(conversation_id=conversation_id, address=addr,
                                        professional=professional))
                existing.add(addr)

    @staticmethod
    async def touch_in(s: AsyncSession, conversation_id: int, *, close: bool = False) -> None:
        values: dict[str, object] = {"updated_at": datetime.now(UTC)}
        if close:
            values["closed"] = True
        await s.execute(update(Conversation).where(Conversation.id == conversation_id)
                        .values(**values))

    @staticmethod
    async def close_all_with_in(s: AsyncSession, patient_account_id: int,
                                professional: str) -> None:
        """A ``[FIN]`` subject closes every earlier thread of the patient with that professional."""
        via_party = select(ConversationParty.conversation_id).where(
            ConversationParty.professional == professional)
        await s.execute(update(Conversation).where(
            Conversation.patient_account_id == patient_account_id,
            (Conversation.started_by == professional) | Conversation.id.in_(via_party),
        ).values(closed=True, updated_at=datetime.now(UTC)))
