"""Tables of the durable outbound queue (see ``mailserver/smtp/queue.py``).

* :class:`QueueKey` -- the queue's data key (one row), wrapped by the master key like a mailbox
  key; every queued message is sealed with it.
* :class:`QueueMessage` -- one accepted message for remote recipients: the sealed bytes
  (DKIM-signed at enqueue time), the envelope sender, RFC 3461 ENVID/RET, and the scheduling
  state (``next_attempt`` doubles as the claim lease).
* :class:`QueueRecipient` -- one remote recipient with its own state, attempts, last error and
  RFC 3461 NOTIFY/ORCPT.

Addresses and domains are in clear (needed to route, as in the directory); content is not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailserver.store.db import Database, after_commit
from mailserver.store.models import ID, Base

__all__ = ["QueueKey", "QueueMessage", "QueueRecipient", "rewrap_queue_key", "OutboundEntry",
           "add_queue_entry_in", "queue_depth"]


class QueueKey(Base):
    """The data key sealing queued messages, wrapped by the master key."""

    __tablename__ = "queue_keys"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    master_key_id: Mapped[str] = mapped_column(String(16))
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)


class QueueMessage(Base):
    """A queued message (state ``active`` until every recipient is final, then ``done``)."""

    __tablename__ = "queue_messages"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    """Random id, used as associated data of the sealed body and in logs."""
    state: Mapped[str] = mapped_column(String(16), default="active")
    mail_from: Mapped[str] = mapped_column(String(320))
    envid: Mapped[str | None] = mapped_column(String(100))
    ret: Mapped[str | None] = mapped_column(String(8))
    size: Mapped[int] = mapped_column(Integer)
    body_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_attempt: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """Due time; while a worker holds the message, the end of its lease."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delay_warned: Mapped[bool] = mapped_column(Boolean, default=False)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)

    recipients: Mapped[list[QueueRecipient]] = relationship(
        back_populates="message", cascade="all, delete-orphan", lazy="raise")

    __table_args__ = (Index("ix_queue_due", "state", "next_attempt"),)


class QueueRecipient(Base):
    """One remote recipient of a queued message."""

    __tablename__ = "queue_recipients"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("queue_messages.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(320))
    domain: Mapped[str] = mapped_column(String(255), index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    """pending | delivered | failed."""
    notify: Mapped[str | None] = mapped_column(String(40))
    orcpt: Mapped[str | None] = mapped_column(String(400))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    remote_mta: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    message: Mapped[QueueMessage] = relationship(back_populates="recipients", lazy="raise")


async def rewrap_queue_key(session: Any, ring: Any) -> int:
    """Re-wrap the queue key under the ring's current master key (master key rotation).

    ``KeyManager.rotate_master`` must call this before retiring old master keys, or queued
    messages become unreadable. Associated data is ``datakey:-1`` (see smtp/queue.py).

    Returns:
        1 if a key was re-wrapped, 0 if there is no queue key yet.
    """
    row = await session.get(QueueKey, 1)
    if row is None:
        return 0
    key = ring.unwrap(row.master_key_id, row.wrapped, -1)
    row.master_key_id, row.wrapped = ring.wrap(key, -1)
    return 1


@dataclass(frozen=True)
class OutboundEntry:
    """One message for remote recipients, sealed and ready to add in a transaction.

    Built by the outbound queue before the delivery transaction (DKIM signing and sealing take
    time); :func:`add_queue_entry_in` writes it inside the transaction that stores the local
    copies (``store.plan.DeliveryCommits``).
    """

    token: str
    body_enc: bytes
    size: int
    mail_from: str
    envid: str | None
    ret: str | None
    recipients: tuple[tuple[str, str | None, str | None], ...]
    """(address, RFC 3461 NOTIFY, ORCPT) per remote recipient."""
    on_commit: Callable[[], None] | None = None
    """Called once the transaction committed (wakes the queue workers)."""


def add_queue_entry_in(s: AsyncSession, entry: OutboundEntry) -> None:
    """Add ``entry`` and its recipients in the caller's transaction."""
    now = datetime.now(UTC)
    msg = QueueMessage(token=entry.token, state="active", mail_from=entry.mail_from,
                       envid=entry.envid, ret=entry.ret, size=entry.size,
                       body_enc=entry.body_enc, created_at=now, next_attempt=now, attempts=0,
                       delay_warned=False)
    msg.recipients = [
        QueueRecipient(address=rcpt, domain=rcpt.rpartition("@")[2].lower(), state="pending",
                       notify=notify, orcpt=orcpt, attempts=0)
        for rcpt, notify, orcpt in entry.recipients]
    s.add(msg)
    if entry.on_commit is not None:
        after_commit(s, entry.on_commit)


async def queue_depth(db: Database) -> tuple[int, datetime | None]:
    """Messages of the outbound queue not yet final, and the creation time of the oldest
    (one indexed aggregate on ``state``; for metrics at scrape time)."""
    query = (select(func.count(QueueMessage.id), func.min(QueueMessage.created_at))
             .where(QueueMessage.state == "active"))
    async with db.session() as s:
        count, oldest = (await s.execute(query)).one()
    if oldest is not None and oldest.tzinfo is None:  # SQLite returns naive UTC
        oldest = oldest.replace(tzinfo=UTC)
    return int(count), oldest
