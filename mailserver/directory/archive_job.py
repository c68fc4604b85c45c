"""The archive job of ``mssante serve``: carries out due archive deletions and purges the
archives closed ten years ago.

Theory of operation: like the opening job (:mod:`mailserver.directory.opening`), it holds no
state (the archives' rows are the state), runs a pass at start-up and every ``interval``
seconds, and is safe in several processes (each space is erased in one transaction that
re-checks the account's state). ``mssante accounts purge-due`` runs the purge for cron; the
``delete_archive`` durable job runs a deletion as soon as it is due.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from mailserver.directory.closing import AccountClosing
from mailserver.errors import StoreError
from mailserver.store.jobs import JobInfo

__all__ = ["ArchiveJob"]

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ArchiveJob:
    """Runs :meth:`AccountClosing.erase_due` and :meth:`AccountClosing.purge_due`."""

    def __init__(self, closing: AccountClosing, *, clock: Callable[[], datetime] = _utcnow,
                 interval: float = 300.0) -> None:
        self.closing = closing
        self.clock = clock
        self.interval = interval

    async def run_once(self, as_of: datetime | None = None) -> tuple[list[str], list[str]]:
        """One pass: (addresses whose archive was deleted, addresses purged)."""
        moment = as_of or self.clock()
        try:
            deleted = await self.closing.erase_due(as_of=moment)
            purged = await self.closing.purge_due(as_of=moment)
        except StoreError as exc:
            log.warning("lifecycle: archive pass stopped: %s", type(exc).__name__)
            return [], []
        if deleted or purged:
            log.info("lifecycle: %d archive(s) deleted, %d purged", len(deleted), len(purged))
        return deleted, purged

    async def handle_job(self, job: JobInfo) -> None:
        """The ``delete_archive`` durable job: run the due deletions now."""
        await self.closing.erase_due(as_of=self.clock())

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:  # noqa: BLE001 - the job must survive to its next pass
                log.exception("lifecycle: archive pass crashed")
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except TimeoutError:
                pass
