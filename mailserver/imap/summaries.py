"""Summaries built just after a message is stored, not at its first SORT/THREAD/FETCH.

A SORT or THREAD of a mailbox whose messages were never fetched used to build every sealed
summary then (decrypt, MIME-parse, seal: about 1.3 ms a message, 130 s for 100,000).  The
composition root gives :meth:`SummaryWarmer.stored` to :class:`~mailserver.delivery.Delivery`,
which calls it after its commit with each professional's stored copy; a background task then
builds the summaries in batches (:meth:`ImapStore.metas`: one write per batch) once deliveries
have paused for :attr:`SummaryWarmer.delay` seconds, so SMTP acceptance under load is not slowed
(building a summary decrypts and parses the message on the event loop: measured, building
them while accepting cost a third of the messages per second at concurrency 1).

The summary is a cache, so this is not a durable job: what a stopped process had not built yet,
or what did not fit in the queue (:attr:`SummaryWarmer.limit`), is built at its first use as
before.  Why not the job table: a job costs a claim and a "done" write per message (an fsync
each on SQLite), which halved SMTP acceptance in ``bench/smtp_suite.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from mailserver.store.imapmeta import ImapStore

from .meta import META_CODEC

__all__ = ["SummaryWarmer"]

log = logging.getLogger(__name__)


class SummaryWarmer:
    """Builds the sealed IMAP summaries of just-stored messages in the background."""

    def __init__(self, store: ImapStore, *, delay: float = 0.5, batch: int = 20,
                 limit: int = 100_000) -> None:
        self.store = store
        self.delay = delay
        self.batch = batch
        self.limit = limit
        self._pending: dict[int, list[int]] = {}  # account id -> message ids
        self._count = 0
        self._task: asyncio.Task[None] | None = None
        self._last = 0.0  # loop time of the last stored() call

    def stored(self, copies: Iterable[tuple[int, int]]) -> None:
        """Queue ``(account id, message id)`` pairs just committed (never blocks)."""
        for account_id, message_id in copies:
            if self._count >= self.limit:
                break  # built at first use instead
            self._pending.setdefault(account_id, []).append(message_id)
            self._count += 1
        loop = asyncio.get_running_loop()
        self._last = loop.time()
        if self._pending and (self._task is None or self._task.done()):
            self._task = loop.create_task(self._run())

    async def drain(self) -> None:
        """Wait until everything queued so far is built (tests, shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Give up what is still queued (it is built at first use) and end the task."""
        self._pending.clear()
        self._count = 0
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _idle(self) -> None:
        """Return once no delivery was stored for :attr:`delay` seconds."""
        loop = asyncio.get_running_loop()
        while (wait := self._last + self.delay - loop.time()) > 0:
            await asyncio.sleep(wait)

    async def _run(self) -> None:
        while self._pending:
            await self._idle()
            account_id, ids = next(iter(self._pending.items()))
            part, rest = ids[:self.batch], ids[self.batch:]
            if rest:
                self._pending[account_id] = rest
            else:
                del self._pending[account_id]
            self._count -= len(part)
            try:
                rows = await self.store.rows_by_id(part)
                await self.store.metas(account_id, rows, META_CODEC)
            except Exception as exc:  # noqa: BLE001 - a cache: built at first use instead
                log.warning("imap: summaries not built ahead (%d messages): %s",
                            len(part), type(exc).__name__)
