"""Per-mailbox data keys: creation, unwrapping with a cache, rotation and shredding."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mailserver.errors import KeyDestroyed, NotFound
from mailserver.store.crypto import KeyCache, MasterKeyring, new_data_key, seal, unseal
from mailserver.store.db import Database
from mailserver.store.models import MailboxKey

__all__ = ["KeyManager"]

log = logging.getLogger(__name__)


class KeyManager:
    """Hands out data keys of accounts; the only holder of the master keyring."""

    def __init__(self, db: Database, ring: MasterKeyring, cache_size: int = 10_000) -> None:
        self.db = db
        self.ring = ring
        self.cache = KeyCache(cache_size)

    async def create(self, session: AsyncSession, account_id: int) -> bytes:
        """Create and store (wrapped) a data key for a new account, in the caller's transaction."""
        key = new_data_key()
        key_id, wrapped = self.ring.wrap(key, account_id)
        session.add(MailboxKey(account_id=account_id, master_key_id=key_id, wrapped=wrapped))
        self.cache.put(account_id, key)
        return key

    async def get(self, account_id: int, session: AsyncSession | None = None) -> bytes:
        """The account's data key. Raises KeyDestroyed after crypto-shredding."""
        key = self.cache.get(account_id)
        if key is not None:
            return key
        if session is None:
            async with self.db.session() as s:
                row = await s.get(MailboxKey, account_id)
        else:
            row = await session.get(MailboxKey, account_id)
        if row is None:
            raise NotFound("no data key for this account")
        if row.wrapped is None:
            raise KeyDestroyed("the data of this mailbox has been destroyed")
        key = self.ring.unwrap(row.master_key_id, row.wrapped, account_id)
        self.cache.put(account_id, key)
        return key

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

        await self.db.write(op)
        self.cache.drop(account_id)
        log.info("keys: data key destroyed account=%d", account_id)

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
            from mailserver.store.queue import rewrap_queue_key

            count += await rewrap_queue_key(session, self.ring)
            return count

        count = await self.db.write(op)
        self.ring.retire_others()
        log.info("keys: master key rotated, %d data keys re-wrapped", count)
        return count
