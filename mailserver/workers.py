"""The durable job runner (document filing, patient notifications).

Theory of operation: delivery enqueues jobs in the same transaction as the message; the runner
claims due jobs of the kinds in its handler table, runs each, marks it done, and retries a
failing one with back-off (``Jobs.retry``). Jobs of kinds nobody handles stay pending (nothing
is lost). The handler table is built once by the composition root (``mailserver.app``): no
registry, no import side effects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from mailserver.store.events import MailboxEvents
from mailserver.store.jobs import JobInfo, Jobs

__all__ = ["JobHandler", "JobRunner", "WAKE_JOBS"]

log = logging.getLogger(__name__)

JobHandler = Callable[[JobInfo], Awaitable[None]]

WAKE_JOBS = -1
"""The mailbox-events channel delivery publishes on after enqueuing jobs."""


class JobRunner:
    """Runs due jobs through ``handlers`` (job kind -> handler)."""

    def __init__(self, jobs: Jobs, handlers: Mapping[str, JobHandler], *,
                 wake: MailboxEvents | None = None, interval: float = 1.0) -> None:
        self.jobs = jobs
        self.handlers = dict(handlers)
        self.wake = wake
        self.interval = interval

    async def run_due(self, limit: int = 20) -> int:
        """Claim and run due jobs once; returns how many ran."""
        if not self.handlers:
            return 0
        claimed = await self.jobs.claim(list(self.handlers), limit)
        for job in claimed:
            try:
                await self.handlers[job.kind](job)
            except Exception as exc:  # noqa: BLE001 - the job is retried
                log.warning("jobs: %s failed (attempt %d): %s", job.kind, job.attempts,
                            type(exc).__name__)
                await self.jobs.retry(job.id, f"{type(exc).__name__}: {exc}", job.attempts)
            else:
                await self.jobs.done(job.id)
        return len(claimed)

    async def run(self, stop: asyncio.Event) -> None:
        """The loop: run due jobs until ``stop``; sleep until woken or ``interval`` passed."""
        wake = self.wake.subscribe(WAKE_JOBS) if self.wake is not None else asyncio.Event()
        while not stop.is_set():
            try:
                ran = await self.run_due()
            except Exception:  # noqa: BLE001
                log.exception("jobs: worker error")
                ran = 0
            if ran:
                continue
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), self.interval)
            except TimeoutError:
                pass
