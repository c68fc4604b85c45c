"""Generation counters: one-row-each signals that cached data changed in some process.

Rows of ``key_generation``: :data:`KEYS` (id 1, bumped by every crypto-shredding and key move,
see ``store/keys.py``) and :data:`DIRECTORY` (id 2, bumped by every account write of the
directory). A process caching keys or address lookups reads the counters at most a few times a
second and drops its cache when one moved, so a change made by another process (a server
worker, another machine, an admin command) is seen within that interval.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.store.models import KeyGeneration

__all__ = ["KEYS", "DIRECTORY", "bump_in", "read_in"]

KEYS = 1
DIRECTORY = 2


async def bump_in(s: AsyncSession, which: int) -> None:
    """Bump counter ``which`` inside the caller's transaction."""
    bumped = await s.execute(update(KeyGeneration).where(KeyGeneration.id == which)
                             .values(generation=KeyGeneration.generation + 1))
    if not getattr(bumped, "rowcount", 0):
        s.add(KeyGeneration(id=which, generation=1))


async def read_in(s: AsyncSession) -> tuple[int, int]:
    """The (keys, directory) counters, 0 for a row not written yet."""
    result = await s.execute(select(KeyGeneration.id, KeyGeneration.generation).where(
        KeyGeneration.id.in_((KEYS, DIRECTORY))))
    rows = {row[0]: row[1] for row in result.all()}
    return rows.get(KEYS, 0), rows.get(DIRECTORY, 0)
