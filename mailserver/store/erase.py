"""Deleting what an account holds in the core tables (an archive deleted on request, or
purged): its messages, its conversations, its jobs and "sent once" records; its folders stay,
empty, so a reactivated space works at once.

Runs in the caller's transaction (with the key destruction and the lifecycle transition).
Returns the blob keys to delete after the commit: large messages no other mailbox still
references (one sealed copy is shared by the mailboxes of one delivery).
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.store.models import Account, Conversation, ConversationParty, Folder, Job, Message
from mailserver.store.records import chunks
from mailserver.store.sent import SentRecord
from mailserver.store.vanished import record_account_in

__all__ = ["erase_mail_in"]


async def erase_mail_in(s: AsyncSession, account_id: int) -> list[str]:
    """Delete the account's mail rows; the blob keys now unreferenced."""
    blob_keys = set((await s.execute(select(Message.blob_key).where(
        Message.account_id == account_id, Message.content_enc.is_(None)))).scalars().all())
    conversations = list((await s.execute(select(Conversation.id).where(
        Conversation.patient_account_id == account_id))).scalars().all())
    await record_account_in(s, account_id)  # QRESYNC clients learn they are gone
    await s.execute(delete(Message).where(Message.account_id == account_id))
    for part in chunks(conversations, 500):
        # Professionals' copies stay in their mailboxes, out of any conversation.
        await s.execute(update(Message).where(Message.conversation_id.in_(part))
                        .values(conversation_id=None))
        await s.execute(delete(ConversationParty).where(
            ConversationParty.conversation_id.in_(part)))
        await s.execute(delete(Conversation).where(Conversation.id.in_(part)))
    await s.execute(update(Account).where(Account.id == account_id).values(conversation_count=0))
    await s.execute(delete(Job).where(Job.account_id == account_id))
    await s.execute(delete(SentRecord).where(SentRecord.account_id == account_id))
    await s.execute(update(Folder).where(Folder.account_id == account_id).values(
        message_count=0, unseen_count=0, keywords=None,
        highestmodseq=Folder.highestmodseq + 1))
    keys, still = sorted(blob_keys), set[str]()
    for i in range(0, len(keys), 500):
        still.update((await s.execute(select(Message.blob_key).where(
            Message.blob_key.in_(keys[i:i + 500])))).scalars().all())
    return sorted(blob_keys - still)
