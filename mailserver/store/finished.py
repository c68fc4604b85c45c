"""Finished rows are deleted after ``[jobs] keep_done_days``: jobs in state ``done`` and
outbound queue messages in state ``done`` (every recipient delivered or bounced, the body
already emptied), with their recipients. Failed jobs are kept for the operator.

When a row finished: a claim moves the job's ``not_before`` (the queue message's
``next_attempt``) to the end of its lease and finishing leaves it there, so that column is the
finish time to within one lease; it is also the second column of the ``(state, due)`` index the
claims read, so a pass reads that index, not the table. Rows go in batches of :data:`BATCH`, one
write each: a pass at national volume (about a million jobs a day) never holds SQLite's writer
or PostgreSQL's row locks for long. Job ``purge_finished`` runs every ``purge_interval_seconds``,
enqueued once across processes (:meth:`Jobs.schedule_once`); two passes at once would only find
fewer rows.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.store.db import Database
from mailserver.store.jobs import JobInfo, Jobs
from mailserver.store.models import Job
from mailserver.store.queue import QueueMessage, QueueRecipient

__all__ = ["JOB_PURGE_FINISHED", "FinishedPurge", "Purged", "BATCH"]

log = logging.getLogger(__name__)

JOB_PURGE_FINISHED = "purge_finished"
BATCH = 2000


@dataclass(frozen=True)
class Purged:
    """Rows deleted by one pass."""

    jobs: int
    queued: int


class FinishedPurge:
    """Job ``purge_finished`` (see the module docstring); ``batch``: rows per write."""

    def __init__(self, db: Database, *, keep_days: int, interval: float, batch: int = BATCH,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.db = db
        self.batch = batch
        self.keep = timedelta(days=keep_days)
        self.interval = interval
        self.clock = clock

    async def run_once(self) -> Purged:
        """Delete the rows finished before the retention; returns how many of each."""
        horizon = self.clock() - self.keep
        jobs = await self._in_batches(
            select(Job.id).where(Job.state == "done", Job.not_before < horizon), _delete_jobs)
        queued = await self._in_batches(
            select(QueueMessage.id).where(QueueMessage.state == "done",
                                          QueueMessage.next_attempt < horizon), _delete_queued)
        if jobs or queued:
            log.info("purge: %d finished job(s), %d finished queue message(s) removed",
                     jobs, queued)
        return Purged(jobs, queued)

    async def _in_batches(self, due: Select[int],
                          remove: Callable[[AsyncSession, list[int]], Awaitable[None]]) -> int:
        total = 0
        while True:
            async def op(s: AsyncSession) -> int:
                ids = list((await s.execute(due.limit(self.batch))).scalars())
                if ids:
                    await remove(s, ids)
                return len(ids)

            done = await self.db.write(op)
            total += done
            if done < self.batch:
                return total

    async def handle_job(self, job: JobInfo) -> None:
        """Job ``purge_finished``: one pass, then the next one is scheduled."""
        await self.run_once()
        await self.schedule(self.interval, running=1)

    async def schedule(self, delay: float = 0.0, *, running: int = 0) -> None:
        """Enqueue a pass unless one is already waiting (``running``: this job itself)."""
        await Jobs(self.db).schedule_once(JOB_PURGE_FINISHED, delay=delay, running=running)


async def _delete_jobs(s: AsyncSession, ids: list[int]) -> None:
    await s.execute(delete(Job).where(Job.id.in_(ids)))


async def _delete_queued(s: AsyncSession, ids: list[int]) -> None:
    # Recipients first: SQLite may run with foreign keys off (no ON DELETE CASCADE then).
    await s.execute(delete(QueueRecipient).where(QueueRecipient.message_id.in_(ids)))
    await s.execute(delete(QueueMessage).where(QueueMessage.id.in_(ids)))
