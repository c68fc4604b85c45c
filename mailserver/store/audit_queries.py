"""Reading the audit trail: ``mssante audit`` and its export (JSON lines), and the scheduled
purge job (``purge_audit`` in the composition root's job table)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select

from mailserver.store.audit import JOB_PURGE_AUDIT, AuditRow, AuditTrail
from mailserver.store.db import Database
from mailserver.store.jobs import JobInfo, Jobs
from mailserver.store.models import Account

__all__ = ["AuditQuery", "AuditRecord", "search", "AuditPurge", "account_id_of"]

log = logging.getLogger(__name__)

PAGE = 1000


@dataclass(frozen=True)
class AuditQuery:
    address: str | None = None
    """The mailbox concerned, or who acted (None: every mailbox)."""
    since: datetime | None = None
    until: datetime | None = None
    """Exclusive."""
    action: str | None = None


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    account_id: int | None
    address: str | None
    actor: str
    action: str
    protocol: str
    client: str | None
    outcome: str
    details: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """One JSON line of the export."""
        return {"id": self.id, "at": self.at.isoformat().replace("+00:00", "Z"),
                "account_id": self.account_id, "address": self.address, "actor": self.actor,
                "action": self.action, "protocol": self.protocol, "client": self.client,
                "outcome": self.outcome, "details": self.details}


def _record(r: AuditRow) -> AuditRecord:
    at = r.at if r.at.tzinfo is not None else r.at.replace(tzinfo=UTC)
    return AuditRecord(r.id, at.astimezone(UTC), r.account_id, r.address, r.actor, r.action,
                       r.protocol, r.client, r.outcome, json.loads(r.details or "{}"))


async def search(db: Database, query: AuditQuery) -> AsyncIterator[AuditRecord]:
    """The rows matching ``query``, oldest first, read a page at a time."""
    stmt = select(AuditRow)
    if query.address:
        addr = query.address.strip().lower()
        stmt = stmt.where(or_(AuditRow.address == addr, AuditRow.actor == addr))
    if query.since is not None:
        stmt = stmt.where(AuditRow.at >= query.since)
    if query.until is not None:
        stmt = stmt.where(AuditRow.at < query.until)
    if query.action:
        stmt = stmt.where(AuditRow.action == query.action)
    # In time order: a batched read (timed when it happened, written up to a second later)
    # comes before the changes that followed it. Keyset paging on (at, id).
    after = stmt
    while True:
        async with db.session() as s:
            page = (await s.execute(after.order_by(AuditRow.at, AuditRow.id).limit(PAGE))
                    ).scalars().all()
        for row in page:
            yield _record(row)
        if len(page) < PAGE:
            return
        at, last = page[-1].at, page[-1].id
        after = stmt.where(or_(AuditRow.at > at, and_(AuditRow.at == at, AuditRow.id > last)))


class AuditPurge:
    """Job ``purge_audit``: delete the rows past ``[audit] retention_days``, then schedule
    the next pass (one waiting at most; running it twice deletes nothing more)."""

    def __init__(self, trail: AuditTrail, *, interval: float) -> None:
        self.trail = trail
        self.interval = interval

    async def handle_job(self, job: JobInfo) -> None:
        removed = await self.trail.purge()
        if removed:
            log.info("audit: %d event(s) past retention removed", removed)
        await self.schedule(self.interval, running=1)

    async def schedule(self, delay: float = 0.0, *, running: int = 0) -> None:
        """Enqueue a pass unless one is already waiting (``running``: this job itself)."""
        await Jobs(self.trail.db).schedule_once(JOB_PURGE_AUDIT, delay=delay, running=running)


async def account_id_of(db: Database, address: str) -> int | None:
    """The account id of a local address, if there is one (the CLI's command rows)."""
    async with db.session() as s:
        row = (await s.execute(select(Account.id).where(Account.address == address))).first()
    return int(row[0]) if row else None
