"""Login attempt counters, shared by every front end and every process (see
``Directory.authenticate``).

Theory of operation: an attempt is counted when it *starts*, before the password is looked at,
by one atomic upsert per key (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``, on SQLite and
PostgreSQL alike): the row is locked while it is incremented, so concurrent attempts, in this
process or another, each get a distinct count and at most ``limit`` of them are let through per
window, whatever the concurrency. A successful attempt gives its slot back (:meth:`release`), so
only failures (and attempts still in flight) fill the window. A password this process has
already verified (the directory's cache) is not a guess: its attempt is only checked against
the counters (:meth:`locked`, one read, no write), so a locked key stays locked for it too.

The window starts at the first attempt and lasts ``window`` seconds; the attempt that reaches the
limit restarts it, so the key stays locked for a whole window after the last guess allowed.
Keys are SHA-256 digests of ``purpose:subject`` (account ids, typed names, client addresses are
not stored in clear).

When the database cannot take writes because the storage is full, attempts are counted in this
process's memory with the same window rules: a full disk neither locks every user out nor lets
guesses through uncounted.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, Integer, String, case, delete, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mailserver.errors import StorageFull
from mailserver.store.db import Database, lock_key
from mailserver.store.models import Base

__all__ = ["AuthAttempt", "Attempts", "attempt_key"]

log = logging.getLogger(__name__)


class AuthAttempt(Base):
    """Attempts counted for one key in the current window."""

    __tablename__ = "auth_attempts"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


def attempt_key(purpose: str, subject: str) -> str:
    """The stored key of ``purpose:subject``."""
    return hashlib.sha256(f"{purpose}:{subject}".encode()).hexdigest()


class Attempts:
    """Claim and release attempt slots; rows whose window is over are purged now and then."""

    def __init__(self, db: Database, window_seconds: float) -> None:
        self.db = db
        self.window = timedelta(seconds=window_seconds)
        self._next_purge = datetime.now(UTC)
        self._memory: dict[str, tuple[datetime, int]] = {}
        """Fallback counters while the storage is full: key -> (window start, attempts)."""

    async def claim(self, keys: Sequence[tuple[str, int]]) -> list[int]:
        """Count one attempt on each ``(key, limit)``, in one transaction.

        Returns:
            The number of attempts in each key's window, this one included; the attempt may go
            on only if every number is within its limit.
        """
        now = datetime.now(UTC)
        horizon = now - self.window
        purge = now >= self._next_purge
        if purge:
            self._next_purge = now + self.window

        async def op(s: AsyncSession) -> list[int]:
            if purge:
                await s.execute(delete(AuthAttempt).where(AuthAttempt.window_start <= horizon))
            return [await self._claim_one(s, key, limit, now, horizon) for key, limit in keys]

        try:
            return await self.db.write(op, locks=[lock_key("auth", key) for key, _ in keys])
        except StorageFull:
            log.warning("auth: storage full, attempts counted in memory")
            return [self._claim_in_memory(key, limit, now) for key, limit in keys]

    def _claim_in_memory(self, key: str, limit: int, now: datetime) -> int:
        """:meth:`_claim_one`'s rules on this process's fallback counters."""
        start, attempts = self._memory.get(key, (now, 0))
        if start <= now - self.window:
            start, attempts = now, 0
        attempts += 1
        if attempts == limit:
            start = now
        self._memory[key] = (start, attempts)
        return attempts

    async def _claim_one(self, s: AsyncSession, key: str, limit: int, now: datetime,
                         horizon: datetime) -> int:
        t = AuthAttempt.__table__.c
        at = literal(now, DateTime(timezone=True))
        insert = sqlite.insert if self.db.is_sqlite else postgresql.insert
        expired = t.window_start <= literal(horizon, DateTime(timezone=True))
        # Both right-hand sides read the row as it was before this update (SQL semantics).
        stmt = insert(AuthAttempt).values(key_hash=key, window_start=now, attempts=1)
        upsert = stmt.on_conflict_do_update(index_elements=[t.key_hash], set_={
            "attempts": case((expired, 1), else_=t.attempts + 1),
            "window_start": case((expired, at), (t.attempts + 1 == limit, at),
                                 else_=t.window_start),
        }).returning(t.attempts)
        return int((await s.execute(upsert)).scalar_one())

    async def locked(self, keys: Sequence[tuple[str, int]]) -> list[int] | None:
        """Without counting an attempt: None when every ``(key, limit)`` may take one more
        attempt now, else each key's attempts in its window (as :meth:`claim` would refuse)."""
        now = datetime.now(UTC)
        horizon = now - self.window
        names = [key for key, _limit in keys]
        async with self.db.read() as conn:
            rows = dict((await conn.execute(select(
                AuthAttempt.key_hash, AuthAttempt.attempts).where(
                AuthAttempt.key_hash.in_(names), AuthAttempt.window_start > horizon))).all())
        for key, (start, attempts) in self._memory.items():
            if key in names and start > horizon:
                rows[key] = max(rows.get(key, 0), attempts)
        counts = [int(rows.get(key, 0)) for key in names]
        if any(n >= limit for n, (_key, limit) in zip(counts, keys, strict=True)):
            return counts
        return None

    async def release(self, keys: Sequence[str]) -> None:
        """Give back the slot of an attempt that succeeded."""
        horizon = datetime.now(UTC) - self.window
        for key in keys:
            if key in self._memory:
                start, attempts = self._memory[key]
                self._memory[key] = (start, max(0, attempts - 1))

        async def op(s: AsyncSession) -> None:
            await s.execute(update(AuthAttempt).where(
                AuthAttempt.key_hash.in_(list(keys)), AuthAttempt.attempts > 0,
                AuthAttempt.window_start > horizon).values(attempts=AuthAttempt.attempts - 1))

        await self.db.write(op, locks=[lock_key("auth", key) for key in keys])

    async def clear(self, key: str) -> None:
        """Forget a key's attempts (its password was just changed)."""
        async def op(s: AsyncSession) -> None:
            await s.execute(delete(AuthAttempt).where(AuthAttempt.key_hash == key))

        await self.db.write(op, locks=[lock_key("auth", key)])
