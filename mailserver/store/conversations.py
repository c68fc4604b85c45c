"""Conversations between a patient and professionals (who may the patient answer?)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.store.db import Database
from mailserver.store.models import Conversation, ConversationParty

__all__ = ["ConversationInfo", "Conversations"]


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
    def __init__(self, db: Database) -> None:
        self.db = db

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
    async def create_in(s: AsyncSession, patient_account_id: int, started_by: str) -> int:
        now = datetime.now(UTC)
        c = Conversation(patient_account_id=patient_account_id, started_by=started_by,
                         closed=False, created_at=now, updated_at=now)
        s.add(c)
        await s.flush()
        return c.id

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
