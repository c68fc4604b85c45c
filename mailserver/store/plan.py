"""A delivery plan, and the unit of work that commits it in one transaction.

Delivery (``mailserver/delivery.py``) gathers the facts, decides per recipient and prepares
(seals) every copy before any write; what it plans is a frozen :class:`DeliveryPlan`: the local
copies with their conversation rows and jobs, the sender's Sent copy, and the outbound queue
entry. :meth:`DeliveryCommits.commit` writes all of it in ONE group-committed transaction, so a
message is either entirely stored (every copy, its bookkeeping, its jobs and its queue entry) or
not at all. No session leaves this package.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.store.audit import AuditEvent, AuditTrail
from mailserver.store.conversations import Conversations
from mailserver.store.db import account_lock
from mailserver.store.jobs import Jobs
from mailserver.store.mailstore import MailStore
from mailserver.store.queue import OutboundEntry, add_queue_entry_in
from mailserver.store.records import AppendResult, Prepared

__all__ = ["NewConversation", "ConversationRows", "PlannedCopy", "PlannedSent", "DeliveryPlan",
           "Committed", "DeliveryCommits"]


@dataclass(frozen=True)
class NewConversation:
    """A conversation to open, its index entry sealed with the patient's key."""

    patient_id: int
    started_by: str
    key: bytes
    subject: str
    correspondent: str


@dataclass(frozen=True)
class ConversationRows:
    """The conversation bookkeeping of a professional's message to a local patient."""

    patient_id: int
    existing: int | None
    """The conversation the message continues; None: open ``new``."""
    new: NewConversation | None
    professional: str
    parties: tuple[str, ...]
    """Addresses the patient may answer (the professional, or the message's Reply-To)."""
    close: bool
    close_all_with_sender: bool


@dataclass(frozen=True)
class PlannedCopy:
    """A recipient's INBOX copy."""

    rcpt: str
    prepared: Prepared
    conversation: ConversationRows | None = None
    jobs: tuple[str, ...] = ()
    """Job kinds enqueued for the recipient's account, about this copy."""


@dataclass(frozen=True)
class PlannedSent:
    """The sender's Sent copy (local accounts submitting)."""

    prepared: Prepared
    conversation_id: int | None
    new: NewConversation | None = None
    """A patient's first message to a pharmacy opens a conversation with it."""
    parties: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeliveryPlan:
    copies: tuple[PlannedCopy, ...]
    sent: PlannedSent | None = None
    outbound: OutboundEntry | None = None
    audit: tuple[AuditEvent, ...] = ()
    """The delivery's audit events, recorded in its transaction."""


@dataclass
class Committed:
    """What the commit stored."""

    results: dict[str, AppendResult] = field(default_factory=dict)
    """Recipient address -> its stored copy."""
    conversation_ids: dict[str, int] = field(default_factory=dict)
    sent: AppendResult | None = None


class DeliveryCommits:
    """Commits delivery plans (the store's unit of work spanning messages, conversations,
    jobs and the outbound queue)."""

    def __init__(self, store: MailStore, audit: AuditTrail) -> None:
        self.store = store
        self.audit = audit

    async def commit(self, plan: DeliveryPlan) -> Committed:
        """Write ``plan`` in one transaction; raises StoreError if it failed (nothing stored)."""
        async def op(s: AsyncSession) -> Committed:
            done = Committed()
            for copy in plan.copies:
                await self._copy_in(s, copy, done)
            if plan.outbound is not None:
                add_queue_entry_in(s, plan.outbound)
            if plan.sent is not None:
                done.sent = await self._sent_in(s, plan.sent)
            await self.audit.append_in(s, *plan.audit)
            return done

        accounts = {c.prepared.account_id for c in plan.copies}
        if plan.sent is not None:
            accounts.add(plan.sent.prepared.account_id)
        return await self.store.db.write(op, locks=map(account_lock, accounts))

    async def _copy_in(self, s: AsyncSession, copy: PlannedCopy, done: Committed) -> None:
        conversation_id = None
        if copy.conversation is not None:
            conversation_id = await _conversation_in(s, copy.conversation)
            done.conversation_ids[copy.rcpt] = conversation_id
        res = await self.store.append_in(s, copy.prepared, "INBOX",
                                         conversation_id=conversation_id)
        done.results[copy.rcpt] = res
        for kind in copy.jobs:
            Jobs.enqueue_in(s, kind, account_id=copy.prepared.account_id,
                            message_id=res.message_id)

    async def _sent_in(self, s: AsyncSession, sent: PlannedSent) -> AppendResult:
        conversation_id = sent.conversation_id
        if sent.new is not None:
            conversation_id = await _create_in(s, sent.new)
            await Conversations.add_parties_in(s, conversation_id, list(sent.parties),
                                               sent.new.started_by)
        if conversation_id is not None:
            await Conversations.touch_in(s, conversation_id)
        return await self.store.append_in(s, sent.prepared, "Sent", flags=("\\Seen",),
                                          conversation_id=conversation_id)


async def _create_in(s: AsyncSession, new: NewConversation) -> int:
    return await Conversations.create_in(s, new.patient_id, new.started_by, key=new.key,
                                         subject=new.subject, correspondent=new.correspondent)


async def _conversation_in(s: AsyncSession, rows: ConversationRows) -> int:
    if rows.existing is not None:
        conversation_id = rows.existing
    else:
        assert rows.new is not None
        conversation_id = await _create_in(s, rows.new)
    if rows.close_all_with_sender:
        await Conversations.close_all_with_in(s, rows.patient_id, rows.professional)
    await Conversations.add_parties_in(s, conversation_id, list(rows.parties), rows.professional)
    await Conversations.touch_in(s, conversation_id, close=rows.close)
    return conversation_id

