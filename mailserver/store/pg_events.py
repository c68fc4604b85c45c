"""Listening for the other processes' mailbox changes on PostgreSQL (``LISTEN mssante_mailbox``).

One dedicated asyncpg connection per server process, outside the pool, runs ``LISTEN``; each
notification is handed to :meth:`MailboxEvents.received`. The connection is checked every
:data:`CHECK_SECONDS` and opened again when lost (back-off up to 10 s); after each (re)connect
every subscriber is woken once, since notifications sent meanwhile were missed. IDLE's own
30-second poll remains the fallback while the listener is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from mailserver.store.events import CHANNEL, MailboxEvents

__all__ = ["PgEventListener", "CHECK_SECONDS"]

log = logging.getLogger(__name__)

CHECK_SECONDS = 5.0


def asyncpg_dsn(url: str) -> str:
    """The libpq-style DSN asyncpg takes, from the SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgEventListener:
    def __init__(self, url: str, events: MailboxEvents) -> None:
        self.dsn = asyncpg_dsn(url)
        self.events = events
        self.connected = asyncio.Event()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.events.received(payload)

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until ``stop``, reconnecting when the connection is lost."""
        delay = 0.5
        while not stop.is_set():
            try:
                conn = await asyncio.wait_for(asyncpg.connect(self.dsn), 10)
                await conn.add_listener(CHANNEL, self._on_notify)
            except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                log.warning("events: cannot listen on PostgreSQL (%s), retrying in %.1f s",
                            type(exc).__name__, delay)
                await _sleep(stop, delay)
                delay = min(10.0, delay * 2)
                continue
            delay = 0.5
            self.connected.set()
            self.events.complete = True
            self.events.publish_all()
            try:
                await self._watch(conn, stop)
            finally:
                self.events.complete = False
                self.connected.clear()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 2)

    async def _watch(self, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        """Return when ``stop`` is set or the connection stops answering."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _c: lost.set())
        while not stop.is_set() and not lost.is_set():
            await _sleep(stop, CHECK_SECONDS, lost)
            if stop.is_set() or lost.is_set():
                break
            try:
                await asyncio.wait_for(conn.execute("SELECT 1"), CHECK_SECONDS)
            except (OSError, TimeoutError, asyncpg.PostgresError,
                    asyncpg.InterfaceError) as exc:
                log.warning("events: PostgreSQL listener lost (%s), reconnecting",
                            type(exc).__name__)
                return
        if lost.is_set() and not stop.is_set():
            log.warning("events: PostgreSQL listener connection closed, reconnecting")


async def _sleep(stop: asyncio.Event, seconds: float, other: asyncio.Event | None = None
                 ) -> None:
    """Wait ``seconds`` unless ``stop`` (or ``other``) is set first."""
    waits = {asyncio.ensure_future(stop.wait())}
    if other is not None:
        waits.add(asyncio.ensure_future(other.wait()))
    _, pending = await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for task in waits:
        task.cancel()
