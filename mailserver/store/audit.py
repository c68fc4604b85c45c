"""The operator's audit trail: who did what on which mailbox, when, from where.

Theory of operation: one row per action (``audit_events``), appended by :class:`AuditTrail`
inside the caller's transaction where the action has one (the delivery plan's commit, a
lifecycle transition, a document filing, a mail store change given an :class:`AuditHook`:
flags, expunge, copy, move, append), else in its own group-committed write (a failed login)
or batched within ``linger`` seconds (reads: IMAP body fetches, SELECT, webmail opens that
change nothing). The trail is
built once by the composition root and given to each component through its constructor.

What a row holds: the time, the mailbox concerned (its account id and its address as the
directory gives it; the id is not a foreign key, so rows outlive a purged account), who acted
(an address, an operator's login name, ``system``), the action kind, the channel, the client's
network address, the outcome, and small structured details (hashes, sizes, addresses, reasons,
counts). Never content, subjects, file names, folder names chosen by a user, or passwords:
:func:`check_details` refuses unknown detail keys, so a new caller cannot slip them in.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import cast

from sqlalchemy import DateTime, String, Table, Text, delete, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mailserver.errors import StoreError
from mailserver.store.db import Database, insert_on_commit
from mailserver.store.models import ID, Base

__all__ = ["AuditRow", "Action", "Channel", "Origin", "AuditEvent", "AuditTrail", "AuditHook",
           "DETAIL_KEYS", "check_details", "uid_details", "message_id_hash", "SYSTEM",
           "JOB_PURGE_AUDIT"]

log = logging.getLogger(__name__)

JOB_PURGE_AUDIT = "purge_audit"
SYSTEM = "system"


class Action(StrEnum):
    LOGIN = "login"
    LOGIN_FAILED = "login-failed"
    MESSAGE_SENT = "message-sent"
    MESSAGE_RECEIVED = "message-received"
    MESSAGE_REFUSED = "message-refused"
    MESSAGE_READ = "message-read"
    MESSAGE_DELETED = "message-deleted"
    MESSAGE_EXPUNGED = "message-expunged"
    MESSAGE_MOVED = "message-moved"
    MESSAGE_COPIED = "message-copied"
    MESSAGE_APPENDED = "message-appended"
    FLAGS_CHANGED = "flags-changed"
    MAILBOX_SELECTED = "mailbox-selected"
    MAILBOX_EXAMINED = "mailbox-examined"
    RECEIPT_SENT = "receipt-sent"
    DOCUMENT_FILED = "document-filed"
    DOCUMENT_READ = "document-read"
    CONSENT_CHANGED = "consent-changed"
    ACCOUNT_STATE = "account-state"
    ADMIN_COMMAND = "admin-command"


class Channel(StrEnum):
    SMTP = "smtp"
    SUBMISSION = "submission"
    IMAP = "imap"
    WEBMAIL = "webmail"
    FHIR = "fhir"
    CLI = "cli"
    SYSTEM = "system"


DETAIL_KEYS = frozenset({
    "message_id_sha256", "size", "from", "to", "reason", "mechanism", "folder", "folder_id",
    "to_folder", "to_folder_id", "count", "first_uid", "last_uid", "uid_set", "event",
    "from_state", "to_state", "label", "document_sha256", "documents", "kind", "scope",
    "command", "receipt", "conversation_id", "reader", "granted", "error", "flags", "mode",
})
"""The only keys a row's details may have (none can carry content by its meaning)."""


def check_details(details: Mapping[str, object]) -> str:
    """The details as stored (compact JSON); raises ValueError on an unknown key."""
    unknown = set(details) - DETAIL_KEYS
    if unknown:
        raise ValueError(f"audit: detail keys not allowed: {sorted(unknown)}")
    return json.dumps(dict(details), separators=(",", ":"), sort_keys=True, default=str)


def uid_details(uids: Sequence[int]) -> dict[str, object]:
    """How many UIDs a change touched, and their range."""
    out: dict[str, object] = {"count": len(uids)}
    if uids:
        out.update(first_uid=min(uids), last_uid=max(uids))
    return out


def message_id_hash(message_id: str | None) -> str | None:
    """SHA-256 of a Message-ID (the way conversations store references)."""
    if not message_id:
        return None
    return hashlib.sha256(message_id.strip().encode("utf-8", "replace")).hexdigest()


class AuditRow(Base):
    """One recorded action (see the module docstring)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    account_id: Mapped[int | None] = mapped_column(ID, index=True, nullable=True)
    address: Mapped[str | None] = mapped_column(String(320), index=True, nullable=True)
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(32), index=True)
    protocol: Mapped[str] = mapped_column(String(16))
    client: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(32))
    details: Mapped[str] = mapped_column(Text, default="{}")


_AUDIT = cast(Table, AuditRow.__table__)

@dataclass(frozen=True)
class Origin:
    """Where an action comes from: the channel, the client's address, who acted."""

    channel: Channel
    client: str | None = None
    actor: str | None = None
    """The acting address or operator; None: the mailbox's own address."""


@dataclass(frozen=True)
class AuditEvent:
    action: Action
    origin: Origin
    account_id: int | None
    address: str | None
    outcome: str = "ok"
    details: Mapping[str, object] = field(default_factory=dict)


async def _insert_in(s: AsyncSession, rows: list[dict[str, object]]) -> None:
    if not insert_on_commit(s, _AUDIT, rows):
        await s.execute(insert(AuditRow), rows)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AuditTrail:
    """Appends audit rows; purges the old ones. The one recording seam (module docstring)."""

    def __init__(self, db: Database, *, retention_days: int = 183, linger: float = 1.0,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.db = db
        self.retention = timedelta(days=retention_days)
        self.linger = linger
        self.clock = clock
        self._buffer: list[dict[str, object]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()

    @staticmethod
    def _values(event: AuditEvent, at: datetime) -> dict[str, object]:
        o = event.origin
        return {"at": at, "account_id": event.account_id, "address": event.address,
                "actor": (o.actor or event.address or SYSTEM)[:320], "action": event.action.value,
                "protocol": o.channel.value, "client": (o.client or None) and o.client[:64],
                "outcome": event.outcome[:32], "details": check_details(event.details)}

    async def append_in(self, s: AsyncSession, *events: AuditEvent) -> None:
        """Record ``events`` in the caller's transaction (in a group-committed write, with
        the other ops' rows in one INSERT before the commit: ``store.db.insert_on_commit``)."""
        if events:
            at = self.clock()
            await _insert_in(s, [self._values(e, at) for e in events])

    async def append(self, *events: AuditEvent) -> None:
        """Record ``events`` in their own group-committed write (actions with no
        transaction of their own: a failed login, an IMAP read)."""
        if not events:
            return

        async def op(s: AsyncSession) -> None:
            await self.append_in(s, *events)

        await self.db.write(op, locks=())  # new rows only

    def append_soon(self, *events: AuditEvent) -> None:
        """Record ``events`` without waiting (IMAP commands, a login that succeeded): they
        are timed now and written together at most ``linger`` seconds later, in one
        multi-row INSERT riding the group commit, so a busy IMAP server adds at most one
        audit write a second, not one per command (each extra commit would delay the
        commands' own writes behind its fsync). A failure is logged."""
        at = self.clock()
        self._buffer.extend(self._values(e, at) for e in events)  # checked here, now
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        try:
            await asyncio.wait_for(self._hurry.wait(), self.linger)
        except TimeoutError:
            pass
        while self._buffer:
            timed, self._buffer = self._buffer, []

            async def op(s: AsyncSession, rows: list[dict[str, object]] = timed) -> None:
                await _insert_in(s, rows)

            try:
                await self.db.write(op, locks=())  # new rows only
            except StoreError as exc:
                log.warning("audit: %d event(s) not recorded: %s", len(timed),
                            type(exc).__name__)

    async def flush(self) -> None:
        """Wait until the rows :meth:`append_soon` holds are written."""
        while self._flusher is not None and not self._flusher.done():
            self._hurry.set()
            await asyncio.shield(self._flusher)
        self._hurry.clear()

    async def purge(self, *, now: datetime | None = None) -> int:
        """Delete the rows older than the retention period; returns how many."""
        horizon = (now or self.clock()) - self.retention

        async def op(s: AsyncSession) -> int:
            result = await s.execute(delete(AuditRow).where(AuditRow.at < horizon))
            return int(getattr(result, "rowcount", 0) or 0)

        return await self.db.write(op)


@dataclass(frozen=True)
class AuditHook:
    """What a mail store change records in its own transaction: ``events`` maps the UIDs the
    change touched (in the source folder for a copy or move) to the rows to append; a
    failure of either rolls back both."""

    trail: AuditTrail
    events: Callable[[Sequence[int]], Sequence[AuditEvent]]

    async def record_in(self, s: AsyncSession, uids: Sequence[int]) -> None:
        """Append the rows of a change that touched ``uids`` (inside its transaction)."""
        await self.trail.append_in(s, *self.events(uids))
