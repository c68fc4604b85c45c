"""Per-mailbox data keys: creation, unwrapping with a cache, rotation and shredding.

Theory of operation: unwrapped keys are cached per process (the server, its workers, the
command line are separate processes on one database). Shredding deletes the wrapped key and
bumps the one-row ``key_generation`` counter in the same transaction. Before serving a cached
key, a process re-reads that counter (one primary-key read, at most every
``GENERATION_RECHECK`` seconds); when it moved, the whole cache is dropped and keys are read
again from the database, where a shredded key is gone. So a ``mssante keys shred`` takes effect
in every running process at once, without a restart. Concurrent callers share one re-read (the
SMTP path asks for keys from every session at once, a FETCH for many messages), and whether a
key was shredded is answered from the same cache, so accepting a message reads no key row while
the counter stands still.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.errors import KeyDestroyed, NotFound
from mailserver.store.archives import bump_generation_in, rewrap_archive_keys
from mailserver.store.crypto import KeyCache, MasterKeyring, new_data_key, seal, unseal
from mailserver.store.db import Database
from mailserver.store.models import KeyGeneration, MailboxKey
from mailserver.store.queue import rewrap_queue_key

__all__ = ["KeyManager", "GENERATION_RECHECK"]

log = logging.getLogger(__name__)

GENERATION_RECHECK = 0.05
"""Seconds a cached key is trusted without re-reading the shred generation: bounds the extra
reads to ~20 a second under load (an IMAP FETCH unseals once per message) while a shred is
seen well before anyone can act on its completion."""


class KeyManager:
    """Hands out data keys of accounts; the only holder of the master keyring."""

    def __init__(self, db: Database, ring: MasterKeyring, cache_size: int = 10_000) -> None:
        self.db = db
        self.ring = ring
        self.cache = KeyCache(cache_size)
        self._generation: int | None = None
        self._checked_at = float("-inf")
        self._recheck: asyncio.Future[None] | None = None

    async def create(self, session: AsyncSession, account_id: int) -> bytes:
        """Create and store (wrapped) a data key for a new account, in the caller's transaction."""
        key = new_data_key()
        key_id, wrapped = self.ring.wrap(key, account_id)
        session.add(MailboxKey(account_id=account_id, master_key_id=key_id, wrapped=wrapped))
        self.cache.put(account_id, key)
        return key

    async def get(self, account_id: int, session: AsyncSession | None = None) -> bytes:
        """The account's data key. Raises KeyDestroyed after crypto-shredding."""
        if time.monotonic() - self._checked_at < GENERATION_RECHECK:
            key = self.cache.get(account_id)
            if key is not None:
                return key
        if session is None:
            await self._shared_recheck()
            key = self.cache.get(account_id)
            if key is not None:
                return key
            async with self.db.reader() as s:
                return await self._get(s, account_id)
        return await self._get(session, account_id)

    async def _shared_recheck(self) -> None:
        """Re-read the generation once for all the callers waiting at the same time (a FETCH
        of many messages, several sessions), not once each."""
        task = self._recheck
        if task is None or task.done():
            task = self._recheck = asyncio.ensure_future(self._recheck_alone())
        await asyncio.shield(task)

    async def _recheck_alone(self) -> None:
        async with self.db.reader() as s:
            await self._revalidate(s)

    async def _get(self, session: AsyncSession, account_id: int) -> bytes:
        await self._revalidate(session)
        key = self.cache.get(account_id)
        if key is not None:
            return key
        row = await session.get(MailboxKey, account_id, populate_existing=True)
        if row is None:
            raise NotFound("no data key for this account")
        if row.wrapped is None:
            raise KeyDestroyed("the data of this mailbox has been destroyed")
        key = self.ring.unwrap(row.master_key_id, row.wrapped, account_id)
        self.cache.put(account_id, key)
        return key

    async def _revalidate(self, session: AsyncSession) -> None:
        """Drop every cached key if a key was shredded (by any process) since the last look."""
        now = time.monotonic()
        if now - self._checked_at < GENERATION_RECHECK:
            return
        generation = (await session.execute(select(KeyGeneration.generation).where(
            KeyGeneration.id == 1))).scalar_one_or_none() or 0
        self._checked_at = now
        if generation != self._generation:
            self.cache.clear()
            self._generation = generation

    async def is_destroyed(self, account_id: int) -> bool:
        """Whether the account's data key was shredded, by this or any other process (from the
        key cache, dropped whenever the shred counter moves: see the module docstring)."""
        try:
            await self.get(account_id)
        except KeyDestroyed:
            return True
        except NotFound:
            return False
        return False

    async def seal(self, account_id: int, plaintext: bytes, aad: bytes) -> bytes:
        return seal(await self.get(account_id), plaintext, aad)

    async def unseal(self, account_id: int, blob: bytes, aad: bytes) -> bytes:
        return unseal(await self.get(account_id), blob, aad)

    async def destroy(self, account_id: int) -> None:
        """Crypto-shred: forget the account's data key for good."""

        async def op(session: AsyncSession) -> None:
            await session.execute(
                update(MailboxKey)
                .where(MailboxKey.account_id == account_id)
                .values(wrapped=None, destroyed_at=datetime.now(UTC))
            )
            await bump_generation_in(session)

        await self.db.write(op)
        self.forget(account_id)
        log.info("keys: data key destroyed account=%d", account_id)

    def forget(self, account_id: int) -> None:
        """Drop the account's cached key and re-read the generation at the next use (after
        this process moved or destroyed the key)."""
        self.cache.drop(account_id)
        self._checked_at = float("-inf")

    async def rotate_master(self) -> int:
        """Re-wrap every data key under a new master key, then retire the old ones.

        Returns the number of keys re-wrapped. Data is untouched. The new key is saved to the key
        file before any row changes, so an interruption leaves both keys usable.
        """
        new_id = self.ring.add_new_current()

        async def op(session: AsyncSession) -> int:
            count = 0
            rows = (await session.execute(
                select(MailboxKey).where(MailboxKey.wrapped.is_not(None))
            )).scalars().all()
            for row in rows:
                assert row.wrapped is not None
                if row.master_key_id == new_id:
                    continue
                key = self.ring.unwrap(row.master_key_id, row.wrapped, row.account_id)
                row.master_key_id, row.wrapped = self.ring.wrap(key, row.account_id)
                count += 1
            # Other keys wrapped by the master key (the outbound queue's) rotate with it.
            count += await rewrap_queue_key(session, self.ring)
            count += await rewrap_archive_keys(session, self.ring, new_id)
            return count

        count = await self.db.write(op)
        self.ring.retire_others()
        log.info("keys: master key rotated, %d data keys re-wrapped", count)
        return count
