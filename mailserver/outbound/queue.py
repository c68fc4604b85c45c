"""The durable outbound queue: enqueue inside the delivery transaction, claim, record results.

Theory of operation
-------------------
:meth:`OutboundQueue.prepare` runs before the delivery transaction: it DKIM-signs the message
(when its From domain is ours, see :class:`Signer`) and seals it with the queue key; the store
adds the entry it returns inside the same transaction as the local copies, so the SMTP 250 (or
the webmail's "sent") is given only once the message is committed, and it survives a restart.
Signing at enqueue time means every retry sends the same bytes.

Claiming (:meth:`OutboundQueue.claim`) moves the ``next_attempt`` of due ``active`` messages
forward by a lease and tags them with a random claim id, in a single
``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)`` statement (the locking clause on
PostgreSQL only), then reads back the rows carrying its tag. Several workers or server
processes sharing one database therefore never take the same message: PostgreSQL skips rows
another transaction holds, SQLite serialises writers and the statement takes the write lock
before it reads. While it
delivers, the worker renews the lease of what it still holds every third of a lease
(:meth:`OutboundQueue.renew`, a heartbeat), so the lease can be short (``[queue]
lease_seconds``, 30 s by default) however slow a peer is. A worker that dies leaves the message
to be claimed again when the lease expires, within one lease of the crash: at-least-once, as
SMTP allows (RFC 5321 6.1). Each recipient's outcome is committed as soon as its transaction ends.

Retries: exponential back-off ``base * 2^(attempt-1)`` capped at ``max_retry_seconds``, until
``lifetime_seconds`` after arrival (default 5 days). RFC 3461 parameters are kept per message
(ENVID, RET) and per recipient (NOTIFY, ORCPT).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.config import Config
from mailserver.delivery import parse_header_facts
from mailserver.dkim import signing as dkim_signing
from mailserver.dkim.keys import load_rotation
from mailserver.store.crypto import MasterKeyring, new_data_key, seal, unseal
from mailserver.store.db import Database
from mailserver.store.queue import (
    OutboundEntry,
    QueueKey,
    QueueMessage,
    QueueRecipient,
    add_queue_entry_in,
)

__all__ = [
    "ClaimedMessage",
    "OutboundQueue",
    "QueueEntry",
    "QueuedRecipient",
    "Signer",
    "backoff",
]

log = logging.getLogger(__name__)

_QUEUE_KEY_ID = 1
_QUEUE_KEY_SLOT = -1  # associated data "datakey:-1": no account has a negative id


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after the ``attempt``-th failed attempt (1-based)."""
    return float(min(base * (2 ** max(0, attempt - 1)), cap))


class Signer:
    """DKIM-signs messages whose From domain is one of ours (RSA-2048 + Ed25519)."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def sign(self, raw: bytes) -> bytes:
        """Return ``raw`` signed with the current selector, or unchanged for a foreign From."""
        hf = parse_header_facts(raw)
        domain = hf.from_address.rpartition("@")[2]
        if domain not in self.config.local_domains:
            return raw
        rotation = load_rotation(self.config)
        return dkim_signing.sign(raw, domain, rotation)


@dataclass(frozen=True)
class QueuedRecipient:
    """A recipient as the worker and ``mssante queue show`` see it."""

    id: int
    address: str
    domain: str
    state: str
    notify: str | None
    orcpt: str | None
    attempts: int
    last_error: str | None
    remote_mta: str | None


@dataclass(frozen=True)
class QueueEntry:
    """A queued message (without content) for ``mssante queue list/show``."""

    id: int
    token: str
    state: str
    mail_from: str
    size: int
    created_at: datetime
    next_attempt: datetime
    attempts: int
    last_error: str | None
    envid: str | None
    ret: str | None
    delay_warned: bool
    recipients: tuple[QueuedRecipient, ...]

    @property
    def domains(self) -> tuple[str, ...]:
        """Recipient domains, in order of first appearance."""
        return tuple(dict.fromkeys(r.domain for r in self.recipients))


@dataclass(frozen=True)
class ClaimedMessage:
    """A message claimed by a worker: decrypted bytes plus its pending recipients."""

    entry: QueueEntry
    raw: bytes
    lease_until: datetime
    tag: str = ""
    """The claim's tag (``claimed_by``): :meth:`OutboundQueue.renew` extends its lease."""

    @property
    def pending(self) -> tuple[QueuedRecipient, ...]:
        """Recipients still to deliver."""
        return tuple(r for r in self.entry.recipients if r.state == "pending")


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes for timezone=True columns.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _parse_options(options: dict[str, object]) -> tuple[str | None, str | None,
                                                          dict[str, tuple[str | None, str | None]]]:
    envid = options.get("envid")
    ret = options.get("ret")
    per: dict[str, tuple[str | None, str | None]] = {}
    raw = options.get("rcpt")
    if isinstance(raw, dict):
        for addr, params in raw.items():
            if isinstance(params, dict):
                notify = params.get("notify")
                orcpt = params.get("orcpt")
                per[str(addr).lower()] = (str(notify) if notify else None,
                                          str(orcpt) if orcpt else None)
    return (str(envid) if envid else None, str(ret).upper() if ret else None, per)


class OutboundQueue:
    """The Outbound seam of :class:`mailserver.delivery.Delivery`, plus worker/admin access."""

    def __init__(self, config: Config, db: Database, ring: MasterKeyring, *,
                 signer: Signer | None = None) -> None:
        self.config = config
        self.db = db
        self.ring = ring
        self.signer = signer if signer is not None else Signer(config)
        self._key: bytes | None = None
        self._key_lock = asyncio.Lock()
        self.wakeup = asyncio.Event()
        """Set after each committed enqueue: wakes the workers."""
        self.worker_id = secrets.token_hex(6)

    # -- the queue key ---------------------------------------------------------------------

    async def _queue_key(self) -> bytes:
        if self._key is not None:
            return self._key
        async with self._key_lock:
            if self._key is not None:
                return self._key
            async with self.db.session() as s:
                row = await s.get(QueueKey, _QUEUE_KEY_ID)
                found = (row.master_key_id, row.wrapped) if row else None
            if found is None:
                key = new_data_key()
                key_id, wrapped = self.ring.wrap(key, _QUEUE_KEY_SLOT)

                async def op(s: AsyncSession) -> None:
                    if await s.get(QueueKey, _QUEUE_KEY_ID) is None:
                        s.add(QueueKey(id=_QUEUE_KEY_ID, master_key_id=key_id, wrapped=wrapped))

                try:
                    await self.db.write(op)
                except Exception:  # noqa: BLE001 - another process won the race: read it
                    log.debug("queue: key creation raced")
                async with self.db.session() as s:
                    row = await s.get(QueueKey, _QUEUE_KEY_ID)
                    assert row is not None
                    found = (row.master_key_id, row.wrapped)
            self._key = self.ring.unwrap(found[0], found[1], _QUEUE_KEY_SLOT)
            return self._key

    # -- Outbound protocol -----------------------------------------------------------------

    async def prepare(self, raw: bytes, mail_from: str, rcpts: Sequence[str],
                      options: dict[str, object]) -> OutboundEntry:
        """Sign (our From domain) and seal ``raw``; runs before the delivery transaction,
        which adds the returned entry (``store.queue.add_queue_entry_in``)."""
        signed = await asyncio.to_thread(self.signer.sign, raw)
        token = secrets.token_hex(16)
        key = await self._queue_key()
        envid, ret, per = _parse_options(options)
        return OutboundEntry(
            token=token, body_enc=seal(key, signed, f"queue:{token}".encode()),
            size=len(signed), mail_from=mail_from, envid=envid, ret=ret,
            recipients=tuple((rcpt, *per.get(rcpt.lower(), (None, None))) for rcpt in rcpts),
            on_commit=self.wakeup.set)

    async def enqueue(self, mail_from: str, rcpts: Sequence[str], raw: bytes,
                      options: dict[str, object] | None = None) -> None:
        """Queue a message on its own (bounces to remote senders, tests)."""
        entry = await self.prepare(raw, mail_from, rcpts, dict(options or {}))

        async def op(s: AsyncSession) -> None:
            add_queue_entry_in(s, entry)

        await self.db.write(op)

    # -- worker side -----------------------------------------------------------------------

    async def claim(self, limit: int = 10) -> list[ClaimedMessage]:
        """Claim due messages for ``lease_seconds``; see the module docstring."""
        now = datetime.now(UTC)
        lease = now + timedelta(seconds=self.config.queue.lease_seconds)

        tag = f"{self.worker_id}:{secrets.token_hex(8)}"

        async def op(s: AsyncSession) -> list[int]:
            # One UPDATE ... WHERE id IN (SELECT ... [FOR UPDATE SKIP LOCKED]): on SQLite the
            # statement takes the write lock first (no read-then-upgrade race between
            # processes); on PostgreSQL rows locked by another claimer are skipped.
            due = (select(QueueMessage.id)
                   .where(QueueMessage.state == "active", QueueMessage.next_attempt <= now)
                   .order_by(QueueMessage.next_attempt).limit(limit))
            if not self.db.is_sqlite:
                due = due.with_for_update(skip_locked=True)
            await s.execute(update(QueueMessage)
                            .where(QueueMessage.id.in_(due))
                            .values(next_attempt=lease, attempts=QueueMessage.attempts + 1,
                                    claimed_by=tag)
                            .execution_options(synchronize_session=False))
            rows = await s.execute(select(QueueMessage.id)
                                   .where(QueueMessage.claimed_by == tag)
                                   .order_by(QueueMessage.id))
            return [r[0] for r in rows.all()]

        ids = await self.db.write(op)
        out = []
        key = await self._queue_key() if ids else b""
        for mid in ids:
            entry = await self.get(mid)
            if entry is None:
                continue
            async with self.db.session() as s:
                body = (await s.execute(select(QueueMessage.body_enc)
                                        .where(QueueMessage.id == mid))).scalar_one()
            raw = unseal(key, body, f"queue:{entry.token}".encode())
            out.append(ClaimedMessage(entry, raw, lease, tag))
        return out

    async def renew(self, tag: str) -> int:
        """Extend the lease of the messages still held under claim ``tag`` (the worker's
        heartbeat while it delivers); returns how many it still holds."""
        lease = datetime.now(UTC) + timedelta(seconds=self.config.queue.lease_seconds)

        async def op(s: AsyncSession) -> int:
            res = await s.execute(update(QueueMessage)
                                  .where(QueueMessage.claimed_by == tag,
                                         QueueMessage.state == "active")
                                  .values(next_attempt=lease))
            return int(res.rowcount)  # type: ignore[attr-defined]

        return int(await self.db.write(op))

    async def record(self, message_id: int, results: dict[int, tuple[str, str | None,
                                                                   str | None]]) -> None:
        """Record per-recipient outcomes: ``{rcpt_id: (state, error, remote_mta)}``."""
        now = datetime.now(UTC)

        async def op(s: AsyncSession) -> None:
            for rid, (state, error, mta) in results.items():
                await s.execute(update(QueueRecipient)
                                .where(QueueRecipient.id == rid,
                                       QueueRecipient.message_id == message_id)
                                .values(state=state, last_error=error, remote_mta=mta,
                                        attempts=QueueRecipient.attempts + 1, updated_at=now))

        await self.db.write(op)

    async def reschedule(self, message_id: int, *, next_attempt: datetime | None,
                         error: str | None, delay_warned: bool | None = None) -> None:
        """Set the next attempt (None: the message is finished: state ``done``)."""
        values: dict[str, object] = {"last_error": error, "claimed_by": None}
        if next_attempt is None:
            values["state"] = "done"
            values["body_enc"] = b""  # nothing left to send: drop the content
        else:
            values["next_attempt"] = next_attempt
        if delay_warned is not None:
            values["delay_warned"] = delay_warned

        async def op(s: AsyncSession) -> None:
            await s.execute(update(QueueMessage).where(QueueMessage.id == message_id)
                            .values(**values))

        await self.db.write(op)

    # -- admin -----------------------------------------------------------------------------

    async def list(self, *, include_done: bool = False) -> list[QueueEntry]:
        """Queued messages (active only unless ``include_done``), oldest first."""
        async with self.db.session() as s:
            q = select(QueueMessage.id).order_by(QueueMessage.id)
            if not include_done:
                q = q.where(QueueMessage.state == "active")
            ids = [r[0] for r in (await s.execute(q)).all()]
        entries = [await self.get(i) for i in ids]
        return [e for e in entries if e is not None]

    async def get(self, message_id: int) -> QueueEntry | None:
        """One queued message with its recipients, or None."""
        async with self.db.session() as s:
            m = await s.get(QueueMessage, message_id)
            if m is None:
                return None
            rows = (await s.execute(select(QueueRecipient)
                                    .where(QueueRecipient.message_id == message_id)
                                    .order_by(QueueRecipient.id))).scalars().all()
            rcpts = tuple(QueuedRecipient(r.id, r.address, r.domain, r.state, r.notify,
                                          r.orcpt, r.attempts, r.last_error, r.remote_mta)
                          for r in rows)
            return QueueEntry(m.id, m.token, m.state, m.mail_from, m.size,
                              _aware(m.created_at), _aware(m.next_attempt), m.attempts,
                              m.last_error, m.envid, m.ret, m.delay_warned, rcpts)

    async def retry_now(self, message_id: int) -> bool:
        """Make an active message due now; False if there is no such active message."""
        async def op(s: AsyncSession) -> int:
            res = await s.execute(update(QueueMessage)
                                  .where(QueueMessage.id == message_id,
                                         QueueMessage.state == "active")
                                  .values(next_attempt=datetime.now(UTC)))
            return int(res.rowcount)  # type: ignore[attr-defined]

        done = await self.db.write(op) == 1
        if done:
            self.wakeup.set()
        return done

    async def drop(self, message_id: int) -> bool:
        """Delete a message and its recipients without notice; False if unknown."""
        async def op(s: AsyncSession) -> int:
            await s.execute(delete(QueueRecipient)
                            .where(QueueRecipient.message_id == message_id))
            res = await s.execute(delete(QueueMessage).where(QueueMessage.id == message_id))
            return int(res.rowcount)  # type: ignore[attr-defined]

        return await self.db.write(op) == 1

