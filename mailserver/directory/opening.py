"""The automatic opening of pending accounts, a scheduled job of ``mssante serve``.

Theory of operation: every ``interval`` seconds (and at start-up, so a restart catches up)
the job opens, in batches, the pending patient accounts whose opening is due (00:00
Europe/Paris of the day after their deadline, see :mod:`mailserver.lifecycle`). It holds no
state: the accounts' status is the state, so it is idempotent and safe to run in several
processes on one database (the directory opens each account once: ``SKIP LOCKED`` on
PostgreSQL, a conditional status update everywhere). ``mssante accounts open-due`` runs one
pass for cron.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from mailserver.directory.service import Directory
from mailserver.errors import StoreError
from mailserver.lifecycle import Actor

__all__ = ["OpeningJob", "JOB_NAME"]

log = logging.getLogger(__name__)

JOB_NAME = "open-due"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class OpeningJob:
    """Opens the pending accounts whose deadline passed (``clock`` gives the time)."""

    def __init__(self, directory: Directory, *, clock: Callable[[], datetime] = _utcnow,
                 interval: float = 300.0, batch: int = 200) -> None:
        self.directory = directory
        self.clock = clock
        self.interval = interval
        self.batch = batch

    async def run_once(self, as_of: datetime | None = None) -> list[str]:
        """One pass: open every due account (batch after batch); their addresses."""
        opened: list[str] = []
        while True:
            try:
                done = await self.directory.open_due(as_of=as_of or self.clock(),
                                                     limit=self.batch,
                                                     actor=Actor.system(JOB_NAME))
            except StoreError as exc:
                # Another process holding the (SQLite) writer lock, a lost connection: the
                # next pass retries; the batches already committed stay done.
                log.warning("lifecycle: opening pass stopped: %s", type(exc).__name__)
                break
            opened += done
            if len(done) < self.batch:
                break
        if opened:
            log.info("lifecycle: opened %d pending account(s) at their deadline", len(opened))
        return opened

    async def run(self, stop: asyncio.Event) -> None:
        """Run a pass now and every ``interval`` seconds until ``stop``."""
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:  # noqa: BLE001 - the job must survive to its next pass
                log.exception("lifecycle: opening pass crashed")
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except TimeoutError:
                pass
