"""Durable background jobs (see models.Job): enqueue inside a delivery transaction, claim,
complete or retry with exponential back-off.

Claiming marks a job ``running`` with a lease (``not_before`` = now + lease): a worker that dies
leaves the job to be claimed again once the lease expires. On PostgreSQL the claim uses
``FOR UPDATE SKIP LOCKED`` so several processes never take the same job. A periodic job kind
that must exist once (the sweeps) is enqueued by :meth:`Jobs.schedule_once`, whose check and
insert hold a transaction-level advisory lock on the kind on PostgreSQL (several processes
starting at once enqueue one job, not one each).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.store.db import Database
from mailserver.store.models import Job

__all__ = ["Jobs", "JobInfo"]


@dataclass(frozen=True)
class JobInfo:
    id: int
    kind: str
    account_id: int | None
    message_id: int | None
    payload_enc: bytes | None
    attempts: int


class Jobs:
    def __init__(self, db: Database, *, lease_seconds: float = 300.0) -> None:
        self.db = db
        self.lease = timedelta(seconds=lease_seconds)

    @staticmethod
    def enqueue_in(s: AsyncSession, kind: str, *, account_id: int | None = None,
                   message_id: int | None = None, payload_enc: bytes | None = None,
                   delay: float = 0.0) -> None:
        now = datetime.now(UTC)
        s.add(Job(kind=kind, account_id=account_id, message_id=message_id,
                  payload_enc=payload_enc, state="pending", attempts=0,
                  not_before=now + timedelta(seconds=delay), created_at=now))

    async def schedule_once(self, kind: str, *, delay: float = 0.0, running: int = 0) -> bool:
        """Enqueue a ``kind`` job unless more than ``running`` (the caller itself, when a job
        schedules its next run) are pending or running; True if one was enqueued."""
        lock = int.from_bytes(hashlib.sha256(f"mssante-job:{kind}".encode()).digest()[:8],
                              "big", signed=True)

        async def op(s: AsyncSession) -> bool:
            if not self.db.is_sqlite:  # SQLite: one process, one writer
                await s.execute(select(func.pg_advisory_xact_lock(lock)))
            count = (await s.execute(select(func.count(Job.id)).where(
                Job.kind == kind, Job.state.in_(("pending", "running"))))).scalar_one()
            if count > running:
                return False
            self.enqueue_in(s, kind, delay=delay)
            return True

        return await self.db.write(op)

    async def claim(self, kinds: list[str], limit: int = 20) -> list[JobInfo]:
        now = datetime.now(UTC)

        async def op(s: AsyncSession) -> list[JobInfo]:
            q = select(Job).where(Job.state.in_(("pending", "running")),
                                  Job.not_before <= now, Job.kind.in_(kinds)
                                  ).order_by(Job.not_before).limit(limit)
            if not self.db.is_sqlite:
                q = q.with_for_update(skip_locked=True)
            jobs = (await s.execute(q)).scalars().all()
            out = []
            for j in jobs:
                j.state = "running"
                j.attempts += 1
                j.not_before = now + self.lease
                out.append(JobInfo(j.id, j.kind, j.account_id, j.message_id, j.payload_enc,
                                   j.attempts))
            return out

        return await self.db.write(op)

    async def done(self, job_id: int) -> None:
        async def op(s: AsyncSession) -> None:
            await s.execute(update(Job).where(Job.id == job_id).values(state="done"))

        await self.db.write(op)

    async def retry(self, job_id: int, error: str, attempts: int, *, max_attempts: int = 12,
                    base: float = 30.0) -> None:
        delay = min(base * (2 ** (attempts - 1)), 6 * 3600)
        state = "failed" if attempts >= max_attempts else "pending"

        async def op(s: AsyncSession) -> None:
            await s.execute(update(Job).where(Job.id == job_id).values(
                state=state, last_error=error[:500],
                not_before=datetime.now(UTC) + timedelta(seconds=delay)))

        await self.db.write(op)

    async def pending_count(self, kind: str | None = None) -> int:
        async with self.db.session() as s:
            q = select(Job.id).where(Job.state.in_(("pending", "running")))
            if kind:
                q = q.where(Job.kind == kind)
            return len((await s.execute(q)).all())
